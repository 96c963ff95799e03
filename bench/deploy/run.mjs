#!/usr/bin/env node
// Deployment benchmark (`npm run bench:deploy`): 10,000 simulated devices take one deployment of
// two rings (10 %, then 100 %, bake 0), on SQLite and on PostgreSQL.
//  1. the fleet is seeded in bulk through the server's own modules (as bench/compliance does):
//     two patches, devices with real device tokens (stored as SHA-256) in one static group, half
//     of them needing one patch and half both, compliance computed by the engine;
//  2. the server runs in its own process; the patches are approved for the group and the
//     deployment created through the API (timed);
//  3. simulated agents poll `GET /api/v1/agent/jobs` (5 % of the devices long-poll with ?wait=30,
//     the rest poll plainly through a pool of 200 requests in flight, keep-alive) and post a
//     JobReport for every job (97 % done, 3 % failed, below the rings' 10 % failure threshold).
// Writes bench/results/deploy-YYYY-MM-DD.json with the machine noted; exits non-zero when a
// request failed or the deployment did not complete with every job finished.
// Options: --devices N (10000), --only sqlite|postgres, --concurrency N (200 plain polls and
// reports in flight), --log-level L (the server's, default silent).
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { inventoryHash, PatchManifest, sortInventory } from '@patchwarden/core';
import { openDatabase, createGroup, upsertPatches } from '@patchwarden/server';
import { ComplianceEngine } from '../../packages/server/dist/compliance/engine.js';
import { ensureSet } from '../../packages/server/dist/inventory/store.js';
import { allPackages } from '../packages.mjs';

const root = fileURLToPath(new URL('../..', import.meta.url));
const cli = join(root, 'packages/cli/bin/patchwarden.js');
const args = process.argv.slice(2);
const opt = (n, d) => (args.includes(`--${n}`) ? args[args.indexOf(`--${n}`) + 1] : d);
const DEVICES = Number(opt('devices', '10000'));
const CONCURRENCY = Number(opt('concurrency', '200'));
/** every LONG_POLL_EVERY-th device long-polls (?wait=30) on its own connection */
const LONG_POLL_EVERY = 20;
const LONG_POLL_SECONDS = 30;
/** a device whose poll came back empty polls again no sooner than this */
const REPOLL_MS = 1000;
/** share of devices whose jobs fail (the rings' failureThreshold is 0.1) */
const FAIL_PERCENT = 3;
const FAILURE_THRESHOLD = 0.1;
const only = opt('only', 'all');
if (!['all', 'sqlite', 'postgres'].includes(only)) throw new Error(`--only sqlite|postgres, not '${only}'`);
if (!(DEVICES > 0)) throw new Error('--devices N, N > 0');

function machine() {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    memoryGiB: Number((os.totalmem() / 2 ** 30).toFixed(1)),
    node: process.version,
    kernel: os.release(),
    platform: `${os.platform()} ${os.arch()}`,
  };
}

function procStats(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k) => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0);
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    const ticks = Number(stat[11]) + Number(stat[12]);
    return { peakRssMiB: Math.round(kb('VmHWM') / 1024), rssMiB: Math.round(kb('VmRSS') / 1024), cpuSeconds: ticks / 100 };
  } catch {
    return null;
  }
}

const secs = (ms) => Number((ms / 1000).toFixed(2));
const pct = (sorted, p) => (sorted.length ? Number(sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))].toFixed(2)) : null);
const latency = (l) => {
  const s = l.slice().sort((a, b) => a - b);
  return { count: s.length, p50ms: pct(s, 0.5), p95ms: pct(s, 0.95), p99ms: pct(s, 0.99), maxMs: pct(s, 1) };
};

