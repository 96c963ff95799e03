/**
 * Generic versions, for third-party applications that follow no package manager's scheme
 * (`7-Zip 23.01`, `4.10.0-beta2`, `2.0rc1`, `v1.2.10`, `5.0.0.M1`, `1.1.1w`). The exact rules:
 *
 * 1. Characters: ASCII letters, digits and the separators `.` `-` `_` `+` `~` and space. The
 *    separators are all equivalent and only end a token; several in a row count as one, and
 *    leading or trailing ones are ignored. Anything else is invalid, as is a string with no
 *    digit at all, an empty string, or one longer than 256 characters.
 * 2. Tokens are maximal runs of digits (numbers) and of letters (words); `1.0rc1` is 1, 0, rc, 1.
 *    Numbers compare by value, with any number of digits; leading zeros are ignored (`23.01` =
 *    `23.1`). Words compare case-insensitively.
 * 3. Some words are pre-releases and rank, lowest first: `dev` `snapshot` `nightly`, then
 *    `alpha`, `beta`, `milestone`, `pre` `preview`, `rc` `cr`. The single letters `a`, `b`,
 *    `m`, `c` mean alpha, beta, milestone, rc only when a digit follows at once (`1.0b2`);
 *    otherwise a single letter is an ordinary word (`1.1.1w`, a patch release of 1.1.1).
 * 4. The words `final`, `release`, `ga`, `stable` mark the release itself and are dropped
 *    (`2.5.0.Final` = `2.5.0`), and so is a `v` that starts a token and is followed by a
 *    digit (`v1.2` = `1.2`).
 * 5. Zeros right before a pre-release word are dropped (`2.0.0rc1` = `2.0rc1`), so that the
 *    pre-release lines up with the same release written with fewer fields.
 * 6. Comparison is token by token; a string that has run out reads as 0 from then on, so
 *    trailing zeros do not matter (`1.2` = `1.2.0`). At one position the kinds order as:
 *    pre-release word (by rank) < 0 < ordinary word (alphabetically) < number above 0 (by value).
 *    So `2.0rc1` < `2.0` < `2.0a` < `2.0.1`, and `1.0-sp1` > `1.0` but < `1.0.1`.
 *
 * Different strings can therefore be equal (`1.0` = `1-0` = `v1.0.0` = `1.0 Final`). There is
 * no reference implementation to test against: the tests check these rules on real-world
 * version strings.
 */
import { PatchwardenError } from '../errors.js';
import type { ParseResult } from './deb.js';

const PRE = 0; // pre-release word; `rank` orders them
const ZERO = 1; // the number 0, and what a string that has ended reads as
const WORD = 2; // any other word; `text` is its lower-case form
const NUMBER = 3; // a number above 0; `text` holds its digits without leading zeros

export interface GenericToken {
  kind: 0 | 1 | 2 | 3;
  text: string;
  rank: number;
}

const PRE_WORDS: Record<string, number> = {
  dev: 0, snapshot: 0, nightly: 0, alpha: 1, beta: 2, milestone: 3, pre: 4, preview: 4, rc: 5, cr: 5,
};
const PRE_LETTERS: Record<string, number> = { a: 1, b: 2, m: 3, c: 5 };
const RELEASE_WORDS = new Set(['final', 'release', 'ga', 'stable']);
const MAX_LENGTH = 256;

const isDigit = (c: number) => c >= 48 && c <= 57;
const isLetter = (c: number) => (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
// . - _ + ~ space
const isSeparator = (c: number) => c === 46 || c === 45 || c === 95 || c === 43 || c === 126 || c === 32;
const lookup = (table: Record<string, number>, key: string) => (Object.hasOwn(table, key) ? table[key] : undefined);

export function tokenizeGenericVersion(input: string): ParseResult<GenericToken[]> {
  if (input.length > MAX_LENGTH) return { ok: false, reason: `longer than ${MAX_LENGTH} characters` };
  const out: GenericToken[] = [];
  let digits = false;
  let i = 0;
  while (i < input.length) {
    const c = input.charCodeAt(i);
    let j = i + 1;
    if (isSeparator(c)) {
      i = j;
      continue;
    }
    if (isDigit(c)) {
      while (j < input.length && isDigit(input.charCodeAt(j))) j++;
      digits = true;
      const value = input.slice(i, j).replace(/^0+/, '');
      out.push(value === '' ? { kind: ZERO, text: '', rank: 0 } : { kind: NUMBER, text: value, rank: 0 });
    } else if (isLetter(c)) {
      while (j < input.length && isLetter(input.charCodeAt(j))) j++;
      const word = input.slice(i, j).toLowerCase();
      const digitNext = j < input.length && isDigit(input.charCodeAt(j));
      const startsToken = i === 0 || isSeparator(input.charCodeAt(i - 1));
      const dropped = RELEASE_WORDS.has(word) || (word === 'v' && digitNext && startsToken);
      if (!dropped) {
        const rank = lookup(PRE_WORDS, word) ?? (digitNext ? lookup(PRE_LETTERS, word) : undefined);
        if (rank === undefined) {
          out.push({ kind: WORD, text: word, rank: 0 });
        } else {
          while (out.length > 0 && out[out.length - 1]!.kind === ZERO) out.pop();
          out.push({ kind: PRE, text: word, rank });
        }
      }
    } else {
      return { ok: false, reason: `invalid character ${JSON.stringify(input[i])} at position ${i + 1} (allowed: letters, digits, . - _ + ~ and space)` };
    }
    i = j;
  }
  if (input.trim() === '') return { ok: false, reason: 'version string is empty' };
  if (!digits) return { ok: false, reason: 'has no number in it' };
  return { ok: true, value: out };
}

export function genericInvalidReason(input: string): string | null {
  const r = tokenizeGenericVersion(input);
  return r.ok ? null : r.reason;
}

const PAD: GenericToken = { kind: ZERO, text: '', rank: 0 };

function compareToken(a: GenericToken, b: GenericToken): number {
  if (a.kind !== b.kind) return a.kind - b.kind;
  switch (a.kind) {
    case PRE:
      return a.rank - b.rank;
    case NUMBER:
      if (a.text.length !== b.text.length) return a.text.length - b.text.length;
      return a.text < b.text ? -1 : a.text > b.text ? 1 : 0;
    case WORD:
      return a.text < b.text ? -1 : a.text > b.text ? 1 : 0;
    default:
      return 0;
  }
}

export function compareGenericTokens(a: GenericToken[], b: GenericToken[]): -1 | 0 | 1 {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const r = compareToken(a[i] ?? PAD, b[i] ?? PAD);
    if (r !== 0) return r < 0 ? -1 : 1;
  }
  return 0;
}

/** Compares two generic versions; both must be valid (check with genericInvalidReason first). */
export function compareGenericVersions(a: string, b: string): -1 | 0 | 1 {
  const ta = tokenizeGenericVersion(a);
  const tb = tokenizeGenericVersion(b);
  if (!ta.ok) throw new PatchwardenError('E_VERSION_INVALID', `invalid generic version '${a}': ${ta.reason}`);
  if (!tb.ok) throw new PatchwardenError('E_VERSION_INVALID', `invalid generic version '${b}': ${tb.reason}`);
  return compareGenericTokens(ta.value, tb.value);
}
