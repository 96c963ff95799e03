#!/usr/bin/env node
// The load generator: a separate process that enrolls simulated devices and drives check-ins
// at a server over loopback HTTP, as agents would. Prints one JSON object on stdout.
import http from 'node:http';
import { gzipSync } from 'node:zlib';
import { canonicalDigest, inventoryHash, sortInventory, PROTOCOL_VERSION } from '@patchwarden/core';
import { loadPackages } from './packages.mjs';

const [url, adminToken, devicesArg, secondsArg] = process.argv.slice(2);
const DEVICES = Number(devicesArg ?? 200);
const SECONDS = Number(secondsArg ?? 10);
const CONCURRENCY = 32;
// PW_PHASES=fullIdentical,hashOnly,fullDistinct picks phases (for profiling one of them)
const PHASES = new Set((process.env.PW_PHASES ?? 'fullIdentical,hashOnly,fullDistinct').split(','));
const target = new URL(url);
const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });

function post(path, token, body, { gzip = false } = {}) {
  let payload = Buffer.from(JSON.stringify(body));
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${token}` };
  if (gzip) {
    payload = gzipSync(payload, { level: 6 });
    headers['content-encoding'] = 'gzip';
  }
  return postRaw(path, headers, payload);
}

function postRaw(path, headers, payload) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: target.hostname, port: target.port, path, method: 'POST', agent, headers: { ...headers, 'content-length': payload.length } },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString() }));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

function system(i) {
  return {
    hostname: `bench-${i}`,
    os: { family: 'linux', distribution: 'debian', prettyName: 'Debian GNU/Linux 12 (bookworm)', version: '12', versionCodename: 'bookworm', machine: 'x86_64', packageArch: 'amd64' },
    kernel: { release: '6.1.0-28-amd64' },
    timezone: 'UTC',
    rebootRequired: false,
    agentVersion: '0.1.0',
    collectors: [{ name: 'dpkg', status: 'ok', count: 1500 }],
  };
}

/** Runs `task` from CONCURRENCY workers until `seconds` pass; returns rate and latencies. */
async function drive(seconds, task) {
  const latencies = [];
  let ok = 0;
  let failed = 0;
  const firstError = [];
  const end = performance.now() + seconds * 1000;
  let n = 0;
  const worker = async () => {
    while (performance.now() < end) {
      const i = n++;
      const t0 = performance.now();
      try {
        const r = await task(i);
        if (r.status === 200) ok++;
        else {
          failed++;
          if (firstError.length === 0) firstError.push(`${r.status} ${r.body.slice(0, 200)}`);
        }
      } catch (err) {
        failed++;
        if (firstError.length === 0) firstError.push(String(err));
      }
      latencies.push(performance.now() - t0);
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const pct = (p) => Number(latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))]?.toFixed(2) ?? 0);
  return { requests: ok + failed, ok, failed, seconds: Number(elapsed.toFixed(2)), perSecond: Math.round(ok / elapsed), p50ms: pct(0.5), p99ms: pct(0.99), ...(firstError[0] ? { firstError: firstError[0] } : {}) };
}

const base = loadPackages(1500);
sortInventory(base);
const baseHash = inventoryHash(base);

// enroll the simulated devices
const secretRes = await fetch(`${url}/api/v1/enrollment-secrets`, {
  method: 'POST',
  headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
  body: JSON.stringify({ name: 'bench' }),
});
const { secret } = await secretRes.json();
const devices = [];
for (let i = 0; i < DEVICES; i++) {
  const sys = system(i);
  const r = await postRaw('/api/v1/enroll', { 'content-type': 'application/json' }, Buffer.from(JSON.stringify({ secret, system: sys })));
  if (r.status !== 200) throw new Error(`enroll: ${r.status} ${r.body}`);
  devices.push({ token: JSON.parse(r.body).token, system: sys, systemHash: canonicalDigest(sys) });
}

const fullBody = (d, packages, hash) => ({ protocol: PROTOCOL_VERSION, systemHash: d.systemHash, system: d.system, inventory: { mode: 'full', hash, packages } });
// the agent compresses a full inventory once per check-in; so does this generator
const result = { devices: DEVICES, packagesPerInventory: base.length, concurrency: CONCURRENCY };

// 1. full inventories identical to a stored set (the first one stores it)
const identical = devices.map((d) => gzipSync(Buffer.from(JSON.stringify(fullBody(d, base, baseHash)))));
if (PHASES.has('fullIdentical')) result.fullIdentical = await drive(SECONDS, (i) =>
  postRaw('/api/v1/agent/checkin', { 'content-type': 'application/json', 'content-encoding': 'gzip', authorization: `Bearer ${devices[i % DEVICES].token}` }, identical[i % DEVICES]),
);
if (result.fullIdentical) result.fullIdentical.bodyBytesGzip = identical[0].length;

// 2. hash-only check-ins (every device is known now)
const sameBodies = devices.map((d) => Buffer.from(JSON.stringify({ protocol: PROTOCOL_VERSION, systemHash: d.systemHash, inventory: { mode: 'same', hash: baseHash } })));
if (PHASES.has('hashOnly')) result.hashOnly = await drive(SECONDS, (i) =>
  postRaw('/api/v1/agent/checkin', { 'content-type': 'application/json', authorization: `Bearer ${devices[i % DEVICES].token}` }, sameBodies[i % DEVICES]),
);
if (result.hashOnly) result.hashOnly.bodyBytes = sameBodies[0].length;

// 3. full inventories that differ from every stored set: five packages at versions no set has
let unique = 0;
if (PHASES.has('fullDistinct')) result.fullDistinct = await drive(SECONDS, async (i) => {
  const u = unique++;
  const pk = base.map((p) => ({ ...p }));
  for (let k = 0; k < 5; k++) {
    const j = (u * 7 + k * 301) % pk.length;
    pk[j].version = `${pk[j].version}+bench${u}.${k}`;
  }
  const hash = inventoryHash(pk);
  return post('/api/v1/agent/checkin', devices[i % DEVICES].token, fullBody(devices[i % DEVICES], pk, hash), { gzip: true });
});
if (result.fullDistinct) result.fullDistinct.newSets = unique;

process.stdout.write(JSON.stringify(result));
agent.destroy();
