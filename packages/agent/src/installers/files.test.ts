import { createHash } from 'node:crypto';
import { chmodSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileAction, PatchwardenError } from '@patchwarden/core';
import type { ErrorCode } from '@patchwarden/core';
import {
  FILE_SNAPSHOT_NAME,
  applyFileActions,
  applyFileSteps,
  loadFileSnapshot,
  preflightFileActions,
  resolveInRoot,
  rollbackFiles,
  takeFileSnapshot,
  undoFiles,
} from './files.js';
import type { ApplyStep } from './files.js';
import { makeTemp, removeTemp } from './testing.js';

const sha = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');

let tmp: string;
let root: string;
let payload: string;
let snapDir: string;
let outside: string;

beforeEach(() => {
  tmp = makeTemp('pw-files-');
  root = path.join(tmp, 'root');
  payload = path.join(tmp, 'payload');
  snapDir = path.join(tmp, 'agent-data', 'snapshots', 'job-1');
  outside = path.join(tmp, 'outside');
  for (const d of [root, payload, outside]) mkdirSync(d, { recursive: true });
});
afterEach(() => removeTemp(tmp));

function put(dir: string, rel: string, content: string, mode = 0o644): string {
  const f = path.join(dir, rel);
  mkdirSync(path.dirname(f), { recursive: true });
  writeFileSync(f, content);
  chmodSync(f, mode);
  return sha(content);
}

/** Every entry below dir: kind, mode, content hash or link target. Byte-equal trees give equal maps. */
function tree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = path.join(d, name);
      const rel = path.relative(dir, p);
      const st = lstatSync(p);
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isSymbolicLink()) out[rel] = `link -> ${readlinkSync(p)}`;
      else if (st.isDirectory()) {
        out[rel] = `dir ${mode}`;
        walk(p);
      } else out[rel] = `file ${mode} ${sha(readFileSync(p))}`;
    }
  };
  walk(dir);
  return out;
}

async function codeOf(p: Promise<unknown>): Promise<ErrorCode> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(PatchwardenError);
    return (e as PatchwardenError).code;
  }
  throw new Error('expected a PatchwardenError');
}

/** A device with /etc/app.conf (0640) and /etc/old.conf (0755); a patch that places a file in a new directory, replaces one and deletes one. */
function scenario() {
  const appBefore = put(root, 'etc/app.conf', 'setting=old\n', 0o640);
  const oldBefore = put(root, 'etc/old.conf', '#!/bin/sh\necho old\n', 0o755);
  put(root, 'etc/untouched.conf', 'leave me\n');
  const newApp = put(payload, 'conf/app.conf', 'setting=new\n');
  const placed = put(payload, 'conf/extra.conf', 'extra=1\n');
  const actions = [
    FileAction.parse({ type: 'file', op: 'place', path: '/opt/pw-app/conf.d/extra.conf', source: 'conf/extra.conf', sha256: placed, mode: '0600' }),
    FileAction.parse({ type: 'file', op: 'replace', path: '/etc/app.conf', source: 'conf/app.conf', sha256: newApp, priorSha256: appBefore }),
    FileAction.parse({ type: 'file', op: 'delete', path: '/etc/old.conf', priorSha256: oldBefore }),
  ];
  return { actions, appBefore, oldBefore, newApp, placed };
}

