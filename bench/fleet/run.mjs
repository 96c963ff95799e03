#!/usr/bin/env node
// Fleet load benchmark (`npm run bench:fleet`): simulated devices checking in every 60 s ± 15 s
// on loopback for ten minutes while an administrator uses the API, then a saturation run that
// raises the check-in rate until latency passes 1 s.
//  - the server runs in its own process (`patchwarden server --insecure-http`), on SQLite, or on
//    PostgreSQL with --db postgres (a private schema in PATCHWARDEN_TEST_PG, dropped after);
//    a catalog of patches over the devices' real packages is stored before it starts;
//  - bench/fleet/generator.mjs, another process, enrolls the devices (each with its own Ed25519
//    key, every request signed), makes their first full check-ins, runs the fleet and the
//    administrator, checks the server's record of every device, then ramps the rate;
//  - this process samples the server's CPU and memory every 2 s, counts the check-ins the server
//    itself logged as answered (its request log, at the default level `info`), and compares each
//    device's last sequence number in the database with what the generator sent.
// Writes bench/results/fleet-YYYY-MM-DD.json (one entry per database under `runs`, with the
// machine noted) and prints it. Exits non-zero when a check-in was lost or errored in the fleet
// run or the server's record does not match.
// Options: --devices N (2000), --minutes M (10), --saturation true|false (true), --db sqlite|postgres,
// --interval S (60), --jitter S (15), --delta-share F (0.05), --admin-per-second N (3),
// --step-seconds S (20), --start-rate N (50), --rate-factor F (1.3), --max-rate N (6000),
// --limit-ms N (1000), --patches N (400), --server-log info|silent (info), --note TEXT,
// --out FILE (another results file: an experiment that should not replace the day's run).
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { PatchManifest } from '@patchwarden/core';
import { openDatabase, upsertPatches } from '@patchwarden/server';
import { catalogPatches } from './fleet-data.mjs';

const root = fileURLToPath(new URL('../..', import.meta.url));
const cli = join(root, 'packages/cli/bin/patchwarden.js');
const args = process.argv.slice(2);
const opt = (n, d) => (args.includes(`--${n}`) ? args[args.indexOf(`--${n}`) + 1] : d);
const num = (n, d) => {
  const v = Number(opt(n, String(d)));
  if (!Number.isFinite(v) || v < 0) throw new Error(`--${n} takes a number, not '${opt(n, d)}'`);
  return v;
};
const DB = opt('db', 'sqlite');
if (!['sqlite', 'postgres'].includes(DB)) throw new Error(`--db sqlite|postgres, not '${DB}'`);
const SATURATION = opt('saturation', 'true') !== 'false';
const SERVER_LOG = opt('server-log', 'info');
const settings = {
  devices: num('devices', 2000),
  minutes: num('minutes', 10),
  saturation: SATURATION,
  intervalSeconds: num('interval', 60),
  jitterSeconds: num('jitter', 15),
  deltaShare: num('delta-share', 0.05),
  adminPerSecond: num('admin-per-second', 3),
  stepSeconds: num('step-seconds', 20),
  startRate: num('start-rate', 50),
  rateFactor: num('rate-factor', 1.3),
  maxRate: num('max-rate', 6000),
  limitMs: num('limit-ms', 1000),
  seed: num('seed', 20261126),
};
const PATCHES = num('patches', 400);
if (!(settings.devices >= 1) || !(settings.minutes > 0) || !(settings.rateFactor > 1)) throw new Error('--devices ≥ 1, --minutes > 0 and --rate-factor > 1');

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

