#!/usr/bin/env node
// Local patch server sync benchmark (`npm run bench:sync`):
//  a central server (its own process, SQLite) seeded with 50,000 vendor patch objects on real
//  Debian package names, in several namespaces, through publishVendorPatches in bulk; a local
//  server (this process) syncing from it over loopback HTTP through a byte-counting TCP proxy.
//  Measured: the first sync (seconds, bytes), then 1% of the patches (500) get new revisions and
//  the second sync is measured the same way, with its share of the first sync's bytes; peak RSS
//  of both processes.
//  Goals: first sync ≤ 60 s; second sync ≤ 5% of the first sync's bytes and ≤ 5 s.
import os from 'node:os';
import net from 'node:net';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PatchManifest } from '@patchwarden/core';
import { buildApp, loadOrCreateRepoKeys, loadServerConfig, openDatabase, publishVendorPatches, startServer } from '@patchwarden/server';
import { allPackages } from '../packages.mjs';

const root = fileURLToPath(new URL('../..', import.meta.url));
const args = process.argv.slice(2);
const opt = (n, d) => (args.includes(`--${n}`) ? args[args.indexOf(`--${n}`) + 1] : d);
const PATCHES = Number(opt('patches', '50000'));
const CHANGED = Math.round(PATCHES * 0.01);
const NAMESPACES = ['debian', 'debian-security', 'osv-debian', 'tracker'];

function rng(seed) {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}
const rand = rng(20261126);
const pick = (arr) => arr[Math.floor(rand() * arr.length)];
const platform = [{ family: 'linux', distribution: 'debian', release: 'bookworm', arch: ['amd64'] }];
const pool = allPackages().filter((p) => p.arch === 'amd64' || p.arch === 'all');

/** Vendor patch objects on real packages, the shape the apt and OSV importers give. */
function makePatches(n) {
  const out = [];
  const used = new Set();
  while (out.length < n) {
    const p = pick(pool);
    const k = 1 + Math.floor(rand() * 40);
    const fixed = `${p.version}+pw${k}`;
    const ns = NAMESPACES[out.length % NAMESPACES.length];
    const id = `${ns}/${p.name}-${fixed.replace(/:/g, '_')}`.toLowerCase().replace(/[^a-z0-9._+~/-]/g, '-');
    if (used.has(id)) continue;
    used.add(id);
    const cve = `CVE-2024-${String(10000 + Math.floor(rand() * 50000))}`;
    // through the schema, as the upload route does (it fills in the defaults)
    out.push(PatchManifest.parse({
      id, revision: 1, title: `${p.name} ${fixed}`, severity: pick(['critical', 'high', 'medium', 'low']),
      cves: rand() < 0.6 ? [cve] : [], advisories: rand() < 0.3 ? [`DSA-${5000 + Math.floor(rand() * 900)}-1`] : [],
      platforms: platform,
      applicability: { package: { manager: 'dpkg', name: p.name, installed: true } },
      installed: { package: { manager: 'dpkg', name: p.name, version: { ge: fixed } } },
      requires: [], supersedes: [], conflicts: [], restart: { reboot: 'never', kernel: false },
      fixes: [{ manager: 'dpkg', name: p.name, version: fixed }],
    }));
  }
  return out;
}

function machine() {
  return { cpu: os.cpus()[0]?.model, cores: os.cpus().length, memoryGiB: Number((os.totalmem() / 2 ** 30).toFixed(1)), node: process.version };
}

