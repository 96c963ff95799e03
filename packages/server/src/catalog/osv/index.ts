export { importOsv, MAX_OSV_FILE_BYTES, type OsvImportOptions } from './read.js';
export type { FeedImport } from './result.js';
export { formatFeedProblem, type FeedProblem } from './problems.js';
export { compareIds, patchId as feedPatchId, type FeedNamespace, type OpenVulnerability, type ReleaseSummary } from './source-patches.js';
export { cvss2BaseScore, cvss3BaseScore } from './severity.js';
