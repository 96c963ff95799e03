#!/usr/bin/env node
// Version comparison speed: our compareDebVersions in this process against libdpkg's
// dpkg_version_compare() in C, on the same ~1,000,000 pairs of real Debian versions, plus our
// rpm comparison. Run `node scripts/build.mjs --quiet` first (this imports the built dist/).
// Needs Debian's libdpkg-dev, pkg-config and a C compiler for the libdpkg side.
//
//   node bench/vercmp/run.mjs [--pairs 1000000] [--rounds 5]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compareDebVersions, compareRpmVersions, parseDebVersion, rpmInvalidReason } from '@patchwarden/core';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i === -1 ? dflt : Number(args[i + 1]);
};
const PAIRS = opt('pairs', 1_000_000);
const ROUNDS = opt('rounds', 5);
const here = fileURLToPath(new URL('.', import.meta.url));

function fail(message) {
  console.error(`bench/vercmp: ${message}`);
  process.exit(1);
}

/** The real Version: strings of the apt lists, by package (dpkg's database when there are none). */
function realVersions() {
  const byPackage = new Map();
  const add = (p, v) => (byPackage.get(p) ?? byPackage.set(p, new Set()).get(p)).add(v);
  const dump = spawnSync('apt-cache', ['dumpavail'], { encoding: 'utf8', maxBuffer: 1 << 30 });
  let pkg = '';
  for (const line of dump.status === 0 ? dump.stdout.split('\n') : []) {
    if (line.startsWith('Package: ')) pkg = line.slice(9).trim();
    else if (line.startsWith('Version: ')) add(pkg, line.slice(9).trim());
  }
  if (byPackage.size === 0) {
    const q = spawnSync('dpkg-query', ['-W', '-f=${Package}\t${Version}\n'], { encoding: 'utf8', maxBuffer: 1 << 28 });
    if (q.status !== 0) fail('neither apt-cache dumpavail nor dpkg-query gave any version');
    for (const line of q.stdout.split('\n')) {
      const [p, v] = line.split('\t');
      if (p && v) add(p, v);
    }
  }
  return byPackage;
}

/** A fixed mix, seeded: versions of one package (what upgrade checks compare), neighbours, any two. */
function makePairs(byPackage, n) {
  let s = 20261127;
  const rand = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const all = [...new Set([...byPackage.values()].flatMap((vs) => [...vs]))].filter((v) => parseDebVersion(v).ok).sort();
  const related = [];
  for (const vs of byPackage.values()) {
    const list = [...vs].filter((v) => parseDebVersion(v).ok);
    for (let i = 0; i + 1 < list.length; i++) related.push([list[i], list[i + 1]]);
  }
  const a = new Array(n);
  const b = new Array(n);
  for (let i = 0; i < n; i++) {
    const r = rand();
    let p;
    if (r < 0.4 && related.length > 0) p = related[Math.floor(rand() * related.length)];
    else if (r < 0.8) {
      const k = Math.floor(rand() * (all.length - 1));
      p = [all[k], all[k + 1]];
    } else p = [all[Math.floor(rand() * all.length)], all[Math.floor(rand() * all.length)]];
    [a[i], b[i]] = rand() < 0.5 ? p : [p[1], p[0]];
  }
  return { a, b, distinct: all.length };
}

/** Best of several timed rounds after a warm-up; also counts the answers. */
function timeOurs(compare, a, b) {
  const counts = { less: 0, equal: 0, greater: 0 };
  for (let i = 0; i < a.length; i++) compare(a[i], b[i]); // warm-up: let the JIT settle
  let best = Infinity;
  for (let round = 0; round < ROUNDS; round++) {
    let less = 0;
    let equal = 0;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < a.length; i++) {
      const r = compare(a[i], b[i]);
      if (r < 0) less++;
      else if (r === 0) equal++;
    }
    const dt = Number(process.hrtime.bigint() - t0) / 1e9;
    best = Math.min(best, dt);
    Object.assign(counts, { less, equal, greater: a.length - less - equal });
  }
  return { perSecond: Math.round(a.length / best), counts };
}

