#!/usr/bin/env node
// Bundle speed: build, sign and verify a bundle with a 100 MB payload, in MB/s, in process
// (core's buildBundle / signBundle / verifyBundle) and through the CLI (`patch build`, `patch
// sign`, `patch verify`, files on disk), side by side with the reference tools on the same
// bytes: GNU tar (building an archive) and sha256sum (the hash every step must compute).
// Run `node scripts/build.mjs --quiet` first (this imports the built dist/).
//
//   node bench/bundle/run.mjs [--mb 100] [--rounds 3]
import { spawnSync } from 'node:child_process';
import { randomBytes, createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildBundle, readBundle, signBundle, verifyBundle } from '@patchwarden/core';
import { generateKey } from '@patchwarden/server';

const args = process.argv.slice(2);
const opt = (name, dflt) => (args.includes(`--${name}`) ? Number(args[args.indexOf(`--${name}`) + 1]) : dflt);
const MB = opt('mb', 100);
const ROUNDS = opt('rounds', 3);
const root = fileURLToPath(new URL('../..', import.meta.url));
const CLI = join(root, 'packages/cli/bin/patchwarden.js');

const best = (f) => {
  let b = Infinity;
  let out;
  for (let i = 0; i < ROUNDS; i++) {
    const t0 = performance.now();
    out = f();
    b = Math.min(b, performance.now() - t0);
  }
  return { ms: b, out };
};
const rate = (ms) => Number((MB / (ms / 1000)).toFixed(1));
const run = (cmd, argv) => {
  const t0 = performance.now();
  const r = spawnSync(cmd, argv, { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')}: ${r.stderr}`);
  return performance.now() - t0;
};
const bestRun = (cmd, argv) => Math.min(...Array.from({ length: ROUNDS }, () => run(cmd, argv)));

const dir = mkdtempSync(join(os.tmpdir(), 'pw-bench-bundle-'));
try {
  // incompressible, like the .deb, .msi or .pkg files a bundle carries
  const payload = randomBytes(MB * 1024 * 1024);
  const sha = createHash('sha256').update(payload).digest('hex');
  const manifest = {
    id: 'custom/bench-100mb',
    revision: 1,
    title: 'bench payload',
    severity: 'low',
    platforms: [{ family: 'linux' }],
    applicability: { os: { family: 'linux' } },
    installed: { file: { path: '/opt/bench/installed', exists: true } },
    payload: [{ path: 'payload.bin', size: payload.length, sha256: sha }],
    install: [{ type: 'file', op: 'place', path: '/opt/bench/payload.bin', source: 'payload.bin', sha256: sha }],
  };
  const key = generateKey('bench', 'author');
  const files = new Map([['payload.bin', payload]]);

  const build = best(() => buildBundle(manifest, files));
  const sign = best(() => signBundle(build.out, key));
  const trusted = new Map([[key.keyid, key.public]]);
  const verify = best(() => verifyBundle(sign.out, { trusted }));
  const read = best(() => readBundle(sign.out));

  // the same work through the CLI, files on disk
  const work = join(dir, 'work');
  mkdirSync(join(work, 'payload'), { recursive: true });
  writeFileSync(join(work, 'payload', 'payload.bin'), payload);
  const { payload: _p, ...withoutPayload } = manifest;
  void _p;
  writeFileSync(join(work, 'manifest.json'), JSON.stringify(withoutPayload));
  writeFileSync(join(dir, 'bench.key'), JSON.stringify(key));
  writeFileSync(join(dir, 'bench.pub'), JSON.stringify({ type: 'patchwarden-public-key', name: key.name, role: key.role, keyid: key.keyid, public: key.public }));
  const bundleFile = join(dir, 'b.bundle');
  const cliBuild = bestRun(process.execPath, [CLI, 'patch', 'build', work, '--out', bundleFile]);
  const cliSign = bestRun(process.execPath, [CLI, 'patch', 'sign', bundleFile, '--key', join(dir, 'bench.key')]);
  const cliVerify = bestRun(process.execPath, [CLI, 'patch', 'verify', bundleFile, '--key', join(dir, 'bench.pub')]);

  // reference tools on the same payload
  const tarMs = bestRun('tar', ['-cf', join(dir, 'ref.tar'), '-C', join(work, 'payload'), 'payload.bin']);
  const shaMs = bestRun('sha256sum', [join(work, 'payload', 'payload.bin')]);

  const results = {
    benchmark: 'bundle',
    date: new Date().toISOString(),
    machine: { cpu: os.cpus()[0]?.model, cores: os.cpus().length, memoryGiB: Number((os.totalmem() / 2 ** 30).toFixed(1)), node: process.version },
    payloadMB: MB,
    rounds: ROUNDS,
    inProcess: {
      buildMBps: rate(build.ms),
      signMBps: rate(sign.ms),
      verifyMBps: rate(verify.ms),
      readMBps: rate(read.ms),
      bundleBytes: sign.out.length,
    },
    cli: { buildMBps: rate(cliBuild), signMBps: rate(cliSign), verifyMBps: rate(cliVerify), note: 'whole command: Node start-up, reading and writing the files' },
    reference: { gnuTarCreateMBps: rate(tarMs), sha256sumMBps: rate(shaMs) },
  };
  mkdirSync(join(root, 'bench/results'), { recursive: true });
  writeFileSync(join(root, `bench/results/bundle-${results.date.slice(0, 10)}.json`), JSON.stringify(results, null, 2) + '\n');
  console.log(JSON.stringify(results, null, 2));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
