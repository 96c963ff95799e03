/**
 * RPM version scheme: `[epoch:]version[-release]`, ordered exactly as rpm 4.18 does.
 *
 * - Segments: rpmvercmp() (rpmio/rpmvercmp.c), reproduced step by step below.
 * - Whole strings: what `rpm.vercmp()` in rpm's Lua does (rpmio/rpmlua.c → rpmverParse() and
 *   rpmverCmp() in lib/rpmver.c). parseEVR() takes leading digits followed by ':' as the epoch
 *   and the text after the LAST '-' as the release; a missing epoch counts as "0"; a missing
 *   release is older than any release ("1.0" < "1.0-1"), not a wildcard as in dependency ranges.
 * - Validity: rpmbuild's checks on the Epoch, Version and Release tags (build/parsePreamble.c):
 *   an unsigned 32-bit epoch; version and release from alphanumerics and `._+~^` (rpmCharCheck
 *   with ALLOWED_CHARS_VERREL, `%{}` being unexpanded macros), never `..`, never empty.
 *
 * Comparison works on string offsets, without allocation, like the Debian scheme.
 */
import type { ParseResult } from './deb.js';

export interface RpmVersion {
  /** null when the string has no epoch (rpm then compares it as 0) */
  epoch: number | null;
  version: string;
  /** null when the string has no release */
  release: string | null;
}

