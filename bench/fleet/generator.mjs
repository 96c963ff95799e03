#!/usr/bin/env node
// The fleet's load generator, a process of its own (started by bench/fleet/run.mjs). It enrolls
// the simulated devices, each with its own Ed25519 key pair, and signs every device request;
// runs the steady fleet (a check-in per device every interval ± jitter) while an administrator
// uses the API; verifies on the server what every device last reported; then, if asked, ramps
// the check-in rate until latency passes the limit. Progress goes to stderr; stdout carries one
// JSON object per line: phase marks ({ phase, at }) and, last, the result ({ result }).
import http from 'node:http';
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { gzipSync } from 'node:zlib';
import {
  canonicalDigest,
  DEVICE_SIGNATURE_HEADERS,
  deviceSigner,
  diffInventories,
  EMPTY_BODY_SHA256,
  inventoryHash,
  PROTOCOL_VERSION,
  sortInventory,
} from '@patchwarden/core';
import { deviceProfile, images } from './fleet-data.mjs';

const cfg = JSON.parse(process.argv[2]);
const {
  url,
  adminToken,
  devices: DEVICES,
  minutes: MINUTES,
  saturation: SATURATION,
  intervalSeconds: INTERVAL_S,
  jitterSeconds: JITTER_S,
  deltaShare: DELTA_SHARE,
  adminPerSecond: ADMIN_PER_S,
  stepSeconds: STEP_S,
  startRate: START_RATE,
  rateFactor: RATE_FACTOR,
  maxRate: MAX_RATE,
  limitMs: LIMIT_MS,
  ledgerFile,
  seed: SEED,
} = cfg;
const TIMEOUT_MS = 30_000;
const target = new URL(url);
const CHECKIN_PATH = '/api/v1/agent/checkin';

// ───────────────────────── small tools ─────────────────────────

