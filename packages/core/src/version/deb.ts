/**
 * Debian version scheme: exactly dpkg's parseversion() and dpkg_version_compare()
 * (lib/dpkg/parsehelp.c, lib/dpkg/version.c). Comparison works on string offsets with no
 * allocation, because compliance evaluation compares millions of pairs.
 */
import { PatchwardenError } from '../errors.js';

export interface DebVersion {
  epoch: number;
  upstream: string;
  revision: string;
}

export type ParseResult<T> = { ok: true; value: T } | { ok: false; reason: string };

const TAB = 9;
const SPACE = 32;
const isBlank = (c: number) => c === SPACE || c === TAB;
const isDigit = (c: number) => c >= 48 && c <= 57;
const isAlpha = (c: number) => (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
const INT_MAX = 2147483647;

/**
 * Parses and validates a version as dpkg does. dpkg only warns about a version that does not
 * start with a digit or holds an invalid character; we reject those too, because such a
 * version never comes from a well-formed archive and must not reach a package manager.
 */
export function parseDebVersion(input: string): ParseResult<DebVersion> {
  let start = 0;
  let end = input.length;
  while (start < end && isBlank(input.charCodeAt(start))) start++;
  if (start === end) return { ok: false, reason: 'version string is empty' };
  let stop = start;
  while (stop < end && !isBlank(input.charCodeAt(stop))) stop++;
  for (let i = stop; i < end; i++) {
    if (!isBlank(input.charCodeAt(i))) return { ok: false, reason: 'version string has embedded spaces' };
  }
  end = stop;

  let epoch = 0;
  let vStart = start;
  const colon = input.indexOf(':', start);
  if (colon !== -1 && colon < end) {
    // strtol(): an optional sign, then digits that must run exactly up to the colon
    let i = start;
    let negative = false;
    const c0 = input.charCodeAt(i);
    if (c0 === 43 /* + */ || c0 === 45 /* - */) {
      negative = c0 === 45;
      i++;
    }
    const digitsStart = i;
    let value = 0;
    while (i < end && isDigit(input.charCodeAt(i))) {
      value = value * 10 + (input.charCodeAt(i) - 48);
      i++;
    }
    if (i === digitsStart) return { ok: false, reason: 'epoch in version is empty' };
    if (i !== colon) return { ok: false, reason: 'epoch in version is not number' };
    if (negative && value !== 0) return { ok: false, reason: 'epoch in version is negative' };
    if (value > INT_MAX) return { ok: false, reason: 'epoch in version is too big' };
    if (colon + 1 === end) return { ok: false, reason: 'nothing after colon in version number' };
    epoch = value;
    vStart = colon + 1;
  }

  const whole = input.slice(vStart, end);
  const hyphen = whole.lastIndexOf('-');
  let upstream = whole;
  let revision = '';
  if (hyphen !== -1) {
    upstream = whole.slice(0, hyphen);
    revision = whole.slice(hyphen + 1);
    if (revision === '') return { ok: false, reason: 'revision number is empty' };
  }
  if (upstream === '') return { ok: false, reason: 'version number is empty' };
  if (!isDigit(upstream.charCodeAt(0))) return { ok: false, reason: 'version number does not start with digit' };
  for (let i = 1; i < upstream.length; i++) {
    const c = upstream.charCodeAt(i);
    // . + - ~ :
    if (!isDigit(c) && !isAlpha(c) && c !== 46 && c !== 43 && c !== 45 && c !== 126 && c !== 58) {
      return { ok: false, reason: `invalid character '${upstream[i]}' in version number` };
    }
  }
  for (let i = 0; i < revision.length; i++) {
    const c = revision.charCodeAt(i);
    if (!isDigit(c) && !isAlpha(c) && c !== 46 && c !== 43 && c !== 126) {
      return { ok: false, reason: `invalid character '${revision[i]}' in revision number` };
    }
  }
  return { ok: true, value: { epoch, upstream, revision } };
}

export function isValidDebVersion(input: string): boolean {
  return parseDebVersion(input).ok;
}

export function assertDebVersion(input: string): DebVersion {
  const r = parseDebVersion(input);
  if (!r.ok) {
    throw new PatchwardenError('E_VERSION_INVALID', `invalid Debian version '${input}': ${r.reason}`, {
      hint: 'a Debian version is [epoch:]upstream[-revision], upstream starting with a digit',
    });
  }
  return r.value;
}

// order() of dpkg: digits sort as 0 (they are handled apart), letters by code, '~' before
// everything including the end of the string, other characters after all letters.
function order(c: number): number {
  if (c !== c) return 0; // NaN: past the end of the range
  if (isDigit(c)) return 0;
  if (isAlpha(c)) return c;
  if (c === 126) return -1;
  return c + 256;
}

/** dpkg's verrevcmp() over a[as, ae) and b[bs, be). */
function verrevcmp(a: string, as: number, ae: number, b: string, bs: number, be: number): number {
  let i = as;
  let j = bs;
  while (i < ae || j < be) {
    let firstDiff = 0;
    while ((i < ae && !isDigit(a.charCodeAt(i))) || (j < be && !isDigit(b.charCodeAt(j)))) {
      const ac = i < ae ? order(a.charCodeAt(i)) : 0;
      const bc = j < be ? order(b.charCodeAt(j)) : 0;
      if (ac !== bc) return ac - bc;
      i++;
      j++;
    }
    while (i < ae && a.charCodeAt(i) === 48) i++;
    while (j < be && b.charCodeAt(j) === 48) j++;
    while (i < ae && j < be && isDigit(a.charCodeAt(i)) && isDigit(b.charCodeAt(j))) {
      if (firstDiff === 0) firstDiff = a.charCodeAt(i) - b.charCodeAt(j);
      i++;
      j++;
    }
    if (i < ae && isDigit(a.charCodeAt(i))) return 1;
    if (j < be && isDigit(b.charCodeAt(j))) return -1;
    if (firstDiff !== 0) return firstDiff;
  }
  return 0;
}

interface Bounds {
  epoch: number;
  vs: number;
  ve: number;
  rs: number;
  re: number;
}

// Scratch objects: compareDebVersions is re-entrant-free (synchronous), so reusing them avoids
// two allocations per comparison on the hot path.
const BA: Bounds = { epoch: 0, vs: 0, ve: 0, rs: 0, re: 0 };
const BB: Bounds = { epoch: 0, vs: 0, ve: 0, rs: 0, re: 0 };

function bounds(s: string, out: Bounds): void {
  let start = 0;
  let end = s.length;
  while (start < end && isBlank(s.charCodeAt(start))) start++;
  while (end > start && isBlank(s.charCodeAt(end - 1))) end--;
  let epoch = 0;
  let vs = start;
  const colon = s.indexOf(':', start);
  if (colon !== -1 && colon < end) {
    let i = start;
    if (s.charCodeAt(i) === 43) i++;
    for (; i < colon; i++) epoch = epoch * 10 + (s.charCodeAt(i) - 48);
    vs = colon + 1;
  }
  const hyphen = s.lastIndexOf('-', end - 1);
  out.epoch = epoch;
  out.vs = vs;
  if (hyphen >= vs) {
    out.ve = hyphen;
    out.rs = hyphen + 1;
    out.re = end;
  } else {
    out.ve = end;
    out.rs = end;
    out.re = end;
  }
}

function sign(n: number): -1 | 0 | 1 {
  return n < 0 ? -1 : n > 0 ? 1 : 0;
}

/**
 * Compares two Debian versions as dpkg does; returns -1, 0 or 1. Both must be valid (check
 * untrusted input with parseDebVersion first): an invalid string gives an unspecified order.
 */
export function compareDebVersions(a: string, b: string): -1 | 0 | 1 {
  bounds(a, BA);
  bounds(b, BB);
  if (BA.epoch !== BB.epoch) return BA.epoch > BB.epoch ? 1 : -1;
  const r = verrevcmp(a, BA.vs, BA.ve, b, BB.vs, BB.ve);
  if (r !== 0) return sign(r);
  return sign(verrevcmp(a, BA.rs, BA.re, b, BB.rs, BB.re));
}
