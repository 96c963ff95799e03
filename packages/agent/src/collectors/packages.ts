/**
 * Finds the device's package database and reads it. Only dpkg is supported; an RPM database
 * is reported as unsupported so that an RPM machine never looks like one with nothing installed.
 */
import { LIMITS } from '@patchwarden/core';
import type { CollectorReport, PackageFact } from '@patchwarden/core';
import { parseDpkgStatus } from './dpkg/parse.js';
import { existsIn, readTextIn } from './rootfs.js';
import { clip, snippet } from './text.js';

export const DPKG_STATUS_PATH = '/var/lib/dpkg/status';

const RPM_DB_PATHS = ['/var/lib/rpm', '/usr/lib/sysimage/rpm'].flatMap((dir) =>
  ['Packages', 'rpmdb.sqlite', 'Packages.db'].map((f) => `${dir}/${f}`),
);

export interface PackageCollection {
  reports: CollectorReport[];
  packages: PackageFact[];
  /** Packages held at their version (`apt-mark hold`). */
  held?: string[];
}

const errorText = (err: unknown) => (err instanceof Error ? err.message : String(err));

async function findRpmDb(root: string): Promise<string | null> {
  for (const p of RPM_DB_PATHS) {
    try {
      if (await existsIn(root, p)) return p;
    } catch {
      // an unreadable candidate is no evidence either way; try the next one
    }
  }
  return null;
}

async function collectDpkg(root: string, statusPath: string | undefined): Promise<PackageCollection | null> {
  let text: string | null;
  try {
    // An explicit status path is the caller's own file, not a path inside the device root.
    text = statusPath === undefined ? await readTextIn(root, DPKG_STATUS_PATH) : await readTextIn('/', statusPath);
  } catch (err) {
    return { reports: [{ name: 'dpkg', status: 'error', message: clip(errorText(err), LIMITS.maxTextLength) }], packages: [] };
  }
  if (text === null) {
    if (statusPath === undefined) return null;
    return { reports: [{ name: 'dpkg', status: 'error', message: clip(`dpkg status file ${statusPath} does not exist`, LIMITS.maxTextLength) }], packages: [] };
  }
  const { packages, problems, skipped, held } = parseDpkgStatus(text);
  if (packages.length > LIMITS.maxPackages) {
    const message = `${packages.length} packages exceed the limit of ${LIMITS.maxPackages}`;
    return { reports: [{ name: 'dpkg', status: 'error', message }], packages: [] };
  }
  const report: CollectorReport = { name: 'dpkg', status: 'ok', count: packages.length };
  const first = problems[0];
  if (first) {
    const where = first.package === undefined ? `line ${first.line}` : `line ${first.line} (${first.package})`;
    const message = `${skipped} ${skipped === 1 ? 'entry' : 'entries'} skipped: first problem at ${where}: ${snippet(first.message, 200)}`;
    report.message = clip(message, LIMITS.maxTextLength);
  }
  return { reports: [report], packages, held: held.slice(0, 4096) };
}

export async function collectPackages(root: string, dpkgStatus?: string): Promise<PackageCollection> {
  const dpkg = await collectDpkg(root, dpkgStatus);
  const rpm = await findRpmDb(root);
  const reports = dpkg?.reports ?? [];
  if (rpm !== null) {
    // Reported beside dpkg too: a second, unread database means the inventory is not complete.
    const unsupported: CollectorReport = {
      name: 'rpm',
      status: 'unsupported',
      message: `RPM database found at ${rpm}: RPM inventories are not supported by this agent version yet`,
    };
    const dpkgReport = reports[0];
    if (dpkgReport?.status === 'ok' && dpkgReport.count === 0) {
      // An empty dpkg database on an RPM machine (Fedora ships one with its dpkg package) must
      // not pass for the machine's inventory: readers take the first 'ok' collector as its owner.
      reports.splice(0, 1, unsupported, { name: 'dpkg', status: 'absent', message: 'the dpkg status file lists no packages' });
    } else {
      reports.push(unsupported);
    }
  }
  if (reports.length === 0) reports.push({ name: 'packages', status: 'absent', message: 'no supported package database found' });
  return { reports, packages: dpkg?.packages ?? [], ...(dpkg?.held?.length ? { held: dpkg.held } : {}) };
}