/** mulberry32: the schedule and the mix repeat from run to run; nonces do not use it */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = prng(SEED);
const pick = (arr) => arr[Math.floor(rand() * arr.length)];
const log = (msg) => process.stderr.write(`[generator ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
const mark = (phase) => process.stdout.write(`${JSON.stringify({ phase, at: Date.now() })}\n`);
const round = (x, d = 2) => (x === null || x === undefined ? null : Number(x.toFixed(d)));

function stats(values) {
  if (!values.length) return { count: 0, p50ms: null, p90ms: null, p99ms: null, maxMs: null };
  const s = Float64Array.from(values).sort();
  const at = (p) => round(s[Math.min(s.length - 1, Math.floor(s.length * p))]);
  return { count: s.length, p50ms: at(0.5), p90ms: at(0.9), p99ms: at(0.99), maxMs: round(s[s.length - 1]) };
}

// every device connection stays open between check-ins, as the agent's keep-alive agent does
// (the server keeps an idle connection for 72 s, longer than the interval)
const deviceAgent = new http.Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 100_000 });
const adminAgent = new http.Agent({ keepAlive: true, maxSockets: 16 });

/** One HTTP request; resolves with { status, text, ms } or { status: 0, error, ms } (never rejects). */
function request({ method, path, headers = {}, payload = null, agent }) {
  return new Promise((resolve) => {
    const t0 = performance.now();
    let done = false;
    const finish = (r) => {
      if (done) return;
      done = true;
      resolve({ ...r, ms: performance.now() - t0 });
    };
    const req = http.request({ host: target.hostname, port: target.port, path, method, agent, headers: payload ? { ...headers, 'content-length': payload.length } : headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => finish({ status: res.statusCode, text: Buffer.concat(chunks).toString() }));
      res.on('error', (err) => finish({ status: 0, error: String(err) }));
    });
    req.setTimeout(TIMEOUT_MS, () => req.destroy(new Error(`no answer in ${TIMEOUT_MS / 1000} s`)));
    req.on('error', (err) => finish({ status: 0, error: err.message }));
    req.end(payload ?? undefined);
  });
}

const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');

/** A device request signed with the device's key: clock, fresh nonce, signature over the body as sent. */
function deviceRequest(dev, method, path, payload, headers) {
  const date = Date.now();
  const nonce = randomBytes(18).toString('base64url');
  const signature = dev.sign({ method, path, date, nonce, bodySha256: payload ? sha256(payload) : EMPTY_BODY_SHA256 });
  return request({
    method,
    path,
    payload,
    agent: deviceAgent,
    headers: {
      ...headers,
      [DEVICE_SIGNATURE_HEADERS.date]: String(date),
      [DEVICE_SIGNATURE_HEADERS.nonce]: nonce,
      [DEVICE_SIGNATURE_HEADERS.signature]: signature,
    },
  });
}

function adminGet(path) {
  return request({ method: 'GET', path, agent: adminAgent, headers: { authorization: `Bearer ${adminToken}` } });
}

async function adminPost(path, body) {
  const payload = Buffer.from(JSON.stringify(body));
  const r = await request({ method: 'POST', path, payload, agent: adminAgent, headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' } });
  if (r.status < 200 || r.status > 299) throw new Error(`POST ${path}: ${r.status} ${r.text ?? r.error}`);
  return JSON.parse(r.text);
}

/** Runs `task` over `items` with `n` at a time. */
async function pool(items, n, task) {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) await task(items[next++]);
    }),
  );
}

const { images: IMAGES, spare: SPARE } = images();
const imageHashes = IMAGES.map((l) => inventoryHash(l));

// ───────────────────────── devices ─────────────────────────

function makeKeyPair() {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const jwk = privateKey.export({ format: 'jwk' });
  const pub = Buffer.from(publicKey.export({ format: 'jwk' }).x, 'base64url').toString('hex');
  return { privateKey: Buffer.from(jwk.d, 'base64url').toString('hex'), publicKey: pub };
}

/** A device's machine changes: a package upgraded, installed or removed (what a delta check-in reports). */
function changeMachine(dev) {
  const inv = dev.inv.slice();
  const roll = rand();
  dev.changes++;
  if (roll < 0.7 || !SPARE.length) {
    const j = Math.floor(rand() * inv.length);
    const p = inv[j];
    inv[j] = { ...p, version: `${p.version.replace(/\+u\d+$/, '')}+u${dev.changes}` };
  } else if (roll < 0.85) {
    const have = new Set(inv.map((p) => p.name));
    const add = SPARE.find((p, k) => k >= (dev.i * 13 + dev.changes) % SPARE.length && !have.has(p.name));
    if (add) inv.push({ ...add });
  } else if (inv.length > 10) {
    inv.splice(Math.floor(rand() * inv.length), 1);
  }
  sortInventory(inv);
  dev.inv = inv;
  dev.hash = inventoryHash(inv);
}

/** The body of a device's next check-in, as the agent builds it from what the server acknowledged. */
function checkinBody(dev, forceFull = false) {
  const body = { protocol: PROTOCOL_VERSION, systemHash: dev.systemHash };
  if (dev.catalog !== null) body.catalog = dev.catalog;
  if (forceFull || dev.ackedHash === null) {
    if (dev.ackedSystemHash !== dev.systemHash || forceFull) body.system = dev.system;
    body.inventory = { mode: 'full', hash: dev.hash, packages: dev.inv };
  } else {
    if (dev.ackedSystemHash !== dev.systemHash) body.system = dev.system;
    if (dev.hash === dev.ackedHash) body.inventory = { mode: 'same', hash: dev.hash };
    else body.inventory = { mode: 'delta', base: dev.ackedHash, hash: dev.hash, ...diffInventories(dev.ackedInv, dev.inv) };
  }
  body.sequence = ++dev.seq;
  const json = Buffer.from(JSON.stringify(body));
  // the agent compresses a full inventory; the small bodies travel plain
  if (body.inventory.mode === 'full') return { kind: 'full', payload: gzipSync(json, { level: 6 }), headers: { 'content-type': 'application/json', 'content-encoding': 'gzip', authorization: `Bearer ${dev.token}` }, inv: dev.inv, hash: dev.hash };
  return { kind: body.inventory.mode, payload: json, headers: { 'content-type': 'application/json', authorization: `Bearer ${dev.token}` }, inv: dev.inv, hash: dev.hash };
}

/**
 * One check-in of `dev` with the agent's recovery (a 409/422 answer: everything again in full,
 * once). Records into `rec` ({ lat, byKind, errors, firstErrors }). Returns { ok, ms }.
 */
async function checkin(dev, rec) {
  dev.inFlight = true;
  let b = checkinBody(dev);
  const sentAt = Date.now();
  let r = await deviceRequest(dev, 'POST', CHECKIN_PATH, b.payload, b.headers);
  let ms = r.ms;
  if (r.status === 409 || r.status === 422) {
    rec.resentFull = (rec.resentFull ?? 0) + 1;
    b = checkinBody(dev, true);
    r = await deviceRequest(dev, 'POST', CHECKIN_PATH, b.payload, b.headers);
    ms += r.ms;
  }
  const recvAt = Date.now();
  dev.inFlight = false;
  dev.sent++;
  rec.lat.push(ms);
  (rec.byKind[b.kind] ??= []).push(ms);
  if (r.status >= 200 && r.status < 300) {
    const res = JSON.parse(r.text);
    dev.ackedHash = res.inventoryHash;
    dev.ackedInv = b.inv;
    dev.ackedSystemHash = res.systemHash;
    if (typeof res.catalogGeneration === 'number') dev.catalog = res.catalogGeneration;
    dev.acked++;
    dev.lastAck = { seq: dev.seq, sentAt, recvAt, hash: res.inventoryHash };
    return { ok: true, ms };
  }
  dev.errors++;
  dev.lastError = { seq: dev.seq, sentAt, recvAt };
  rec.errors++;
  const what = r.status ? `${r.status} ${r.text.slice(0, 300)}` : r.error;
  rec.errorKinds[what.slice(0, 60)] = (rec.errorKinds[what.slice(0, 60)] ?? 0) + 1;
  if (rec.firstErrors.length < 5) rec.firstErrors.push({ at: new Date().toISOString(), device: dev.system.hostname, kind: b.kind, error: what });
  return { ok: false, ms };
}

const newRec = () => ({ lat: [], byKind: {}, errors: 0, errorKinds: {}, firstErrors: [] });

// ───────────────────────── the administrator ─────────────────────────

/** A few requests a second against the read routes an administrator's console uses. */
function administrator(fleet, patchIds) {
  const byRoute = {};
  const errors = [];
  let inFlight = 0;
  let skipped = 0;
  const dev = () => pick(fleet).id;
  const routes = [
    ['devices list, by last seen', 4, () => '/api/v1/devices?limit=50&sort=lastSeen&order=desc'],
    ['devices list, search', 2, () => `/api/v1/devices?search=fleet-${String(Math.floor(rand() * 20))}&sort=hostname&limit=50`],
    ['devices list, OS filter by needed', 2, () => `/api/v1/devices?os=${encodeURIComponent('Debian GNU/Linux 12')}&sort=needed&order=desc&limit=100`],
    ['devices list, deep page by packages', 1, () => `/api/v1/devices?sort=packages&order=asc&limit=100&offset=${Math.floor(rand() * Math.max(1, fleet.length - 100))}`],
    ['device detail', 3, () => `/api/v1/devices/${dev()}`],
    ['device packages', 2, () => `/api/v1/devices/${dev()}/packages?limit=100`],
    ['device patches', 2, () => `/api/v1/devices/${dev()}/patches`],
    ['device events', 1, () => `/api/v1/devices/${dev()}/events`],
    ['dashboard', 2, () => '/api/v1/dashboard'],
    ['patches, needed', 2, () => '/api/v1/catalog/patches?state=needed&limit=100'],
    ['patches, by severity', 1, () => '/api/v1/catalog/patches?severity=critical,high&limit=100'],
    ['patch devices', 2, () => `/api/v1/catalog/patch/devices?id=${encodeURIComponent(pick(patchIds))}&limit=100`],
    ['report needed by patch', 1, () => '/api/v1/reports/needed?by=patch&limit=100'],
    ['report needed by device', 1, () => '/api/v1/reports/needed?by=device&limit=100'],
    ['report CVEs', 1, () => '/api/v1/reports/cves?limit=100'],
    ['report history', 1, () => '/api/v1/reports/history?days=30'],
    ['groups', 1, () => '/api/v1/groups'],
  ].filter(([name]) => patchIds.length || name !== 'patch devices');
  const weighted = routes.flatMap((r) => Array(r[1]).fill(r));
  const all = [];
  const one = async () => {
    // an administrator's console waits for its answers: at most 4 at once, the rest skipped
    if (inFlight >= 4) return void skipped++;
    const [name, , path] = pick(weighted);
    inFlight++;
    const r = await adminGet(path());
    inFlight--;
    (byRoute[name] ??= { lat: [], errors: 0 }).lat.push(r.ms);
    all.push(r.ms);
    if (r.status !== 200) {
      byRoute[name].errors++;
      if (errors.length < 5) errors.push({ route: name, error: r.status ? `${r.status} ${r.text.slice(0, 200)}` : r.error });
    }
  };
  let timer = null;
  return {
    start() {
      if (ADMIN_PER_S > 0) timer = setInterval(() => void one(), 1000 / ADMIN_PER_S);
    },
    async stop() {
      clearInterval(timer);
      while (inFlight > 0) await new Promise((r) => setTimeout(r, 20));
      const routesOut = {};
      for (const [name, v] of Object.entries(byRoute)) routesOut[name] = { ...stats(v.lat), errors: v.errors };
      return { perSecondTarget: ADMIN_PER_S, requests: all.length, errors: Object.values(byRoute).reduce((a, v) => a + v.errors, 0), skippedBusy: skipped, latency: stats(all), routes: routesOut, ...(errors.length ? { firstErrors: errors } : {}) };
    },
  };
}

/** GET /api/health once a second: how long the server takes to answer its cheapest route. */
function healthProbe() {
  const lat = [];
  let fail = 0;
  const timer = setInterval(async () => {
    const r = await request({ method: 'GET', path: '/api/health', agent: adminAgent });
    if (r.status === 200) lat.push(r.ms);
    else fail++;
  }, 1000);
  return () => {
    clearInterval(timer);
    return { ...stats(lat), failed: fail };
  };
}

// ───────────────────────── enrollment and first check-ins ─────────────────────────

const LOOP_RESOLUTION_MS = 10;
const loop = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
loop.enable();
/** this process's event-loop delay beyond the sampling interval (is the generator keeping up?) */
const loopDelay = () => {
  const beyond = (ns) => round(Math.max(0, ns / 1e6 - LOOP_RESOLUTION_MS));
  return { p50ms: beyond(loop.percentile(50)), p99ms: beyond(loop.percentile(99)), maxMs: beyond(loop.max) };
};
const cpu0 = process.cpuUsage();
const result = { devices: DEVICES, settings: { intervalSeconds: INTERVAL_S, jitterSeconds: JITTER_S, deltaShare: DELTA_SHARE, adminPerSecond: ADMIN_PER_S, requestTimeoutSeconds: TIMEOUT_MS / 1000 } };

mark('enroll');
let t = performance.now();
const { secret } = await adminPost('/api/v1/enrollment-secrets', { name: 'fleet benchmark' });
const fleet = [];
for (let i = 0; i < DEVICES; i++) {
  const { image, system } = deviceProfile(i);
  const inv = IMAGES[image];
  system.collectors = [{ name: 'dpkg', status: 'ok', count: inv.length }];
  const keys = makeKeyPair();
  fleet.push({
    i, id: null, token: null, keys, sign: deviceSigner(keys), system, systemHash: canonicalDigest(system),
    inv, hash: imageHashes[image], ackedHash: null, ackedInv: null, ackedSystemHash: null, catalog: null,
    seq: 0, sent: 0, acked: 0, errors: 0, changes: 0, inFlight: false, lastAck: null, lastError: null,
  });
}
// a few devices differ from their image from the start (hand-installed packages, held versions)
for (const dev of fleet) if (dev.i % 5 === 2) changeMachine(dev);
const enrollLat = [];
await pool(fleet, 8, async (dev) => {
  const payload = Buffer.from(JSON.stringify({ secret, system: dev.system, publicKey: dev.keys.publicKey }));
  const r = await deviceRequest(dev, 'POST', '/api/v1/enroll', payload, { 'content-type': 'application/json' });
  enrollLat.push(r.ms);
  if (r.status !== 200) throw new Error(`enroll of ${dev.system.hostname}: ${r.status} ${r.text ?? r.error}`);
  const res = JSON.parse(r.text);
  dev.id = res.deviceId;
  dev.token = res.token;
  dev.enrollStatus = res.status ?? 'active';
});
result.enroll = { seconds: round((performance.now() - t) / 1000), concurrency: 8, latency: stats(enrollLat), pending: fleet.filter((d) => d.enrollStatus !== 'active').length };
log(`enrolled ${DEVICES} devices in ${result.enroll.seconds} s`);

mark('first');
t = performance.now();
const first = newRec();
await pool(fleet, 16, (dev) => checkin(dev, first));
result.firstCheckin = {
  what: 'each device once, its whole inventory gzip-compressed, 16 at a time',
  seconds: round((performance.now() - t) / 1000),
  acked: fleet.filter((d) => d.acked === 1).length,
  errors: first.errors,
  distinctInventories: new Set(fleet.map((d) => d.hash)).size,
  perSecond: round(DEVICES / ((performance.now() - t) / 1000), 1),
  latency: stats(first.lat),
  ...(first.firstErrors.length ? { firstErrors: first.firstErrors } : {}),
};
log(`first check-ins: ${result.firstCheckin.acked}/${DEVICES} acknowledged in ${result.firstCheckin.seconds} s`);
if (first.errors) log(`first check-in errors: ${JSON.stringify(first.firstErrors)}`);

let patchIds = [];
{
  const r = await adminGet('/api/v1/catalog/patches?limit=200');
  if (r.status === 200) patchIds = JSON.parse(r.text).items.map((p) => p.id);
}

// ───────────────────────── the steady fleet ─────────────────────────

mark('fleet');
log(`steady fleet: ${DEVICES} devices every ${INTERVAL_S} s ± ${JITTER_S} s for ${MINUTES} min; an administrator at ${ADMIN_PER_S}/s`);
const steady = newRec();
const fleetStart = Date.now();
const fleetEnd = fleetStart + MINUTES * 60_000;
let scheduled = 0;
let late = 0;
let changed = 0;
const windows = []; // 30-second windows: sent, acknowledged, latency
const winOf = (at) => Math.floor((at - fleetStart) / 30_000);
const admin = administrator(fleet, patchIds);
const stopProbe = healthProbe();
admin.start();
loop.reset();
const cpuFleet0 = process.cpuUsage();

let progress = null;
let guard = null;
await new Promise((resolveFleet) => {
  let outstanding = 0;
  let timersLeft = 0;
  const maybeDone = () => {
    if (timersLeft === 0 && outstanding === 0) resolveFleet();
  };
  const send = async (dev) => {
    outstanding++;
    if (rand() < DELTA_SHARE) {
      changeMachine(dev);
      changed++;
    }
    const startedAt = Date.now();
    const { ok, ms } = await checkin(dev, steady);
    const w = (windows[winOf(startedAt)] ??= { sent: 0, acked: 0, lat: [] });
    w.sent++;
    if (ok) w.acked++;
    w.lat.push(ms);
    outstanding--;
    if (dev.queued) {
      dev.queued = false;
      void send(dev);
    }
    maybeDone();
  };
  const fire = (dev, due) => {
    timersLeft--;
    scheduled++;
    dev.scheduled++;
    const next = due + (INTERVAL_S + (rand() * 2 - 1) * JITTER_S) * 1000;
    if (next < fleetEnd) {
      timersLeft++;
      setTimeout(() => fire(dev, next), Math.max(0, next - Date.now()));
    }
    // the agent does not start a check-in while its previous one is still waiting for an answer
    if (dev.inFlight) {
      late++;
      dev.queued = true;
    } else void send(dev);
  };
  for (const dev of fleet) {
    dev.scheduled = 0;
    const due = fleetStart + rand() * Math.min(INTERVAL_S * 1000, fleetEnd - fleetStart);
    timersLeft++;
    setTimeout(() => fire(dev, due), due - Date.now());
  }
  progress = setInterval(() => {
    const w = windows[winOf(Date.now()) - 1];
    if (w) log(`fleet ${Math.round((Date.now() - fleetStart) / 1000)} s: ${scheduled} scheduled, ${steady.lat.length} answered, ${steady.errors} errors; last 30 s: p50 ${stats(w.lat).p50ms} ms, p99 ${stats(w.lat).p99ms} ms`);
  }, 60_000);
  // after the last scheduled check-in, the answers still out are waited for (each has its own
  // timeout); whatever is still unanswered then is lost
  guard = setInterval(() => {
    if (Date.now() > fleetEnd + TIMEOUT_MS * 2 + 5000) resolveFleet();
    maybeDone();
  }, 500);
});
clearInterval(progress);
clearInterval(guard);
const fleetCpu = process.cpuUsage(cpuFleet0);
const fleetLoop = loopDelay();
const adminResult = await admin.stop();
const health = stopProbe();
mark('fleet-end');

const sent = steady.lat.length;
const acked = sent - steady.errors;
result.fleet = {
  what: `${DEVICES} devices, a check-in each every ${INTERVAL_S} s ± ${JITTER_S} s (uniform), first ones spread over the first interval; ${Math.round(DELTA_SHARE * 100)} % report a changed inventory (delta), the rest the same hash; every request signed with the device's Ed25519 key`,
  minutes: MINUTES,
  seconds: round((Date.now() - fleetStart) / 1000),
  checkins: {
    scheduled,
    sent,
    acknowledged: acked,
    errors: steady.errors,
    lost: scheduled - acked,
    unanswered: scheduled - sent,
    late,
    resentFull: steady.resentFull ?? 0,
    deltas: changed,
    perSecond: round(acked / (MINUTES * 60), 1),
  },
  latency: stats(steady.lat),
  latencyByKind: Object.fromEntries(Object.entries(steady.byKind).map(([k, v]) => [k, stats(v)])),
  windows30s: windows.map((w, k) => ({ fromSecond: k * 30, sent: w.sent, acked: w.acked, ...stats(w.lat) })),
  admin: adminResult,
  healthProbe: health,
  generator: { cpuSeconds: round((fleetCpu.user + fleetCpu.system) / 1e6, 1), eventLoopDelay: fleetLoop },
  ...(steady.firstErrors.length ? { firstErrors: steady.firstErrors, errorKinds: steady.errorKinds } : {}),
};
log(`fleet done: ${scheduled} scheduled, ${acked} acknowledged, ${steady.errors} errors, ${scheduled - acked} lost; p50 ${result.fleet.latency.p50ms} ms, p99 ${result.fleet.latency.p99ms} ms`);

