/**
 * The whole deploy story, tried as a new user would: a server (with a test clock, so a 24-hour
 * bake passes in a second) and three agent daemons on loopback, each on its own sandbox root with
 * real dpkg. Publish two signed patches, see them needed on all three, approve, deploy the first
 * in two rings (ring 1 succeeds and bakes, ring 2 runs, devices reboot at the window's end);
 * deploy the second, which fails on one device, and watch the deployment halt at its threshold;
 * delete the package files, undo the first deployment and see all three back at the prior
 * versions; the history tells the whole story.
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDeb } from '../packages/agent/src/installers/testing.js';
import { api, assertBuilt, cli, startServerProcess, type ServerProcess } from './support/processes.js';
import { audit, deviceId, makeDevice, packageStates, publishPatch, sha256, spawnAgent, trustAuthor, type AgentRun } from './support/patching.js';

const P1 = 'custom/pw-demo-1.0-2';
const P2 = 'custom/pw-tool-1.0-2';
const HOSTS = ['alpha', 'beta', 'gamma'] as const;
const CONF = 'mode = fixed\n';

interface Deployment {
  id: string;
  status: string;
  reason: string | null;
  currentRing: number;
  rings: { name: string; status: string; counts: { total: number; succeeded: number; failed: number; unfinished: number } }[];
}
interface Job {
  id: string;
  kind: string;
  device: { hostname: string };
  patch: { id: string };
  ring: number;
  state: string;
  handedAt: string | null;
}

async function until<T>(what: string, f: () => Promise<T | undefined | false>, ms = 90_000, show = () => ''): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}\n${show()}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe('deploy end to end: three agents, two rings, a halt, an undo', () => {
  assertBuilt();
  let dir: string;
  let server: ServerProcess;
  const roots: Record<string, string> = {};
  const ids: Record<string, string> = {};
  const daemons: AgentRun[] = [];
  let debs: string;
  let flags: string[];
  const logs = () => daemons.map((d, i) => `--- ${HOSTS[i]}\n${d.output().split('\n').slice(-25).join('\n')}`).join('\n');
  const admin = async (args: string[]) => {
    const r = await cli([...args, ...flags]);
    expect(r.status, `${args.join(' ')}: ${r.stderr}${r.stdout}`).toBe(0);
    return r.stdout;
  };
  const status = async (id: string) => JSON.parse(await admin(['deploy', 'status', id, '--json'])) as Deployment;
  const jobs = async (id: string) => (JSON.parse(await admin(['deploy', 'jobs', id, '--json'])) as { items: Job[] }).items;
  const needed = async (host: string) =>
    (await api<{ items: { patch: string; state: string }[] }>(server, 'GET', `/api/v1/devices/${ids[host]}/patches`)).body.items.filter((p) => p.state === 'needed').map((p) => p.patch);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pw-e2e-'));
    server = await startServerProcess(join(dir, 'server'), ['--test-clock']);
    flags = ['--server', server.url, '--token', server.adminToken];
    const key = await trustAuthor(dir, server);
    debs = join(dir, 'debs');
    mkdirSync(debs);
    const demo1 = buildDeb(debs, { name: 'pw-demo', version: '1.0-1', files: { 'usr/share/pw-demo/v': '1\n' } });
    const demo2 = buildDeb(debs, { name: 'pw-demo', version: '1.0-2', files: { 'usr/share/pw-demo/v': '2\n' } });
    const tool1 = buildDeb(debs, { name: 'pw-tool', version: '1.0-1', files: { 'usr/share/pw-tool/v': '1\n' } });
    const tool2 = buildDeb(debs, {
      name: 'pw-tool',
      version: '1.0-2',
      files: { 'usr/share/pw-tool/v': '2\n' },
      postinst: '#!/bin/sh\nif [ -e /etc/pw-fail ]; then echo "pw-tool cannot start on this machine" >&2; exit 1; fi\nexit 0\n',
    });
    const rule = (name: string, v: string) => ({ package: { manager: 'dpkg', name, version: { ge: v } } });
    await publishPatch(
      dir,
      server,
      key,
      {
        id: P1,
        revision: 1,
        title: 'pw-demo 1.0-2: fixes the demo vulnerability',
        severity: 'critical',
        cves: ['CVE-2026-0001'],
        platforms: [{ family: 'linux' }],
        applicability: { package: { manager: 'dpkg', name: 'pw-demo', installed: true } },
        installed: rule('pw-demo', '1.0-2'),
        install: [
          { type: 'package', manager: 'dpkg', op: 'upgrade', name: 'pw-demo', version: '1.0-2', file: 'pw-demo_1.0-2_all.deb' },
          { type: 'file', op: 'place', path: '/etc/pw-demo.conf', source: 'pw-demo.conf', sha256: sha256(CONF) },
          { type: 'script', interpreter: 'sh', source: 'install.sh', timeoutSeconds: 60 },
        ],
        undo: [{ type: 'script', interpreter: 'sh', source: 'undo.sh', timeoutSeconds: 60 }],
        restart: { reboot: 'required' },
      },
      {
        'pw-demo_1.0-2_all.deb': { file: demo2 },
        'pw-demo.conf': { text: CONF },
        'install.sh': { text: '#!/bin/sh\nset -e\nmkdir -p "$PATCHWARDEN_ROOT/var/lib/pw-demo"\necho migrated > "$PATCHWARDEN_ROOT/var/lib/pw-demo/state"\n' },
        'undo.sh': { text: '#!/bin/sh\nrm -f "$PATCHWARDEN_ROOT/var/lib/pw-demo/state"\n' },
      },
    );
    await publishPatch(
      dir,
      server,
      key,
      {
        id: P2,
        revision: 1,
        title: 'pw-tool 1.0-2',
        severity: 'high',
        platforms: [{ family: 'linux' }],
        applicability: { package: { manager: 'dpkg', name: 'pw-tool', installed: true } },
        installed: rule('pw-tool', '1.0-2'),
        install: [{ type: 'package', manager: 'dpkg', op: 'upgrade', name: 'pw-tool', version: '1.0-2', file: 'pw-tool_1.0-2_all.deb' }],
      },
      { 'pw-tool_1.0-2_all.deb': { file: tool2 } },
    );
    const cov = await api(server, 'POST', '/api/v1/catalog/patches', { patches: [], coverage: [{ family: 'linux', distribution: 'debian', release: '12' }], source: { kind: 'test' } });
    expect(cov.status).toBe(200);
    await admin(['groups', 'create', 'lab']);
    const secret = (await api<{ secret: string }>(server, 'POST', '/api/v1/enrollment-secrets', { name: 'lab', group: 'lab' })).body.secret;
    const reboot = join(dir, 'reboot.sh');
    writeFileSync(reboot, '#!/bin/sh\ntouch "$PATCHWARDEN_ROOT/rebooted"\nrm -f "$PATCHWARDEN_ROOT/run/reboot-required"\n');
    chmodSync(reboot, 0o755);
    for (const host of HOSTS) {
      roots[host] = makeDevice(join(dir, host), host, [demo1, tool1]);
      if (host === 'gamma') writeFileSync(join(roots[host], 'etc/pw-fail'), 'yes\n');
      const args = ['--data-dir', join(dir, `${host}-agent`), '--root', roots[host]];
      const r = await cli(['agent', 'enroll', '--server', server.url, '--secret', secret, '--installs', ...args]);
      expect(r.status, r.stderr).toBe(0);
      daemons.push(spawnAgent(['run', '--interval', '5', '--reboot-command', reboot, ...args]));
    }
    for (const host of HOSTS) ids[host] = await until(`${host} to check in`, async () => deviceId(server, host).catch(() => undefined), 60_000, logs);
  }, 240_000);

  afterAll(async () => {
    for (const d of daemons) d.child.kill('SIGTERM');
    await Promise.all(daemons.map((d) => d.done));
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  let first: string;

  it('sees both patches needed on all three devices', async () => {
    for (const host of HOSTS) await until(`${host} to need both`, async () => (await needed(host)).sort().join() === [P1, P2].sort().join(), 60_000, logs);
    const report = JSON.parse(await admin(['report', 'needed', '--by', 'patch', '--json'])) as { items: { patch: { id: string }; devices: unknown[] }[] };
    expect(report.items.filter((i) => i.patch.id === P1 || i.patch.id === P2).map((i) => [i.patch.id, i.devices.length]).sort()).toEqual([
      [P1, 3],
      [P2, 3],
    ]);
  }, 120_000);

  it('deploys the first patch in two rings: ring 1 bakes for a day, then ring 2 runs', async () => {
    await admin(['approve', P1, '--group', 'lab']);
    const created = JSON.parse(await admin(['deploy', 'create', P1, '--group', 'lab', '--ring', '33%:1440', '--ring', '100%', '--reboot', 'window-end', '--json'])) as Deployment;
    first = created.id;
    expect(created.rings.map((r) => r.counts.total)).toEqual([1, 2]);
    const baking = await until('ring 1 to finish and bake', async () => {
      const d = await status(first);
      return d.rings[0]!.status === 'baking' ? d : undefined;
    }, 90_000, logs);
    expect(baking.rings[0]!.counts).toMatchObject({ succeeded: 1, failed: 0 });
    // ring 2 waits for the bake: its jobs are not handed out, however often its devices ask
    await new Promise((r) => setTimeout(r, 3000));
    expect((await jobs(first)).filter((j) => j.ring === 1).map((j) => j.handedAt)).toEqual([null, null]);

    const moved = await api(server, 'POST', '/api/v1/test/clock', { advanceMinutes: 1441 });
    expect(moved.status).toBe(200);
    const t0 = Date.now();
    await until('ring 2 to be handed out', async () => (await jobs(first)).every((j) => j.handedAt !== null), 60_000, logs);
    const handedIn = (Date.now() - t0) / 1000;
    // the waiting agents were woken: no 30-second poll interval to sit out
    expect(handedIn).toBeLessThan(10);
    const done = await until('the deployment to complete', async () => {
      const d = await status(first);
      return d.status === 'complete' ? d : undefined;
    }, 90_000, logs);
    expect(done.rings.map((r) => r.counts.succeeded)).toEqual([1, 2]);
    for (const host of HOSTS) {
      expect(packageStates(roots[host]!, ['pw-demo'])).toEqual({ 'pw-demo': '1.0-2 ii' });
      expect(readFileSync(join(roots[host]!, 'etc/pw-demo.conf'), 'utf8')).toBe(CONF);
      expect(readFileSync(join(roots[host]!, 'var/lib/pw-demo/state'), 'utf8')).toBe('migrated\n');
      // the patch needs a reboot; the policy said at the window's end, and these devices have no window
      await until(`${host} to reboot`, async () => existsSync(join(roots[host]!, 'rebooted')), 30_000, logs);
      expect(audit(roots[host]!)).toBe('');
    }
    for (const host of HOSTS) await until(`${host} to report P1 installed`, async () => !(await needed(host)).includes(P1), 30_000, logs);
  }, 240_000);

  let second: string;

  it('halts the second deployment when the patch fails on one device, which is rolled back', async () => {
    await admin(['approve', P2, '--group', 'lab']);
    second = (JSON.parse(await admin(['deploy', 'create', P2, '--group', 'lab', '--json'])) as Deployment).id;
    const halted = await until('the deployment to halt', async () => {
      const d = await status(second);
      return d.status === 'halted' ? d : undefined;
    }, 90_000, logs);
    expect(halted.reason).toMatch(/fail/);
    const gamma = await until('gamma to report', async () => (await jobs(second)).find((j) => j.device.hostname === 'gamma' && j.state !== 'queued'), 60_000, logs);
    expect(gamma.state).toBe('rolled-back');
    expect(packageStates(roots.gamma!, ['pw-tool'])).toEqual({ 'pw-tool': '1.0-1 ii' });
    expect(audit(roots.gamma!)).toBe('');
    const detail = JSON.parse(await admin(['deploy', 'job', gamma.id, '--json'])) as { events: { message?: string }[] };
    expect(detail.events.map((e) => e.message ?? '').join('\n')).toMatch(/pw-tool cannot start on this machine/);
  }, 180_000);

  it('undoes the first deployment from the agents\' snapshots after the package files are gone', async () => {
    rmSync(debs, { recursive: true, force: true });
    const undone = JSON.parse(await admin(['deploy', 'undo', first, '--json'])) as { undoJobs: number };
    expect(undone.undoJobs).toBe(3);
    await until('every undo job to finish', async () => {
      const u = (await jobs(first)).filter((j) => j.kind === 'undo');
      return u.length === 3 && u.every((j) => j.state === 'done');
    }, 120_000, logs);
    for (const host of HOSTS) {
      expect(packageStates(roots[host]!, ['pw-demo'])).toEqual({ 'pw-demo': '1.0-1 ii' });
      expect(existsSync(join(roots[host]!, 'etc/pw-demo.conf'))).toBe(false);
      expect(existsSync(join(roots[host]!, 'var/lib/pw-demo/state'))).toBe(false);
      expect(audit(roots[host]!)).toBe('');
      await until(`${host} to need P1 again`, async () => (await needed(host)).includes(P1), 30_000, logs);
    }
  }, 240_000);

  it('tells the whole story in the history', async () => {
    const story = JSON.parse(await admin(['devices', 'history', 'gamma', '--json'])) as { jobs: { items: { kind: string; patch: { id: string }; state: string }[] } };
    const lines = story.jobs.items.map((j) => `${j.kind} ${j.patch.id} ${j.state}`).sort();
    expect(lines).toEqual([`install ${P1} done`, `install ${P2} rolled-back`, `undo ${P1} done`].sort());
    const text = await admin(['deploy', 'status', first]);
    expect(text).toMatch(/undone/);
    const firstJobs = await jobs(first);
    const installs = firstJobs.filter((j) => j.kind === 'install');
    for (const j of installs) {
      const d = JSON.parse(await admin(['deploy', 'job', j.id, '--json'])) as { events: { state: string; message?: string }[] };
      expect(d.events.map((e) => e.state)).toEqual(expect.arrayContaining(['downloading', 'verifying', 'preflight', 'snapshotting', 'installing', 'verifying-install', 'done', 'reporting']));
      expect(d.events.find((e) => e.state === 'done')?.message).toMatch(/installed and verified; a reboot is pending/);
    }
  }, 60_000);
});