const isDigit = (c: number) => c >= 48 && c <= 57;
const isAlpha = (c: number) => (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
const isAlnum = (c: number) => isDigit(c) || isAlpha(c);
const TILDE = 126;
const CARET = 94;
const UINT32_MAX = 4294967295;

// rpmbuild: risalnum() or one of "._+~^"
const allowed = (c: number) => isAlnum(c) || c === 46 || c === 95 || c === 43 || c === TILDE || c === CARET;

function checkField(what: string, s: string): string | null {
  if (s === '') return `${what} is empty`;
  for (let i = 0; i < s.length; i++) {
    if (!allowed(s.charCodeAt(i))) {
      return `invalid character ${JSON.stringify(s[i])} in ${what} (rpm allows letters, digits and . _ + ~ ^)`;
    }
  }
  if (s.includes('..')) return `illegal sequence ".." in ${what}`;
  return null;
}

/** Parses and validates `[epoch:]version[-release]` as rpmbuild would accept it. */
export function parseRpmVersion(input: string): ParseResult<RpmVersion> {
  if (input === '') return { ok: false, reason: 'version string is empty' };
  let rest = input;
  let epoch: number | null = null;
  const colon = input.indexOf(':');
  if (colon !== -1) {
    const e = input.slice(0, colon);
    if (e === '') return { ok: false, reason: 'epoch is empty (write it, or leave out the colon)' };
    if (!/^[0-9]+$/.test(e)) return { ok: false, reason: `epoch '${e}' is not an unsigned number` };
    const n = Number(e);
    if (n > UINT32_MAX) return { ok: false, reason: `epoch ${e} is larger than rpm's 32-bit limit` };
    epoch = n;
    rest = input.slice(colon + 1);
    if (rest.includes(':')) return { ok: false, reason: "more than one ':' (only the epoch is followed by one)" };
  }
  let version = rest;
  let release: string | null = null;
  const hyphen = rest.indexOf('-');
  if (hyphen !== -1) {
    if (rest.indexOf('-', hyphen + 1) !== -1) {
      return { ok: false, reason: "more than one '-' (rpm forbids '-' inside version and release)" };
    }
    version = rest.slice(0, hyphen);
    release = rest.slice(hyphen + 1);
  }
  const bad = checkField('version', version) ?? (release === null ? null : checkField('release', release));
  if (bad !== null) return { ok: false, reason: bad };
  return { ok: true, value: { epoch, version, release } };
}

export function rpmInvalidReason(input: string): string | null {
  const r = parseRpmVersion(input);
  return r.ok ? null : r.reason;
}

/** Compares a[as, ae) with b[bs, be) as C's strcmp() compares two NUL-terminated segments. */
function strcmpRange(a: string, as: number, ae: number, b: string, bs: number, be: number): number {
  const n = Math.min(ae - as, be - bs);
  for (let k = 0; k < n; k++) {
    const d = a.charCodeAt(as + k) - b.charCodeAt(bs + k);
    if (d !== 0) return d;
  }
  return ae - as - (be - bs);
}

function sameRange(a: string, as: number, ae: number, b: string, bs: number, be: number): boolean {
  if (ae - as !== be - bs) return false;
  for (let k = 0; k < ae - as; k++) if (a.charCodeAt(as + k) !== b.charCodeAt(bs + k)) return false;
  return true;
}

/** rpmvercmp() over a[as, ae) and b[bs, be); the comments are rpm's own steps. */
function vercmpRange(a: string, as: number, ae: number, b: string, bs: number, be: number): -1 | 0 | 1 {
  if (sameRange(a, as, ae, b, bs, be)) return 0;
  let one = as;
  let two = bs;
  while (one < ae || two < be) {
    // skip separators, but not '~' and '^', which carry meaning
    while (one < ae && !isAlnum(a.charCodeAt(one)) && a.charCodeAt(one) !== TILDE && a.charCodeAt(one) !== CARET) one++;
    while (two < be && !isAlnum(b.charCodeAt(two)) && b.charCodeAt(two) !== TILDE && b.charCodeAt(two) !== CARET) two++;
    const c1 = one < ae ? a.charCodeAt(one) : 0;
    const c2 = two < be ? b.charCodeAt(two) : 0;

    // '~' sorts before everything, even the end of the string
    if (c1 === TILDE || c2 === TILDE) {
      if (c1 !== TILDE) return 1;
      if (c2 !== TILDE) return -1;
      one++;
      two++;
      continue;
    }
    // '^' sorts after the end of the string (the base version) but before anything else
    if (c1 === CARET || c2 === CARET) {
      if (one >= ae) return -1;
      if (two >= be) return 1;
      if (c1 !== CARET) return 1;
      if (c2 !== CARET) return -1;
      one++;
      two++;
      continue;
    }
    if (!(one < ae && two < be)) break;

    // the segment type is decided by the first string: all digits or all letters
    let e1 = one;
    let e2 = two;
    const isnum = isDigit(c1);
    if (isnum) {
      while (e1 < ae && isDigit(a.charCodeAt(e1))) e1++;
      while (e2 < be && isDigit(b.charCodeAt(e2))) e2++;
    } else {
      while (e1 < ae && isAlpha(a.charCodeAt(e1))) e1++;
      while (e2 < be && isAlpha(b.charCodeAt(e2))) e2++;
    }
    // the second string has no segment of that type: a number is newer than letters
    if (e2 === two) return isnum ? 1 : -1;
    if (isnum) {
      while (one < e1 && a.charCodeAt(one) === 48) one++;
      while (two < e2 && b.charCodeAt(two) === 48) two++;
      // more digits (without leading zeros) is the larger number: no overflow on long runs
      if (e1 - one > e2 - two) return 1;
      if (e2 - two > e1 - one) return -1;
    }
    const rc = strcmpRange(a, one, e1, b, two, e2);
    if (rc !== 0) return rc < 0 ? -1 : 1;
    one = e1;
    two = e2;
  }
  // all segments equal: the one with characters left (separators) is newer
  if (one >= ae && two >= be) return 0;
  return one >= ae ? -1 : 1;
}

/** rpm's rpmvercmp() on two version (or release) strings. */
export function rpmvercmp(a: string, b: string): -1 | 0 | 1 {
  return vercmpRange(a, 0, a.length, b, 0, b.length);
}

interface Evr {
  ee: number; // the epoch is [0, ee); empty when absent (then compared as "0")
  vs: number;
  ve: number;
  rs: number; // release [rs, re); rs === -1 when there is none
  re: number;
}

// Scratch objects: comparison is synchronous, so reusing them saves two allocations per call.
const EA: Evr = { ee: 0, vs: 0, ve: 0, rs: 0, re: 0 };
const EB: Evr = { ee: 0, vs: 0, ve: 0, rs: 0, re: 0 };

/** parseEVR() of lib/rpmver.c, as offsets. */
function splitEvr(s: string, out: Evr): void {
  let i = 0;
  while (i < s.length && isDigit(s.charCodeAt(i))) i++;
  const hyphen = s.lastIndexOf('-');
  if (i < s.length && s.charCodeAt(i) === 58 /* : */) {
    out.ee = i;
    out.vs = i + 1;
  } else {
    out.ee = 0;
    out.vs = 0;
  }
  if (hyphen >= i) {
    out.ve = hyphen;
    out.rs = hyphen + 1;
    out.re = s.length;
  } else {
    out.ve = s.length;
    out.rs = -1;
    out.re = -1;
  }
}

const ZERO = '0';

/**
 * Compares two `[epoch:]version[-release]` strings as rpm.vercmp() does; returns -1, 0 or 1.
 * Both must be valid (check untrusted input with parseRpmVersion first).
 */
export function compareRpmVersions(a: string, b: string): -1 | 0 | 1 {
  splitEvr(a, EA);
  splitEvr(b, EB);
  // an absent or empty epoch is "0"
  let rc = vercmpRange(EA.ee > 0 ? a : ZERO, 0, EA.ee > 0 ? EA.ee : 1, EB.ee > 0 ? b : ZERO, 0, EB.ee > 0 ? EB.ee : 1);
  if (rc !== 0) return rc;
  rc = vercmpRange(a, EA.vs, EA.ve, b, EB.vs, EB.ve);
  if (rc !== 0) return rc;
  // compare_values(): no release is older than any release
  if (EA.rs === -1 || EB.rs === -1) return EA.rs === EB.rs ? 0 : EA.rs === -1 ? -1 : 1;
  return vercmpRange(a, EA.rs, EA.re, b, EB.rs, EB.re);
}
