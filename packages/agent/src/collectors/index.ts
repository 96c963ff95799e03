/**
 * The agent's fact collectors for Linux. Everything is read below an explicit root, so tests
 * and image scans use a sandbox directory and only the host agent reads '/'.
 */
import { MAX_WATCHED_FILES, SystemFacts, sortInventory } from '@patchwarden/core';
import { collectFiles } from './files.js';
import type { PackageFact } from '@patchwarden/core';
import { collectPackages } from './packages.js';
import {
  collectHostname,
  collectKernel,
  collectMachineId,
  collectOs,
  collectRebootRequired,
  collectTimezone,
} from './system.js';
import { clip } from './text.js';

export { parseDpkgStatus, MAX_PROBLEMS } from './dpkg/parse.js';
export type { DpkgParseResult, DpkgProblem } from './dpkg/parse.js';
export { parseOsRelease, osFactsFromRelease } from './os/os-release.js';
export type { OsFactsExtra, OsFamily } from './os/os-release.js';
export { DPKG_STATUS_PATH } from './packages.js';

export interface CollectOptions {
  /** Filesystem root to read from: '/' for the host, a sandbox directory in tests. */
  root: string;
  /** Explicit path of a dpkg status file (overrides <root>/var/lib/dpkg/status). */
  dpkgStatus?: string;
  /** Default: os.hostname() when root is '/', else <root>/etc/hostname, else os.hostname(). */
  hostname?: string;
  /** Default: os.release(). */
  kernelRelease?: string;
  /** Files to report (existence, size, sha256, mtime): the paths the server's catalog rules name. */
  files?: readonly string[];
  /**
   * Keeps, of `files`, those a verified catalog rule names (catalog.ts `vouchedFiles`). A running
   * agent always sets it: the server's word alone never makes it read a file. Without it `files`
   * are read as given (the job runner passes the files of a manifest it verified itself).
   */
  vouch?: (paths: readonly string[]) => Promise<readonly string[]>;
}

export interface CollectedFacts {
  system: Omit<SystemFacts, 'agentVersion'>;
  /** Sorted with core's sortInventory. */
  packages: PackageFact[];
}

const SystemFactsWithoutAgent = SystemFacts.omit({ agentVersion: true });

export async function collectFacts(opts: CollectOptions): Promise<CollectedFacts> {
  const { root } = opts;
  const [os, hostname, timezone, machineId, rebootRequired, inventory] = await Promise.all([
    collectOs(root),
    opts.hostname ? Promise.resolve(clip(opts.hostname, 255)) : collectHostname(root),
    collectTimezone(root),
    collectMachineId(root),
    collectRebootRequired(root),
    collectPackages(root, opts.dpkgStatus),
  ]);
  const system: Omit<SystemFacts, 'agentVersion'> = {
    hostname,
    os,
    kernel: collectKernel(root, opts.kernelRelease),
    rebootRequired,
    collectors: inventory.reports,
  };
  if (timezone !== undefined) system.timezone = timezone;
  if (machineId !== undefined) system.machineId = machineId;
  if (inventory.held?.length) system.heldPackages = inventory.held;
  const files = opts.files?.length && opts.vouch ? await opts.vouch(opts.files) : opts.files;
  if (files?.length) system.files = await collectFiles(root, files.slice(0, MAX_WATCHED_FILES));
  const packages = inventory.packages;
  // The parser already refuses duplicate keys, so sorting cannot find one.
  sortInventory(packages);
  // Every part was clipped and checked on its own; this only catches a mistake of ours.
  return { system: SystemFactsWithoutAgent.parse(system), packages };
}