// ───────────────────────── what the server says ─────────────────────────

mark('verify');
{
  const seen = new Map();
  for (let offset = 0; ; offset += 1000) {
    const r = await adminGet(`/api/v1/devices?limit=1000&offset=${offset}&sort=hostname`);
    if (r.status !== 200) throw new Error(`GET /api/v1/devices: ${r.status} ${r.text ?? r.error}`);
    const page = JSON.parse(r.text);
    for (const d of page.items) seen.set(d.id, d);
    if (offset + 1000 >= page.total) break;
  }
  const problems = [];
  let lastSeenOk = 0;
  let hashOk = 0;
  let lastSeenLater = 0;
  for (const dev of fleet) {
    const d = seen.get(dev.id);
    if (!d) {
      problems.push(`${dev.system.hostname}: not listed`);
      continue;
    }
    if (!dev.lastAck) {
      problems.push(`${dev.system.hostname}: no check-in acknowledged`);
      continue;
    }
    const at = d.lastSeenAt ? Date.parse(d.lastSeenAt) : null;
    // the server's clock is this machine's: the last acknowledged check-in was stamped between
    // its sending and its answer (a later unacknowledged one may have landed after it)
    if (at !== null && at >= dev.lastAck.sentAt - 1 && at <= dev.lastAck.recvAt + 1) lastSeenOk++;
    else if (at !== null && dev.lastError && at >= dev.lastError.sentAt - 1 && at <= dev.lastError.recvAt + 1) lastSeenLater++;
    else if (problems.length < 10) problems.push(`${dev.system.hostname}: last seen ${d.lastSeenAt}, last acknowledged check-in sent ${new Date(dev.lastAck.sentAt).toISOString()} answered ${new Date(dev.lastAck.recvAt).toISOString()}`);
  }
  // each device's detail: the inventory the server holds is the one it last acknowledged
  const detailLat = [];
  await pool(fleet, 8, async (dev) => {
    const r = await adminGet(`/api/v1/devices/${dev.id}`);
    detailLat.push(r.ms);
    if (r.status !== 200) {
      if (problems.length < 10) problems.push(`${dev.system.hostname}: detail ${r.status}`);
      return;
    }
    const d = JSON.parse(r.text);
    if (d.inventoryHash === dev.lastAck?.hash) hashOk++;
    else if (problems.length < 10) problems.push(`${dev.system.hostname}: server holds inventory ${d.inventoryHash}, last acknowledged ${dev.lastAck.hash}`);
  });
  result.verify = {
    what: 'GET /api/v1/devices (every page): each device\'s lastSeenAt lies within its last acknowledged check-in; GET /api/v1/devices/:id: the server holds the inventory it last acknowledged',
    devicesListed: seen.size,
    lastSeenMatches: lastSeenOk,
    lastSeenFromUnacknowledged: lastSeenLater,
    inventoryMatches: hashOk,
    ok: lastSeenOk + lastSeenLater === DEVICES && hashOk === DEVICES && seen.size === DEVICES,
    detailLatency: stats(detailLat),
    ...(problems.length ? { problems } : {}),
  };
  log(`verify: ${lastSeenOk}/${DEVICES} last-seen times and ${hashOk}/${DEVICES} inventories match`);
}

