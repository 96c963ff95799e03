import { execFileSync, spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { compareDebVersions, parseDebVersion } from './deb.js';

/** A seeded generator, so a failing pair can be found again. */
function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function dpkgCompare(a: string, b: string): -1 | 0 | 1 {
  if (spawnSync('dpkg', ['--compare-versions', a, 'lt', b]).status === 0) return -1;
  if (spawnSync('dpkg', ['--compare-versions', a, 'eq', b]).status === 0) return 0;
  return 1;
}

describe('Debian versions', () => {
  it('orders as dpkg documents', () => {
    const ordered = ['1.0~~', '1.0~~a', '1.0~', '1.0', '1.0a', '1.0+b1', '1.0-0', '1.0-1', '1.0-1~deb12u1', '1.0-1+b1', '1.00.1', '1:0.1', '2:0'];
    for (let i = 0; i < ordered.length; i++) {
      for (let j = 0; j < ordered.length; j++) {
        expect(compareDebVersions(ordered[i]!, ordered[j]!), `${ordered[i]} vs ${ordered[j]}`).toBe(dpkgCompare(ordered[i]!, ordered[j]!));
      }
    }
    expect(compareDebVersions('1.0~rc1', '1.0')).toBe(-1);
    expect(compareDebVersions('1:1.0', '2.0')).toBe(1);
    expect(compareDebVersions('1.001', '1.1')).toBe(0);
    expect(compareDebVersions('0:1.0', '1.0')).toBe(0);
  });

  it('agrees with dpkg on real versions from this machine and their mutations', () => {
    const real = execFileSync('dpkg-query', ['-W', '-f=${Version}\\n'], { encoding: 'utf8' }).split('\n').filter(Boolean);
    expect(real.length).toBeGreaterThan(100);
    const rand = rng(20261126);
    const pick = () => real[Math.floor(rand() * real.length)]!;
    const mutate = (v: string): string => {
      switch (Math.floor(rand() * 7)) {
        case 0: return `1:${v}`;
        case 1: return `${v}~rc1`;
        case 2: return v.replace(/\d+/, (d) => `0${d}`);
        case 3: return `${v}a`;
        case 4: return v.replace(/-[^-]*$/, '') || v;
        case 5: return `${v}+b1`;
        default: return v.replace(/(\d+)(?!.*\d)/, (d) => String(Number(d) + 1));
      }
    };
    const pairs: [string, string][] = [];
    for (let i = 0; i < 300; i++) {
      const a = pick();
      const b = rand() < 0.5 ? mutate(a) : pick();
      if (parseDebVersion(a).ok && parseDebVersion(b).ok) pairs.push([a, b]);
    }
    expect(pairs.length).toBeGreaterThan(250);
    const mismatches = pairs.filter(([a, b]) => compareDebVersions(a, b) !== dpkgCompare(a, b));
    expect(mismatches).toEqual([]);
  }, 60_000);

  it('rejects invalid versions with dpkg\'s reason', () => {
    const bad: [string, RegExp][] = [
      ['', /empty/],
      ['   ', /empty/],
      ['1.0 2', /embedded spaces/],
      [':1.0', /epoch in version is empty/],
      ['a:1.0', /epoch in version is empty/],
      ['1a:1.0', /epoch in version is not number/],
      ['-1:1.0', /negative/],
      ['99999999999:1.0', /too big/],
      ['1:', /nothing after colon/],
      ['1.0-', /revision number is empty/],
      ['-1', /version number is empty/],
      ['abc', /does not start with digit/],
      ['1.0;rm', /invalid character/],
      ['1.0-a_b', /invalid character .* in revision/],
    ];
    for (const [v, reason] of bad) {
      const r = parseDebVersion(v);
      expect(r.ok, v).toBe(false);
      if (!r.ok) expect(r.reason).toMatch(reason);
    }
    expect(parseDebVersion('  1:2.3-4  ')).toEqual({ ok: true, value: { epoch: 1, upstream: '2.3', revision: '4' } });
    expect(parseDebVersion('1.2-3-4')).toEqual({ ok: true, value: { epoch: 0, upstream: '1.2-3', revision: '4' } });
    expect(parseDebVersion('2:1:3')).toEqual({ ok: true, value: { epoch: 2, upstream: '1:3', revision: '' } });
  });
});
