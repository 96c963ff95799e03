/**
 * A scanner for Debian control-format paragraphs (dpkg's status file, apt's Packages indexes):
 * it reads only the fields asked for, skips the others and their continuation lines without
 * copying them, and reports the first structural problem of each paragraph. What a field must
 * contain is for the caller to check.
 */
export type ScanIssue =
  | { kind: 'leading-continuation'; line: number }
  | { kind: 'continued'; line: number; field: number }
  | { kind: 'not-a-field'; line: number; text: string }
  | { kind: 'duplicate'; line: number; field: number }
  | { kind: 'too-long'; line: number; field: number; length: number };

export interface Paragraph {
  /** 1-based line of the paragraph's first line */
  line: number;
  /** values of the asked fields, by their index in `fields`, trimmed */
  values: readonly (string | undefined)[];
  /** the line of each asked field */
  lines: readonly number[];
  /** the paragraph's first structural problem, or null */
  issue: ScanIssue | null;
}

const isBlank = (c: number) => c === 32 || c === 9;

/**
 * Calls `visit` for every paragraph of `text`. `fields` are field names (case-insensitive, as
 * in deb822); a value longer than `maxValue` is not stored and is an issue.
 */
export function scanParagraphs(text: string, fields: readonly string[], visit: (p: Paragraph) => void, opts: { maxValue?: number } = {}): void {
  const index = new Map(fields.map((f, i) => [f.toLowerCase(), i]));
  // the length test spares lowercasing the ~20 other fields of every paragraph
  const lengths = new Set(fields.map((f) => f.length));
  const maxValue = opts.maxValue ?? Infinity;
  let values: (string | undefined)[] = [];
  let lines: number[] = [];
  let issue: ScanIssue | null = null;
  let inPara = false;
  let paraLine = 0;
  let last = -1;

  const finish = () => {
    if (!inPara) return;
    inPara = false;
    visit({ line: paraLine, values, lines, issue });
  };

  const n = text.length;
  let pos = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  let lineNo = 0;
  while (pos < n) {
    lineNo++;
    let eol = text.indexOf('\n', pos);
    if (eol === -1) eol = n;
    let end = eol;
    if (end > pos && text.charCodeAt(end - 1) === 13) end--;
    const start = pos;
    pos = eol + 1;

    let first = start;
    while (first < end && isBlank(text.charCodeAt(first))) first++;
    if (first === end) {
      // whitespace-only lines separate paragraphs too (Debian policy allows parsers to)
      finish();
      continue;
    }
    if (!inPara) {
      inPara = true;
      paraLine = lineNo;
      values = [];
      lines = [];
      issue = null;
      last = -1;
    }
    if (first !== start) {
      // a continuation line: fine for fields we skip; ours are single-line by grammar
      if (lineNo === paraLine) issue ??= { kind: 'leading-continuation', line: lineNo };
      else if (last !== -1) issue ??= { kind: 'continued', line: lineNo, field: last };
      continue;
    }
    // a field name is printable ASCII without space: stop at the first other character, so a
    // garbage line costs its own length only
    let colon = -1;
    for (let i = start; i < end; i++) {
      const ch = text.charCodeAt(i);
      if (ch === 58) {
        colon = i;
        break;
      }
      if (ch <= 32 || ch >= 127) break;
    }
    if (colon <= start) {
      issue ??= { kind: 'not-a-field', line: lineNo, text: text.slice(start, Math.min(end, start + 100)) };
      last = -1;
      continue;
    }
    const len = colon - start;
    last = lengths.has(len) ? (index.get(text.slice(start, colon).toLowerCase()) ?? -1) : -1;
    if (last === -1) continue;
    if (values[last] !== undefined) {
      issue ??= { kind: 'duplicate', line: lineNo, field: last };
      continue;
    }
    if (end - colon - 1 > maxValue) {
      issue ??= { kind: 'too-long', line: lineNo, field: last, length: end - colon - 1 };
      continue;
    }
    values[last] = text.slice(colon + 1, end).trim();
    lines[last] = lineNo;
  }
  finish();
}
