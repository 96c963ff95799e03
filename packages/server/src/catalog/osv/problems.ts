/**
 * What a JSON feed import (OSV records, the Debian security tracker) found wrong. Unlike the
 * line-based apt indexes, a JSON record's place is a JSON path (`$.affected[0].package.name`) or,
 * when the file is not even JSON, a byte offset: `position` holds whichever applies.
 */
import { MAX_LISTED_PROBLEMS } from '../apt/problems.js';

export { quote } from '../apt/problems.js';

export interface FeedProblem {
  /** error: a record (or part of one) was skipped; warning: imported, or left out on purpose, with a word */
  level: 'error' | 'warning';
  /** the file or URL */
  file: string;
  /** a JSON path, or `byte N (line L, column C)` */
  position?: string;
  /** the source package concerned, when known */
  package?: string;
  reason: string;
}

export class FeedProblems {
  readonly list: FeedProblem[] = [];
  /** all problems, also those beyond the listed ones */
  count = 0;
  errors = 0;

  add(p: FeedProblem): void {
    this.count++;
    if (p.level === 'error') this.errors++;
    if (this.list.length < MAX_LISTED_PROBLEMS) this.list.push(p);
  }

  error(file: string, position: string | undefined, reason: string, pkg?: string): void {
    this.add({ level: 'error', file, ...(position === undefined ? {} : { position }), ...(pkg ? { package: pkg } : {}), reason });
  }

  warn(file: string, position: string | undefined, reason: string, pkg?: string): void {
    this.add({ level: 'warning', file, ...(position === undefined ? {} : { position }), ...(pkg ? { package: pkg } : {}), reason });
  }
}

export function formatFeedProblem(p: FeedProblem): string {
  const where = p.position === undefined ? p.file : `${p.file} at ${p.position}`;
  return `${p.level}: ${where}${p.package ? ` (${p.package})` : ''}: ${p.reason}`;
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** `['affected', 0, 'package']` → `$.affected[0].package`; odd keys are quoted (and clipped). */
export function jsonPath(segments: readonly (string | number)[]): string {
  let out = '$';
  for (const s of segments) {
    if (typeof s === 'number') out += `[${s}]`;
    else if (IDENT.test(s) && s.length <= 64) out += `.${s}`;
    else out += `[${JSON.stringify(s.length > 64 ? `${s.slice(0, 64)}…` : s)}]`;
  }
  return out;
}
