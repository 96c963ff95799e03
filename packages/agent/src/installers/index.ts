export { DpkgInstaller, checkPackageName } from './dpkg.js';
export type { DpkgInstallerOptions, DpkgRun, DebInfo, InstallOptions } from './dpkg.js';
export { takeSnapshot, loadSnapshot, installWithSnapshot, undoSnapshot, driftFrom, describeState } from './snapshot.js';
export type { DpkgSnapshot, SnapshotPackage, PackageState, ApplyResult, UndoResult } from './snapshot.js';