describe('resolveInRoot', () => {
  it('maps a device path below the root and lists the directories that are missing', async () => {
    mkdirSync(path.join(root, 'etc'));
    const r = await resolveInRoot(root, '/etc/app.conf');
    expect(r.hostPath).toBe(path.join(root, 'etc/app.conf'));
    expect(r.missingDirs).toEqual([]);
    expect(r.final).toBe('absent');
    const deep = await resolveInRoot(root, '/opt/a/b/file');
    expect(deep.missingDirs).toEqual([path.join(root, 'opt'), path.join(root, 'opt/a'), path.join(root, 'opt/a/b')]);
  });

  it('refuses Windows paths on POSIX, unnormalised paths, relative roots and the host root without allowHost', async () => {
    expect(await codeOf(resolveInRoot(root, 'C:\\Windows\\app.ini'))).toBe('E_VALIDATION');
    await expect(resolveInRoot(root, 'C:\\Windows\\app.ini')).rejects.toThrow(/Windows path/);
    expect(await codeOf(resolveInRoot(root, '/etc/../../x'))).toBe('E_VALIDATION');
    expect(await codeOf(resolveInRoot(root, 'etc/x'))).toBe('E_VALIDATION');
    expect(await codeOf(resolveInRoot('relative/root', '/etc/x'))).toBe('E_VALIDATION');
    expect(await codeOf(resolveInRoot('/', '/etc/x'))).toBe('E_FORBIDDEN');
    // a root that is a link to '/' is the host too
    symlinkSync('/', path.join(tmp, 'host-link'));
    expect(await codeOf(resolveInRoot(path.join(tmp, 'host-link'), '/etc/x'))).toBe('E_FORBIDDEN');
    // with allowHost the host root is accepted (resolution only reads)
    expect((await resolveInRoot('/', '/etc/pw-never-created.conf', { allowHost: true })).hostPath).toBe('/etc/pw-never-created.conf');
  });

  it('refuses a symlinked parent that points outside the root, and a symlink as the final component', async () => {
    symlinkSync(outside, path.join(root, 'etc'));
    const err = await resolveInRoot(root, '/etc/app.conf').then(() => { throw new Error('expected a refusal'); }, (e: unknown) => e as PatchwardenError);
    expect(err).toBeInstanceOf(PatchwardenError);
    expect(err.code).toBe('E_FORBIDDEN');
    expect(err.message).toMatch(/outside the root/);
    // a link to the real /etc of the host: the same refusal
    symlinkSync('/etc', path.join(root, 'hostetc'));
    expect(await codeOf(resolveInRoot(root, '/hostetc/passwd'))).toBe('E_FORBIDDEN');
    // deeper: a link in the middle of the path
    mkdirSync(path.join(root, 'var'));
    symlinkSync('../../outside', path.join(root, 'var/lib'));
    expect(await codeOf(resolveInRoot(root, '/var/lib/x/y'))).toBe('E_FORBIDDEN');

    mkdirSync(path.join(root, 'srv'));
    writeFileSync(path.join(outside, 'target'), 'x');
    symlinkSync(path.join(outside, 'target'), path.join(root, 'srv/final'));
    symlinkSync('inside-target', path.join(root, 'srv/final-inside'));
    const final = await resolveInRoot(root, '/srv/final').then(() => { throw new Error('expected a refusal'); }, (e: unknown) => e as PatchwardenError);
    expect(final.code).toBe('E_FORBIDDEN');
    expect(final.message).toMatch(/symbolic link/);
    expect(await codeOf(resolveInRoot(root, '/srv/final-inside'))).toBe('E_FORBIDDEN');
  });

  it('follows a parent link that stays inside the root, and refuses a parent that is a file', async () => {
    mkdirSync(path.join(root, 'usr/bin'), { recursive: true });
    symlinkSync('usr/bin', path.join(root, 'bin'));
    expect((await resolveInRoot(root, '/bin/tool')).hostPath).toBe(path.join(root, 'usr/bin/tool'));
    put(root, 'etc', 'a file, not a directory');
    expect(await codeOf(resolveInRoot(root, '/etc/app.conf'))).toBe('E_CONFLICT');
    mkdirSync(path.join(root, 'dir'));
    expect(await codeOf(resolveInRoot(root, '/dir'))).toBe('E_CONFLICT');
  });
});

