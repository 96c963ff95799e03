// No Windows tool runs on Debian: these check the rules in windows.ts (VS_FIXEDFILEINFO fields).
import { describe, expect, it } from 'vitest';
import { compareWindowsVersions, parseWindowsVersion, windowsInvalidReason } from './windows.js';

describe('Windows versions', () => {
  it('compares up to four 16-bit fields as numbers, missing fields as 0', () => {
    const rows: [string, string, -1 | 0 | 1][] = [
      ['10.0.19041.3803', '10.0.19041.4291', -1],
      ['10.0.19041.3803', '10.0.19045.2006', -1],
      ['10.0.22621.1', '10.0.19045.9999', 1],
      ['6.3.9600.20000', '10.0.10240.16384', -1],
      ['1.2.10', '1.2.9', 1], // numbers, not text
      ['23.01', '23.1', 0], // leading zeros are formatting
      ['10', '10.0.0.0', 0],
      ['10.0', '10.0.0.1', -1],
      ['65535.65535.65535.65535', '65535.65535.65535.65534', 1],
      ['0', '0.0.0.1', -1],
    ];
    for (const [a, b, r] of rows) {
      expect(compareWindowsVersions(a, b), `${a} vs ${b}`).toBe(r);
      expect(compareWindowsVersions(b, a), `${b} vs ${a}`).toBe(r === 0 ? 0 : -r);
    }
    expect(parseWindowsVersion('10.0.19041')).toEqual({ ok: true, value: [10, 0, 19041, 0] });
  });

  it('rejects anything but 1 to 4 numbers 0-65535, saying why', () => {
    const bad: [string, RegExp][] = [
      ['', /empty/],
      ['1.2.3.4.5', /5 fields; a Windows version has at most 4/],
      ['1..2', /field 2 is empty/],
      ['1.2.', /field 3 is empty/],
      ['.1', /field 1 is empty/],
      ['65536', /field 1 is 65536, more than 65535/],
      ['1.0.99999', /field 3/],
      ['10.0.19041.1 (WinBuild.160101.0800)', /invalid character " " in field 4/],
      ['1.0a', /invalid character "a"/],
      ['-1', /invalid character "-"/],
      ['1,0', /invalid character ","/],
      [' 1.0', /invalid character " "/],
    ];
    for (const [v, reason] of bad) expect(windowsInvalidReason(v), JSON.stringify(v)).toMatch(reason);
    for (const v of ['0', '65535.0.0.65535', '007.1']) expect(windowsInvalidReason(v), v).toBeNull();
  });
});
