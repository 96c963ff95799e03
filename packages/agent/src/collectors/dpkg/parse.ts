/**
 * Our own reader of dpkg's status database (/var/lib/dpkg/status). We do not shell out to
 * dpkg-query: the agent must also read sandbox roots and copies, and must never run a tool
 * whose output format depends on the host's dpkg version.
 *
 * The file is a sequence of RFC822-like paragraphs. Only five single-line fields matter here;
 * every other field (and its continuation lines) is skipped without being copied, which is
 * what keeps the parser well above 20 MB/s.
 */
import { DPKG_STATES, PackageFact } from '@patchwarden/core';
import type { PackageFact as PackageFactT } from '@patchwarden/core';
import { snippet } from '../text.js';

export interface DpkgProblem {
  /** 1-based line where the paragraph starts. */
  line: number;
  package?: string;
  message: string;
}

export interface DpkgParseResult {
  packages: PackageFactT[];
  /** One problem per skipped entry, the first MAX_PROBLEMS of them. */
  problems: DpkgProblem[];
  /** Number of skipped entries, also those beyond the listed problems. */
  skipped: number;
}

/** A garbage file can hold millions of paragraphs; their problems must not exhaust memory. */
export const MAX_PROBLEMS = 1000;

const WANTS = new Set(['unknown', 'install', 'hold', 'deinstall', 'purge']);
const EFLAGS = new Set(['ok', 'reinstreq']);
const STATES = new Set<string>(DPKG_STATES);

const enum F {
  None = 0,
  Package,
  Status,
  Version,
  Architecture,
  Source,
}
const FIELD_LABEL = ['', 'Package', 'Status', 'Version', 'Architecture', 'Source'];

// Field names are case-insensitive; the length test spares lowercasing the ~20 other fields
// of every paragraph.
function fieldOf(text: string, start: number, end: number): F {
  const len = end - start;
  if (len !== 6 && len !== 7 && len !== 12) return F.None;
  switch (text.slice(start, end).toLowerCase()) {
    case 'package':
      return F.Package;
    case 'status':
      return F.Status;
    case 'version':
      return F.Version;
    case 'architecture':
      return F.Architecture;
    case 'source':
      return F.Source;
    default:
      return F.None;
  }
}

const isBlank = (c: number) => c === 32 || c === 9;

export function parseDpkgStatus(text: string): DpkgParseResult {
  const packages: PackageFactT[] = [];
  const problems: DpkgProblem[] = [];
  const seen = new Set<string>();
  let skipped = 0;

  let paraLine = 0;
  let inPara = false;
  let values: (string | undefined)[] = [];
  let bad: string | undefined;
  let last = F.None;

  const problem = (message: string, name?: string) => {
    skipped++;
    if (problems.length >= MAX_PROBLEMS) return;
    const p: DpkgProblem = { line: paraLine, message };
    if (name) p.package = snippet(name);
    problems.push(p);
  };

  const finish = () => {
    if (!inPara) return;
    inPara = false;
    const name = values[F.Package];
    const status = values[F.Status];
    if (status === undefined) return problem(bad ?? 'missing Status field', name);
    const words = status.split(/[ \t]+/);
    const state = words[2];
    if (words.length !== 3 || !WANTS.has(words[0]!) || !EFLAGS.has(words[1]!)) {
      return problem(`invalid Status field '${snippet(status)}'`, name);
    }
    // Purged packages that dpkg still remembers (for their selection) are no inventory.
    if (state === 'not-installed') return;
    if (!STATES.has(state!)) return problem(`invalid package state '${snippet(state!)}'`, name);
    if (bad) return problem(bad, name);
    if (name === undefined) return problem('missing Package field');
    const version = values[F.Version];
    if (version === undefined) return problem('missing Version field', name);
    if (values[F.Architecture] === undefined) return problem('missing Architecture field', name);
    const candidate: Record<string, unknown> = {
      manager: 'dpkg',
      name,
      version,
      arch: values[F.Architecture],
      state,
    };
    const source = values[F.Source];
    if (source !== undefined) {
      const m = /^(\S+)(?:[ \t]+\(([^()]*)\))?$/.exec(source);
      if (!m) return problem(`invalid Source field '${snippet(source)}'`, name);
      if (m[1] !== name) candidate.source = m[1];
      const sv = m[2]?.trim();
      if (sv !== undefined && sv !== version) candidate.sourceVersion = sv;
    }
    const r = PackageFact.safeParse(candidate);
    if (!r.success) {
      const why = r.error.issues.map((i) => `${i.path.join('.') || 'entry'}: ${i.message}`).join('; ');
      return problem(why, name);
    }
    const key = `${r.data.name}\t${r.data.arch}`;
    if (seen.has(key)) return problem(`duplicate entry for ${name}:${r.data.arch}`, name);
    seen.add(key);
    packages.push(r.data);
  };

  const len = text.length;
  let pos = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  let lineNo = 0;
  while (pos <= len) {
    lineNo++;
    let nl = text.indexOf('\n', pos);
    if (nl === -1) nl = len;
    let end = nl;
    if (end > pos && text.charCodeAt(end - 1) === 13) end--;
    const start = pos;
    pos = nl + 1;

    let first = start;
    while (first < end && isBlank(text.charCodeAt(first))) first++;
    if (first === end) {
      // Debian policy lets parsers take whitespace-only lines as paragraph separators.
      finish();
      continue;
    }
    if (!inPara) {
      inPara = true;
      paraLine = lineNo;
      values = [];
      bad = undefined;
      last = F.None;
    }
    if (first !== start) {
      // A continuation line: only multi-line fields may have one, and none of ours is.
      if (lineNo === paraLine) bad ??= 'continuation line without a field';
      else if (last !== F.None) bad ??= `unexpected continuation line in ${FIELD_LABEL[last]} field`;
      continue;
    }
    // Not indexOf: on colon-less lines it would scan on past the line, quadratic on garbage.
    let colon = start;
    while (colon < end && text.charCodeAt(colon) !== 58) colon++;
    if (colon === end) {
      bad ??= `line ${lineNo} is not a field: '${snippet(text.slice(start, Math.min(end, start + 100)))}'`;
      last = F.None;
      continue;
    }
    last = fieldOf(text, start, colon);
    if (last === F.None) continue;
    if (values[last] !== undefined) {
      bad ??= `duplicate ${FIELD_LABEL[last]} field`;
      continue;
    }
    values[last] = text.slice(colon + 1, end).trim();
  }
  finish();
  return { packages, problems, skipped };
}
