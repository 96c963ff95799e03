export { importAptLists } from './lists.js';
export { importAptMirror, hostArchitecture, type MirrorOptions } from './mirror.js';
export type { AptImport } from './result.js';
export type { AptImportOptions, AptRelease } from './read.js';
export { formatProblem, type ImportProblem } from './problems.js';
export { aptPatchId, versionForId } from './patches.js';
export { DEFAULT_KEYRINGS, defaultKeyrings } from './gpgv.js';
