/** What an import found wrong, with the position, so that nothing is dropped without a word. */
export interface ImportProblem {
  /** error: a record or file was skipped; warning: imported, but something is doubtful */
  level: 'error' | 'warning';
  /** the file or URL */
  file: string;
  /** 1-based line (index files) */
  line?: number;
  package?: string;
  message: string;
}

/** A hostile file can hold millions of bad records; their problems must not exhaust memory. */
export const MAX_LISTED_PROBLEMS = 1000;

export class Problems {
  readonly list: ImportProblem[] = [];
  /** all problems, also those beyond the listed ones */
  count = 0;
  errors = 0;

  add(p: ImportProblem): void {
    this.count++;
    if (p.level === 'error') this.errors++;
    if (this.list.length < MAX_LISTED_PROBLEMS) this.list.push(p);
  }

  warn(file: string, message: string): void {
    this.add({ level: 'warning', file, message });
  }
}

/** A value quoted for a message: clipped, control characters escaped. */
export function quote(s: string, max = 60): string {
  const clipped = s.length > max ? `${s.slice(0, max)}…` : s;
  return JSON.stringify(clipped);
}

export function formatProblem(p: ImportProblem): string {
  const where = p.line === undefined ? p.file : `${p.file}:${p.line}`;
  return `${p.level}: ${where}${p.package ? ` (${p.package})` : ''}: ${p.message}`;
}