describe('preflightFileActions', () => {
  it('passes a patch that fits and changes nothing', async () => {
    const { actions } = scenario();
    const before = tree(tmp);
    expect(await preflightFileActions(root, actions, payload)).toEqual([]);
    expect(tree(tmp)).toEqual(before);
  });

  it('catches a wrong priorSha256, an existing file for place, a wrong source hash, a missing file and duplicates', async () => {
    const { actions, newApp } = scenario();
    put(root, 'etc/exists.conf', 'here already\n');
    const bad = [
      FileAction.parse({ ...actions[1], priorSha256: sha('something else') }),
      FileAction.parse({ type: 'file', op: 'place', path: '/etc/exists.conf', source: 'conf/app.conf', sha256: newApp }),
      FileAction.parse({ type: 'file', op: 'place', path: '/etc/new.conf', source: 'conf/app.conf', sha256: sha('not the payload') }),
      FileAction.parse({ type: 'file', op: 'delete', path: '/etc/missing.conf', priorSha256: sha('x') }),
      FileAction.parse({ type: 'file', op: 'place', path: '/etc/other.conf', source: 'conf/nope.conf', sha256: newApp }),
      FileAction.parse({ type: 'file', op: 'place', path: '/etc/new.conf', source: 'conf/app.conf', sha256: newApp }),
    ];
    const before = tree(tmp);
    const problems = await preflightFileActions(root, bad, payload);
    expect(tree(tmp)).toEqual(before);
    const by = (i: number) => problems.filter((p) => p.index === i);
    expect(by(0)).toMatchObject([{ code: 'E_CONFLICT', message: expect.stringMatching(/expects/) }]);
    expect(by(1)).toMatchObject([{ code: 'E_CONFLICT', message: expect.stringMatching(/already exists/) }]);
    expect(by(2)).toMatchObject([{ code: 'E_DIGEST_MISMATCH', message: expect.stringMatching(/payload file conf\/app.conf has sha256/) }]);
    expect(by(3)).toMatchObject([{ code: 'E_CONFLICT', message: expect.stringMatching(/does not exist/) }]);
    expect(by(4)).toMatchObject([{ code: 'E_NOT_FOUND' }]);
    expect(by(5)).toMatchObject([{ code: 'E_VALIDATION', message: expect.stringMatching(/named by actions 2 and 5/) }]);
  });

  it('reports a symlink escape as a problem', async () => {
    const { newApp } = scenario();
    symlinkSync(outside, path.join(root, 'escape'));
    const problems = await preflightFileActions(root, [FileAction.parse({ type: 'file', op: 'place', path: '/escape/x.conf', source: 'conf/app.conf', sha256: newApp })], payload);
    expect(problems).toMatchObject([{ index: 0, code: 'E_FORBIDDEN' }]);
  });
});

