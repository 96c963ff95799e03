/**
 * Windows file and product versions: `major[.minor[.build[.revision]]]`, e.g. `10.0.19041.3803`.
 *
 * A PE version resource (VS_FIXEDFILEINFO) stores four unsigned 16-bit numbers, so each field is
 * 0–65535 and they compare as numbers, field by field. Installers and the registry often write
 * fewer fields ("DisplayVersion" = `23.01`); a missing field is 0, so `10.0` = `10.0.0.0`.
 * Leading zeros are only formatting (`1.02` = `1.2`). Anything else — text after the numbers
 * such as `10.0.19041.1 (WinBuild.160101.0800)`, a fifth field, an empty field — is invalid:
 * a caller that has such a string should pass the numeric FileVersion, not the display text.
 * No Windows tool runs on Debian, so the tests check these rules directly.
 */
import type { ParseResult } from './deb.js';

const MAX_FIELD = 65535;

/** The four fields, missing ones as 0. */
export function parseWindowsVersion(input: string): ParseResult<[number, number, number, number]> {
  if (input === '') return { ok: false, reason: 'version string is empty' };
  // a stray character is the likelier mistake (display text), so it is named before the count
  const bad = /[^0-9.]/.exec(input);
  if (bad) {
    const field = input.slice(0, bad.index).split('.').length;
    return { ok: false, reason: `invalid character ${JSON.stringify(bad[0])} in field ${field} (only digits and '.')` };
  }
  const fields = input.split('.');
  if (fields.length > 4) return { ok: false, reason: `${fields.length} fields; a Windows version has at most 4 (major.minor.build.revision)` };
  const out: [number, number, number, number] = [0, 0, 0, 0];
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i]!;
    if (f === '') return { ok: false, reason: `field ${i + 1} is empty` };
    const n = Number(f);
    if (n > MAX_FIELD) return { ok: false, reason: `field ${i + 1} is ${f}, more than ${MAX_FIELD} (a version field is 16 bits)` };
    out[i] = n;
  }
  return { ok: true, value: out };
}

export function windowsInvalidReason(input: string): string | null {
  const r = parseWindowsVersion(input);
  return r.ok ? null : r.reason;
}

/** Compares two valid Windows versions field by field; invalid input gives an unspecified order. */
export function compareWindowsVersions(a: string, b: string): -1 | 0 | 1 {
  let i = 0;
  let j = 0;
  // four fields at most: walk both strings once, reading a number per field (0 past the end)
  for (let field = 0; field < 4; field++) {
    let x = 0;
    let y = 0;
    while (i < a.length && a.charCodeAt(i) !== 46) x = x * 10 + (a.charCodeAt(i++) - 48);
    while (j < b.length && b.charCodeAt(j) !== 46) y = y * 10 + (b.charCodeAt(j++) - 48);
    if (x !== y) return x < y ? -1 : 1;
    i++;
    j++;
  }
  return 0;
}