/** Counts the bytes of every connection (both directions), as test/support/processes.ts does. */
async function countingProxy(target) {
  const t = new URL(target);
  const totals = { up: 0, down: 0, connections: 0 };
  const server = net.createServer((client) => {
    totals.connections++;
    const upstream = net.connect(Number(t.port), t.hostname);
    client.on('data', (d) => (totals.up += d.length));
    upstream.on('data', (d) => (totals.down += d.length));
    client.pipe(upstream).pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}`, totals, close: () => new Promise((r) => server.close(() => r())) };
}

function startCentral(dataDir) {
  const child = spawn(process.execPath, [join(root, 'packages/cli/bin/patchwarden.js'), 'server', '--port', '0', '--insecure-http', '--data-dir', dataDir, '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`central did not start:\n${out}`)), 120_000);
    child.stdout.on('data', () => {
      const m = /API docs:\s+(http:\/\/[^/\s]+)\/api\/docs/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: m[1], token: readFileSync(join(dataDir, 'admin-token'), 'utf8').trim() });
      }
    });
    child.on('exit', (code) => reject(new Error(`central exited with ${code}:\n${out}`)));
  });
}

const peakKiB = (pid) => Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);

async function call(central, method, path, body) {
  const res = await fetch(central.url + path, {
    method,
    headers: { authorization: `Bearer ${central.token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status} ${text.slice(0, 500)}`);
  return text ? JSON.parse(text) : null;
}

/**
 * Seeds the central catalog, in a process of its own (`--seed DIR`), so that this process's
 * peak memory is the local server's: one publish per namespace (a vendor's bin count is sized by
 * its first import).
 */
async function seed(centralDir) {
  const patches = makePatches(PATCHES);
  const database = await openDatabase({ url: join(centralDir, 'patchwarden.db') });
  const catalogKeys = await loadOrCreateRepoKeys(centralDir, { allowLocalRoot: true });
  const app = await buildApp({ db: database.db, dialect: database.dialect, logger: false, catalogKeys });
  for (const ns of NAMESPACES) {
    const part = patches.filter((p) => p.id.startsWith(`${ns}/`));
    await publishVendorPatches(app.catalogContext, part, platform, { kind: 'bench' });
  }
  const roles = await database.db.selectFrom('tuf_roles').select(['name', 'length']).execute();
  const bins = roles.filter((r) => /-bin-[0-9a-f]+$/.test(r.name));
  const targets = await database.db.selectFrom('tuf_targets').select((eb) => [eb.fn.countAll().as('n'), eb.fn.sum('length').as('bytes')]).executeTakeFirstOrThrow();
  const catalog = {
    bins: bins.length,
    patchesPerBin: Number((PATCHES / bins.length).toFixed(1)),
    binBytesAvg: Math.round(bins.reduce((s, b) => s + Number(b.length), 0) / bins.length),
    snapshotBytes: Number(roles.find((r) => r.name === 'snapshot').length),
    targets: Number(targets.n),
    targetBytes: Number(targets.bytes),
    metadataBytes: roles.filter((r) => r.name !== 'root').reduce((s, r) => s + Number(r.length), 0),
  };
  await app.close();
  await database.close();
  return catalog;
}

if (args.includes('--seed')) {
  process.stdout.write(JSON.stringify(await seed(opt('seed'))));
  process.exit(0);
}

const results = { benchmark: 'sync', date: new Date().toISOString(), machine: machine(), patches: PATCHES, namespaces: NAMESPACES.length, database: 'sqlite (both servers)', transport: 'loopback HTTP through a counting TCP proxy' };
const dir = mkdtempSync(join(os.tmpdir(), 'pw-bench-sync-'));
const centralDir = join(dir, 'central');
mkdirSync(centralDir, { recursive: true });

// 1. the central catalog, seeded in bulk (in a child process); the same patches are made here
let t0 = performance.now();
const patches = makePatches(PATCHES);
{
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--seed', centralDir, '--patches', String(PATCHES)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  const code = await new Promise((r) => child.once('exit', r));
  if (code !== 0) throw new Error(`seeding failed (exit ${code})`);
  results.catalog = JSON.parse(out);
}
results.seedSeconds = Number(((performance.now() - t0) / 1000).toFixed(1));
process.stderr.write(`seeded ${PATCHES} patches in ${results.seedSeconds} s: ${JSON.stringify(results.catalog)}\n`);

// 2. the central server as its own process, a site for the local one, its root pinned
const central = await startCentral(centralDir);
let local;
let proxy;
try {
  const site = await call(central, 'POST', '/api/v1/sites', { name: 'bench-site', mode: 'replica' });
  const rootRes = await fetch(`${central.url}/api/v1/tuf-root`, { headers: { authorization: `Bearer ${central.token}` } });
  const rootFile = join(dir, 'central-root.json');
  writeFileSync(rootFile, Buffer.from(await rootRes.arrayBuffer()));
  proxy = await countingProxy(central.url);
  const config = loadServerConfig({
    flags: { dataDir: join(dir, 'local'), port: 0, logLevel: 'silent', upstream: proxy.url, upstreamToken: site.token, upstreamRoot: rootFile, upstreamSyncMinutes: 0 },
    env: {},
  });
  local = await startServer(config);

  const measure = async (name) => {
    const before = { ...proxy.totals };
    const s0 = performance.now();
    const r = await local.app.mirror.sync();
    const seconds = (performance.now() - s0) / 1000;
    const wire = { down: proxy.totals.down - before.down, up: proxy.totals.up - before.up, connections: proxy.totals.connections - before.connections };
    const m = {
      seconds: Number(seconds.toFixed(2)),
      // what the files weigh (metadata and patch objects), and what crossed the wire (headers, requests included)
      payloadBytes: r.transfer.bytes,
      metadataBytes: r.metadata.bytes,
      targetBytes: r.targets.bytes,
      wireBytes: wire.down + wire.up,
      requests: r.transfer.requests,
      metadataFiles: r.metadata.files,
      changedRoles: r.metadata.changedRoles,
      targetsFetched: r.targets.fetched,
      patches: { created: r.patches.created, updated: r.patches.updated },
    };
    process.stderr.write(`${name}: ${JSON.stringify(m)}\n`);
    return m;
  };

  // 3. first sync
  results.firstSync = { ...(await measure('first sync')), goalSeconds: 60 };

  // 4. 1% of the patches get new revisions on the central server
  const chosen = new Set();
  while (chosen.size < CHANGED) chosen.add(Math.floor(rand() * patches.length));
  const changed = [...chosen].map((i) => ({ ...patches[i], revision: 2, title: `${patches[i].title} (rebuilt)` }));
  t0 = performance.now();
  for (let i = 0; i < changed.length; i += 5000) await call(central, 'POST', '/api/v1/catalog/patches', { patches: changed.slice(i, i + 5000), coverage: [], source: { kind: 'bench' } });
  results.centralPublishChangesSeconds = Number(((performance.now() - t0) / 1000).toFixed(2));

  // 5. second sync
  const second = await measure('second sync');
  results.secondSync = {
    ...second,
    changedPatches: CHANGED,
    shareOfFirst: {
      payload: Number((second.payloadBytes / results.firstSync.payloadBytes).toFixed(4)),
      wire: Number((second.wireBytes / results.firstSync.wireBytes).toFixed(4)),
    },
    goalShare: 0.05,
    goalSeconds: 5,
  };
  // why the share is what it is: the bins a change touches (a new revision keeps its target
  // name, so it stays in its bin), the snapshot fetched whole
  results.secondSync.explain = {
    binsChanged: second.changedRoles - 2,
    binsChangedShare: Number(((second.changedRoles - 2) / results.catalog.bins).toFixed(3)),
    snapshotShareOfFirst: Number((results.catalog.snapshotBytes / results.firstSync.payloadBytes).toFixed(4)),
  };
  results.thirdSyncNothingChanged = await measure('third sync (nothing changed)');
  results.peakRssMiB = { local: Math.round(process.resourceUsage().maxRSS / 1024), central: Math.round(peakKiB(central.child.pid) / 1024) };
} finally {
  await local?.close();
  await proxy?.close();
  central.child.kill('SIGTERM');
  await new Promise((r) => central.child.once('exit', r));
  rmSync(dir, { recursive: true, force: true });
}

mkdirSync(join(root, 'bench/results'), { recursive: true });
const file = join(root, 'bench/results', `sync-${results.date.slice(0, 10)}.json`);
writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
console.log(JSON.stringify(results, null, 2));