describe('takeFileSnapshot', () => {
  it('records before and after states with kept copies before anything changes', async () => {
    const { actions, appBefore, oldBefore, placed } = scenario();
    const before = tree(root);
    const s = await takeFileSnapshot(root, actions, snapDir);
    expect(tree(root)).toEqual(before);
    expect(s.entries.map((e) => [e.path, e.before, e.after])).toEqual([
      ['/opt/pw-app/conf.d/extra.conf', null, { sha256: placed, mode: '0600' }],
      ['/etc/app.conf', expect.objectContaining({ sha256: appBefore, mode: '0640' }), { sha256: sha('setting=new\n'), mode: '0644' }],
      ['/etc/old.conf', expect.objectContaining({ sha256: oldBefore, mode: '0755' }), null],
    ]);
    expect(s.createdDirs).toEqual([path.join(root, 'opt'), path.join(root, 'opt/pw-app'), path.join(root, 'opt/pw-app/conf.d')]);
    expect(sha(readFileSync(path.join(snapDir, s.entries[1]!.kept!.file)))).toBe(appBefore);
    expect(sha(readFileSync(path.join(snapDir, s.entries[2]!.kept!.file)))).toBe(oldBefore);
    expect(existsSync(path.join(snapDir, FILE_SNAPSHOT_NAME))).toBe(true);
    const loaded = await loadFileSnapshot(snapDir);
    expect(loaded).toEqual(s);
    expect(readdirSync(snapDir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    // a directory that holds a snapshot is never overwritten
    expect(await codeOf(takeFileSnapshot(root, actions, snapDir))).toBe('E_CONFLICT');
  });

  it('refuses a symlink escape and writes nothing outside the root', async () => {
    const { newApp } = scenario();
    symlinkSync(outside, path.join(root, 'escape'));
    const a = [FileAction.parse({ type: 'file', op: 'place', path: '/escape/x.conf', source: 'conf/app.conf', sha256: newApp })];
    expect(await codeOf(takeFileSnapshot(root, a, snapDir))).toBe('E_FORBIDDEN');
    expect(readdirSync(outside)).toEqual([]);
  });

  it('leaves nothing behind when it refuses, so the same directory can be used again', async () => {
    const { actions } = scenario();
    put(root, 'etc/app.conf.d', 'a file');
    const refusedAt = FileAction.parse({ type: 'file', op: 'place', path: '/etc/app.conf.d/x', source: 'conf/app.conf', sha256: actions[1]!.sha256 });
    const before = tree(root);
    expect(await codeOf(takeFileSnapshot(root, [...actions, refusedAt], snapDir))).toBe('E_CONFLICT');
    expect(readdirSync(snapDir)).toEqual([]);
    expect(tree(root)).toEqual(before);
    expect((await takeFileSnapshot(root, actions, snapDir)).entries).toHaveLength(3);
  });
});

describe('apply and undo', () => {
  it('place, replace and delete round trip: undo restores content, mode and directories byte for byte, without the bundle', async () => {
    const { actions, placed } = scenario();
    const before = tree(root);
    const s = await takeFileSnapshot(root, actions, snapDir);
    const r = await applyFileActions(root, actions, payload, s);
    expect(r.status).toBe('applied');
    expect(readFileSync(path.join(root, 'opt/pw-app/conf.d/extra.conf'), 'utf8')).toBe('extra=1\n');
    expect(lstatSync(path.join(root, 'opt/pw-app/conf.d/extra.conf')).mode & 0o7777).toBe(0o600);
    expect(sha(readFileSync(path.join(root, 'opt/pw-app/conf.d/extra.conf')))).toBe(placed);
    expect(readFileSync(path.join(root, 'etc/app.conf'), 'utf8')).toBe('setting=new\n');
    expect(lstatSync(path.join(root, 'etc/app.conf')).mode & 0o7777).toBe(0o644);
    expect(existsSync(path.join(root, 'etc/old.conf'))).toBe(false);
    // no temporary file left beside any path
    expect(Object.keys(tree(root)).filter((p) => p.includes('.pw-tmp-'))).toEqual([]);
    expect((await loadFileSnapshot(snapDir)).appliedAt).toBeTypeOf('number');

    rmSync(payload, { recursive: true }); // the bundle is gone: undo uses the kept copies only
    const u = await undoFiles(root, await loadFileSnapshot(snapDir));
    expect(u).toMatchObject({ status: 'undone', restored: ['/opt/pw-app/conf.d/extra.conf', '/etc/app.conf', '/etc/old.conf'] });
    expect(tree(root)).toEqual(before);
    expect(readFileSync(path.join(root, 'etc/old.conf'), 'utf8')).toBe('#!/bin/sh\necho old\n');

    // a second undo (a retried request) finds nothing to do
    const again = await undoFiles(root, await loadFileSnapshot(snapDir));
    expect(again).toMatchObject({ status: 'undone', restored: [] });
    expect(tree(root)).toEqual(before);
  });

  it('undo refuses, changing nothing, when a file drifted from the state the patch left', async () => {
    const { actions } = scenario();
    const s = await takeFileSnapshot(root, actions, snapDir);
    expect((await applyFileActions(root, actions, payload, s)).status).toBe('applied');
    writeFileSync(path.join(root, 'etc/app.conf'), 'setting=edited by hand\n');
    const drifted = tree(root);
    const u = await undoFiles(root, s);
    expect(u.status).toBe('refused');
    if (u.status !== 'refused') throw new Error('unreachable');
    expect(u.drift).toEqual([expect.objectContaining({ path: '/etc/app.conf', actual: expect.objectContaining({ sha256: sha('setting=edited by hand\n') }) })]);
    expect(u.reason).toMatch(/drifted/);
    expect(tree(root)).toEqual(drifted);
  });

  it('undo refuses when a mode changed, a deleted file came back, or a created directory holds other files', async () => {
    const { actions } = scenario();
    const s = await takeFileSnapshot(root, actions, snapDir);
    expect((await applyFileActions(root, actions, payload, s)).status).toBe('applied');
    chmodSync(path.join(root, 'etc/app.conf'), 0o600);
    writeFileSync(path.join(root, 'etc/old.conf'), 'back\n');
    writeFileSync(path.join(root, 'opt/pw-app/someone-elses.txt'), 'x');
    const drifted = tree(root);
    const u = await undoFiles(root, s);
    expect(u.status).toBe('refused');
    if (u.status !== 'refused') throw new Error('unreachable');
    expect(u.drift.map((d) => d.path)).toEqual(['/etc/app.conf', '/etc/old.conf', path.join(root, 'opt/pw-app')]);
    expect(String(u.drift[2]!.actual)).toMatch(/someone-elses.txt/);
    expect(tree(root)).toEqual(drifted);
  });

  it('an undo interrupted half way is finished by the next undo; the same state without a started undo is drift', async () => {
    const { actions } = scenario();
    const before = tree(root);
    const s = await takeFileSnapshot(root, actions, snapDir);
    expect((await applyFileActions(root, actions, payload, s)).status).toBe('applied');
    // /etc/app.conf already back at its before state, the rest not yet
    writeFileSync(path.join(root, 'etc/app.conf'), 'setting=old\n');
    chmodSync(path.join(root, 'etc/app.conf'), 0o640);
    expect(await undoFiles(root, await loadFileSnapshot(snapDir))).toMatchObject({ status: 'refused', drift: [{ path: '/etc/app.conf' }] });
    const started = { ...(await loadFileSnapshot(snapDir)), undoStartedAt: Date.now() };
    expect(await undoFiles(root, started)).toMatchObject({ status: 'undone', restored: ['/opt/pw-app/conf.d/extra.conf', '/etc/old.conf'] });
    expect(tree(root)).toEqual(before);
  });

  it.runIf(process.getuid?.() === 0)('keeps the owner of a replaced file and restores it on undo (as root)', async () => {
    const { actions } = scenario();
    const { chownSync } = await import('node:fs');
    chownSync(path.join(root, 'etc/app.conf'), 4321, 4322);
    const before = tree(root);
    const s = await takeFileSnapshot(root, actions, snapDir);
    expect((await applyFileActions(root, actions, payload, s)).status).toBe('applied');
    expect(lstatSync(path.join(root, 'etc/app.conf'))).toMatchObject({ uid: 4321, gid: 4322 });
    chownSync(path.join(root, 'etc/app.conf'), 0, 0); // owner is not compared: this is no drift
    expect((await undoFiles(root, s)).status).toBe('undone');
    expect(lstatSync(path.join(root, 'etc/app.conf'))).toMatchObject({ uid: 4321, gid: 4322 });
    expect(tree(root)).toEqual(before);
  });

  it('undo refuses a snapshot whose apply never finished', async () => {
    const { actions } = scenario();
    const s = await takeFileSnapshot(root, actions, snapDir);
    const u = await undoFiles(root, s);
    expect(u).toMatchObject({ status: 'refused', reason: expect.stringMatching(/rollbackFiles/) });
  });

  it('apply refuses with the preflight problems and changes nothing', async () => {
    const { actions } = scenario();
    const s = await takeFileSnapshot(root, actions, snapDir);
    writeFileSync(path.join(root, 'etc/app.conf'), 'changed after the snapshot\n');
    const before = tree(root);
    const r = await applyFileActions(root, actions, payload, s);
    expect(r.status).toBe('refused');
    if (r.status !== 'refused') throw new Error('unreachable');
    expect(r.problems).toMatchObject([{ index: 1, code: 'E_CONFLICT', message: expect.stringMatching(/expects/) }]);
    expect(tree(root)).toEqual(before);
  });

  it('apply refuses when a path changed since the snapshot even where the preflight passes (its mode)', async () => {
    const { actions } = scenario();
    const s = await takeFileSnapshot(root, actions, snapDir);
    chmodSync(path.join(root, 'etc/old.conf'), 0o700);
    const before = tree(root);
    const r = await applyFileActions(root, actions, payload, s);
    expect(r).toMatchObject({ status: 'refused', problems: [{ index: 2, message: expect.stringMatching(/the snapshot recorded/) }] });
    expect(tree(root)).toEqual(before);
  });

  it('a failure during apply rolls back by itself and says so', async () => {
    const { actions } = scenario();
    const before = tree(root);
    const s = await takeFileSnapshot(root, actions, snapDir);
    const r = await applyFileActions(root, actions, payload, s, {
      onStep: (st) => {
        if (st.index === 1 && st.phase === 'done') throw new Error('disk full (simulated)');
      },
    });
    expect(r).toMatchObject({ status: 'rolled-back', reason: expect.stringMatching(/disk full/), rollback: { status: 'restored' } });
    expect(tree(root)).toEqual(before);
  });
});

describe('crash at any point of apply, then rollbackFiles', () => {
  class Crash extends Error {}

  /** Every hook point of one apply, in order. */
  async function allSteps(): Promise<ApplyStep[]> {
    const { actions } = scenario();
    const steps: ApplyStep[] = [];
    const s = await takeFileSnapshot(root, actions, snapDir);
    await applyFileSteps(root, actions, payload, s, { onStep: (st) => void steps.push(st) });
    return steps;
  }

  it('returns exactly the before state for a crash after every step (and before the first, and after the last)', async () => {
    const steps = await allSteps();
    // 3 created directories, 2 temporary files, 3 finished actions
    expect(steps.map((s) => s.phase)).toEqual(['mkdir', 'mkdir', 'mkdir', 'tmp-written', 'done', 'tmp-written', 'done', 'done']);
    let sawTmp = 0;
    for (let k = -1; k < steps.length; k++) {
      removeTemp(tmp);
      for (const d of [root, payload, outside]) mkdirSync(d, { recursive: true });
      const { actions } = scenario();
      const before = tree(root);
      await takeFileSnapshot(root, actions, snapDir);
      let n = 0;
      if (k >= 0) {
        await expect(
          applyFileSteps(root, actions, payload, await loadFileSnapshot(snapDir), {
            onStep: () => {
              if (n++ === k) throw new Crash(`crash after step ${k}`);
            },
          }),
        ).rejects.toBeInstanceOf(Crash);
      }
      const crashed = tree(root);
      const leftovers = Object.keys(crashed).filter((p) => p.includes('.pw-tmp-'));
      sawTmp += leftovers.length;
      // a restarted agent knows only what is on disk
      const r = await rollbackFiles(root, await loadFileSnapshot(snapDir));
      expect(r, `crash after step ${k}`).toMatchObject({ status: 'restored' });
      if (r.status === 'restored') expect(r.removedTmp.length).toBe(leftovers.length);
      expect(tree(root), `crash after step ${k}`).toEqual(before);
      // idempotent: a second rollback (a crash during the first) changes nothing
      expect(await rollbackFiles(root, await loadFileSnapshot(snapDir))).toMatchObject({ status: 'restored', restored: [], removedTmp: [], removedDirs: [] });
      expect(tree(root)).toEqual(before);
    }
    expect(sawTmp).toBe(2);
  });

  it('removes a leftover temporary file and reports it', async () => {
    const { actions } = scenario();
    const before = tree(root);
    const s = await takeFileSnapshot(root, actions, snapDir);
    await expect(
      applyFileSteps(root, actions, payload, s, {
        onStep: (st) => {
          if (st.index === 1 && st.phase === 'tmp-written') throw new Crash('power cut');
        },
      }),
    ).rejects.toThrow('power cut');
    const tmpFile = s.entries[1]!.tmp;
    expect(readFileSync(tmpFile, 'utf8')).toBe('setting=new\n');
    const r = await rollbackFiles(root, s);
    expect(r).toMatchObject({ status: 'restored', removedTmp: [tmpFile], restored: ['/opt/pw-app/conf.d/extra.conf'] });
    expect(existsSync(tmpFile)).toBe(false);
    expect(tree(root)).toEqual(before);
  });

  it('leaves a path in neither its before nor its after state untouched and reports it', async () => {
    const { actions } = scenario();
    const s = await takeFileSnapshot(root, actions, snapDir);
    await applyFileSteps(root, actions, payload, s, {
      onStep: (st) => {
        if (st.index === 2 && st.phase === 'done') throw new Crash('crash');
      },
    }).catch(() => undefined);
    writeFileSync(path.join(root, 'etc/app.conf'), 'a third content\n');
    const r = await rollbackFiles(root, s);
    expect(r.status).toBe('needs-attention');
    if (r.status !== 'needs-attention') throw new Error('unreachable');
    expect(r.drift).toEqual([expect.objectContaining({ path: '/etc/app.conf', actual: expect.objectContaining({ sha256: sha('a third content\n') }) })]);
    expect(r.reason).toMatch(/\/etc\/app.conf/);
    expect(readFileSync(path.join(root, 'etc/app.conf'), 'utf8')).toBe('a third content\n');
    // the others are back
    expect(readFileSync(path.join(root, 'etc/old.conf'), 'utf8')).toBe('#!/bin/sh\necho old\n');
    expect(existsSync(path.join(root, 'opt'))).toBe(false);
  });

  it('does not follow a directory that was replaced by a link after the snapshot', async () => {
    const { actions } = scenario();
    const s = await takeFileSnapshot(root, actions, snapDir);
    await applyFileSteps(root, actions, payload, s);
    // someone swaps /etc for a link to a directory outside the root
    writeFileSync(path.join(outside, 'app.conf'), 'setting=new\n');
    rmSync(path.join(root, 'etc'), { recursive: true });
    symlinkSync(outside, path.join(root, 'etc'));
    const outsideBefore = tree(outside);
    const r = await rollbackFiles(root, s);
    expect(r.status).toBe('needs-attention');
    if (r.status !== 'needs-attention') throw new Error('unreachable');
    expect(r.drift.map((d) => d.path)).toEqual(['/etc/old.conf', '/etc/app.conf']);
    expect(tree(outside)).toEqual(outsideBefore);
  });
});
