/**
 * Severities of feed records. OSV gives CVSS vectors, not scores: the base score is computed
 * here with the formulas of the CVSS v3.1 and v2 specifications (FIRST) and rated with their
 * bands. CVSS v4 needs the specification's table of about 270 macro-vector scores, so a v4
 * vector is not scored and the next source decides. Debian's own judgement (the security
 * tracker's urgency) maps onto the same scale. Nothing known: `medium`, as the issue asks, so
 * that an unrated vulnerability is neither hidden at the bottom nor shouted at the top.
 */
import type { Severity } from '@patchwarden/core';

export const DEFAULT_SEVERITY: Severity = 'medium';

const RANK: Record<Severity, number> = { critical: 5, high: 4, medium: 3, low: 2, none: 1, unknown: 0 };

export function maxSeverity(a: Severity, b: Severity): Severity {
  return RANK[b] > RANK[a] ? b : a;
}

/** The metrics of a vector `K:V/K:V…` (after an optional `CVSS:3.x/` prefix), or null. */
function metrics(vector: string, keys: readonly string[]): Map<string, string> | null {
  const m = new Map<string, string>();
  for (const part of vector.split('/')) {
    const [k, v, extra] = part.split(':');
    if (k === undefined || v === undefined || extra !== undefined || m.has(k)) return null;
    m.set(k, v);
  }
  for (const k of keys) if (!m.has(k)) return null;
  return m;
}

/** CVSS v3.1 Roundup: the smallest one-decimal number ≥ x, immune to floating-point noise. */
function roundUp(x: number): number {
  const i = Math.round(x * 100000);
  return i % 10000 === 0 ? i / 100000 : (Math.floor(i / 10000) + 1) / 10;
}

const V3 = {
  AV: { N: 0.85, A: 0.62, L: 0.55, P: 0.2 },
  AC: { L: 0.77, H: 0.44 },
  UI: { N: 0.85, R: 0.62 },
  CIA: { H: 0.56, L: 0.22, N: 0 },
} as const;

/** The base score of a CVSS v3.0/v3.1 vector, or null when it is not one. */
export function cvss3BaseScore(vector: string): number | null {
  const prefix = /^CVSS:3\.[01]\//.exec(vector);
  if (!prefix) return null;
  const m = metrics(vector.slice(prefix[0].length), ['AV', 'AC', 'PR', 'UI', 'S', 'C', 'I', 'A']);
  if (!m) return null;
  const pick = <T extends Record<string, number>>(table: T, k: string): number | null => (Object.hasOwn(table, m.get(k)!) ? table[m.get(k)! as keyof T]! : null);
  const scope = m.get('S');
  if (scope !== 'U' && scope !== 'C') return null;
  const changed = scope === 'C';
  const prTable = changed ? { N: 0.85, L: 0.68, H: 0.5 } : { N: 0.85, L: 0.62, H: 0.27 };
  const [av, ac, pr, ui, c, i, a] = [pick(V3.AV, 'AV'), pick(V3.AC, 'AC'), pick(prTable, 'PR'), pick(V3.UI, 'UI'), pick(V3.CIA, 'C'), pick(V3.CIA, 'I'), pick(V3.CIA, 'A')];
  if (av === null || ac === null || pr === null || ui === null || c === null || i === null || a === null) return null;
  const iss = 1 - (1 - c) * (1 - i) * (1 - a);
  const impact = changed ? 7.52 * (iss - 0.029) - 3.25 * Math.pow(iss - 0.02, 15) : 6.42 * iss;
  if (impact <= 0) return 0;
  const exploitability = 8.22 * av * ac * pr * ui;
  return roundUp(Math.min(changed ? 1.08 * (impact + exploitability) : impact + exploitability, 10));
}

const V2 = {
  AV: { L: 0.395, A: 0.646, N: 1 },
  AC: { H: 0.35, M: 0.61, L: 0.71 },
  Au: { M: 0.45, S: 0.56, N: 0.704 },
  CIA: { N: 0, P: 0.275, C: 0.66 },
} as const;

/** The base score of a CVSS v2 vector (`AV:N/AC:L/Au:N/C:P/I:P/A:P`), or null. */
export function cvss2BaseScore(vector: string): number | null {
  const m = metrics(vector.replace(/^\(|\)$/g, ''), ['AV', 'AC', 'Au', 'C', 'I', 'A']);
  if (!m || m.size !== 6) return null;
  const pick = <T extends Record<string, number>>(table: T, k: string): number | null => (Object.hasOwn(table, m.get(k)!) ? table[m.get(k)! as keyof T]! : null);
  const [av, ac, au, c, i, a] = [pick(V2.AV, 'AV'), pick(V2.AC, 'AC'), pick(V2.Au, 'Au'), pick(V2.CIA, 'C'), pick(V2.CIA, 'I'), pick(V2.CIA, 'A')];
  if (av === null || ac === null || au === null || c === null || i === null || a === null) return null;
  const impact = 10.41 * (1 - (1 - c) * (1 - i) * (1 - a));
  const exploitability = 20 * av * ac * au;
  const f = impact === 0 ? 0 : 1.176;
  return Math.round((0.6 * impact + 0.4 * exploitability - 1.5) * f * 10) / 10;
}

/** CVSS v3 qualitative ratings (v2 has no critical band: NVD rates 7.0–10.0 high). */
export function ratingOf(score: number, version: 2 | 3): Severity {
  if (score === 0) return 'none';
  if (score < 4) return 'low';
  if (score < 7) return 'medium';
  if (version === 2 || score < 9) return 'high';
  return 'critical';
}

/** One OSV `severity` entry; null when it cannot be scored (CVSS v4, an unknown type). */
export function osvSeverity(entry: { type: string; score: string }): Severity | null {
  switch (entry.type) {
    case 'CVSS_V3': {
      const s = cvss3BaseScore(entry.score);
      return s === null ? null : ratingOf(s, 3);
    }
    case 'CVSS_V2': {
      const s = cvss2BaseScore(entry.score);
      return s === null ? null : ratingOf(s, 2);
    }
    case 'Ubuntu':
      return wordSeverity(entry.score);
    default:
      return null;
  }
}

/**
 * A severity word as feeds write it: `database_specific.severity` (GHSA: LOW, MODERATE, HIGH,
 * CRITICAL), Ubuntu's priorities, the Debian tracker's urgencies (`low**`: the tracker took it
 * from NVD). Debian's `unimportant` means the Debian binaries are not affected in practice:
 * `none`. `not yet assigned` and `end-of-life` say nothing of the impact: null.
 */
export function wordSeverity(word: string): Severity | null {
  switch (word.replace(/\*+$/, '').trim().toLowerCase()) {
    case 'critical':
      return 'critical';
    case 'high':
    case 'important':
      return 'high';
    case 'medium':
    case 'moderate':
      return 'medium';
    case 'low':
    case 'negligible':
      return 'low';
    case 'unimportant':
      return 'none';
    default:
      return null;
  }
}

/** Debian tracker urgencies that are known but rate nothing. */
export const UNRATED_URGENCIES = new Set(['not yet assigned', 'end-of-life', '']);
