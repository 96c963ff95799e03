/**
 * Alpine version scheme, as apk-tools orders package versions (src/version.c of apk-tools 3;
 * apk-tools 2.x orders every version both accept the same way). The grammar, from version.c and
 * Alpine's wiki (Package policies, APKBUILD Reference):
 *
 *     digit{.digit}...{letter}{_suffix{number}}...{~hash}{-r#}
 *
 * - a version is a sequence of tokens: an initial number; numbers after '.'; one lower-case
 *   letter (only right after a number); `_suffix` with an optional number, repeated; one
 *   `~hash` of lower-case hex digits (apk-tools 3); one `-rN` (the package revision);
 * - suffixes rank alpha < beta < pre < rc < (no suffix) < cvs < svn < git < hg < p;
 * - tokens are compared in order while both strings have a token of the same kind: numbers by
 *   value, except that a number after '.' with a leading zero in either string is compared as
 *   a string ("1.02" < "1.1", the Gentoo rule); letters by code; suffixes by rank; hashes as
 *   strings; the revision by value;
 * - when one string ends or switches to another kind of token first: a pre-release suffix
 *   (alpha, beta, pre, rc) on either side makes that side older ("1.0_rc1" < "1.0"); otherwise
 *   the side whose next token comes later in the grammar is older, so more numbers beat a
 *   letter, a letter beats a suffix, any token beats the end ("1.0" < "1.0_p1" < "1.0.1",
 *   "1.0" < "1.0-r1").
 *
 * apk-tools validates with the same tokenizer (`apk version --check`): anything else is invalid.
 * We also reject what the two major versions of apk-tools disagree on (an empty `_`, '.' or `-r`
 * without a number; apk-tools 2 accepts them, 3 does not) and numbers beyond 64 bits, which apk
 * silently wraps. There is no apk-tools package on Debian, so the tests check these rules
 * directly rather than against apk itself.
 */
import { PatchwardenError } from '../errors.js';
import type { ParseResult } from './deb.js';

// token kinds in grammar order: the order itself decides comparisons (see compareTokens)
const T = { InitialDigit: 0, Digit: 1, Letter: 2, Suffix: 3, SuffixNo: 4, CommitHash: 5, RevisionNo: 6, End: 7 } as const;
type Kind = (typeof T)[keyof typeof T];

// rank of each suffix; NONE (the release itself) sits between rc and cvs
const SUFFIXES: Record<string, number> = { alpha: 0, beta: 1, pre: 2, rc: 3, cvs: 5, svn: 6, git: 7, hg: 8, p: 9 };
const SUFFIX_NONE = 4;

export interface ApkToken {
  type: Kind;
  /** the token's text: digits without the '.', the letter, the suffix name or the hash */
  text: string;
  suffix: number;
}

const UINT64_MAX = '18446744073709551615';

function tooBig(digits: string): boolean {
  const d = digits.replace(/^0+/, '');
  return d.length > UINT64_MAX.length || (d.length === UINT64_MAX.length && d > UINT64_MAX);
}

