/**
 * Our own reader of dpkg's status database (/var/lib/dpkg/status). We do not shell out to
 * dpkg-query: the agent must also read sandbox roots and copies, and must never run a tool
 * whose output format depends on the host's dpkg version.
 *
 * The file is a sequence of RFC822-like paragraphs. Only five single-line fields matter here;
 * every other field (and its continuation lines) is skipped without being copied, which is
 * what keeps the parser well above 20 MB/s.
 */
import { DPKG_STATES, PackageFact, scanParagraphs, type ScanIssue } from '@patchwarden/core';
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
  /** Installed packages whose selection is `hold` (`apt-mark hold`), sorted. */
  held: string[];
}

/** A garbage file can hold millions of paragraphs; their problems must not exhaust memory. */
export const MAX_PROBLEMS = 1000;

const WANTS = new Set(['unknown', 'install', 'hold', 'deinstall', 'purge']);
const EFLAGS = new Set(['ok', 'reinstreq']);
const STATES = new Set<string>(DPKG_STATES);

// Indexes into FIELDS: the fields this parser reads.
const FIELDS = ['Package', 'Status', 'Version', 'Architecture', 'Source'] as const;
const PACKAGE = 0;
const STATUS = 1;
const VERSION = 2;
const ARCH = 3;
const SOURCE = 4;

function issueText(issue: ScanIssue): string {
  switch (issue.kind) {
    case 'leading-continuation':
      return 'continuation line without a field';
    case 'continued':
      return `unexpected continuation line in ${FIELDS[issue.field]} field`;
    case 'not-a-field':
      return `line ${issue.line} is not a field: '${snippet(issue.text)}'`;
    case 'duplicate':
      return `duplicate ${FIELDS[issue.field]} field`;
    case 'too-long':
      return `${FIELDS[issue.field]} field is ${issue.length} bytes long`;
  }
}

export function parseDpkgStatus(text: string): DpkgParseResult {
  const packages: PackageFactT[] = [];
  const problems: DpkgProblem[] = [];
  const seen = new Set<string>();
  const held = new Set<string>();
  let skipped = 0;

  scanParagraphs(text, FIELDS, ({ line, values, issue }) => {
    const problem = (message: string, name?: string) => {
      skipped++;
      if (problems.length >= MAX_PROBLEMS) return;
      const p: DpkgProblem = { line, message };
      if (name) p.package = snippet(name);
      problems.push(p);
    };
    const bad = issue ? issueText(issue) : undefined;
    const name = values[PACKAGE];
    const status = values[STATUS];
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
    const version = values[VERSION];
    if (version === undefined) return problem('missing Version field', name);
    if (values[ARCH] === undefined) return problem('missing Architecture field', name);
    const candidate: Record<string, unknown> = { manager: 'dpkg', name, version, arch: values[ARCH], state };
    const source = values[SOURCE];
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
    if (words[0] === 'hold') held.add(r.data.name);
  });
  return { packages, problems, skipped, held: [...held].sort() };
}