async function freshPgDatabase() {
  const base = process.env.PATCHWARDEN_BENCH_PG ?? process.env.PATCHWARDEN_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test';
  const admin = new pg.Client({ connectionString: base.replace(/\/[^/]*$/, '/postgres') });
  try {
    await admin.connect();
  } catch (err) {
    throw new Error(`PostgreSQL at ${base} is unreachable (${err.message}); run with --only sqlite to skip it`);
  }
  await admin.query('drop database if exists patchwarden_bench_deploy');
  await admin.query('create database patchwarden_bench_deploy');
  await admin.end();
  return base.replace(/\/[^/]*$/, '/patchwarden_bench_deploy');
}

// ───────────────────────── seeding ─────────────────────────

const osFacts = { family: 'linux', distribution: 'debian', version: '12', versionCodename: 'bookworm', machine: 'x86_64', packageArch: 'amd64' };
const platform = [{ family: 'linux', distribution: 'debian', release: 'bookworm', arch: ['amd64'] }];

/** Seeds the fleet into `url` (a SQLite file or PostgreSQL); returns the devices with their tokens. */
async function seed(url) {
  const database = await openDatabase({ url });
  const { db } = database;
  const now = Date.now();
  // two real packages: patch A fixes the first, patch B the second, each one version above
  const pool = allPackages().filter((p) => p.arch === 'amd64' || p.arch === 'all');
  const base = pool.slice(0, 200).map((p) => ({ ...p, state: 'installed' }));
  const [pa, pb] = [base[0], base[1]];
  const patch = (p, tag) => {
    const fixed = `${p.version}+pw1`;
    return PatchManifest.parse({
      id: `bench/deploy-${tag}`, revision: 1, title: `${p.name} ${fixed}`, severity: 'high', cves: [], advisories: [], platforms: platform,
      applicability: { package: { manager: 'dpkg', name: p.name, installed: true } },
      installed: { package: { manager: 'dpkg', name: p.name, version: { ge: fixed } } },
      requires: [], supersedes: [], conflicts: [], restart: { reboot: 'never', kernel: false },
      fixes: [{ manager: 'dpkg', name: p.name, version: fixed }],
    });
  };
  const patches = [patch(pa, 'a'), patch(pb, 'b')];
  await upsertPatches(db, patches, platform, { kind: 'bench' }, now);
  // set 0: both packages installed (needs both patches); set 1: without the second (needs A only)
  const sets = [base, base.filter((p) => p !== pb)].map((list) => {
    const l = list.map((p) => ({ ...p }));
    sortInventory(l);
    return { packages: l, hash: inventoryHash(l), needs: list.includes(pb) ? 2 : 1 };
  });
  const sys = { os: osFacts, kernelRelease: '6.1.0-28-amd64', rebootRequired: false, managers: ['dpkg'] };
  const ctx = [];
  for (const [i, s] of sets.entries()) {
    const ref = await db.transaction().execute((tx) => ensureSet(tx, database.dialect, s.packages, s.hash, now));
    const c = await db.insertInto('eval_contexts').values({ key: `bench-deploy-${i}`, package_set_id: ref.id, system_json: JSON.stringify(sys), generation: -1, covered: 1, created_at: now }).returning('id').executeTakeFirstOrThrow();
    ctx.push({ setId: ref.id, contextId: c.id, count: s.packages.length, needs: s.needs });
  }
  const group = await createGroup(db, 'bench-fleet', 'deployment benchmark fleet', now);
  const devices = [];
  const rows = [];
  for (let d = 0; d < DEVICES; d++) {
    const token = `pwd_${randomBytes(32).toString('base64url')}`;
    const c = ctx[d % 2];
    const id = `00000000-0000-4000-8000-${String(d).padStart(12, '0')}`;
    devices.push({ i: d, id, token, needs: c.needs, fails: (d * 2654435761) % 100 < FAIL_PERCENT, longPoll: d % LONG_POLL_EVERY === 0 });
    rows.push({
      id, hostname: `bench-${d}`, status: 'active', group_id: group.id, token_hash: createHash('sha256').update(token, 'utf8').digest('hex'),
      secret_id: null, enrolled_at: now, last_seen_at: now, revoked_at: null,
      system_json: JSON.stringify({ hostname: `bench-${d}`, os: osFacts, kernel: { release: sys.kernelRelease }, timezone: 'UTC', rebootRequired: false, agentVersion: '0.1.0', collectors: [{ name: 'dpkg', status: 'ok', count: c.count }] }),
      system_hash: null, os_pretty: 'Debian 12', package_set_id: c.setId, package_count: c.count, inventory_status: 'ok', inventory_message: null, context_id: c.contextId,
    });
  }
  for (let i = 0; i < rows.length; i += 500) await db.insertInto('devices').values(rows.slice(i, i + 500)).execute();
  await new ComplianceEngine(db, database.dialect, Date.now).recomputeAll();
  // the fleet must need exactly what the benchmark expects
  const needed = await db.selectFrom('devices as d').innerJoin('effective_states as s', 's.context_id', 'd.context_id').select((eb) => eb.fn.countAll().as('n')).where('s.state', '=', 'needed').executeTakeFirstOrThrow();
  const expected = devices.reduce((a, d) => a + d.needs, 0);
  if (Number(needed.n) !== expected) throw new Error(`seeding: ${needed.n} needed states, expected ${expected}`);
  await database.close();
  return { devices, patches: patches.map((p) => p.id), group: 'bench-fleet', jobs: expected };
}

