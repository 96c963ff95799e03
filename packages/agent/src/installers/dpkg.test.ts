import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PatchwardenError } from '@patchwarden/core';
import { DpkgInstaller } from './dpkg.js';
import { installWithSnapshot, loadSnapshot, undoSnapshot } from './snapshot.js';
import { buildDeb, dpkgQueryList, makeSandboxRoot, makeTemp, removeTemp } from './testing.js';

const MARKER = '/var/lib/pw-demo/configured';

function demo(dir: string, version: string, opts: { failPostinst?: boolean; name?: string } = {}) {
  const name = opts.name ?? 'pw-demo';
  return buildDeb(dir, {
    name,
    version,
    files: { [`usr/share/${name}/version.txt`]: `${name} ${version}\n` },
    postinst: opts.failPostinst
      ? '#!/bin/sh\necho "postinst of ' + version + ' fails on purpose" >&2\nexit 1\n'
      : `#!/bin/sh\nset -e\nmkdir -p /var/lib/${name}\necho "${version} $1 $2" >> /var/lib/${name}/configured\n`,
  });
}

let tmp: string;
let root: string;
let debs: string;
let data: string;
let dpkg: DpkgInstaller;

beforeEach(() => {
  tmp = makeTemp();
  root = makeSandboxRoot(tmp);
  debs = path.join(tmp, 'debs');
  data = path.join(tmp, 'agent-data');
  execFileSync('mkdir', ['-p', debs, data]);
  dpkg = new DpkgInstaller({ root });
});
afterEach(() => removeTemp(tmp));

const versionOf = async (name: string) => (await dpkg.installed([name])).get(name)?.version ?? null;
const fileIn = (p: string) => readFileSync(path.join(root, p), 'utf8');

