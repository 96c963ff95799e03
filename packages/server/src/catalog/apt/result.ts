import type { PatchManifest, Platform } from '@patchwarden/core';
import type { AptCatalogBuilder } from './patches.js';
import type { ImportProblem, Problems } from './problems.js';
import type { AptRelease } from './read.js';

export interface AptImport {
  releases: AptRelease[];
  /** the platforms these feeds speak for: a device on none of them is not assessed */
  coverage: Platform[];
  patches: PatchManifest[];
  /** the first MAX_LISTED_PROBLEMS problems */
  problems: ImportProblem[];
  /** all problems, and those that skipped something */
  problemCount: number;
  errorCount: number;
  /** binary records read */
  records: number;
}

export function finishImport(builder: AptCatalogBuilder, releases: AptRelease[], problems: Problems, records: number): AptImport {
  const { patches, coverage } = builder.build();
  return { releases, coverage, patches, problems: problems.list, problemCount: problems.count, errorCount: problems.errors, records };
}