// ───────────────────────── saturation ─────────────────────────

if (SATURATION) {
  mark('saturation');
  const idle = fleet.slice();
  for (let k = idle.length - 1; k > 0; k--) {
    const j = Math.floor(rand() * (k + 1));
    [idle[k], idle[j]] = [idle[j], idle[k]];
  }
  const steps = [];
  const probe = healthProbe();
  let rate = START_RATE;
  let passedAt = null;
  let p50PassedAt = null;
  while (rate <= MAX_RATE) {
    const rec = newRec();
    const total = []; // from the moment the check-in was due to its answer
    let issued = 0;
    let waiting = 0; // check-ins due while every device already had one out
    let outstanding = 0;
    const backlog = [];
    let head = 0;
    const stepStart = performance.now();
    const stepEnd = stepStart + STEP_S * 1000;
    const cpuStep = process.cpuUsage();
    loop.reset();
    const start = (due) => {
      const dev = idle.shift();
      outstanding++;
      if (rand() < DELTA_SHARE) changeMachine(dev);
      void checkin(dev, rec).then(() => {
        total.push(performance.now() - due);
        outstanding--;
        idle.push(dev);
        if (head < backlog.length && performance.now() < stepEnd) start(backlog[head++]);
      });
    };
    // open loop: check-ins fall due at the step's rate whatever the answers do; one due while
    // every device has a check-in out waits for the first device free (its wait counts in its latency)
    await new Promise((done) => {
      const tick = setInterval(() => {
        const now = performance.now();
        const shouldHave = Math.floor(((Math.min(now, stepEnd) - stepStart) / 1000) * rate);
        while (issued < shouldHave) {
          const dueAt = stepStart + (issued / rate) * 1000;
          issued++;
          if (idle.length) start(dueAt);
          else {
            waiting++;
            backlog.push(dueAt);
          }
        }
        if (now >= stepEnd) {
          clearInterval(tick);
          done();
        }
      }, 5);
    });
    const stepSeconds = (performance.now() - stepStart) / 1000;
    const answeredInStep = rec.lat.length;
    // check-ins still waiting for a free device when the step ends are not sent: each has waited
    // since it fell due, which counts as a latency of at least that long
    const notSent = backlog.length - head;
    for (let k = head; k < backlog.length; k++) total.push(performance.now() - backlog[k]);
    while (outstanding > 0) await new Promise((r) => setTimeout(r, 20));
    const c = process.cpuUsage(cpuStep);
    const s = stats(total);
    const service = stats(rec.lat);
    const step = {
      offeredPerSecond: round(rate, 1),
      due: issued,
      sent: rec.lat.length,
      answeredPerSecond: round(answeredInStep / stepSeconds, 1),
      acknowledged: rec.lat.length - rec.errors,
      errors: rec.errors,
      waitedForFreeDevice: waiting,
      notSentAtStepEnd: notSent,
      ...s,
      sentToAnswer: { p50ms: service.p50ms, p99ms: service.p99ms, maxMs: service.maxMs },
      drainSeconds: round((performance.now() - stepStart) / 1000 - stepSeconds, 1),
      generatorCpuPercent: round(((c.user + c.system) / 1e6 / ((performance.now() - stepStart) / 1000)) * 100, 0),
      generatorLoopDelayP99ms: loopDelay().p99ms,
      p99msByKind: Object.fromEntries(Object.entries(rec.byKind).map(([k, v]) => [k, stats(v).p99ms])),
      ...(rec.firstErrors.length ? { firstErrors: rec.firstErrors.slice(0, 3), errorKinds: rec.errorKinds } : {}),
    };
    steps.push(step);
    mark(`step ${round(rate, 1)}`);
    log(`saturation ${step.offeredPerSecond}/s offered: ${step.answeredPerSecond}/s answered, p50 ${s.p50ms} ms, p99 ${s.p99ms} ms, ${rec.errors} errors`);
    if (passedAt === null && (s.p99ms > LIMIT_MS || rec.errors > 0)) passedAt = step;
    if (s.p50ms > LIMIT_MS || rec.errors > 0 || notSent > 0) {
      p50PassedAt = step;
      break;
    }
    rate *= RATE_FACTOR;
  }
  const lastGood = steps.filter((st) => st.p99ms <= LIMIT_MS && st.errors === 0).pop() ?? null;
  result.saturation = {
    what: `open-loop check-ins from the ${DEVICES} enrolled devices (same mix: ${Math.round(DELTA_SHARE * 100)} % deltas), ${STEP_S} s a step, the rate times ${RATE_FACTOR} each step from ${START_RATE}/s; a device has at most one check-in out; latency counts from the moment a check-in fell due (so waiting for a free device counts); stops when p50 passes ${LIMIT_MS} ms, a request fails, or due check-ins are left unsent at a step's end`,
    criterion: `p99 check-in latency (from due to answer) over ${LIMIT_MS} ms, or any error`,
    passedAtOfferedPerSecond: passedAt?.offeredPerSecond ?? null,
    passedAtAnsweredPerSecond: passedAt?.answeredPerSecond ?? null,
    lastStepWithinLimit: lastGood ? { offeredPerSecond: lastGood.offeredPerSecond, answeredPerSecond: lastGood.answeredPerSecond, p50ms: lastGood.p50ms, p99ms: lastGood.p99ms } : null,
    p50PassedAtOfferedPerSecond: p50PassedAt && p50PassedAt.p50ms > LIMIT_MS ? p50PassedAt.offeredPerSecond : null,
    stoppedBecause: p50PassedAt ? (p50PassedAt.errors ? 'errors' : p50PassedAt.p50ms > LIMIT_MS ? `p50 over ${LIMIT_MS} ms` : 'check-ins left unsent at the end of the step (the server fell behind)') : `reached the highest rate asked (${MAX_RATE}/s)`,
    steps,
    healthProbe: probe(),
  };
  mark('saturation-end');
}

// what each device sent in all, for the check against the database's own record (run.mjs)
writeFileSync(ledgerFile, JSON.stringify(fleet.map((d) => ({ id: d.id, sequence: d.seq, ackedSequence: d.lastAck?.seq ?? null, sent: d.sent, acked: d.acked }))));
const cpuAll = process.cpuUsage(cpu0);
result.generatorCpuSeconds = round((cpuAll.user + cpuAll.system) / 1e6, 1);
process.stdout.write(`${JSON.stringify({ result })}\n`);
deviceAgent.destroy();
adminAgent.destroy();
process.exit(0);