// ───────────────────────── server ─────────────────────────

async function startServer(dataDir, database) {
  const child = spawn(process.execPath, [cli, 'server', '--port', '0', '--insecure-http', '--data-dir', dataDir, '--log-level', opt('log-level', 'silent'), ...(database ? ['--database', database] : [])], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const url = await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`server did not start: ${out}`)), 120_000);
    child.stdout.on('data', () => {
      const m = /API docs:\s+(\S+)\/api\/docs/.exec(out);
      if (m) {
        clearTimeout(t);
        resolve(m[1]);
      }
    });
    child.on('exit', (c) => reject(new Error(`server exited ${c}: ${out}`)));
  });
  return { child, url, token: readFileSync(join(dataDir, 'admin-token'), 'utf8').trim(), output: () => out };
}

function request(target, agent, method, path, token, body) {
  const payload = body === undefined ? null : Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const headers = { authorization: `Bearer ${token}` };
    if (payload) Object.assign(headers, { 'content-type': 'application/json', 'content-length': payload.length });
    const req = http.request({ host: target.hostname, port: target.port, path, method, agent, headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        let json = null;
        try {
          json = JSON.parse(text);
        } catch {
          /* not JSON: kept as text */
        }
        resolve({ status: res.statusCode, json, text });
      });
    });
    req.on('error', reject);
    req.end(payload ?? undefined);
  });
}

// ───────────────────────── one run ─────────────────────────