function libdpkg(a, b) {
  const ok = (cmd, argv) => spawnSync(cmd, argv, { stdio: 'ignore' }).status === 0;
  if (!ok('cc', ['--version']) || !ok('pkg-config', ['--exists', 'libdpkg'])) {
    fail('the libdpkg side needs a C compiler and libdpkg: apt-get install gcc pkg-config libdpkg-dev');
  }
  const dir = mkdtempSync(join(os.tmpdir(), 'pw-vercmp-bench-'));
  try {
    const flags = spawnSync('pkg-config', ['--cflags', '--libs', 'libdpkg'], { encoding: 'utf8' }).stdout.trim().split(/\s+/);
    const exe = join(dir, 'libdpkg-bench');
    const cc = spawnSync('cc', ['-O2', '-o', exe, join(here, 'libdpkg-bench.c'), ...flags], { encoding: 'utf8' });
    if (cc.status !== 0) fail(`compiling libdpkg-bench.c failed:\n${cc.stderr}`);
    const file = join(dir, 'pairs.tsv');
    writeFileSync(file, a.map((x, i) => `${x}\t${b[i]}\n`).join(''));
    const run = spawnSync(exe, [file, String(ROUNDS)], { encoding: 'utf8', maxBuffer: 1 << 20 });
    if (run.status !== 0) fail(`libdpkg-bench failed: ${run.stderr}`);
    return JSON.parse(run.stdout);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The same real versions made into rpm EVRs ('-' and ':' only where rpm allows them). */
function rpmPairs(a, b) {
  const toEvr = (v) => {
    const m = /^(?:(\d+):)?(.*?)(?:-([^-]*))?$/.exec(v);
    const clean = (x) => x.replace(/[:-]/g, '.').replace(/\.{2,}/g, '.');
    const evr = `${m[1] ? `${m[1]}:` : ''}${clean(m[2])}${m[3] ? `-${clean(m[3])}` : ''}`;
    return rpmInvalidReason(evr) === null ? evr : '0';
  };
  const memo = new Map();
  const conv = (v) => memo.get(v) ?? memo.set(v, toEvr(v)).get(v);
  return { a: a.map(conv), b: b.map(conv) };
}

const cpus = os.cpus();
const { a, b, distinct } = makePairs(realVersions(), PAIRS);
const ours = timeOurs(compareDebVersions, a, b);
const theirs = libdpkg(a, b);
const agree = ours.counts.less === theirs.less && ours.counts.equal === theirs.equal && ours.counts.greater === theirs.greater;
if (!agree) fail(`answers differ from libdpkg: ours ${JSON.stringify(ours.counts)}, libdpkg ${JSON.stringify(theirs)}`);
const rpm = rpmPairs(a, b);
const rpmOurs = timeOurs(compareRpmVersions, rpm.a, rpm.b);

const result = {
  scheme: 'deb',
  pairs: a.length,
  distinctVersions: distinct,
  ourPerSecond: ours.perSecond,
  libdpkgPerSecond: theirs.perSecond,
  ratio: Number((ours.perSecond / theirs.perSecond).toFixed(3)),
  // libdpkgPerSecond compares versions parsed beforehand (parsing not timed), as asked; ours
  // takes the strings as given, so the parse-and-compare figure is the like-for-like one
  libdpkgParseAndComparePerSecond: theirs.parseAndComparePerSecond,
  ratioParseAndCompare: Number((ours.perSecond / theirs.parseAndComparePerSecond).toFixed(3)),
  answers: ours.counts,
  rpm: { scheme: 'rpm', pairs: rpm.a.length, ourPerSecond: rpmOurs.perSecond },
  machine: { cpu: cpus[0]?.model ?? 'unknown', cores: cpus.length, node: process.version },
};
const out = join(fileURLToPath(new URL('../results', import.meta.url)), `vercmp-${new Date().toISOString().slice(0, 10)}.json`);
writeFileSync(out, `${JSON.stringify({ date: new Date().toISOString(), ...result }, null, 2)}\n`);
console.log(JSON.stringify(result, null, 2));
