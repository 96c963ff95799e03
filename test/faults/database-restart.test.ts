/**
 * Fault: the database goes away under a running server. A PostgreSQL cluster of the test's own
 * (initdb in a temporary directory, its own port) backs a server process; devices check in
 * through the agent's own daemon code over real HTTP, plus one agent process. The cluster is
 * stopped (cleanly, then as a crash) while the devices change their inventories and check in.
 * The server must stay up and answer 503 E_DATABASE, the agents must retry with growing waits,
 * and once PostgreSQL is back every device's last inventory must be on record: nothing lost.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inventoryHash, PatchwardenError } from '@patchwarden/core';
import { collectFacts, enrollAgent, runAgent, type CheckinResult } from '@patchwarden/agent';
import { api, assertBuilt, cli, startServerProcess, type ServerProcess } from '../support/processes.js';
import { spawnAgent, type AgentRun } from '../support/patching.js';
import { bumpPackage, makeRoot } from '../support/sandbox.js';
import { findPostgresBin, startPrivatePostgres, type PrivatePostgres, until } from '../support/faults.js';

const HOSTS = ['db-fault-1', 'db-fault-2', 'db-fault-3', 'db-fault-4'];
const INTERVAL = 30;
const missing = findPostgresBin() ? null : 'no PostgreSQL server binaries under /usr/lib/postgresql/*/bin';
if (missing && process.env.CI === 'true') throw new Error(`${missing}: under CI the database fault test must run (.ci/run installs postgresql)`);
if (missing) console.warn(`database restart fault test did not run: ${missing}`);

interface Attempt {
  at: number;
  ok: boolean;
  code?: string;
  /** seconds the agent waits before its next try */
  wait?: number;
  result?: CheckinResult;
}

interface Device {
  host: string;
  root: string;
  data: string;
  id: string;
  attempts: Attempt[];
  jobErrors: string[];
  /** when the job side of the daemon got an answer from the server */
  jobPasses: number[];
}

function statusFile(packages: number): string {
  let text = '';
  for (let i = 0; i < packages; i++) {
    text += `Package: pw-fault-${i}\nStatus: install ok installed\nPriority: optional\nSection: misc\nMaintainer: Patchwarden tests <tests@example.org>\nArchitecture: all\nVersion: 1.0-1\nDescription: a package of the fault suite\n\n`;
  }
  return text;
}


