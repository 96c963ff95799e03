/**
 * The agent's job state machine under real conditions, tried as a new user would: a server
 * process, agent processes on sandbox roots with real dpkg and busybox, a signed custom patch
 * that upgrades one package, adds another and places a file. The agent's whole process group
 * (dpkg and the maintainer scripts included) is killed with SIGKILL at a barrier inside every
 * state, mid-unpack too; a second agent run must leave the root exactly at the before or the
 * after state, `dpkg --audit` clean, and exactly one report stored and sent.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareDebVersions } from '@patchwarden/core';
import { buildDeb } from '../packages/agent/src/installers/testing.js';
import { api, assertBuilt, cli, startServerProcess, type ServerProcess } from './support/processes.js';
import { audit, deviceId, dpkg, killGroup, makeDevice, packageStates, publishPatch, reportCounter, sha256, spawnAgent, trustAuthor, waitForFile } from './support/patching.js';

const PATCH = 'custom/pw-demo-1.0-2';
const NAMES = ['pw-demo', 'pw-demo-helper'];
const BEFORE = { 'pw-demo': '1.0-1 ii', 'pw-demo-helper': 'absent' };
const AFTER = { 'pw-demo': '1.0-2 ii', 'pw-demo-helper': '2.0-1 ii' };
const CONF = 'setting = patched\n';

type JobRow = { id: string; state: string };

async function until(what: string, f: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await f())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('agent jobs: crash safety, rollback and undo with real dpkg', () => {
  assertBuilt();
  let dir: string;
  let server: ServerProcess;
  let proxy: Awaited<ReturnType<typeof reportCounter>>;
  let secret: string;
  let key: string;
  let debs: { v1: string; v2: string; helper: string; broken: string };
  let n = 0;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pw-jobs-'));
    server = await startServerProcess(join(dir, 'server'));
    proxy = await reportCounter(server.url);
    key = await trustAuthor(dir, server);
    const out = join(dir, 'debs');
    mkdirSync(out);
    debs = {
      v1: buildDeb(out, { name: 'pw-demo', version: '1.0-1', files: { 'usr/share/pw-demo/version': '1.0-1\n' } }),
      v2: buildDeb(out, {
        name: 'pw-demo',
        version: '1.0-2',
        files: { 'usr/share/pw-demo/version': '1.0-2\n' },
        postinst: '#!/bin/sh\nset -e\necho configured > /var/lib/pw-demo.marker\n',
      }),
      // its preinst is where "mid-unpack" stops: pw-demo is unpacked, this one half-installed
      helper: buildDeb(out, {
        name: 'pw-demo-helper',
        version: '2.0-1',
        files: { 'usr/share/pw-demo-helper/README': 'helper\n' },
        preinst: '#!/bin/sh\nif [ "$PATCHWARDEN_AGENT_TEST_BARRIER" = mid-unpack ]; then /bin/busybox touch /tmp/mid-unpack; /bin/busybox sleep 600; fi\nexit 0\n',
      }),
      broken: buildDeb(out, { name: 'pw-demo', version: '1.0-3', files: { 'usr/share/pw-demo/version': '1.0-3\n' }, postinst: '#!/bin/sh\necho "postinst failed on purpose" >&2\nexit 1\n' }),
    };
    const manifest = (id: string, revision: number, file: string, version: string, extra: Record<string, unknown> = {}) => ({
      id,
      revision,
      title: `pw-demo ${version}`,
      severity: 'high',
      platforms: [{ family: 'linux' }],
      applicability: { package: { manager: 'dpkg', name: 'pw-demo', installed: true } },
      installed: { package: { manager: 'dpkg', name: 'pw-demo', version: { ge: version } } },
      install: [{ type: 'package', manager: 'dpkg', op: 'upgrade', name: 'pw-demo', version, file }],
      ...extra,
    });
    await publishPatch(
      dir,
      server,
      key,
      manifest(PATCH, 1, 'pw-demo_1.0-2_all.deb', '1.0-2', {
        installed: {
          all: [
            { package: { manager: 'dpkg', name: 'pw-demo', version: { ge: '1.0-2' } } },
            { package: { manager: 'dpkg', name: 'pw-demo-helper', installed: true } },
            { file: { path: '/etc/pw-demo.conf', sha256: sha256(CONF) } },
          ],
        },
        install: [
          { type: 'package', manager: 'dpkg', op: 'upgrade', name: 'pw-demo', version: '1.0-2', file: 'pw-demo_1.0-2_all.deb' },
          { type: 'package', manager: 'dpkg', op: 'install', name: 'pw-demo-helper', version: '2.0-1', file: 'pw-demo-helper_2.0-1_all.deb' },
          { type: 'file', op: 'place', path: '/etc/pw-demo.conf', source: 'pw-demo.conf', sha256: sha256(CONF), mode: '0644' },
        ],
      }),
      { 'pw-demo_1.0-2_all.deb': { file: debs.v2 }, 'pw-demo-helper_2.0-1_all.deb': { file: debs.helper }, 'pw-demo.conf': { text: CONF } },
    );
    await publishPatch(dir, server, key, manifest('custom/pw-demo-1.0-3', 1, 'pw-demo_1.0-3_all.deb', '1.0-3'), { 'pw-demo_1.0-3_all.deb': { file: debs.broken } });
    // a feed speaks for Debian 12, so the devices are assessed (not `not_assessed`)
    const cov = await api(server, 'POST', '/api/v1/catalog/patches', { patches: [], coverage: [{ family: 'linux', distribution: 'debian', release: '12' }], source: { kind: 'test' } });
    expect(cov.status, JSON.stringify(cov.body)).toBe(200);
    expect((await api(server, 'POST', '/api/v1/groups', { name: 'lab' })).status).toBe(201);
    secret = (await api<{ secret: string }>(server, 'POST', '/api/v1/enrollment-secrets', { name: 'lab', group: 'lab' })).body.secret;
    for (const p of [PATCH, 'custom/pw-demo-1.0-3']) expect((await api(server, 'POST', '/api/v1/approvals', { patch: p, group: 'lab', decision: 'approve' })).status).toBe(200);
  }, 180_000);

  afterAll(async () => {
    await server?.stop();
    await proxy?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** A new enrolled device at 1.0-1 that has checked in, and a deployment of `patch` to it. */
  async function deviceWithJob(patch = PATCH) {
    const name = `dev${++n}`;
    const root = makeDevice(join(dir, name), name, [debs.v1]);
    const data = join(dir, `${name}-agent`);
    const args = ['--data-dir', data, '--root', root];
    let r = await cli(['agent', 'enroll', '--server', proxy.url, '--secret', secret, '--installs', ...args]);
    expect(r.status, r.stderr).toBe(0);
    r = await cli(['agent', 'run', '--once', ...args]);
    expect(r.status, r.stderr).toBe(0);
    const id = await deviceId(server, name);
    const patches = await api<{ items: { patch: string; state: string }[] }>(server, "GET", `/api/v1/devices/${id}/patches`);
    expect(patches.body.items.find((p) => p.patch === patch)?.state, JSON.stringify(patches.body)).toBe('needed');
    const dep = await api<{ id: string }>(server, 'POST', '/api/v1/deployments', { patches: [patch], devices: [id], start: new Date(Date.now() - 60_000).toISOString() });
    expect(dep.status, JSON.stringify(dep.body)).toBe(201);
    return { name, root, data, args, deviceId: id, deployment: dep.body.id };
  }

  async function jobsOf(deployment: string): Promise<JobRow[]> {
    const r = await api<{ items: JobRow[] }>(server, 'GET', `/api/v1/deployments/${deployment}/jobs`);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return r.body.items;
  }

  const points: { point: string; expect: 'before' | 'after'; state: string }[] = [
    { point: 'downloading', expect: 'after', state: 'done' },
    { point: 'verifying', expect: 'after', state: 'done' },
    { point: 'preflight', expect: 'after', state: 'done' },
    { point: 'snapshotting', expect: 'after', state: 'done' },
    { point: 'installing', expect: 'before', state: 'rolled-back' },
    { point: 'mid-unpack', expect: 'before', state: 'rolled-back' },
    { point: 'verifying-install', expect: 'after', state: 'done' },
    { point: 'reporting', expect: 'after', state: 'done' },
  ];

  for (const p of points) {
    it(`killed with its process group at ${p.point}, the next run ends ${p.state} with the ${p.expect} state and one report`, async () => {
      const d = await deviceWithJob();
      const run = spawnAgent(['run', '--once', ...d.args], { PATCHWARDEN_AGENT_TEST_BARRIER: p.point });
      const marker = p.point === 'mid-unpack' ? join(d.root, 'tmp/mid-unpack') : join(d.data, 'barrier-reached');
      await Promise.race([waitForFile(marker, 90_000, `the ${p.point} barrier`), run.done.then((r) => Promise.reject(new Error(`agent ended before the barrier: ${r.stdout}${r.stderr}`)))]);
      await killGroup(run);
      const [job] = await jobsOf(d.deployment);
      expect(job!.state).toBe('queued');
      expect(proxy.reports.get(job!.id) ?? 0).toBe(0);
      if (p.point === 'mid-unpack') expect(packageStates(d.root, NAMES)['pw-demo-helper']).not.toBe('2.0-1 ii');

      const again = await cli(['agent', 'run', '--once', ...d.args]);
      expect(again.status, again.stderr + again.stdout).toBe(0);
      const told = await api<{ events: { state: string; message?: string }[]; detail: unknown }>(server, 'GET', `/api/v1/jobs/${job!.id}`);
      expect(again.stdout, JSON.stringify(told.body, null, 1)).toMatch(new RegExp(`job ${job!.id}: install ${PATCH} → ${p.state}`));
      expect(audit(d.root)).toBe('');
      expect(packageStates(d.root, NAMES)).toEqual(p.expect === 'after' ? AFTER : BEFORE);
      expect(existsSync(join(d.root, 'etc/pw-demo.conf'))).toBe(p.expect === 'after');
      if (p.expect === 'after') expect(readFileSync(join(d.root, 'etc/pw-demo.conf'), 'utf8')).toBe(CONF);
      const [after] = await jobsOf(d.deployment);
      expect(after!.state).toBe(p.state);
      expect(proxy.reports.get(job!.id)).toBe(1);
      // the history tells what happened, the crash included
      const ev = await api<{ events: { state: string; message?: string }[] }>(server, 'GET', `/api/v1/jobs/${job!.id}`);
      const states = ev.body.events.map((e) => e.state);
      expect(states).toContain(p.point === 'mid-unpack' ? 'installing' : p.point);
      expect(states[states.length - 1]).toBe('reporting');
      // a third run has nothing left to do and sends nothing
      const third = await cli(['agent', 'run', '--once', ...d.args]);
      expect(third.status).toBe(0);
      expect(third.stdout).not.toMatch(/job /);
      expect(proxy.reports.get(job!.id)).toBe(1);
    }, 180_000);
  }

  it('a running agent notices a patch removed by hand within seconds: needed again, with a device event', async () => {
    const d = await deviceWithJob();
    const r = await cli(['agent', 'run', '--once', ...d.args]);
    expect(r.stdout).toMatch(/→ done/);
    // an hour between check-ins: only the agent's watch on the package database can explain a prompt report
    const daemon = spawnAgent(['run', '--interval', '3600', ...d.args]);
    try {
      await until('the daemon to check in', async () => /checked in/.test(daemon.output()));
      const t0 = Date.now();
      dpkg(d.root, ['--purge', 'pw-demo-helper']);
      await until('the patch to be needed again', async () => {
        const p = await api<{ items: { patch: string; state: string }[] }>(server, 'GET', `/api/v1/devices/${d.deviceId}/patches`);
        return p.body.items.find((x) => x.patch === PATCH)?.state === 'needed';
      });
      const seconds = (Date.now() - t0) / 1000;
      expect(seconds).toBeLessThan(20);
      const ev = await api<{ items: { kind: string; patch: string; message: string }[] }>(server, 'GET', `/api/v1/devices/${d.deviceId}/events`);
      expect(ev.body.items).toEqual([expect.objectContaining({ kind: 'patch-removed', patch: PATCH, message: expect.stringMatching(/needed again: job .* installed it/) })]);
      // "scan now" from an administrator reaches the waiting agent at once: it checks in again
      const seen = async () => (await api<{ lastSeenAt: string }>(server, 'GET', `/api/v1/devices/${d.deviceId}`)).body.lastSeenAt;
      const before = await seen();
      const scan = await cli(['devices', 'scan', d.name, '--server', server.url, '--token', server.adminToken]);
      expect(scan.status, scan.stderr).toBe(0);
      const t1 = Date.now();
      await until('the requested scan', async () => (await seen()) !== before);
      expect((Date.now() - t1) / 1000).toBeLessThan(10);
    } finally {
      daemon.child.kill('SIGTERM');
      await daemon.done;
    }
  }, 120_000);

  it('leaves a held package alone: the job fails in preflight with the reason, and the device reports the hold', async () => {
    const d = await deviceWithJob();
    const status = join(d.root, 'var/lib/dpkg/status');
    writeFileSync(status, readFileSync(status, 'utf8').replace(/(Package: pw-demo\nStatus: )install ok installed/, '$1hold ok installed'));
    const r = await cli(['agent', 'run', '--once', ...d.args]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/→ failed/);
    // still 1.0-1, still held ("hi"), nothing added
    expect(packageStates(d.root, NAMES)).toEqual({ 'pw-demo': '1.0-1 hi', 'pw-demo-helper': 'absent' });
    const [job] = await jobsOf(d.deployment);
    const ev = await api<{ events: { message?: string }[] }>(server, 'GET', `/api/v1/jobs/${job!.id}`);
    expect(ev.body.events.map((e) => e.message ?? '').join('\n')).toMatch(/pw-demo is held on this device \(apt-mark hold\)/);
    const dev = await api<{ heldPackages: string[] }>(server, 'GET', `/api/v1/devices/${d.deviceId}`);
    expect(dev.body.heldPackages).toEqual(['pw-demo']);
  }, 120_000);

  it("patches and undoes with a real archive package's two versions (kitty-terminfo from Debian)", async () => {
    // the two versions the archive serves now (bookworm and bookworm-security), downloaded with apt
    const madison = execFileSync('apt-cache', ['madison', 'kitty-terminfo'], { encoding: 'utf8' });
    const versions = [...new Set([...madison.matchAll(/\|\s*(\S+)\s*\|/g)].map((m) => m[1]!))].sort(compareDebVersions);
    expect(versions.length, `apt-cache madison kitty-terminfo: ${madison}`).toBeGreaterThanOrEqual(2);
    const [oldV, newV] = [versions[0]!, versions[versions.length - 1]!];
    const where = join(dir, 'archive');
    mkdirSync(where, { recursive: true });
    execFileSync('apt-get', ['download', `kitty-terminfo=${oldV}`, `kitty-terminfo=${newV}`], { cwd: where, stdio: 'pipe' });
    const file = (v: string) => join(where, `kitty-terminfo_${v.replace(/^\d+:/, '').replace(/:/g, '%3a')}_all.deb`);
    const id = `custom/kitty-terminfo-${newV.replace(/[^a-z0-9.+~-]/g, '-')}`;
    await publishPatch(
      dir,
      server,
      key,
      {
        id,
        revision: 1,
        title: `kitty-terminfo ${newV}`,
        severity: 'medium',
        platforms: [{ family: 'linux' }],
        applicability: { package: { manager: 'dpkg', name: 'kitty-terminfo', installed: true } },
        installed: { package: { manager: 'dpkg', name: 'kitty-terminfo', version: { ge: newV } } },
        install: [{ type: 'package', manager: 'dpkg', op: 'upgrade', name: 'kitty-terminfo', version: newV, file: 'kitty-terminfo.deb' }],
      },
      { 'kitty-terminfo.deb': { file: file(newV) } },
    );
    await api(server, 'POST', '/api/v1/approvals', { patch: id, group: 'lab', decision: 'approve' });
    const name = `real${++n}`;
    const root = makeDevice(join(dir, name), name, [file(oldV)]);
    const args = ['--data-dir', join(dir, `${name}-agent`), '--root', root];
    expect((await cli(['agent', 'enroll', '--server', proxy.url, '--secret', secret, '--installs', ...args])).status).toBe(0);
    expect((await cli(['agent', 'run', '--once', ...args])).status).toBe(0);
    const devId = await deviceId(server, name);
    const dep = await api<{ id: string }>(server, 'POST', '/api/v1/deployments', { patches: [id], devices: [devId], start: new Date(Date.now() - 60_000).toISOString() });
    expect(dep.status, JSON.stringify(dep.body)).toBe(201);
    let r = await cli(['agent', 'run', '--once', ...args]);
    expect(r.stdout + r.stderr).toMatch(/→ done/);
    expect(packageStates(root, ['kitty-terminfo'])).toEqual({ 'kitty-terminfo': `${newV} ii` });
    rmSync(where, { recursive: true, force: true });
    expect((await api(server, 'POST', `/api/v1/deployments/${dep.body.id}/undo`)).status).toBe(200);
    r = await cli(['agent', 'run', '--once', ...args]);
    expect(r.stdout, r.stderr).toMatch(/undo .* → done/);
    expect(packageStates(root, ['kitty-terminfo'])).toEqual({ 'kitty-terminfo': `${oldV} ii` });
    expect(audit(root)).toBe('');
  }, 120_000);

  it('rolls back a patch whose postinst fails, and reports the package manager output', async () => {
    const d = await deviceWithJob('custom/pw-demo-1.0-3');
    const r = await cli(['agent', 'run', '--once', ...d.args]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/→ rolled-back/);
    expect(packageStates(d.root, ['pw-demo'])).toEqual({ 'pw-demo': '1.0-1 ii' });
    expect(audit(d.root)).toBe('');
    const [job] = await jobsOf(d.deployment);
    expect(job!.state).toBe('rolled-back');
    const ev = await api<{ events: { state: string; message?: string }[] }>(server, 'GET', `/api/v1/jobs/${job!.id}`);
    expect(ev.body.events.map((e) => e.message ?? '').join('\n')).toMatch(/postinst failed on purpose/);
  }, 120_000);

  it('undoes from its own snapshot after the package files are gone, survives a kill mid-undo, and refuses after drift', async () => {
    const d = await deviceWithJob();
    const e = await deviceWithJob();
    let r = await cli(['agent', 'run', '--once', ...d.args]);
    expect(r.stdout).toMatch(/→ done/);
    expect(packageStates(d.root, NAMES)).toEqual(AFTER);
    // the original package files disappear from everywhere but the agent's snapshot
    rmSync(debs.v1);
    const undo = await api<{ undoJobs: number }>(server, 'POST', `/api/v1/deployments/${d.deployment}/undo`);
    expect(undo.status, JSON.stringify(undo.body)).toBe(200);
    expect(undo.body.undoJobs).toBe(1);
    const run = spawnAgent(['run', '--once', ...d.args], { PATCHWARDEN_AGENT_TEST_BARRIER: 'installing' });
    await waitForFile(join(d.data, 'barrier-reached'), 60_000);
    await killGroup(run);
    r = await cli(['agent', 'run', '--once', ...d.args]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/undo custom\/pw-demo-1.0-2 → done/);
    expect(packageStates(d.root, NAMES)).toEqual(BEFORE);
    expect(existsSync(join(d.root, 'etc/pw-demo.conf'))).toBe(false);
    expect(audit(d.root)).toBe('');
    const jobs = await jobsOf(d.deployment);
    expect(jobs.map((j) => j.state).sort()).toEqual(['done', 'done']);
    // the server sees the device needing the patch again
    const patches = await api<{ items: { patch: string; state: string }[] }>(server, "GET", `/api/v1/devices/${d.deviceId}/patches`);
    expect(patches.body.items.find((p) => p.patch === PATCH)?.state).toBe('needed');

    // drift: a second device, patched, then changed by hand; its undo is refused with the reason
    r = await cli(['agent', 'run', '--once', ...e.args]);
    expect(r.stdout).toMatch(/→ done/);
    dpkg(e.root, ['--purge', 'pw-demo-helper']);
    await api(server, 'POST', `/api/v1/deployments/${e.deployment}/undo`);
    r = await cli(['agent', 'run', '--once', ...e.args]);
    expect(r.stdout).toMatch(/undo custom\/pw-demo-1.0-2 → failed/);
    const ej = (await jobsOf(e.deployment)).find((j) => j.state === 'failed')!;
    const ev = await api<{ events: { message?: string }[] }>(server, 'GET', `/api/v1/jobs/${ej.id}`);
    expect(ev.body.events.map((x) => x.message ?? '').join('\n')).toMatch(/undo refused: the device drifted since the patch: pw-demo-helper is absent, the patch left it 2.0-1/);
    expect(packageStates(e.root, ['pw-demo'])).toEqual({ 'pw-demo': '1.0-2 ii' });
  }, 240_000);
});
