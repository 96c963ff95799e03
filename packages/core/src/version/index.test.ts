import { describe, expect, it } from 'vitest';
import { compareChecked, getScheme, VERSION_SCHEMES } from './index.js';

describe('version scheme registry', () => {
  it('has every scheme, each with an example that holds', () => {
    expect(Object.keys(VERSION_SCHEMES).sort()).toEqual(['apk', 'deb', 'generic', 'rpm', 'semver', 'windows']);
    for (const [name, s] of Object.entries(VERSION_SCHEMES)) {
      expect(s.name).toBe(name);
      const [a, b, r] = s.example;
      expect(compareChecked(s, a, b), `${name}: ${a} vs ${b}`).toBe(r);
      expect(s.compare(b, a)).toBe(r === 0 ? 0 : -r);
      expect(s.compare(a, a)).toBe(0);
    }
  });

  it('rejects an invalid version in every scheme with the scheme and the reason', () => {
    const invalid: Record<string, [string, RegExp]> = {
      deb: ['1.0;rm', /invalid character/],
      rpm: ['1.0-1-2', /more than one '-'/],
      apk: ['1.0-1', /must start a revision/],
      windows: ['1.2.3.4.5', /at most 4/],
      semver: ['1.2', /MAJOR.MINOR.PATCH/],
      generic: ['latest', /no number/],
    };
    for (const [name, [v, reason]] of Object.entries(invalid)) {
      const s = getScheme(name);
      expect(s.invalidReason(v), `${name}: ${v}`).toMatch(reason);
      expect(() => compareChecked(s, '1.0.0', v)).toThrow(new RegExp(`invalid ${name} version '${v.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}': `));
      expect(s.invalidReason(''), `${name}: empty`).toMatch(/empty/);
    }
    expect(() => getScheme('nope')).toThrow(/unknown version scheme 'nope'/);
    expect(() => getScheme('toString')).toThrow(/unknown version scheme/);
  });
});
