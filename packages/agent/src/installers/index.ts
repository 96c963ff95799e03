export { DpkgInstaller, checkPackageName } from './dpkg.js';
export type { DpkgInstallerOptions, DpkgRun, DebInfo, InstallOptions } from './dpkg.js';
export { takeSnapshot, loadSnapshot, installWithSnapshot, undoSnapshot, driftFrom, describeState, recordAfter, restore as restoreSnapshot } from './snapshot.js';
export type { DpkgSnapshot, SnapshotPackage, PackageState, ApplyResult, UndoResult } from './snapshot.js';
export {
  resolveRoot,
  resolveInRoot,
  payloadFile,
  preflightFileActions,
  takeFileSnapshot,
  loadFileSnapshot,
  applyFileActions,
  rollbackFiles,
  undoFiles,
  describeFileState,
  DEFAULT_FILE_MODE,
  FILE_SNAPSHOT_NAME,
} from './files.js';
export type {
  RootOptions,
  ResolvedPath,
  FinalKind,
  FileState,
  ObservedState,
  FileProblem,
  FileSnapshot,
  FileSnapshotEntry,
  ApplyPhase,
  ApplyStep,
  ApplyHook,
  FileApplyResult,
  FileDrift,
  FileRollbackResult,
  FileUndoResult,
} from './files.js';
export { runScript, SCRIPT_PATH, DEFAULT_SCRIPT_OUTPUT_BYTES } from './scripts.js';
export type { RunScriptOptions, ScriptResult } from './scripts.js';
