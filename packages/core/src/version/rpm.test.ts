// rpm's documented ordering; test/version-oracles.test.ts checks 10,000+ pairs against rpm itself.
import { describe, expect, it } from 'vitest';
import { compareRpmVersions, parseRpmVersion, rpmInvalidReason, rpmvercmp } from './rpm.js';

/** Each row: a, b, rpmvercmp(a, b). Both directions are checked. */
const SEGMENTS: [string, string, -1 | 0 | 1][] = [
  ['1.0', '1.0', 0],
  ['1.0', '2.0', -1],
  ['2.0.1', '2.0', 1],
  ['2.0.1a', '2.0.1', 1], // letters after the end still make it newer
  ['5.5p1', '5.5p2', -1],
  ['5.5p10', '5.5p1', 1],
  ['10xyz', '10.1xyz', -1],
  ['xyz10', 'xyz10.1', -1],
  ['xyz.4', '8', -1], // a number is newer than letters
  ['6.0.rc1', '6.0', 1], // without '~', rc1 is just more segments
  ['10b2', '10a1', 1],
  ['1.0aa', '1.0aaa', -1],
  ['10.0001', '10.1', 0], // leading zeros do not count
  ['10.0001', '10.0039', -1],
  ['4.999.9', '5.0', -1],
  ['20101121', '20101122', -1],
  ['123456789012345678901234567890', '123456789012345678901234567891', -1], // no overflow
  ['2_0', '2.0', 0], // separators are all alike
  ['+a', '_a', 0],
  ['+_', '_+', 0],
  ['1.0~rc1', '1.0', -1], // '~' is older than the end of the string
  ['1.0~rc1', '1.0arc1', -1],
  ['1.0~rc1', '1.0~rc2', -1],
  ['1.0~rc1~git123', '1.0~rc1', -1],
  ['1.0^', '1.0', 1], // '^' is newer than the end of the string
  ['1.0^git1', '1.0', 1],
  ['1.0^git1', '1.01', -1], // but older than anything else that follows
  ['1.0^20160101', '1.0.1', -1],
  ['1.0^20160101^git1', '1.0^20160101', 1],
  ['1.0~rc1^git1', '1.0~rc1', 1],
  ['1.0^git1~pre', '1.0^git1', -1],
  ['1.0^git1', '1.0^git2', -1],
  ['1.0~rc1^git1', '1.0', -1],
  ['1a', '1.a', 0], // a separator only splits segments
  ['1.0.', '1.0', 0],
];

describe('rpm versions', () => {
  it('orders segments as rpmvercmp() does', () => {
    for (const [a, b, r] of SEGMENTS) {
      expect(rpmvercmp(a, b), `${a} vs ${b}`).toBe(r);
      expect(rpmvercmp(b, a), `${b} vs ${a}`).toBe(r === 0 ? 0 : -r);
    }
  });

  it('compares whole [epoch:]version[-release] strings as rpm.vercmp() does', () => {
    const rows: [string, string, -1 | 0 | 1][] = [
      ['1:1.0', '2.0', 1], // the epoch first
      ['0:1.0', '1.0', 0], // no epoch is epoch 0
      ['00:1.0', '0:1.0', 0],
      ['10:1.0', '9:2.0', 1], // epochs compare as numbers
      ['1.0', '1.0-1', -1], // no release is older than any release
      ['1.0-1', '1.0-1.el9', -1],
      ['1.0-2', '1.0-10', -1],
      ['1.0-1.el9_3', '1.0-1.el9_10', -1],
      ['1.0~rc1-5', '1.0-1', -1], // the version decides before the release
      ['2.4.6-0.1.rc1.fc39', '2.4.6-1.fc39', -1],
      ['1.2.3^git1-1', '1.2.3-1', 1],
    ];
    for (const [a, b, r] of rows) {
      expect(compareRpmVersions(a, b), `${a} vs ${b}`).toBe(r);
      expect(compareRpmVersions(b, a), `${b} vs ${a}`).toBe(r === 0 ? 0 : -r);
    }
  });

  it('splits as parseEVR() does', () => {
    expect(parseRpmVersion('2:1.0.1-3.el9')).toEqual({ ok: true, value: { epoch: 2, version: '1.0.1', release: '3.el9' } });
    expect(parseRpmVersion('1.0^git20240101')).toEqual({ ok: true, value: { epoch: null, version: '1.0^git20240101', release: null } });
  });

  it('rejects what rpm rejects, saying why', () => {
    const bad: [string, RegExp][] = [
      ['', /empty/],
      [':1.0', /epoch is empty/],
      ['a:1.0', /epoch 'a' is not an unsigned number/],
      ['-1:1.0', /not an unsigned number/],
      ['4294967296:1.0', /32-bit/],
      ['1:2:3', /more than one ':'/],
      ['1.0-', /release is empty/],
      ['-1', /version is empty/],
      ['1:', /version is empty/],
      ['1.0-1-2', /more than one '-'/],
      ['1.0 2', /invalid character " " in version/],
      ['1.0%{?dist}', /invalid character "%" in version/],
      ['1.0-1/2', /invalid character "\/" in release/],
      ['1..0', /illegal sequence "\.\." in version/],
      ['1.0-1..el9', /in release/],
      ['1.0é', /invalid character/],
    ];
    for (const [v, reason] of bad) expect(rpmInvalidReason(v), JSON.stringify(v)).toMatch(reason);
    for (const v of ['0', '4294967295:1', '1.0~rc1^git2_3+4', '1.0-0.1.rc1.fc39', 'A.b_C']) expect(rpmInvalidReason(v), v).toBeNull();
  });
});
