/**
 * Differential tests: our version schemes against the reference implementations themselves,
 * on at least 10,000 pairs each — dpkg through libdpkg, rpm through its Lua, npm's `semver`.
 * Inputs are real Debian version strings plus seeded mutations (the seeds are below, so a
 * failing pair comes back on every run). apk, windows and generic have no reference tool on
 * Debian; their tests beside the code check the documented rules instead. Last, the CLI's
 * `vercmp` with every scheme.
 */
import * as npmSemver from 'semver';
import { afterAll, describe, expect, it } from 'vitest';
import {
  compareDebVersions, compareRpmVersions, compareSemVer, parseDebVersion, rpmInvalidReason, semverInvalidReason, VERSION_SCHEMES,
} from '@patchwarden/core';
import { DpkgOracle, realDebVersions, rng, rpmVercmp } from './support/oracles.js';
import { assertBuilt, cli } from './support/processes.js';

type Pair = readonly [string, string];
const MIN_PAIRS = 10_000;
const DEB_SEED = 0x5eed_deb1;
const RPM_SEED = 0x5eed_0a9a;
const SEMVER_SEED = 0x5eed_5e3f;

const real = realDebVersions();

function tools(rand: () => number) {
  const int = (n: number) => Math.floor(rand() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  /** Applies f to one randomly chosen run of digits. */
  const atDigits = (v: string, f: (d: string) => string) => {
    const runs = [...v.matchAll(/\d+/g)];
    if (runs.length === 0) return v;
    const m = pick(runs);
    return v.slice(0, m.index) + f(m[0]) + v.slice(m.index + m[0].length);
  };
  const bump = (d: string, by: number) => String(Math.max(0, Number(d.slice(0, 12)) + by));
  return { int, pick, atDigits, bump };
}

/** Pairs that exercise dpkg's rules: versions of one package, lexical neighbours, mutations. */
function debPairs(): Pair[] {
  const rand = rng(DEB_SEED);
  const { int, pick, atDigits, bump } = tools(rand);
  const mutate = (v: string): string => {
    switch (int(16)) {
      case 0: return `${pick(['0', '1', '2', '10', '00'])}:${v.replace(/^\d+:/, '')}`;
      case 1: return v.replace(/^\d+:/, '');
      case 2: return `${v}${pick(['~', '~~', '~rc1', '~beta2', '~deb12u1', '~bpo12+1', '~~a'])}`;
      case 3: return `${v}${pick(['+b1', '+deb12u1', '+really1.0', '+1', '+nmu1', '.0', '.1', 'a', 'z', 'A'])}`;
      case 4: return atDigits(v, (d) => pick(['0', '00', '000']) + d);
      case 5: return atDigits(v, (d) => bump(d, 1));
      case 6: return atDigits(v, (d) => bump(d, -1));
      case 7: return atDigits(v, (d) => `${d}${pick(['a', 'b', 'z', 'Z', '~', '+', '.'])}`);
      case 8: return `${v.replace(/-[^-]*$/, '')}-${pick(['0', '1', '2', '1.1', '0ubuntu1', '1~bpo1', '10', '1+b2', '01'])}`;
      case 9: return v.replace(/-[^-]*$/, '');
      case 10: return v.slice(0, 1 + int(v.length));
      case 11: {
        const i = int(v.length);
        return v.slice(0, i) + pick(['~', '+', '.', '-', ':', 'a', '0', '9']) + v.slice(i + 1);
      }
      case 12: return `${v}-${pick(['1', '0', '1~rc1'])}`;
      case 13: return v.replace(/~/g, '+');
      case 14: return v.replace(/\+/g, '~');
      default: return `${v}${pick(['-1', '.1-1', 'a-1', '~rc1-1'])}`;
    }
  };
  const pairs: Pair[] = [];
  const vs = real.versions;
  // neighbours in sorted order share long prefixes, so the comparison runs deep
  for (let i = 0; i + 1 < vs.length && pairs.length < 6000; i += 1 + int(3)) pairs.push([vs[i]!, vs[i + 1]!]);
  for (const list of real.byPackage.values()) {
    for (let i = 0; i + 1 < list.length && pairs.length < 9000; i++) pairs.push([list[i]!, list[i + 1]!]);
  }
  while (pairs.length < 22_000) {
    const a = pick(vs);
    const r = int(10);
    const pair: Pair = r < 6 ? [a, mutate(a)] : r < 8 ? [mutate(a), mutate(mutate(a))] : [a, pick(vs)];
    // identical strings teach nothing; equal but different ones ("1.0" vs "1.00") do
    if (pair[0] !== pair[1] || int(50) === 0) pairs.push(pair);
  }
  return pairs.map(([a, b]) => (int(2) ? [a, b] : [b, a]) as Pair);
}

describe('deb against dpkg (libdpkg, one long-lived process)', () => {
  // started by the first test that needs it, so that a missing libdpkg fails each test by name
  // (a failing beforeAll would leave them reported as skipped)
  let started: DpkgOracle | undefined;
  const dpkg = () => (started ??= new DpkgOracle());
  afterAll(() => started?.close());

  it('accepts and rejects exactly the versions dpkg accepts and rejects', async () => {
    const all = [...new Set(debPairs().flat())];
    const answers = await dpkg().compare(all.map((v) => [v, v] as Pair));
    const disagree = all
      .map((v, i) => ({ v, ours: parseDebVersion(v), dpkg: answers[i] }))
      .filter((d) => d.ours.ok !== (d.dpkg === '0'));
    expect(disagree.slice(0, 10)).toEqual([]);
    expect(all.length).toBeGreaterThan(MIN_PAIRS);
    expect(answers.filter((a) => a.startsWith('E')).length, 'some generated versions must be invalid').toBeGreaterThan(100);
  }, 120_000);

  it(`orders ${MIN_PAIRS}+ pairs of real versions and mutations exactly as dpkg does`, async () => {
    const pairs = debPairs().filter(([a, b]) => parseDebVersion(a).ok && parseDebVersion(b).ok);
    expect(real.versions.length, 'real version strings from apt-cache dumpavail or dpkg-query').toBeGreaterThan(300);
    expect(pairs.length).toBeGreaterThanOrEqual(MIN_PAIRS);
    const answers = await dpkg().compare(pairs);
    const mismatches = pairs
      .map(([a, b], i) => ({ a, b, ours: compareDebVersions(a, b), dpkg: answers[i] }))
      .filter((m) => String(m.ours) !== m.dpkg);
    expect(mismatches.slice(0, 10)).toEqual([]);
    // the pairs must exercise all three answers, or the test proves little
    for (const r of ['-1', '0', '1']) expect(answers.filter((x) => x === r).length).toBeGreaterThan(200);
  }, 120_000);
});

/** Real-looking EVRs: Debian upstream versions made rpm-legal, releases as distributions write them. */
function rpmPairs(): Pair[] {
  const rand = rng(RPM_SEED);
  const { int, pick, atDigits, bump } = tools(rand);
  const upstream = real.versions
    .map((v) => v.replace(/^\d+:/, '').replace(/-[^-]*$/, '').replace(/[:-]/g, '.').replace(/\.{2,}/g, '.'))
    .filter((v) => rpmInvalidReason(v) === null);
  const releases = ['1', '2', '10', '1.el9', '1.el9_3', '3.el8_10', '12.el7', '2.fc39', '0.1.rc1.fc39', '0.5.beta2.fc40',
    '1.module+el8.4.0+10811+8a6a1a78', '150500.3.3.1', '1.1', '01', '1~bootstrap', '1^post', '7.mga9', '2.oe2203'];
  const mutateVersion = (v: string): string => {
    switch (int(12)) {
      case 0: return `${v}${pick(['~rc1', '~', '~~', '~beta2', '~pre.1'])}`;
      case 1: return `${v}${pick(['^', '^1', '^git20240101.abc123', '^post1', '^~1'])}`;
      case 2: return atDigits(v, (d) => pick(['0', '00']) + d);
      case 3: return atDigits(v, (d) => bump(d, 1));
      case 4: return atDigits(v, (d) => bump(d, -1));
      case 5: return atDigits(v, (d) => `${d}${pick(['a', 'b', 'Z', 'rc1', '.1', '_1', '+1', '~1', '^1'])}`);
      case 6: return `${v}${pick(['a', '.a', '.0', '.1', 'p1', '_p1', '+git1'])}`;
      case 7: return v.replace(/[.]/, pick(['_', '+', '~', '^']));
      case 8: return v.replace(/[~^+]/g, () => pick(['~', '^', '+', '.']));
      case 9: return v.length > 1 ? v.slice(0, 1 + int(v.length - 1)).replace(/[._+]$/, '') || v : v;
      case 10: return v.replace(/\d+/, (d) => String(Number(d) * 10));
      default: return v;
    }
  };
  const evr = (v: string, rel: string | null, epoch: string | null) => `${epoch === null ? '' : `${epoch}:`}${v}${rel === null ? '' : `-${rel}`}`;
  const randomEvr = (base: string) =>
    evr(mutateVersion(base), int(5) === 0 ? null : mutateVersion(pick(releases)), int(4) === 0 ? pick(['0', '1', '2', '01', '10']) : null);
  const near = (x: string): string => {
    // change one part of an EVR, keep the rest: these pairs reach the release and epoch rules
    const m = /^(?:(\d+):)?([^-]+)(?:-(.+))?$/.exec(x)!;
    const [epoch, v, rel] = [m[1] ?? null, m[2]!, m[3] ?? null];
    switch (int(4)) {
      case 0: return evr(mutateVersion(v), rel, epoch);
      case 1: return evr(v, int(4) === 0 ? null : mutateVersion(rel ?? pick(releases)), epoch);
      case 2: return evr(v, rel, int(3) === 0 ? null : pick(['0', '1', '2', '00', '3']));
      default: return evr(v, rel, epoch);
    }
  };
  const pairs: Pair[] = [];
  while (pairs.length < 16_000) {
    const a = randomEvr(pick(upstream));
    const pair: Pair = int(8) === 0 ? [a, randomEvr(pick(upstream))] : [a, near(a)];
    if (pair[0] !== pair[1] || int(50) === 0) pairs.push(pair);
  }
  return pairs.filter(([a, b]) => rpmInvalidReason(a) === null && rpmInvalidReason(b) === null);
}

describe('rpm against rpm itself (rpm.vercmp in rpm --eval Lua)', () => {
  it(`orders ${MIN_PAIRS}+ pairs with tildes, carets, epochs and releases exactly as rpm does`, () => {
    const pairs = rpmPairs();
    expect(pairs.length).toBeGreaterThanOrEqual(MIN_PAIRS);
    for (const c of ['~', '^', ':', '-']) expect(pairs.filter(([a, b]) => a.includes(c) || b.includes(c)).length, c).toBeGreaterThan(1000);
    const answers = rpmVercmp(pairs);
    const mismatches = pairs
      .map(([a, b], i) => ({ a, b, ours: compareRpmVersions(a, b), rpm: answers[i] }))
      .filter((m) => m.ours !== m.rpm);
    expect(mismatches.slice(0, 10)).toEqual([]);
    for (const r of [-1, 0, 1]) expect(answers.filter((x) => x === r).length).toBeGreaterThan(200);
  }, 180_000);
});

function semverStrings(): string[] {
  const rand = rng(SEMVER_SEED);
  const { int, pick } = tools(rand);
  const num = () => pick(['0', '1', '2', '10', '9', String(int(1000)), '9007199254740991', '9007199254740992', '01', '00']);
  const ident = () => pick(['alpha', 'beta', 'rc', 'Alpha', 'RC', '0', '1', '2', '10', '11', '0a', 'a0', 'x-y', '-', '--', '-1',
    'a', 'A', 'z', 'Z', '1a', '9007199254740991', '9007199254740993', '01', '', 'alpha_1', String(int(50))]);
  const ids = (min: number) => Array.from({ length: min + int(4) }, ident).join('.');
  const out: string[] = [];
  for (let i = 0; i < 6000; i++) {
    let v = `${num()}.${num()}.${num()}`;
    if (int(3) > 0) v += `-${ids(1)}`;
    if (int(4) === 0) v += `+${ids(1)}`;
    if (int(40) === 0) v = pick(['v', '=', ' ', '']) + v + pick(['', ' ', '.0', '-']);
    out.push(v);
  }
  return out;
}

describe('semver against npm semver', () => {
  it('accepts what npm semver accepts, less its leniencies', () => {
    for (const v of semverStrings()) {
      const ours = semverInvalidReason(v) === null;
      const theirs = npmSemver.valid(v) !== null;
      // npm also takes a leading v or = and surrounding spaces (we ask for the plain form), and
      // pre-release numbers past 2^53 - 1, which it then compares inexactly (we refuse them)
      const pre = v.split('+')[0]!.split('-').slice(1).join('-').split('.');
      const huge = pre.some((id) => /^\d+$/.test(id) && !Number.isSafeInteger(Number(id)));
      const lenient = v.trim() !== v || /^[vV=]/.test(v) || huge;
      expect(ours, `${v}: ours ${semverInvalidReason(v)}, npm ${theirs}`).toBe(theirs && !lenient);
    }
  });

  it(`orders ${MIN_PAIRS}+ pairs exactly as npm semver's compare() does`, () => {
    const rand = rng(SEMVER_SEED + 1);
    const valid = semverStrings().filter((v) => semverInvalidReason(v) === null);
    const main = (v: string) => v.split(/[-+]/)[0]!;
    const byMain = new Map<string, string[]>();
    for (const v of valid) byMain.set(main(v), [...(byMain.get(main(v)) ?? []), v]);
    const pairs: Pair[] = [];
    while (pairs.length < 20_000) {
      const a = valid[Math.floor(rand() * valid.length)]!;
      // same MAJOR.MINOR.PATCH half of the time, so the pre-release rules decide
      const same = byMain.get(main(a))!;
      const pool = rand() < 0.5 && same.length > 1 ? same : valid;
      pairs.push([a, pool[Math.floor(rand() * pool.length)]!]);
    }
    const mismatches = pairs.map(([a, b]) => ({ a, b, ours: compareSemVer(a, b), npm: npmSemver.compare(a, b) })).filter((m) => m.ours !== m.npm);
    expect(mismatches.slice(0, 10)).toEqual([]);
    for (const r of [-1, 0, 1]) expect(pairs.filter(([a, b]) => npmSemver.compare(a, b) === r).length).toBeGreaterThan(500);
  }, 60_000);
});

describe('patchwarden vercmp, every scheme', () => {
  assertBuilt();

  it('compares each scheme\'s example, rejects an invalid version, and lists every scheme in its help', async () => {
    const help = await cli(['vercmp', '--help']);
    for (const s of Object.values(VERSION_SCHEMES)) {
      const [a, b, r] = s.example;
      expect(help.stdout).toContain(`patchwarden vercmp --scheme ${s.name} ${a} ${b}   # prints ${r}`);
      const run = await cli(['vercmp', '--scheme', s.name, a, b]);
      expect(run.stdout.trim(), `${s.name}: ${run.stderr}`).toBe(String(r));
    }
    const bad = await cli(['vercmp', '--scheme', 'apk', '1.0', '1.0-1']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/invalid apk version '1.0-1': '-' at position 4 must start a revision/);
    const batch = await cli(['vercmp', '--scheme', 'rpm'], { input: '1.0~rc1 1.0\n1:1.0 2.0\n1.0 1.0-1\n1.0^git1 1.0.1\n' });
    expect(batch.stdout).toBe('-1\n1\n-1\n-1\n');
  }, 60_000);
});