const round = (x, d = 1) => (x === null || x === undefined || Number.isNaN(x) ? null : Number(x.toFixed(d)));
const log = (msg) => process.stderr.write(`[fleet ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
function stats(values) {
  if (!values.length) return { count: 0, p50ms: null, p90ms: null, p99ms: null, maxMs: null };
  const s = Float64Array.from(values).sort();
  const at = (p) => round(s[Math.min(s.length - 1, Math.floor(s.length * p))], 2);
  return { count: s.length, p50ms: at(0.5), p90ms: at(0.9), p99ms: at(0.99), maxMs: round(s[s.length - 1], 2) };
}

// ───────────────────────── sampling ─────────────────────────

const TICK = 100; // clock ticks per second in /proc (USER_HZ)
function procSample(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k) => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0);
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return { cpu: (Number(stat[11]) + Number(stat[12])) / TICK, rssMiB: kb('VmRSS') / 1024, peakRssMiB: kb('VmHWM') / 1024 };
  } catch {
    return null;
  }
}
function systemSample() {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = line[3] + (line[4] ?? 0);
  const total = line.reduce((a, b) => a + b, 0);
  return { busy: (total - idle) / TICK, total: total / TICK };
}

/** Samples the server, the generator and the whole machine every 2 s. */
function sampler(pids) {
  const samples = [];
  let prev = null;
  const take = () => {
    const now = Date.now();
    const cur = { at: now, sys: systemSample(), self: procSample(process.pid) };
    for (const [k, pid] of Object.entries(pids)) cur[k] = pid ? procSample(pid) : null;
    if (prev) {
      const dt = (now - prev.at) / 1000;
      const pct = (k) => (cur[k] && prev[k] ? round(((cur[k].cpu - prev[k].cpu) / dt) * 100) : null);
      const sysBusy = ((cur.sys.busy - prev.sys.busy) / (cur.sys.total - prev.sys.total)) * os.cpus().length * 100;
      const s = { at: now, serverCpuPercent: pct('server'), serverRssMiB: round(cur.server?.rssMiB ?? null), generatorCpuPercent: pct('generator'), machineBusyPercent: round(sysBusy) };
      // what the rest of the machine used meanwhile (other work on the shared cores)
      s.otherCpuPercent = round(sysBusy - (s.serverCpuPercent ?? 0) - (s.generatorCpuPercent ?? 0) - (pct('self') ?? 0));
      samples.push(s);
    }
    prev = cur;
  };
  take();
  const timer = setInterval(take, 2000);
  return {
    samples,
    setPid(k, pid) {
      pids[k] = pid;
    },
    stop() {
      clearInterval(timer);
      take();
    },
  };
}

function summarize(samples, from, to) {
  const s = samples.filter((x) => x.at > from && x.at <= to + 2000);
  if (!s.length) return null;
  const avg = (k) => round(s.reduce((a, x) => a + (x[k] ?? 0), 0) / s.length);
  const max = (k) => round(Math.max(...s.map((x) => x[k] ?? 0)));
  return {
    samples: s.length,
    serverCpuPercent: { avg: avg('serverCpuPercent'), max: max('serverCpuPercent') },
    serverRssMiB: { end: s[s.length - 1].serverRssMiB, max: max('serverRssMiB') },
    generatorCpuPercent: { avg: avg('generatorCpuPercent'), max: max('generatorCpuPercent') },
    otherWorkCpuPercent: { avg: avg('otherCpuPercent'), max: max('otherCpuPercent') },
    machineBusyPercent: { avg: avg('machineBusyPercent'), of: os.cpus().length * 100 },
  };
}

// ───────────────────────── database ─────────────────────────

async function postgresSchema() {
  const base = process.env.PATCHWARDEN_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test';
  const schema = `pw_fleet_${process.pid}_${Date.now().toString(36)}`;
  const client = new pg.Client({ connectionString: base });
  try {
    await client.connect();
  } catch (err) {
    throw new Error(`PostgreSQL at ${base} is unreachable (${err.message})`);
  }
  await client.query(`create schema "${schema}"`);
  await client.end();
  const u = new URL(base);
  u.searchParams.set('options', `-c search_path=${schema}`);
  return {
    url: u.toString(),
    schema,
    drop: async () => {
      const c = new pg.Client({ connectionString: base });
      await c.connect();
      await c.query(`drop schema if exists "${schema}" cascade`);
      await c.end();
    },
  };
}

/** Each device's last sequence number as the database holds it (null when the server does not keep one). */
async function storedSequences(url) {
  if (DB === 'postgres') {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      const col = await c.query(`select 1 from information_schema.columns where table_schema = current_schema() and table_name = 'devices' and column_name = 'last_sequence'`);
      if (!col.rowCount) return null;
      const r = await c.query('select id, last_sequence from devices');
      return new Map(r.rows.map((x) => [x.id, x.last_sequence === null ? null : Number(x.last_sequence)]));
    } finally {
      await c.end();
    }
  }
  const { default: Sqlite } = await import('better-sqlite3');
  const db = new Sqlite(url, { readonly: true, fileMustExist: true });
  try {
    if (!db.prepare('select name from pragma_table_info(?)').all('devices').some((c) => c.name === 'last_sequence')) return null;
    return new Map(db.prepare('select id, last_sequence from devices').all().map((x) => [x.id, x.last_sequence]));
  } finally {
    db.close();
  }
}

// ───────────────────────── the server ─────────────────────────

/** The server's request log, read as it is written: check-ins it answered, and what it logged as errors. */
function serverLog() {
  const reqs = new Map();
  const checkins = []; // [time, status, responseTime]
  const errors = [];
  let errorCount = 0;
  let warnCount = 0;
  return {
    line(text) {
      if (text[0] !== '{') return;
      let e;
      try {
        e = JSON.parse(text);
      } catch {
        return;
      }
      if (e.level >= 50) {
        errorCount++;
        if (errors.length < 10) errors.push(text.slice(0, 1500));
      } else if (e.level === 40) warnCount++;
      if (e.msg === 'incoming request') reqs.set(e.reqId, e.req?.url ?? '');
      else if (e.msg === 'request completed') {
        const u = reqs.get(e.reqId);
        reqs.delete(e.reqId);
        if (u === '/api/v1/agent/checkin') checkins.push([e.time, e.res?.statusCode ?? 0, e.responseTime ?? 0]);
      }
    },
    summary(from, to) {
      const c = checkins.filter(([at]) => at >= from && at <= to);
      return {
        checkinsAnswered2xx: c.filter(([, s]) => s >= 200 && s < 300).length,
        checkinsAnsweredOther: c.filter(([, s]) => s < 200 || s >= 300).length,
        checkinResponseTime: stats(c.map(([, , ms]) => ms)),
      };
    },
    totals: () => ({ errorLines: errorCount, warnLines: warnCount, requestsOpenAtEnd: reqs.size, ...(errors.length ? { firstErrors: errors } : {}) }),
  };
}

async function startServer(dataDir, database, logSink) {
  const child = spawn(process.execPath, [cli, 'server', '--port', '0', '--insecure-http', '--data-dir', dataDir, '--log-level', SERVER_LOG, ...(database ? ['--database', database] : [])], {
    stdio: ['ignore', 'pipe', 'pipe'],
    // thousands of simulated devices enroll from one address; the administrator and the health
    // probe share one credential each: the limits stay on, far above what the benchmark sends
    env: { ...process.env, PATCHWARDEN_ENROLL_PER_MINUTE: '0', PATCHWARDEN_API_PER_MINUTE: '1000000' },
  });
  let out = '';
  let started = false;
  const stderr = [];
  createInterface({ input: child.stdout }).on('line', (l) => {
    if (!started) out += `${l}\n`;
    logSink.line(l);
  });
  createInterface({ input: child.stderr }).on('line', (l) => {
    if (!started) out += `${l}\n`;
    if (stderr.length < 50) stderr.push(l.slice(0, 1000));
    logSink.line(l);
  });
  const url = await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`server did not start: ${out}`)), 120_000);
    const check = setInterval(() => {
      const m = /API docs:\s+(\S+)\/api\/docs/.exec(out);
      if (m) {
        clearTimeout(t);
        clearInterval(check);
        started = true;
        resolve(m[1]);
      }
    }, 50);
    child.once('exit', (c) => {
      clearInterval(check);
      reject(new Error(`server exited ${c}: ${out}`));
    });
  });
  const exited = new Promise((r) => child.on('exit', (code, signal) => r({ code, signal })));
  return { child, url, token: readFileSync(join(dataDir, 'admin-token'), 'utf8').trim(), exited, stderr };
}

function runGenerator(config, onMark, onStart) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(root, 'bench/fleet/generator.mjs'), JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'inherit'] });
    onStart(child.pid);
    let result = null;
    createInterface({ input: child.stdout }).on('line', (l) => {
      const m = JSON.parse(l);
      if (m.phase) onMark(m);
      if (m.result) result = m.result;
    });
    child.on('exit', (code) => (code === 0 && result ? resolve(result) : reject(new Error(`the generator exited ${code}`))));
  });
}

// ───────────────────────── the run ─────────────────────────

const dir = mkdtempSync(join(os.tmpdir(), 'pw-bench-fleet-'));
const pgDb = DB === 'postgres' ? await postgresSchema() : null;
const dbUrl = pgDb ? pgDb.url : join(dir, 'patchwarden.db');
let server = null;
let ok = false;
const run = { database: DB, ...(pgDb ? { postgresSchema: 'private, dropped after' } : {}), settings: { ...settings, catalogPatches: PATCHES, serverLogLevel: SERVER_LOG } };
try {
  // the catalog the fleet is assessed against, stored before the server starts
  {
    const t0 = performance.now();
    const database = await openDatabase({ url: dbUrl });
    const { patches, coverage } = catalogPatches(PATCHES);
    await upsertPatches(database.db, patches.map((p) => PatchManifest.parse(p)), coverage, { kind: 'bench' }, Date.now());
    await database.close();
    log(`${DB}: ${patches.length} catalog patches stored in ${round((performance.now() - t0) / 1000)} s`);
  }
  const logSink = serverLog();
  server = await startServer(dir, pgDb?.url, logSink);
  const sampling = sampler({ server: server.child.pid, generator: null });
  log(`${DB}: server pid ${server.child.pid} at ${server.url}; ${settings.devices} devices, ${settings.minutes} min${SATURATION ? ', then saturation' : ''}`);
  const marks = [];
  const ledgerFile = join(dir, 'ledger.json');
  const serverBefore = procSample(server.child.pid);
  const gen = await runGenerator({ ...settings, url: server.url, adminToken: server.token, ledgerFile }, (m) => marks.push(m), (pid) => sampling.setPid('generator', pid));
  sampling.stop();
  const serverAfter = procSample(server.child.pid);
  const at = (p) => marks.find((m) => m.phase === p)?.at;

  // the database's own record of each device's last check-in
  const stored = await storedSequences(dbUrl);
  const ledger = JSON.parse(readFileSync(ledgerFile, 'utf8'));
  let sequences = null;
  if (stored) {
    const stale = [];
    let match = 0;
    let nulls = 0;
    for (const d of ledger) {
      const s = stored.get(d.id);
      if (s === null || s === undefined) nulls++;
      // the fleet run's last check-in of the device (a later unacknowledged one may have landed too)
      else if (s === d.ackedSequence || (s > d.ackedSequence && s <= d.sequence)) match++;
      else if (stale.length < 10) stale.push({ device: d.id, stored: s, lastAcknowledged: d.ackedSequence, lastSent: d.sequence });
    }
    sequences = { what: "devices.last_sequence against the sequence of each device's last acknowledged check-in", devices: ledger.length, match, notStored: nulls, ...(stale.length ? { mismatches: stale } : {}) };
  }

  const phases = {};
  const bounds = [
    ['enroll', at('enroll'), at('first')],
    ['firstCheckin', at('first'), at('fleet')],
    ['fleet', at('fleet'), at('fleet-end')],
    ...(SATURATION ? [['saturation', at('saturation'), at('saturation-end')]] : []),
  ];
  for (const [name, from, to] of bounds) if (from && to) phases[name] = { seconds: round((to - from) / 1000), ...summarize(sampling.samples, from, to) };
  if (gen.saturation) {
    // the server's CPU during each step (the mark is written when the step's answers are in)
    let from = at('saturation');
    for (const step of gen.saturation.steps) {
      const to = marks.find((m) => m.phase === `step ${step.offeredPerSecond}`)?.at;
      if (!to) continue;
      const s = summarize(sampling.samples, from, to);
      step.serverCpuPercent = s?.serverCpuPercent.avg ?? null;
      step.serverRssMiB = s?.serverRssMiB.max ?? null;
      step.otherWorkCpuPercent = s?.otherWorkCpuPercent.avg ?? null;
      from = to;
    }
  }
  const fleetServer = logSink.summary(at('fleet'), at('fleet-end'));
  run.enroll = gen.enroll;
  run.firstCheckin = gen.firstCheckin;
  run.fleet = { ...gen.fleet, serverLog: { what: 'check-ins the server itself logged as answered during the fleet run', ...fleetServer } };
  run.verify = { ...gen.verify, ...(sequences ? { sequences } : { sequences: 'the server does not store a sequence number yet' }) };
  if (gen.saturation) run.saturation = gen.saturation;
  run.server = {
    phases,
    cpuSecondsTotal: serverAfter && serverBefore ? round(serverAfter.cpu - serverBefore.cpu) : null,
    peakRssMiB: serverAfter ? round(serverAfter.peakRssMiB) : null,
    log: logSink.totals(),
    ...(DB === 'postgres' ? { note: "PostgreSQL's own processes are not the server's: their CPU is counted in otherWorkCpuPercent" } : {}),
  };
  run.generatorCpuSeconds = gen.generatorCpuSeconds;
  run.samples = sampling.samples.map((s) => ({ ...s, t: round((s.at - at('enroll')) / 1000, 0), at: undefined }));

  const c = run.fleet.checkins;
  // no errors anywhere (enrollment stops the generator by itself), no lost check-in, and the
  // server's record of every device as the generator left it
  ok = run.firstCheckin.errors === 0 && c.lost === 0 && c.errors === 0 && run.fleet.admin.errors === 0 && run.verify.ok && (!sequences || sequences.match === sequences.devices);
  run.passed = ok;
} finally {
  if (server) {
    server.child.kill('SIGTERM');
    const exit = await server.exited;
    run.serverExit = exit;
    if (server.stderr.length) run.serverStderr = server.stderr;
  }
  if (pgDb) await pgDb.drop().catch((err) => log(`dropping schema ${pgDb.schema}: ${err.message}`));
  rmSync(dir, { recursive: true, force: true });
}

const date = new Date().toISOString();
const file = opt('out', join(root, 'bench/results', `fleet-${date.slice(0, 10)}.json`));
const previous = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : null;
const results = {
  benchmark: 'fleet load: steady check-ins with an administrator, then saturation',
  date,
  machine: { ...machine(), note: opt('note', `${os.cpus().length} cores shared with other work during the run (see otherWorkCpuPercent); the server, the generator and this process share them too`) },
  runs: { ...(previous?.runs ?? {}), [DB]: run },
};
mkdirSync(join(root, 'bench/results'), { recursive: true });
writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
console.log(JSON.stringify({ ...results, runs: Object.fromEntries(Object.entries(results.runs).map(([k, v]) => [k, { ...v, samples: `${v.samples?.length ?? 0} samples in the file` }])) }, null, 2));
log(`written to ${file}`);
process.exitCode = ok ? 0 : 1;
