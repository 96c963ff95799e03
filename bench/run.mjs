#!/usr/bin/env node
// `npm run bench`: the server in its own process, the load generator in another, on SQLite and
// on PostgreSQL. Writes JSON with the machine noted to bench/results/ and prints it.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

const root = fileURLToPath(new URL('..', import.meta.url));
const cli = join(root, 'packages/cli/bin/patchwarden.js');
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i === -1 ? dflt : args[i + 1];
};
const seconds = Number(opt('seconds', '10'));
const devices = Number(opt('devices', '200'));
const only = opt('only', 'all');

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

async function startServer(dataDir, database) {
  const child = spawn(process.execPath, [cli, 'server', '--port', '0', '--insecure-http', '--data-dir', dataDir, '--log-level', 'silent', ...(database ? ['--database', database] : [])], {
    stdio: ['ignore', 'pipe', 'pipe'],
    // thousands of simulated devices enroll from this one address at once
    env: { ...process.env, PATCHWARDEN_ENROLL_PER_MINUTE: '0' },
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const url = await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`server did not start: ${out}`)), 60_000);
    child.stdout.on('data', () => {
      const m = /API docs:\s+(\S+)\/api\/docs/.exec(out);
      if (m) {
        clearTimeout(t);
        resolve(m[1]);
      }
    });
    child.on('exit', (c) => reject(new Error(`server exited ${c}: ${out}`)));
  });
  return { child, url, token: readFileSync(join(dataDir, 'admin-token'), 'utf8').trim() };
}

function runLoadgen(url, token) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(root, 'bench/loadgen.mjs'), url, token, String(devices), String(seconds)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`load generator exited ${code}`))));
  });
}

async function freshPgDatabase() {
  const base = process.env.PATCHWARDEN_BENCH_PG ?? process.env.PATCHWARDEN_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test';
  const admin = new pg.Client({ connectionString: base.replace(/\/[^/]*$/, '/postgres') });
  await admin.connect();
  await admin.query('drop database if exists patchwarden_bench');
  await admin.query('create database patchwarden_bench');
  await admin.end();
  return base.replace(/\/[^/]*$/, '/patchwarden_bench');
}

const results = { benchmark: 'check-in ingest', date: new Date().toISOString(), machine: machine(), settings: { seconds, devices }, runs: {} };
for (const db of ['sqlite', 'postgres']) {
  if (only !== 'all' && only !== db) continue;
  const dir = mkdtempSync(join(os.tmpdir(), 'pw-bench-'));
  const database = db === 'postgres' ? await freshPgDatabase() : undefined;
  const server = await startServer(dir, database);
  process.stderr.write(`${db}: server pid ${server.child.pid} at ${server.url}; ${devices} devices, ${seconds} s per phase …\n`);
  const before = procStats(server.child.pid);
  const load = await runLoadgen(server.url, server.token);
  const after = procStats(server.child.pid);
  results.runs[db] = { ...load, server: { peakRssMiB: after?.peakRssMiB, cpuSeconds: after && before ? Number((after.cpuSeconds - before.cpuSeconds).toFixed(1)) : null } };
  server.child.kill('SIGTERM');
  await new Promise((r) => server.child.once('exit', r));
  rmSync(dir, { recursive: true, force: true });
}

// the agent's own cost of reading the host's dpkg database (our parser), best of 10
{
  const { parseDpkgStatus } = await import('@patchwarden/agent');
  const text = readFileSync('/var/lib/dpkg/status', 'utf8');
  parseDpkgStatus(text);
  let best = Infinity;
  for (let i = 0; i < 10; i++) {
    const t0 = performance.now();
    parseDpkgStatus(text);
    best = Math.min(best, performance.now() - t0);
  }
  const mb = Buffer.byteLength(text) / 1e6;
  results.dpkgStatusParse = { megabytes: Number(mb.toFixed(2)), packages: parseDpkgStatus(text).packages.length, ms: Number(best.toFixed(2)), megabytesPerSecond: Math.round(mb / (best / 1000)) };
}

if (args.includes('--fresh-start')) {
  process.stderr.write('fresh clone, npm ci && npm start … (about a minute or two)\n');
  const out = await new Promise((resolve, reject) => {
    const child = spawn('bash', [join(root, 'bench/fresh-start.sh')], { stdio: ['ignore', 'pipe', 'inherit'] });
    let o = '';
    child.stdout.on('data', (d) => (o += d));
    child.on('exit', (c) => (c === 0 ? resolve(o) : reject(new Error(`fresh-start exited ${c}`))));
  });
  results.freshStart = JSON.parse(out.trim().split('\n').pop());
}

results.goals = { hashOnlyPerSecondSqlite: 3000, fullIdenticalPerSecond: 300, fullDistinctPerSecond: 50 };
mkdirSync(join(root, 'bench/results'), { recursive: true });
const file = join(root, 'bench/results', `checkin-${results.date.slice(0, 10)}.json`);
writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
console.log(JSON.stringify(results, null, 2));
process.stderr.write(`written to ${file}\n`);
