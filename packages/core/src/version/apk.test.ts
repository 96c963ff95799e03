// There is no apk-tools on Debian to compare against: these check the rules of apk-tools'
// version.c (cited in apk.ts), with pairs from apk-tools' own test data (test/version.data).
import { describe, expect, it } from 'vitest';
import { apkInvalidReason, compareApkVersions } from './apk.js';

function check(rows: string[]): void {
  for (const row of rows) {
    const [a, op, b] = row.split(' ') as [string, '<' | '=' | '>', string];
    const want = op === '<' ? -1 : op === '>' ? 1 : 0;
    expect(apkInvalidReason(a), a).toBeNull();
    expect(apkInvalidReason(b), b).toBeNull();
    expect(compareApkVersions(a, b), row).toBe(want);
    expect(compareApkVersions(b, a), `reversed: ${row}`).toBe(want === 0 ? 0 : -want);
  }
}

describe('apk versions', () => {
  it('orders numbers by value, field by field, and more fields as newer', () => {
    check(['1.0.0 < 1.0.1', '1.2.1 > 1.2', '1.2.11 < 1.2.12.1', '7.0.17 < 7.0.174', '2.59 < 20050718-r1', '1.0.0 = 1.0.0',
      '20060720 > 3.0.20060720', '123456789012345678 < 123456789012345679']);
  });

  it('compares a number after a dot with a leading zero as text (the Gentoo rule), the first number by value', () => {
    check(['1.02.07 < 1.02.10-r1', '1.2.07.8 < 1.2.12.04', '1.2.12.04 < 1.2.12.05', '1.01 < 1.1', '1.10 > 1.010',
      '1.06-r6 < 006', '006 > 1.0.0', '3.0.0-r2 < 021109-r3', '021109-r3 < 20060512', '02.08.01b < 4.77']);
  });

  it('ranks suffixes alpha < beta < pre < rc < release < cvs < svn < git < hg < p', () => {
    const chain = ['1.0_alpha', '1.0_alpha2', '1.0_beta', '1.0_beta_p1', '1.0_pre1', '1.0_rc1', '1.0_rc10', '1.0', '1.0_cvs',
      '1.0_svn', '1.0_git20240101', '1.0_hg', '1.0_p1', '1.0_p9', '1.0_p10', '1.0a', '1.0.1_alpha', '1.0.1'];
    for (let i = 0; i + 1 < chain.length; i++) check([`${chain[i]} < ${chain[i + 1]}`]);
    check(['1.1 > 1.1_alpha1', '0.1.0_alpha_pre2 < 0.1.0_alpha', '2.0.0_rc3-r1 < 20040401', '4.5_p1-r1 > 4.5_p1',
      '1.0_p10-r0 > 1.0_p9-r0', '1.0.0_pre20191002222144-r0 < 1.0.0_pre20210530193627-r0', '3.1_p16 < 3.1_p17']);
  });

  it('orders one letter after the numbers, and the revision last', () => {
    check(['2.3.0b-r1 < 2.3.0b-r2', '1.7 < 1.7b', '1.7b < 1.8.4-r3', '1.1a < 1.3a', '0.9.8c-r1 < 0.9.8d', '2.5.1-r8 < 2.5.1a-r1',
      '1.6d > 1.2.07.8', '1.0a < 1.0.1', '1.2.2-r1 > 1.2.2', '1.3.5-r10 > 1.3.5-r8', '104-r11 > 104-r9', '1.0-r0 > 1.0']);
  });

  it('orders a ~hash (apk-tools 3) as text; like any token, it is newer than a later kind of token or the end', () => {
    check(['1.0~abc < 1.0~abd', '1.0~abc < 1.0~abc1', '1.0 < 1.0~abc', '1.0~abc > 1.0-r0', '1.0~abc-r1 > 1.0~abc-r0',
      '1.0_git20240101~abc123 > 1.0_git20240101', '1.0_rc1~f00 < 1.0', '1.0~fff < 1.0_p1', '1.0~0 < 1.0.1']);
  });

  it('rejects what apk version --check rejects, saying why', () => {
    const bad: [string, RegExp][] = [
      ['', /empty/],
      ['v1.0', /does not start with a digit/],
      ['1.0bc', /letter 'c' at position 5 may only follow a number/],
      ['1.0a.1', /'.' at position 5 may not follow/],
      ['1.0a1', /number at position 5 is not allowed/],
      ['1.0_foo', /unknown suffix '_foo'/],
      ['1.0_rc1a', /letter 'a'/],
      ['1.0_', /'_' at position 4 is not followed by a suffix name/],
      ['1.0_Beta', /'_' at position 4 is not followed/],
      ['1.0.', /'.' at position 4 is not followed by a number/],
      ['1..0', /'.' at position 2 is not followed by a number/],
      ['1.0-1', /must start a revision '-rN'/],
      ['1.0-r', /has no number/],
      ['1.0-r1-r2', /second revision/],
      ['1.0-r1_p1', /suffix at position 7 may not follow/],
      ['1.0~', /not followed by a lower-case hex/],
      ['1.0~ABC', /not followed by a lower-case hex/],
      ['1.0~abc~def', /'~' at position 8 may appear only once/],
      ['1.0~abcg', /letter 'g'/],
      ['1.0 ', /invalid character " "/],
      ['1.0+1', /invalid character "\+"/],
      ['1.18446744073709551616', /64-bit/],
    ];
    for (const [v, reason] of bad) expect(apkInvalidReason(v), JSON.stringify(v)).toMatch(reason);
    expect(apkInvalidReason('1.18446744073709551615')).toBeNull();
    expect(() => compareApkVersions('1.0', '1.0_foo')).toThrow(/invalid apk version '1.0_foo': unknown suffix/);
  });
});
