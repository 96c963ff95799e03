// SemVer 2.0.0's own examples; test/version-oracles.test.ts checks 10,000+ pairs against npm semver.
import { describe, expect, it } from 'vitest';
import { compareSemVer, parseSemVer, semverInvalidReason } from './semver.js';

describe('semantic versions', () => {
  it('orders the spec\'s precedence examples', () => {
    // semver.org item 11
    const chain = ['1.0.0-alpha', '1.0.0-alpha.1', '1.0.0-alpha.beta', '1.0.0-beta', '1.0.0-beta.2', '1.0.0-beta.11',
      '1.0.0-rc.1', '1.0.0', '2.0.0', '2.1.0', '2.1.1', '10.0.0'];
    for (let i = 0; i < chain.length; i++) {
      for (let j = 0; j < chain.length; j++) expect(compareSemVer(chain[i]!, chain[j]!), `${chain[i]} vs ${chain[j]}`).toBe(Math.sign(i - j) || 0);
    }
  });

  it('compares numeric identifiers as numbers, below alphanumeric ones, and ignores build metadata', () => {
    expect(compareSemVer('1.0.0-2', '1.0.0-10')).toBe(-1);
    expect(compareSemVer('1.0.0-10', '1.0.0-1a')).toBe(-1); // numeric < alphanumeric
    expect(compareSemVer('1.0.0-Z', '1.0.0-a')).toBe(-1); // ASCII order
    expect(compareSemVer('1.0.0-a-1', '1.0.0-a')).toBe(1);
    expect(compareSemVer('1.0.0+build.1', '1.0.0+build.2')).toBe(0);
    expect(compareSemVer('1.0.0-rc.1+x', '1.0.0-rc.1')).toBe(0);
    expect(compareSemVer('9007199254740991.0.0', '9007199254740990.0.0')).toBe(1);
    expect(parseSemVer('1.2.3-rc.1+exp.sha.5114f85')).toEqual({
      ok: true,
      value: { major: 1, minor: 2, patch: 3, prerelease: ['rc', 1], build: ['exp', 'sha', '5114f85'] },
    });
  });

  it('rejects what SemVer 2.0.0 forbids, saying why', () => {
    const bad: [string, RegExp][] = [
      ['', /empty/],
      ['1.2', /is not MAJOR.MINOR.PATCH/],
      ['1.2.3.4', /is not MAJOR.MINOR.PATCH/],
      ['01.2.3', /major '01' has a leading zero/],
      ['1.x.3', /minor 'x' is not a number/],
      ['1..3', /minor is empty/],
      ['1.2.3-01', /leading zero/],
      ['1.2.3-', /empty pre-release identifier/],
      ['1.2.3-a..b', /empty pre-release identifier/],
      ['1.2.3-a_b', /pre-release identifier 'a_b'/],
      ['1.2.3+', /empty build identifier/],
      ['1.2.3+a+b', /build identifier 'a\+b'/],
      ['v1.2.3', /leading 'v' is not part of a semantic version \(write 1.2.3\)/],
      [' 1.2.3', /white space/],
      ['9007199254740992.0.0', /larger than 9007199254740991/],
      ['1.0.0-9007199254740992', /larger than/],
      [`1.0.0-${'a'.repeat(300)}`, /longer than 256/],
    ];
    for (const [v, reason] of bad) expect(semverInvalidReason(v), JSON.stringify(v)).toMatch(reason);
    for (const v of ['0.0.0', '1.2.3-0', '1.2.3-0a', '1.2.3--', '1.2.3+001', '1.2.3-x-y-z.--']) expect(semverInvalidReason(v), v).toBeNull();
    expect(() => compareSemVer('1.0.0', '1.0')).toThrow(/invalid semver version '1.0'/);
  });
});
