/**
 * Fault: the server process is killed (SIGKILL: no shutdown, no goodbye) in the middle of a
 * deployment and started again on the same data directory. Three agent daemons on sandbox roots
 * with real dpkg install a signed patch in two rings; each package's postinst waits for a gate
 * file the test opens, so the kills land while installs are running and while a finished
 * install still has its report to send; a third kill lands after the server stored a report and
 * before its answer left. The jobs must resume and end `done`, each report stored
 * exactly once, ring 2 handed out after ring 1 as if nothing happened, and every device patched
 * once (the postinst ran once), `dpkg --audit` clean.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Journal } from '@patchwarden/agent';
import { buildDeb } from '../../packages/agent/src/installers/testing.js';
import { api, assertBuilt, cli, startServerProcess, type ServerProcess } from '../support/processes.js';
import { audit, deviceId, makeDevice, packageStates, publishPatch, spawnAgent, trustAuthor, type AgentRun } from '../support/patching.js';
import { reportLedger, until } from '../support/faults.js';

const PATCH = 'custom/pw-restart-1.0-2';
const HOSTS = ['restart-a', 'restart-b', 'restart-c'];

interface Job {
  id: string;
  device: { hostname: string };
  ring: number;
  state: string;
  handedAt: string | null;
}


describe('fault: the server is killed during a deployment and started again', () => {
  assertBuilt();
  let dir: string;
  let dataDir: string;
  let port: string;
  let server: ServerProcess;
  let ledger: Awaited<ReturnType<typeof reportLedger>>;
  const roots: Record<string, string> = {};
  const agentData: Record<string, string> = {};
  const daemons: Record<string, AgentRun> = {};
  const show = () =>
    [
      ...HOSTS.map((h) => `--- ${h}\n${daemons[h]?.output().split('\n').slice(-12).join('\n')}`),
      `--- reports ${JSON.stringify([...(ledger?.answers ?? [])])}`,
      `--- server\n${server?.output().split('\n').slice(-10).join('\n')}`,
    ].join('\n');
  /** the state of this device's one job, as its own journal says */
  const journal = (host: string) => Journal.all(agentData[host]!)[0];
  const gate = (host: string) => writeFileSync(join(roots[host]!, 'pw-gate'), 'open\n');

  async function kill(): Promise<void> {
    const exited = new Promise((r) => server.child.once('exit', r));
    server.child.kill('SIGKILL');
    await exited;
  }
  async function restart(): Promise<void> {
    server = await startServerProcess(dataDir, ['--port', port]);
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pw-fault-restart-'));
    dataDir = join(dir, 'server');
    server = await startServerProcess(dataDir);
    port = new URL(server.url).port;
    ledger = await reportLedger(server.url);
    const key = await trustAuthor(dir, server);
    const debs = join(dir, 'debs');
    mkdirSync(debs);
    const v1 = buildDeb(debs, { name: 'pw-restart', version: '1.0-1', files: { 'usr/share/pw-restart/v': '1\n' } });
    const v2 = buildDeb(debs, {
      name: 'pw-restart',
      version: '1.0-2',
      files: { 'usr/share/pw-restart/v': '2\n' },
      // waits for the test's gate, then counts how often it ran
      postinst: '#!/bin/sh\nset -e\nwhile [ ! -e /pw-gate ]; do /bin/busybox sleep 1; done\necho configured >> /var/lib/pw-restart.runs\n',
    });
    await publishPatch(
      dir,
      server,
      key,
      {
        id: PATCH,
        revision: 1,
        title: 'pw-restart 1.0-2',
        severity: 'high',
        platforms: [{ family: 'linux' }],
        applicability: { package: { manager: 'dpkg', name: 'pw-restart', installed: true } },
        installed: { package: { manager: 'dpkg', name: 'pw-restart', version: { ge: '1.0-2' } } },
        install: [{ type: 'package', manager: 'dpkg', op: 'upgrade', name: 'pw-restart', version: '1.0-2', file: 'pw-restart_1.0-2_all.deb' }],
      },
      { 'pw-restart_1.0-2_all.deb': { file: v2 } },
    );
    expect((await api(server, 'POST', '/api/v1/catalog/patches', { patches: [], coverage: [{ family: 'linux', distribution: 'debian', release: '12' }], source: { kind: 'test' } })).status).toBe(200);
    expect((await api(server, 'POST', '/api/v1/groups', { name: 'lab' })).status).toBe(201);
    const secret = (await api<{ secret: string }>(server, 'POST', '/api/v1/enrollment-secrets', { name: 'lab', group: 'lab' })).body.secret;
    expect((await api(server, 'POST', '/api/v1/approvals', { patch: PATCH, group: 'lab', decision: 'approve' })).status).toBe(200);
    for (const host of HOSTS) {
      roots[host] = makeDevice(join(dir, host), host, [v1]);
      agentData[host] = join(dir, `${host}-agent`);
      const args = ['--data-dir', agentData[host], '--root', roots[host]];
      // the agents reach the server through the ledger, which keeps the server's answer to every report
      const r = await cli(['agent', 'enroll', '--server', ledger.url, '--secret', secret, '--installs', ...args]);
      expect(r.status, r.stderr).toBe(0);
      daemons[host] = spawnAgent(['run', '--interval', '5', ...args]);
    }
    for (const host of HOSTS) {
      const id = await until(`${host} to check in`, async () => deviceId(server, host).catch(() => undefined), 60_000, show);
      await until(`${host} to need the patch`, async () => {
        const p = await api<{ items: { patch: string; state: string }[] }>(server, 'GET', `/api/v1/devices/${id}/patches`);
        return p.body.items.find((x) => x.patch === PATCH)?.state === 'needed';
      }, 60_000, show);
    }
  }, 180_000);

  afterAll(async () => {
    for (const h of HOSTS) daemons[h]?.child.kill('SIGTERM');
    await Promise.all(HOSTS.map((h) => daemons[h]?.done));
    await server?.stop();
    await ledger?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('jobs resume after each kill (mid-install, report pending, report stored but unanswered) and end done, one stored report each, every device patched once', async () => {
    const created = await cli(['deploy', 'create', PATCH, '--group', 'lab', '--ring', '33%', '--ring', '100%', '--json', '--server', server.url, '--token', server.adminToken]);
    expect(created.status, created.stderr).toBe(0);
    const deployment = (JSON.parse(created.stdout) as { id: string }).id;
    const jobs = async () => (await api<{ items: Job[] }>(server, 'GET', `/api/v1/deployments/${deployment}/jobs`)).body.items;
    const all = await jobs();
    expect(all).toHaveLength(3);
    const first = all.filter((j) => j.ring === 0).map((j) => j.device.hostname);
    const second = all.filter((j) => j.ring === 1).map((j) => j.device.hostname);
    expect(first).toHaveLength(1);
    const [a] = first as [string];

    // kill 1: ring 1's device is installing (its postinst waits at the gate)
    await until(`${a} to be installing`, () => journal(a)?.record.state === 'installing', 90_000, show);
    await kill();
    // the install goes on without the server; its report cannot be delivered
    gate(a);
    await until(`${a} to finish and fail to deliver its report`, () => {
      const j = journal(a);
      return j?.record.outcome?.state === 'done' && !j.finished && (ledger.answers.get(j.job.id) ?? []).some((x) => x.status === 0);
    }, 60_000, show);
    await until('the other agents to notice the server is gone', () => second.every((h) => /jobs: E_SERVER_UNREACHABLE: cannot reach the server/.test(daemons[h]!.output())), 60_000, show);
    await restart();
    await until(`${a}'s report to be stored`, async () => (await jobs()).find((j) => j.device.hostname === a)?.state === 'done', 90_000, show);

    // kill 2: ring 2 was handed out after ring 1 completed, and its devices are installing
    await until('ring 2 to be installing', () => second.every((h) => journal(h)?.record.state === 'installing'), 90_000, show);
    await kill();
    await restart();
    // kill 3: the server dies right after it stored a report, before its answer leaves
    const [b, c] = second as [string, string];
    let heldJob = '';
    let killed = false;
    ledger.cutNextAnswer(async (jobId) => {
      heldJob = jobId;
      await kill();
      killed = true;
    });
    gate(b);
    await until(`${b}'s report to be stored and its answer lost`, () => killed, 60_000, show);
    await restart();
    gate(c);
    await until('the deployment to complete', async () => {
      const d = await api<{ status: string }>(server, 'GET', `/api/v1/deployments/${deployment}`);
      return d.body.status === 'complete';
    }, 120_000, show);
    // the device whose answer was lost sends its report again until it hears one
    await until('every agent to have its report answered', () => HOSTS.every((h) => journal(h)?.finished), 60_000, show);

    const final = await jobs();
    expect(final.find((j) => j.id === heldJob)?.device.hostname).toBe(b);
    for (const j of final) {
      expect(j.state, `${j.device.hostname}\n${show()}`).toBe('done');
      const answers = ledger.answers.get(j.id) ?? [];
      // stored once: exactly one answer that was not a duplicate, never a server error
      expect(ledger.stored(j.id), show()).toBe(1);
      expect(answers.every((x) => x.status === 0 || x.status < 500), show()).toBe(true);
      if (j.id === heldJob) {
        // the agent never heard the first answer, so it sent the report again: the server knew it
        expect(answers.filter((x) => x.status === 200).map((x) => [x.duplicate, x.delivered]), show()).toEqual([
          [false, false],
          [true, true],
        ]);
      } else {
        // no report sent again after the server had one
        expect(answers.filter((x) => x.status >= 200 && x.status < 300), show()).toHaveLength(1);
      }
      const detail = await api<{ events: { state: string }[] }>(server, 'GET', `/api/v1/jobs/${j.id}`);
      const states = detail.body.events.map((e) => e.state);
      expect(states).toEqual(expect.arrayContaining(['downloading', 'verifying', 'preflight', 'snapshotting', 'installing', 'verifying-install', 'done', 'reporting']));
      expect(states.filter((s) => s === 'installing')).toHaveLength(1);
    }
    for (const h of HOSTS) {
      expect(packageStates(roots[h]!, ['pw-restart'])).toEqual({ 'pw-restart': '1.0-2 ii' });
      expect(audit(roots[h]!)).toBe('');
      expect(readFileSync(join(roots[h]!, 'var/lib/pw-restart.runs'), 'utf8'), `${h}: the postinst ran once`).toBe('configured\n');
      const j = journal(h)!;
      expect(j.finished).toBe(true);
      expect(j.record.outcome?.state).toBe('done');
    }
    // and the server, started twice more on the same data, sees every device patched
    for (const h of HOSTS) {
      const id = await deviceId(server, h);
      await until(`${h} to report the patch installed`, async () => {
        const p = await api<{ items: { patch: string; state: string }[] }>(server, 'GET', `/api/v1/devices/${id}/patches`);
        return p.body.items.find((x) => x.patch === PATCH)?.state === 'installed';
      }, 60_000, show);
    }
  }, 300_000);

  it('after a long outage the job side comes back with the first check-in, not after the backoff it grew meanwhile', async () => {
    const deployment = (await api<{ items: { id: string }[] }>(server, 'GET', '/api/v1/deployments')).body.items[0]!.id;
    const failures = (h: string) => (daemons[h]!.output().match(/ jobs: E_SERVER_UNREACHABLE: cannot reach the server/g) ?? []).length;
    const checkins = (h: string) => (daemons[h]!.output().match(/ checked in: /g) ?? []).length;
    // every device is in touch with the server before it goes away
    const seen = HOSTS.map(checkins);
    await until('a check-in of every device', () => HOSTS.every((h, i) => checkins(h) > seen[i]!), 30_000, show);
    const before = HOSTS.map(failures);
    await kill();
    // five failed job requests in a row: the job side now sleeps 32 s ±50 % before its next try
    await until('five failed job requests on every device', () => HOSTS.every((h, i) => failures(h) >= before[i]! + 5), 90_000, show);
    await restart();
    const t0 = Date.now();
    const undo = await api<{ undoJobs: number }>(server, 'POST', `/api/v1/deployments/${deployment}/undo`);
    expect(undo.status, JSON.stringify(undo.body)).toBe(200);
    expect(undo.body.undoJobs).toBe(3);
    const undoJobs = async () => (await api<{ items: (Job & { kind: string })[] }>(server, 'GET', `/api/v1/deployments/${deployment}/jobs`)).body.items.filter((j) => j.kind === 'undo');
    await until('every undo job to be handed out', async () => (await undoJobs()).every((j) => j.handedAt !== null), 60_000, show);
    const seconds = (Date.now() - t0) / 1000;
    // the check-in side retries at most every 7.5 s here (its interval of 5 s, ±50 %), and its
    // first success ends the job side's pause
    expect(seconds, show()).toBeLessThan(12);
    await until('every undo job to finish', async () => (await undoJobs()).every((j) => j.state === 'done'), 90_000, show);
    for (const h of HOSTS) {
      expect(packageStates(roots[h]!, ['pw-restart'])).toEqual({ 'pw-restart': '1.0-1 ii' });
      expect(audit(roots[h]!)).toBe('');
    }
    for (const j of await undoJobs()) expect(ledger.stored(j.id)).toBe(1);
  }, 240_000);
});