describe.skipIf(missing !== null)('fault: PostgreSQL stops and starts while devices check in', () => {
  assertBuilt();
  let dir: string;
  let pg: PrivatePostgres;
  let server: ServerProcess;
  const devices: Device[] = [];
  let processAgent: AgentRun;
  let processRoot: string;
  const stop = new AbortController();
  let running: Promise<unknown>;
  const show = () =>
    [
      ...devices.map((d) => `--- ${d.host}: ${d.attempts.map((a) => (a.ok ? 'ok' : `${a.code}(${a.wait?.toFixed(1)}s)`)).join(' ')}`),
      `--- agent process\n${processAgent?.output().split('\n').slice(-15).join('\n')}`,
      `--- server\n${server?.output().split('\n').slice(-15).join('\n')}`,
    ].join('\n');

  /** what the device's collectors read now: the inventory the server must end up with */
  const localHash = async (root: string) => inventoryHash((await collectFacts({ root })).packages);
  const recorded = async (id: string) => (await api<{ inventoryHash: string | null; lastSeenAt: string | null; packageCount: number }>(server, 'GET', `/api/v1/devices/${id}`)).body;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pw-fault-db-'));
    pg = await startPrivatePostgres();
    server = await startServerProcess(join(dir, 'server'), ['--database', pg.url]);
    expect((await api<{ database: string }>(server, 'GET', '/api/health')).body.database).toBe('postgres');
    const secret = (await api<{ secret: string }>(server, 'POST', '/api/v1/enrollment-secrets', { name: 'fault' })).body.secret;
    const status = join(dir, 'status');
    writeFileSync(status, statusFile(24));
    for (const host of HOSTS) {
      const root = makeRoot(join(dir, host), { hostname: host, statusFrom: status });
      const data = join(dir, `${host}-agent`);
      const s = await enrollAgent({ dataDir: data, collect: { root }, server: server.url, secret });
      devices.push({ host, root, data, id: s.deviceId, attempts: [], jobErrors: [], jobPasses: [] });
    }
    running = Promise.all(
      devices.map((d) =>
        runAgent({
          dataDir: d.data,
          collect: { root: d.root },
          intervalSeconds: INTERVAL,
          // a short long poll, so a pass ends soon after the job side is back
          jobWaitSeconds: 1,
          signal: stop.signal,
          onResult: (r) => d.attempts.push({ at: Date.now(), ok: true, result: r }),
          onError: (err, wait) => d.attempts.push({ at: Date.now(), ok: false, code: err instanceof PatchwardenError ? err.code : String(err), wait }),
          onJobError: (err) => d.jobErrors.push(err instanceof PatchwardenError ? err.code : String(err)),
          onPass: () => d.jobPasses.push(Date.now()),
        }),
      ),
    );
    // one more device as a real agent process, to see what an administrator reads in its log
    processRoot = makeRoot(join(dir, 'db-fault-process'), { hostname: 'db-fault-process', statusFrom: status });
    mkdirSync(join(dir, 'process-agent'));
    const args = ['--data-dir', join(dir, 'process-agent'), '--root', processRoot];
    const r = await cli(['agent', 'enroll', '--server', server.url, '--secret', secret, ...args]);
    expect(r.status, r.stderr).toBe(0);
    processAgent = spawnAgent(['run', '--interval', String(INTERVAL), ...args]);
    await until('every device to check in', async () => devices.every((d) => d.attempts.some((a) => a.ok)) && /checked in/.test(processAgent.output()), 60_000, show);
  }, 120_000);

  afterAll(async () => {
    stop.abort();
    await running?.catch(() => {});
    processAgent?.child.kill('SIGTERM');
    await processAgent?.done;
    await server?.stop();
    pg?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('a clean shutdown: the server answers 503 E_DATABASE and stays up, agents back off, and every change made meanwhile arrives', async () => {
    pg.stop('fast');
    const downAt = Date.now();
    // the server is still there and says what is wrong, with a code, instead of crashing
    const res = await api<{ error: { code: string; message: string; hint?: string } }>(server, 'GET', '/api/v1/devices');
    expect(res.status).toBe(503);
    expect(res.body.error.code).toBe('E_DATABASE');
    expect(res.body.error.message).toMatch(/database is unavailable/);
    expect(res.body.error.hint).toMatch(/retry/);
    // every device changes while the database is away: its next check-in carries the change
    for (const d of [...devices.map((x) => x.root), processRoot]) bumpPackage(d, 'pw-fault-3', '1.0-2');
    await until(
      'three failed check-ins on every device',
      async () => devices.every((d) => d.attempts.filter((a) => !a.ok && a.at > downAt).length >= 3) && /check-in failed: E_DATABASE: the database is unavailable.*retrying in \d+ s/.test(processAgent.output()),
      60_000,
      show,
    );
    expect(server.child.exitCode, server.output()).toBeNull();
    for (const d of devices) {
      const failed = d.attempts.filter((a) => !a.ok && a.at > downAt);
      // a coded, retryable answer: never an internal error, never a reason to give up
      expect(new Set(failed.map((a) => a.code)), show()).toEqual(new Set(['E_DATABASE']));
      // the n-th failure in a row waits 2^n seconds (capped at the interval), ±50 % jitter
      failed.forEach((a, i) => {
        const base = Math.min(INTERVAL, 2 ** (i + 1));
        expect(a.wait!, `${d.host} failure ${i + 1}`).toBeGreaterThanOrEqual(base * 0.5);
        expect(a.wait!, `${d.host} failure ${i + 1}`).toBeLessThanOrEqual(base * 1.5);
      });
      expect(failed[2]!.wait! / failed[0]!.wait!, 'the waits grow').toBeGreaterThan(1);
    }

    pg.start();
    const upAt = Date.now();
    for (const d of devices) {
      const want = await localHash(d.root);
      await until(`${d.host}'s new inventory on record`, async () => (await recorded(d.id)).inventoryHash === want, 60_000, show);
      const rec = await recorded(d.id);
      expect(Date.parse(rec.lastSeenAt!)).toBeGreaterThanOrEqual(upAt - 1000);
      expect(rec.packageCount).toBe(24);
    }
    const want = await localHash(processRoot);
    await until('the agent process\'s inventory on record', async () => {
      const r = await api<{ items: { id: string; hostname: string }[] }>(server, 'GET', '/api/v1/devices?search=db-fault-process');
      const id = r.body.items.find((x) => x.hostname === 'db-fault-process')?.id;
      return id !== undefined && (await recorded(id)).inventoryHash === want;
    }, 60_000, show);
    for (const d of devices) {
      // every device's latest attempt succeeded: none is left waiting on a long backoff
      expect(d.attempts[d.attempts.length - 1]!.ok, show()).toBe(true);
      // the job side failed too while the database was away, and did not sit out the rest of its
      // grown backoff: the first check-in that got through woke it
      expect(d.jobErrors.filter((c) => c === 'E_DATABASE').length, show()).toBeGreaterThan(0);
      const back = d.attempts.find((a) => a.ok && a.at >= upAt)!.at;
      const pass = await until(`${d.host}'s job side to be back`, async () => d.jobPasses.find((t) => t >= upAt), 30_000, show);
      expect(pass - back, `${d.host}: job side back ${pass - back} ms after the check-in`).toBeLessThan(4000);
    }
    const list = await api<{ total: number }>(server, 'GET', '/api/v1/devices');
    expect(list.body.total).toBe(HOSTS.length + 1);
  }, 150_000);

  it('a crash in the middle of check-ins (immediate stop): no answer other than E_DATABASE, and the last inventory of every device arrives', async () => {
    // devices keep changing, so check-ins are in flight when PostgreSQL dies
    let version = 2;
    const churn = setInterval(() => {
      version++;
      for (const d of devices) bumpPackage(d.root, 'pw-fault-5', `1.0-${version}`);
    }, 2500);
    // and an administrator's console keeps asking, so queries are running when PostgreSQL dies
    const answers: string[] = [];
    let asking = true;
    const asker = (async () => {
      while (asking) {
        const batch = Array.from({ length: 16 }, () =>
          api<{ error?: { code: string } }>(server, 'GET', '/api/v1/devices?sort=hostname').then(
            (r) => `${r.status}${r.body?.error ? ` ${r.body.error.code}` : ''}`,
            (e: Error) => `no answer: ${e.message}`,
          ),
        );
        answers.push(...(await Promise.all(batch)));
      }
    })();
    const before = devices.map((d) => d.attempts.length);
    try {
      await until('check-ins of the changes', async () => devices.every((d, i) => d.attempts.slice(before[i]).some((a) => a.ok)), 30_000, show);
      await pg.stopWhileBusy('immediate');
      const downAt = Date.now();
      await until('every device to fail twice', async () => devices.every((d) => d.attempts.filter((a) => !a.ok && a.at > downAt).length >= 2), 60_000, show);
    } finally {
      clearInterval(churn);
      asking = false;
      await asker;
    }
    expect(server.child.exitCode, server.output()).toBeNull();
    // every request had an answer: the data, or "the database is unavailable"; never a 500
    const unhandled = () => server.output().split('\n').filter((l) => /unhandled error/.test(l)).join('\n').slice(0, 4000);
    expect(new Set(answers), unhandled()).toEqual(new Set(['200', '503 E_DATABASE']));
    const codes = new Set(devices.flatMap((d, i) => d.attempts.slice(before[i]).filter((a) => !a.ok).map((a) => a.code)));
    expect(codes, show()).toEqual(new Set(['E_DATABASE']));

    pg.start();
    for (const d of devices) {
      const want = await localHash(d.root);
      await until(`${d.host}'s last inventory on record`, async () => (await recorded(d.id)).inventoryHash === want, 60_000, show);
    }
    // the job side of the daemon saw the same: retried, never stopped
    for (const d of devices) expect(d.jobErrors.every((c) => c === 'E_DATABASE' || c === 'E_SERVER_UNREACHABLE'), d.jobErrors.join()).toBe(true);
  }, 150_000);
});