async function run(db) {
  const dir = mkdtempSync(join(os.tmpdir(), 'pw-bench-deploy-'));
  const pgUrl = db === 'postgres' ? await freshPgDatabase() : undefined;
  const result = { devices: DEVICES };
  let t0 = performance.now();
  const fleet = await seed(pgUrl ?? join(dir, 'patchwarden.db'));
  result.seed = { method: 'bulk through the server modules (devices, package sets, compliance engine recomputeAll)', seconds: secs(performance.now() - t0), jobsExpected: fleet.jobs };
  process.stderr.write(`${db}: seeded ${DEVICES} devices (${fleet.jobs} needed states) in ${result.seed.seconds} s\n`);

  const server = await startServer(dir, pgUrl);
  const target = new URL(server.url);
  const adminAgent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  const admin = (method, path, body) => request(target, adminAgent, method, path, server.token, body);
  try {
    const before = procStats(server.child.pid);
    for (const p of fleet.patches) {
      const r = await admin('POST', '/api/v1/approvals', { patch: p, group: fleet.group, decision: 'approve' });
      if (r.status !== 200) throw new Error(`approve ${p}: ${r.status} ${r.text}`);
    }

    // the agents: long-pollers wait before the deployment exists (as idle agents would)
    const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
    const longAgent = new http.Agent({ keepAlive: true });
    const lat = { poll: [], longPoll: [], report: [] };
    const errors = [];
    const stats = { polls: 0, emptyPolls: 0, longPolls: 0, longPollsWithJobs: 0, reports: 0, reportsFailed: 0, jobsReceived: 0 };
    const handedAt = [];
    const reportedAt = [];
    let createdAt = null;
    const left = new Set(fleet.devices.filter((d) => d.needs > 0).map((d) => d.id));
    const got = new Map(fleet.devices.map((d) => [d.id, 0]));
    let stop = false;
    let settle;
    const finished = new Promise((r) => (settle = r));
    const fail = (what, r) => {
      errors.push(`${what}: ${r.status ?? ''} ${(r.text ?? String(r)).slice(0, 300)}`);
      if (errors.length > 50) stop = true;
      if (stop) settle();
    };

    const report = async (d, job) => {
      const at = new Date().toISOString();
      const state = d.fails ? 'failed' : 'done';
      const body = {
        jobId: job.id,
        state,
        events: [
          { at, state: 'downloading' },
          { at, state: 'verifying' },
          { at, state: 'installing' },
          { at, state, ...(d.fails ? { message: 'dpkg: error processing package (simulated)' } : {}) },
        ],
        detail: { before: `${job.patch.id} old`, after: d.fails ? `${job.patch.id} old` : `${job.patch.id} new` },
      };
      const s = performance.now();
      let r;
      try {
        r = await request(target, d.longPoll ? longAgent : agent, 'POST', `/api/v1/agent/jobs/${job.id}/report`, d.token, body);
      } catch (err) {
        return fail('report', err);
      }
      lat.report.push(performance.now() - s);
      if (r.status !== 200 || r.json?.duplicate !== false) return fail('report', r);
      stats.reports++;
      if (d.fails) stats.reportsFailed++;
      reportedAt.push(performance.now());
    };

    /** one poll of device d; returns true when it got jobs */
    const poll = async (d, wait) => {
      const s = performance.now();
      let r;
      try {
        r = await request(target, wait ? longAgent : agent, 'GET', `/api/v1/agent/jobs${wait ? `?wait=${wait}` : ''}`, d.token);
      } catch (err) {
        fail('poll', err);
        return false;
      }
      const ms = performance.now() - s;
      if (r.status !== 200 || !Array.isArray(r.json?.jobs)) {
        fail('poll', r);
        return false;
      }
      if (wait) {
        stats.longPolls++;
        if (r.json.jobs.length) stats.longPollsWithJobs++;
        lat.longPoll.push(ms);
      } else {
        stats.polls++;
        if (!r.json.jobs.length) stats.emptyPolls++;
        lat.poll.push(ms);
      }
      for (const job of r.json.jobs) {
        stats.jobsReceived++;
        handedAt.push(performance.now());
        await report(d, job);
        got.set(d.id, got.get(d.id) + 1);
      }
      if (got.get(d.id) >= d.needs) {
        left.delete(d.id);
        if (left.size === 0) settle();
      }
      return r.json.jobs.length > 0;
    };

    const longPollers = fleet.devices.filter((d) => d.longPoll);
    const longLoops = longPollers.map(async (d) => {
      while (!stop && left.has(d.id)) await poll(d, LONG_POLL_SECONDS);
    });
    // give the long polls time to be parked on the server before the deployment exists
    await new Promise((r) => setTimeout(r, 2000));

    // the deployment, through the API
    const start = new Date(Date.now() - 60_000).toISOString();
    const rings = [
      { name: 'canary', percent: 10, bakeMinutes: 0, failureThreshold: FAILURE_THRESHOLD, maxNotReporting: 0 },
      { name: 'fleet', percent: 100, bakeMinutes: 0, failureThreshold: FAILURE_THRESHOLD, maxNotReporting: 0 },
    ];
    t0 = performance.now();
    const created = await admin('POST', '/api/v1/deployments', { patches: fleet.patches, groups: [fleet.group], start, rings });
    const createMs = performance.now() - t0;
    if (created.status !== 201) throw new Error(`create deployment: ${created.status} ${created.text}\n${server.output().slice(-3000)}`);
    createdAt = performance.now();
    const dep = created.json;
    const ringTotals = dep.rings.map((r) => r.counts.total);
    result.create = { seconds: secs(createMs), jobs: ringTotals.reduce((a, b) => a + b, 0), ringJobs: ringTotals };
    process.stderr.write(`${db}: deployment ${dep.id} created in ${result.create.seconds} s, jobs per ring ${ringTotals.join(' + ')}; agents running …\n`);
    if (result.create.jobs !== fleet.jobs) throw new Error(`the deployment made ${result.create.jobs} jobs, expected ${fleet.jobs}`);

    // plain pollers: a pool of CONCURRENCY in flight over the devices that still wait for jobs
    const plain = fleet.devices.filter((d) => !d.longPoll);
    const nextPoll = new Map(plain.map((d) => [d.id, 0]));
    let cursor = 0;
    const worker = async () => {
      while (!stop && left.size > 0) {
        let d = null;
        for (let k = 0; k < plain.length; k++) {
          const c = plain[cursor++ % plain.length];
          if (left.has(c.id) && nextPoll.get(c.id) <= performance.now()) {
            d = c;
            nextPoll.set(c.id, Infinity); // taken by this worker
            break;
          }
        }
        if (!d) {
          await new Promise((r) => setTimeout(r, 50));
          continue;
        }
        const gotJobs = await poll(d, 0);
        nextPoll.set(d.id, gotJobs ? 0 : performance.now() + REPOLL_MS);
      }
    };
    const progress = setInterval(() => process.stderr.write(`${db}:   ${stats.polls} polls (${stats.emptyPolls} empty), ${stats.longPolls} long polls, ${stats.jobsReceived} jobs handed, ${stats.reports} reported, ${errors.length} errors, ${left.size} devices waiting\n`), 10_000);
    const workers = Array.from({ length: CONCURRENCY }, worker);
    await finished;
    stop = true;
    clearInterval(progress);
    const allDoneAt = performance.now();
    await Promise.all(workers);
    // long polls of finished devices ended; a long poll still parked ends at its timeout
    await Promise.race([Promise.all(longLoops), new Promise((r) => setTimeout(r, (LONG_POLL_SECONDS + 5) * 1000))]);
    const after = procStats(server.child.pid);

    handedAt.sort((a, b) => a - b);
    reportedAt.sort((a, b) => a - b);
    const agentSeconds = (allDoneAt - createdAt) / 1000;
    const final = await admin('GET', `/api/v1/deployments/${dep.id}`);
    const finishedJobs = final.json ? final.json.rings.reduce((a, r) => a + r.counts.succeeded + r.counts.failed, 0) : 0;
    result.agents = {
      concurrency: CONCURRENCY,
      longPollDevices: longPollers.length,
      ring1AllHandedSeconds: handedAt.length >= ringTotals[0] ? secs(handedAt[ringTotals[0] - 1] - createdAt) : null,
      ring1AllReportedSeconds: reportedAt.length >= ringTotals[0] ? secs(reportedAt[ringTotals[0] - 1] - createdAt) : null,
      allHandedSeconds: handedAt.length >= result.create.jobs ? secs(handedAt[result.create.jobs - 1] - createdAt) : null,
      allReportedSeconds: secs(allDoneAt - createdAt),
      reportsPerSecond: Math.round(stats.reports / agentSeconds),
      pollsPerSecond: Math.round((stats.polls + stats.longPolls) / agentSeconds),
      ...stats,
      latency: { poll: latency(lat.poll), report: latency(lat.report), longPoll: latency(lat.longPoll) },
      errors: errors.length,
      ...(errors.length ? { firstErrors: errors.slice(0, 5) } : {}),
    };
    result.server = { cpuSeconds: after && before ? Number((after.cpuSeconds - before.cpuSeconds).toFixed(1)) : null, peakRssMiB: after?.peakRssMiB ?? null };
    result.final = { status: final.json?.status, reason: final.json?.reason ?? null, jobs: final.json?.jobs, finishedJobs, rings: final.json?.rings?.map((r) => ({ name: r.name, status: r.status, counts: r.counts })) };
    const problems = [];
    if (errors.length) problems.push(`${errors.length} request errors: ${errors.slice(0, 3).join(' | ')}`);
    // core deploymentProgress calls a finished deployment 'complete'
    if (!['complete', 'completed'].includes(final.json?.status)) problems.push(`final status '${final.json?.status}' (${final.json?.reason ?? final.text?.slice(0, 200)})`);
    if (finishedJobs !== result.create.jobs) problems.push(`${finishedJobs} of ${result.create.jobs} jobs finished`);
    if (stats.reports !== result.create.jobs) problems.push(`${stats.reports} reports for ${result.create.jobs} jobs`);
    result.ok = problems.length === 0;
    if (problems.length) result.problems = problems;
    agent.destroy();
    longAgent.destroy();
  } finally {
    adminAgent.destroy();
    server.child.kill('SIGTERM');
    await new Promise((r) => (server.child.exitCode !== null ? r() : server.child.once('exit', r)));
    rmSync(dir, { recursive: true, force: true });
  }
  return result;
}