/** Tokenizes as apk's token_first()/token_next(); the reason says where it stops being valid. */
export function tokenizeApkVersion(input: string): ParseResult<ApkToken[]> {
  const tokens: ApkToken[] = [];
  const fail = (reason: string): ParseResult<ApkToken[]> => ({ ok: false, reason });
  const digitsAt = (i: number) => {
    let j = i;
    while (j < input.length && input.charCodeAt(j) >= 48 && input.charCodeAt(j) <= 57) j++;
    return j;
  };
  if (input === '') return fail('version string is empty');
  let i = digitsAt(0);
  if (i === 0) return fail('version does not start with a digit');
  tokens.push({ type: T.InitialDigit, text: input.slice(0, i), suffix: SUFFIX_NONE });
  let last: Kind = T.InitialDigit;
  while (i < input.length) {
    const c = input[i]!;
    const at = `at position ${i + 1}`;
    if (c >= 'a' && c <= 'z') {
      if (last > T.Digit) return fail(`letter '${c}' ${at} may only follow a number`);
      tokens.push({ type: T.Letter, text: c, suffix: SUFFIX_NONE });
      last = T.Letter;
      i++;
    } else if (c === '.' || (c >= '0' && c <= '9')) {
      // digits right after a suffix are its number; '.' starts a version number
      if (c === '.' && last > T.Digit) return fail(`'.' ${at} may not follow a letter, suffix, hash or revision`);
      const type: Kind | null = last === T.Suffix && c !== '.' ? T.SuffixNo : last <= T.Digit ? T.Digit : null;
      if (type === null) return fail(`number ${at} is not allowed here`);
      const start = c === '.' ? i + 1 : i;
      const end = digitsAt(start);
      if (end === start) return fail(`'.' ${at} is not followed by a number`);
      tokens.push({ type, text: input.slice(start, end), suffix: SUFFIX_NONE });
      last = type;
      i = end;
    } else if (c === '_') {
      if (last > T.SuffixNo) return fail(`suffix ${at} may not follow a hash or revision`);
      let end = i + 1;
      while (end < input.length && input[end]! >= 'a' && input[end]! <= 'z') end++;
      const name = input.slice(i + 1, end);
      if (name === '') return fail(`'_' ${at} is not followed by a suffix name`);
      const rank = Object.hasOwn(SUFFIXES, name) ? SUFFIXES[name] : undefined;
      if (rank === undefined) {
        return fail(`unknown suffix '_${name}' ${at} (apk knows _alpha, _beta, _pre, _rc, _cvs, _svn, _git, _hg, _p)`);
      }
      tokens.push({ type: T.Suffix, text: name, suffix: rank });
      last = T.Suffix;
      i = end;
    } else if (c === '~') {
      if (last >= T.CommitHash) return fail(`'~' ${at} may appear only once, before the revision`);
      let end = i + 1;
      while (end < input.length && /[0-9a-f]/.test(input[end]!)) end++;
      if (end === i + 1) return fail(`'~' ${at} is not followed by a lower-case hex commit hash`);
      tokens.push({ type: T.CommitHash, text: input.slice(i + 1, end), suffix: SUFFIX_NONE });
      last = T.CommitHash;
      i = end;
    } else if (c === '-') {
      if (last >= T.RevisionNo) return fail(`second revision ${at}`);
      if (input[i + 1] !== 'r') return fail(`'-' ${at} must start a revision '-rN'`);
      const end = digitsAt(i + 2);
      if (end === i + 2) return fail(`revision ${at} has no number ('-r' needs digits, e.g. -r0)`);
      tokens.push({ type: T.RevisionNo, text: input.slice(i + 2, end), suffix: SUFFIX_NONE });
      last = T.RevisionNo;
      i = end;
    } else {
      return fail(`invalid character ${JSON.stringify(c)} ${at}`);
    }
  }
  for (const t of tokens) {
    const numeric = t.type === T.InitialDigit || t.type === T.Digit || t.type === T.SuffixNo || t.type === T.RevisionNo;
    if (numeric && tooBig(t.text)) return fail(`number ${t.text} is larger than apk's 64-bit limit`);
  }
  return { ok: true, value: tokens };
}

export function apkInvalidReason(input: string): string | null {
  const r = tokenizeApkVersion(input);
  return r.ok ? null : r.reason;
}

function cmpNumber(a: string, b: string): number {
  const x = a.replace(/^0+/, '');
  const y = b.replace(/^0+/, '');
  if (x.length !== y.length) return x.length - y.length;
  return x < y ? -1 : x > y ? 1 : 0;
}

// apk_blob_sort(): memcmp over the shorter length, then the shorter one first
const cmpString = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** token_cmp() of version.c; both tokens are of the same type. */
function tokenCmp(a: ApkToken, b: ApkToken): number {
  switch (a.type) {
    case T.Digit:
      if (a.text.charCodeAt(0) === 48 || b.text.charCodeAt(0) === 48) return cmpString(a.text, b.text);
      return cmpNumber(a.text, b.text);
    case T.InitialDigit:
    case T.SuffixNo:
    case T.RevisionNo:
      return cmpNumber(a.text, b.text);
    case T.Letter:
      return a.text.charCodeAt(0) - b.text.charCodeAt(0);
    case T.Suffix:
      return a.suffix - b.suffix;
    default:
      return cmpString(a.text, b.text);
  }
}

const END: ApkToken = { type: T.End, text: '', suffix: SUFFIX_NONE };

/** apk_version_compare() on two tokenized versions. */
function compareTokens(ta: ApkToken[], tb: ApkToken[]): -1 | 0 | 1 {
  let i = 0;
  for (;;) {
    const a = ta[i] ?? END;
    const b = tb[i] ?? END;
    if (a.type !== b.type) {
      // the first difference in shape decides: a pre-release suffix is older than anything,
      // otherwise the string that goes on with an earlier kind of token is newer
      if (a.type === T.Suffix && a.suffix < SUFFIX_NONE) return -1;
      if (b.type === T.Suffix && b.suffix < SUFFIX_NONE) return 1;
      return a.type > b.type ? -1 : 1;
    }
    if (a.type === T.End) return 0;
    const r = tokenCmp(a, b);
    if (r !== 0) return r < 0 ? -1 : 1;
    i++;
  }
}

/** Compares two apk versions; both must be valid (check with apkInvalidReason first). */
export function compareApkVersions(a: string, b: string): -1 | 0 | 1 {
  const ta = tokenizeApkVersion(a);
  const tb = tokenizeApkVersion(b);
  if (!ta.ok) throw new PatchwardenError('E_VERSION_INVALID', `invalid apk version '${a}': ${ta.reason}`);
  if (!tb.ok) throw new PatchwardenError('E_VERSION_INVALID', `invalid apk version '${b}': ${tb.reason}`);
  return compareTokens(ta.value, tb.value);
}
