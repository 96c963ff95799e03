import type { PatchManifest, Platform } from '@patchwarden/core';
import type { FeedProblem, FeedProblems } from './problems.js';
import type { FeedNamespace, OpenVulnerability, ReleaseSummary, SourcePatchBuilder } from './source-patches.js';

/** What an OSV or Debian tracker import produced: patches to upload, and what has no fix. */
export interface FeedImport {
  kind: FeedNamespace;
  /** each path or URL given, with the files and records read from it */
  inputs: { location: string; files: number; records: number }[];
  /** records read (OSV) or (source, issue) entries (tracker) */
  records: number;
  /** records per ecosystem this importer does not handle (Go, PyPI …): counted and skipped, not an error */
  unhandled: Record<string, number>;
  /** records withdrawn by their database: not imported */
  withdrawn: number;
  releases: ReleaseSummary[];
  /** the platforms these feeds speak for: a device on none of them is not assessed */
  coverage: Platform[];
  patches: PatchManifest[];
  /** vulnerabilities without a fix: no patch, but `scan` lists them */
  open: OpenVulnerability[];
  /** the first MAX_LISTED_PROBLEMS problems */
  problems: FeedProblem[];
  problemCount: number;
  /** problems that skipped something */
  errorCount: number;
}

export interface FeedTally {
  inputs: FeedImport['inputs'];
  records: number;
  unhandled: Map<string, number>;
  withdrawn: number;
}

export function newTally(): FeedTally {
  return { inputs: [], records: 0, unhandled: new Map(), withdrawn: 0 };
}

export function finishFeedImport(kind: FeedNamespace, builder: SourcePatchBuilder, tally: FeedTally, problems: FeedProblems): FeedImport {
  const { patches, coverage, open, releases } = builder.build();
  return {
    kind,
    inputs: tally.inputs,
    records: tally.records,
    unhandled: Object.fromEntries([...tally.unhandled].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))),
    withdrawn: tally.withdrawn,
    releases,
    coverage,
    patches,
    open,
    problems: problems.list,
    problemCount: problems.count,
    errorCount: problems.errors,
  };
}