const results = { benchmark: 'deployment', date: new Date().toISOString(), machine: machine(), settings: { devices: DEVICES, concurrency: CONCURRENCY, longPollEvery: LONG_POLL_EVERY, longPollSeconds: LONG_POLL_SECONDS, failPercent: FAIL_PERCENT, failureThreshold: FAILURE_THRESHOLD, repollMs: REPOLL_MS }, runs: {} };
for (const db of ['sqlite', 'postgres']) {
  if (only !== 'all' && only !== db) continue;
  results.runs[db] = await run(db);
  process.stderr.write(`${db}: ${JSON.stringify(results.runs[db].agents)}\n`);
}

mkdirSync(join(root, 'bench/results'), { recursive: true });
const file = join(root, 'bench/results', `deploy-${results.date.slice(0, 10)}.json`);
// with --only, the other database's run of the same day (same settings) is kept in the file
if (only !== 'all' && existsSync(file)) {
  const prev = JSON.parse(readFileSync(file, 'utf8'));
  if (JSON.stringify(prev.settings) === JSON.stringify(results.settings)) {
    for (const [db, r] of Object.entries(prev.runs ?? {})) if (!(db in results.runs)) results.runs[db] = { ...r, at: r.at ?? prev.date };
  }
}
writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
console.log(`deployment benchmark, ${DEVICES} devices (${results.machine.cpu}, ${results.machine.cores} cores, Node ${results.machine.node})`);
for (const [db, r] of Object.entries(results.runs)) {
  const a = r.agents;
  console.log(
    `  ${db.padEnd(8)} seed ${r.seed.seconds} s · create ${r.create.seconds} s (${r.create.jobs} jobs) · ring 1 handed ${a.ring1AllHandedSeconds} s · all handed ${a.allHandedSeconds} s · all reported ${a.allReportedSeconds} s · ${a.reportsPerSecond} reports/s\n` +
      `           poll p50/p95/p99 ${a.latency.poll.p50ms}/${a.latency.poll.p95ms}/${a.latency.poll.p99ms} ms · report ${a.latency.report.p50ms}/${a.latency.report.p95ms}/${a.latency.report.p99ms} ms · errors ${a.errors} · server ${r.server.cpuSeconds} CPU s, peak ${r.server.peakRssMiB} MiB · final ${r.final.status} ${r.final.finishedJobs}/${r.create.jobs}${r.ok ? '' : ` · FAILED: ${r.problems.join('; ')}`}`,
  );
}
console.log(`written to ${file}`);
if (Object.values(results.runs).some((r) => !r.ok)) process.exit(1);
