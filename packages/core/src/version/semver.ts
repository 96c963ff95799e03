/**
 * Semantic Versioning 2.0.0 (semver.org): `MAJOR.MINOR.PATCH[-prerelease][+build]`.
 *
 * Precedence (spec item 11): MAJOR, MINOR, PATCH as numbers; a version with a pre-release is
 * lower than the same version without; pre-releases compare identifier by identifier, numeric
 * ones as numbers, alphanumeric ones in ASCII order, numeric below alphanumeric, and a shorter
 * list below a longer one that starts the same; build metadata is ignored (`1.0.0+a` = `1.0.0+b`).
 *
 * The grammar is the spec's strict one (no leading zeros in numbers, no empty identifiers, no
 * `v` prefix, no surrounding spaces). Two limits keep every version we accept comparable the
 * same way by npm's `semver` package, the tests' oracle and the tool most of our users' other
 * tools use: numbers up to 2^53 − 1 (npm rejects larger MAJOR/MINOR/PATCH and compares larger
 * pre-release numbers as text) and at most 256 characters (npm's MAX_LENGTH).
 */
import { PatchwardenError } from '../errors.js';
import type { ParseResult } from './deb.js';

export interface SemanticVersion {
  major: number;
  minor: number;
  patch: number;
  prerelease: (string | number)[];
  build: string[];
}

const MAX_LENGTH = 256;
const NUM = /^(0|[1-9][0-9]*)$/;
const IDENT = /^[0-9A-Za-z-]+$/;

function number(what: string, s: string): number | string {
  if (!NUM.test(s)) {
    return s === '' ? `${what} is empty` : /^[0-9]+$/.test(s) ? `${what} '${s}' has a leading zero` : `${what} '${s}' is not a number`;
  }
  const n = Number(s);
  if (!Number.isSafeInteger(n)) return `${what} ${s} is larger than ${Number.MAX_SAFE_INTEGER}`;
  return n;
}

export function parseSemVer(input: string): ParseResult<SemanticVersion> {
  if (input === '') return { ok: false, reason: 'version string is empty' };
  if (input.length > MAX_LENGTH) return { ok: false, reason: `longer than ${MAX_LENGTH} characters` };
  if (input.trim() !== input) return { ok: false, reason: 'has leading or trailing white space' };
  if (/^[vV=]/.test(input)) return { ok: false, reason: `a leading '${input[0]}' is not part of a semantic version (write ${input.slice(1)})` };
  const plus = input.indexOf('+');
  const head = plus === -1 ? input : input.slice(0, plus);
  const build = plus === -1 ? [] : input.slice(plus + 1).split('.');
  const hyphen = head.indexOf('-');
  const core = hyphen === -1 ? head : head.slice(0, hyphen);
  const pre = hyphen === -1 ? [] : head.slice(hyphen + 1).split('.');
  const parts = core.split('.');
  if (parts.length !== 3) return { ok: false, reason: `'${core}' is not MAJOR.MINOR.PATCH (three numbers)` };
  const nums: number[] = [];
  for (const [k, what] of ['major', 'minor', 'patch'].entries()) {
    const n = number(what, parts[k]!);
    if (typeof n === 'string') return { ok: false, reason: n };
    nums.push(n);
  }
  const prerelease: (string | number)[] = [];
  for (const id of pre) {
    if (id === '') return { ok: false, reason: 'empty pre-release identifier' };
    if (!IDENT.test(id)) return { ok: false, reason: `pre-release identifier '${id}' may hold only [0-9A-Za-z-]` };
    if (/^[0-9]+$/.test(id)) {
      const n = number('numeric pre-release identifier', id);
      if (typeof n === 'string') return { ok: false, reason: n };
      prerelease.push(n);
    } else {
      prerelease.push(id);
    }
  }
  for (const id of build) {
    if (id === '') return { ok: false, reason: 'empty build identifier' };
    if (!IDENT.test(id)) return { ok: false, reason: `build identifier '${id}' may hold only [0-9A-Za-z-]` };
  }
  return { ok: true, value: { major: nums[0]!, minor: nums[1]!, patch: nums[2]!, prerelease, build } };
}

export function semverInvalidReason(input: string): string | null {
  const r = parseSemVer(input);
  return r.ok ? null : r.reason;
}

function cmp<T extends string | number>(a: T, b: T): -1 | 0 | 1 {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** SemVer 2.0.0 precedence of two parsed versions. */
export function compareParsedSemVer(a: SemanticVersion, b: SemanticVersion): -1 | 0 | 1 {
  const main = cmp(a.major, b.major) || cmp(a.minor, b.minor) || cmp(a.patch, b.patch);
  if (main !== 0) return main;
  const pa = a.prerelease;
  const pb = b.prerelease;
  if (pa.length === 0 || pb.length === 0) return pa.length === pb.length ? 0 : pa.length === 0 ? 1 : -1;
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i];
    const y = pb[i];
    if (x === undefined || y === undefined) return x === undefined ? -1 : 1;
    if (typeof x !== typeof y) return typeof x === 'number' ? -1 : 1;
    const r = cmp(x, y);
    if (r !== 0) return r;
  }
  return 0;
}

/** Compares two semantic versions; both must be valid (check with semverInvalidReason first). */
export function compareSemVer(a: string, b: string): -1 | 0 | 1 {
  const pa = parseSemVer(a);
  const pb = parseSemVer(b);
  if (!pa.ok) throw new PatchwardenError('E_VERSION_INVALID', `invalid semver version '${a}': ${pa.reason}`);
  if (!pb.ok) throw new PatchwardenError('E_VERSION_INVALID', `invalid semver version '${b}': ${pb.reason}`);
  return compareParsedSemVer(pa.value, pb.value);
}