describe('DpkgInstaller guards', () => {
  it("refuses the host's root unless allowHost", () => {
    for (const r of ['/', '/.', '//', '/tmp/..']) {
      try {
        new DpkgInstaller({ root: r });
        expect.unreachable();
      } catch (e) {
        expect(e).toBeInstanceOf(PatchwardenError);
        expect((e as PatchwardenError).code).toBe('E_FORBIDDEN');
        expect((e as PatchwardenError).message).toMatch(/host's root/);
      }
    }
    expect(() => new DpkgInstaller({ root: 'relative/root' })).toThrow(/absolute/);
    // constructing is all this test does with allowHost: nothing runs against the host
    expect(new DpkgInstaller({ root: '/', allowHost: true }).admindir).toBe('/var/lib/dpkg');
  });

  it('passes --root, --admindir and --log on every call, operands after --, and never lets a name starting with - reach dpkg', async () => {
    const argsFile = path.join(tmp, 'args');
    const fake = path.join(tmp, 'fake-dpkg');
    writeFileSync(fake, `#!/bin/sh\nfor a in "$@"; do echo "$a"; done >> ${argsFile}\necho --- >> ${argsFile}\n`);
    chmodSync(fake, 0o755);
    const spy = new DpkgInstaller({ root, dpkgPath: fake, dpkgRepackPath: fake });
    await spy.audit();
    await spy.purge(['pw-demo']);
    const calls = readFileSync(argsFile, 'utf8').split('---\n').filter(Boolean).map((c) => c.trim().split('\n'));
    for (const c of calls) {
      expect(c.slice(0, 3)).toEqual([`--root=${root}`, `--admindir=${root}/var/lib/dpkg`, `--log=${root}/var/log/dpkg.log`]);
    }
    expect(calls[1]!.slice(-3)).toEqual(['--purge', '--', 'pw-demo']);

    rmSync(argsFile);
    for (const bad of ['-x', '--force-all', '--root=/']) {
      await expect(spy.purge([bad])).rejects.toMatchObject({ code: 'E_VALIDATION', message: expect.stringMatching(/starts with '-'/) });
      await expect(spy.installed([bad])).rejects.toMatchObject({ code: 'E_VALIDATION' });
      await expect(spy.repack(bad, tmp)).rejects.toMatchObject({ code: 'E_VALIDATION' });
    }
    await expect(spy.purge(['pw-demo', '-x'])).rejects.toMatchObject({ code: 'E_VALIDATION' });
    expect(existsSync(argsFile)).toBe(false);
  });

  it('refuses a downgrade outside an undo', async () => {
    const v2 = demo(debs, '1.0-2');
    const v1 = demo(debs, '1.0-1');
    expect((await dpkg.install([v2])).code).toBe(0);
    await expect(dpkg.install([v1])).rejects.toMatchObject({ code: 'E_FORBIDDEN', message: expect.stringMatching(/downgrade pw-demo from 1.0-2 to 1.0-1/) });
    await expect(installWithSnapshot(dpkg, [v1], data)).rejects.toMatchObject({ code: 'E_FORBIDDEN' });
    expect(await versionOf('pw-demo')).toBe('1.0-2');
  });
});

describe('install with snapshot, and undo', () => {
  it('upgrades, then undoes to the prior version after every package file is deleted', async () => {
    const v1 = demo(debs, '1.0-1');
    const v2 = demo(debs, '1.0-2');
    const first = await dpkg.install([v1]);
    expect(first.code, first.stderr).toBe(0);
    expect(await dpkg.audit()).toBe('');
    const beforeList = dpkgQueryList(root);

    const res = await installWithSnapshot(dpkg, [v2], data);
    expect(res.status).toBe('succeeded');
    expect(await versionOf('pw-demo')).toBe('1.0-2');
    expect(fileIn('usr/share/pw-demo/version.txt')).toBe('pw-demo 1.0-2\n');
    expect(fileIn(MARKER)).toBe('1.0-1 configure \n1.0-2 configure 1.0-1\n');
    expect(res.snapshot.packages).toEqual([
      expect.objectContaining({ name: 'pw-demo', before: { version: '1.0-1', arch: 'all', state: 'installed' }, after: { version: '1.0-2', arch: 'all', state: 'installed' } }),
    ]);

    // the original package files are gone from everywhere; the agent keeps its own copy
    rmSync(debs, { recursive: true });
    const snap = await loadSnapshot(res.snapshot.dir);
    expect(readdirSync(snap.dir).filter((f) => f.endsWith('.deb'))).toHaveLength(1);

    const undo = await undoSnapshot(dpkg, snap);
    expect(undo).toMatchObject({ status: 'undone' });
    expect(await versionOf('pw-demo')).toBe('1.0-1');
    expect(fileIn('usr/share/pw-demo/version.txt')).toBe('pw-demo 1.0-1\n');
    // the kept copy carries the maintainer scripts too: the postinst of 1.0-1 ran again
    expect(fileIn(MARKER).trim().split('\n').at(-1)).toBe('1.0-1 configure 1.0-2');
    expect(await dpkg.audit()).toBe('');
    expect(dpkgQueryList(root)).toBe(beforeList);
    // a second undo (say, after a crash that lost the report) finds nothing to do
    expect(await undoSnapshot(dpkg, snap)).toEqual({ status: 'undone', output: '' });
    expect(dpkgQueryList(root)).toBe(beforeList);
  });

  it('refuses to undo when the device drifted, and says which package differs', async () => {
    expect((await dpkg.install([demo(debs, '1.0-1')])).code).toBe(0);
    const res = await installWithSnapshot(dpkg, [demo(debs, '1.0-2')], data);
    expect(res.status).toBe('succeeded');
    expect((await dpkg.install([demo(debs, '1.0-3')])).code).toBe(0); // by hand, after the patch

    const undo = await undoSnapshot(dpkg, res.snapshot);
    expect(undo.status).toBe('refused');
    if (undo.status !== 'refused') return;
    expect(undo.reason).toMatch(/pw-demo is 1\.0-3 .*the patch left it 1\.0-2/);
    expect(undo.drift).toEqual([{ name: 'pw-demo', expected: { version: '1.0-2', arch: 'all', state: 'installed' }, actual: { version: '1.0-3', arch: 'all', state: 'installed' } }]);
    expect(await versionOf('pw-demo')).toBe('1.0-3');
  });

  it('rolls a failing postinst back to the prior version, never leaving it half-configured', async () => {
    expect((await dpkg.install([demo(debs, '1.0-1')])).code).toBe(0);
    const beforeList = dpkgQueryList(root);
    const res = await installWithSnapshot(dpkg, [demo(debs, '1.0-2', { failPostinst: true })], data);
    expect(res.status).toBe('rolled-back');
    if (res.status !== 'rolled-back') return;
    expect(res.reason).toMatch(/post-installation script subprocess returned error exit status 1/);
    expect(res.output).toMatch(/postinst of 1.0-2 fails on purpose/);
    expect(await dpkg.installed(['pw-demo'])).toEqual(new Map([['pw-demo', expect.objectContaining({ version: '1.0-1', state: 'installed' })]]));
    expect(fileIn('usr/share/pw-demo/version.txt')).toBe('pw-demo 1.0-1\n');
    expect(await dpkg.audit()).toBe('');
    expect(dpkgQueryList(root)).toBe(beforeList);
  });

  it('a failing postinst of a package that was absent is removed again', async () => {
    const res = await installWithSnapshot(dpkg, [demo(debs, '2.0-1', { name: 'pw-new', failPostinst: true })], data);
    expect(res.status).toBe('rolled-back');
    expect(await versionOf('pw-new')).toBeNull();
    expect(await dpkg.audit()).toBe('');
  });

  it('undo removes a package the patch added', async () => {
    expect((await dpkg.install([demo(debs, '1.0-1')])).code).toBe(0);
    const beforeList = dpkgQueryList(root);
    const res = await installWithSnapshot(dpkg, [demo(debs, '1.0-2'), demo(debs, '3.0-1', { name: 'pw-extra' })], data);
    expect(res.status).toBe('succeeded');
    expect(res.snapshot.packages.find((p) => p.name === 'pw-extra')).toMatchObject({ before: null, after: { version: '3.0-1' } });
    expect(await versionOf('pw-extra')).toBe('3.0-1');
    rmSync(debs, { recursive: true });

    const undo = await undoSnapshot(dpkg, res.snapshot);
    expect(undo.status).toBe('undone');
    expect(await versionOf('pw-extra')).toBeNull();
    expect(existsSync(path.join(root, 'usr/share/pw-extra/version.txt'))).toBe(false);
    expect(await versionOf('pw-demo')).toBe('1.0-1');
    expect(await dpkg.audit()).toBe('');
    expect(dpkgQueryList(root)).toBe(beforeList);
  });

  it('reports needs-attention with the audit when the rollback itself fails', async () => {
    expect((await dpkg.install([demo(debs, '1.0-1')])).code).toBe(0);
    // a prerm that always fails: the package cannot be replaced or removed once installed
    const stuck = buildDeb(debs, {
      name: 'pw-demo',
      version: '1.0-2',
      postinst: '#!/bin/sh\nexit 1\n',
      prerm: '#!/bin/sh\nexit 1\n',
      postrm: '#!/bin/sh\nexit 1\n',
    });
    const res = await installWithSnapshot(dpkg, [stuck], data);
    expect(res.status).toBe('needs-attention');
    if (res.status !== 'needs-attention') return;
    expect(res.reason).toMatch(/rollback failed/);
    expect(res.audit).toMatch(/pw-demo/);
  });
});

describe('a real archive package (kitty-terminfo, a real bookworm security update)', () => {
  // No skip: without the download this test fails, so CI notices a broken network or archive.
  it('patches 0.26.5-5 to 0.26.5-5+deb12u1 and undoes it after the files are deleted', async () => {
    const dl = path.join(tmp, 'dl');
    execFileSync('mkdir', ['-p', dl]);
    execFileSync('apt-get', ['download', 'kitty-terminfo=0.26.5-5', 'kitty-terminfo=0.26.5-5+deb12u1'], { cwd: dl, stdio: 'pipe', timeout: 120_000 });
    const old = path.join(dl, 'kitty-terminfo_0.26.5-5_all.deb');
    const fixed = path.join(dl, 'kitty-terminfo_0.26.5-5+deb12u1_all.deb');
    expect((await dpkg.install([old])).code).toBe(0);
    const beforeList = dpkgQueryList(root);
    const res = await installWithSnapshot(dpkg, [fixed], data);
    expect(res.status).toBe('succeeded');
    expect(await versionOf('kitty-terminfo')).toBe('0.26.5-5+deb12u1');
    rmSync(dl, { recursive: true });

    expect(await undoSnapshot(dpkg, res.snapshot)).toMatchObject({ status: 'undone' });
    expect(await versionOf('kitty-terminfo')).toBe('0.26.5-5');
    expect(await dpkg.audit()).toBe('');
    expect(dpkgQueryList(root)).toBe(beforeList);
  }, 180_000);
});
