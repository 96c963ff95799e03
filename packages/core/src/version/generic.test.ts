// No reference tool exists for generic versions: these check the rules in generic.ts's header on
// version strings as real applications write them.
import { describe, expect, it } from 'vitest';
import { compareGenericVersions, genericInvalidReason } from './generic.js';

/** Every later entry must be newer than every earlier one. */
function ascending(chain: string[]): void {
  for (let i = 0; i < chain.length; i++) {
    for (let j = 0; j < chain.length; j++) {
      expect(compareGenericVersions(chain[i]!, chain[j]!), `${chain[i]} vs ${chain[j]}`).toBe(Math.sign(i - j) || 0);
    }
  }
}

function equal(versions: string[]): void {
  for (const a of versions) for (const b of versions) expect(compareGenericVersions(a, b), `${a} vs ${b}`).toBe(0);
}

describe('generic versions', () => {
  it('compares numbers as numbers, whatever their width', () => {
    ascending(['1.2.9', '1.2.10', '1.10', '1.10.0.1', '2', '10', '2024.1', '99999999999999999999999']);
    ascending(['120.0.6099.109', '120.0.6099.129', '121.0.6167.85']);
    ascending(['7-Zip 9.20', '7-Zip 16.04', '7-Zip 19.00', '7-Zip 23.01', '7-Zip 24.08']);
    ascending(['1.8.0_381', '1.8.0_391', '8u381', '8u391']);
    equal(['23.01', '23.1', '23.001']);
  });

  it('puts pre-releases below the release, ranked dev < alpha < beta < milestone < pre < rc', () => {
    ascending(['2.0-SNAPSHOT', '2.0.dev1', '2.0a1', '2.0alpha2', '2.0b1', '2.0-beta.2', '2.0.0-M1', '2.0pre1', '2.0-preview2',
      '2.0rc1', '2.0RC2', '2.0', '2.0a', '2.0-sp1', '2.0.1']);
    ascending(['4.10.0-beta2', '4.10.0-beta10', '4.10.0-rc1', '4.10.0', '4.10.1']);
    ascending(['3.12.0a7', '3.12.0b4', '3.12.0rc3', '3.12.0', '3.12.1']);
    ascending(['121.0b3', '121.0', '121.0.1']);
    ascending(['6.4.0.Alpha1', '6.4.0.Beta3', '6.4.0.CR1', '6.4.0.Final', '6.4.1.Final']);
  });

  it('treats a lone letter as a patch level, as OpenSSL and others use it', () => {
    ascending(['1.1.0l', '1.1.1', '1.1.1a', '1.1.1k', '1.1.1w', '3.0.0-alpha1', '3.0.0', '3.0.13']);
    ascending(['115.6.0', '115.6.0esr', '115.7.0']);
  });

  it('makes separators, trailing zeros, release words and a leading v irrelevant', () => {
    equal(['1.0', '1.0.0', '1-0', '1_0', '1+0', '1 0', 'v1.0', 'V1.0.0', '1.0 Final', '1.0.RELEASE', '1.0-GA', '1.0-stable', '.1.0.', '1..0']);
    equal(['2.0rc1', '2.0.0-RC1', '2.0.0.rc.1', '2.0 rc 1', '2.0~rc1']);
  });

  it('rejects what it cannot compare, saying why', () => {
    const bad: [string, RegExp][] = [
      ['', /empty/],
      ['   ', /empty/],
      ['latest', /has no number/],
      ['beta', /has no number/],
      ['1.0 (beta)', /invalid character "\(" at position 5/],
      ['1.0/2', /invalid character "\/"/],
      ['1.0,1', /invalid character ","/],
      ['1\t0', /invalid character "\\t"/],
      ['版本1', /invalid character/],
      [`1.${'0'.repeat(300)}`, /longer than 256/],
    ];
    for (const [v, reason] of bad) expect(genericInvalidReason(v), JSON.stringify(v)).toMatch(reason);
    expect(() => compareGenericVersions('1.0', 'latest')).toThrow(/invalid generic version 'latest': has no number/);
  });
});
