/** Every system fact except the package inventory, read below an explicit root. */
import os from 'node:os';
import { LIMITS } from '@patchwarden/core';
import type { OsFacts } from '@patchwarden/core';
import { osFactsFromRelease, parseOsRelease } from './os/os-release.js';
import type { OsFamily } from './os/os-release.js';
import { existsIn, isHostRoot, readSmallTextIn, readlinkIn } from './rootfs.js';
import { clip, firstLine } from './text.js';

const FAMILIES: Partial<Record<NodeJS.Platform, OsFamily>> = {
  linux: 'linux',
  win32: 'windows',
  darwin: 'darwin',
  freebsd: 'freebsd',
  sunos: 'sunos',
  aix: 'aix',
};

/** Node's process.arch to dpkg's architecture names. */
const PACKAGE_ARCHES: Partial<Record<NodeJS.Architecture, string>> = {
  x64: 'amd64',
  arm64: 'arm64',
  ia32: 'i386',
  arm: 'armhf',
  ppc64: 'ppc64el',
  s390x: 's390x',
};

const TZ_RE = /^[A-Za-z0-9_+-]+(?:\/[A-Za-z0-9_+-]+)*$/;
const validTz = (tz: string | undefined) => (tz && tz.length <= 64 && TZ_RE.test(tz) ? tz : undefined);

export async function collectOs(root: string): Promise<OsFacts> {
  const text = (await readSmallTextIn(root, '/etc/os-release')) ?? (await readSmallTextIn(root, '/usr/lib/os-release'));
  return osFactsFromRelease(parseOsRelease(text ?? ''), os.machine(), {
    family: FAMILIES[process.platform] ?? 'other',
    packageArch: PACKAGE_ARCHES[process.arch],
  });
}

export async function collectHostname(root: string): Promise<string> {
  const fromFile = isHostRoot(root) ? '' : firstLine((await readSmallTextIn(root, '/etc/hostname')) ?? '');
  return clip(fromFile || os.hostname() || 'localhost', 255);
}

export async function collectTimezone(root: string): Promise<string | undefined> {
  const file = await readSmallTextIn(root, '/etc/timezone');
  const fromFile = validTz(file === null ? undefined : firstLine(file));
  if (fromFile) return fromFile;
  const link = await readlinkIn(root, '/etc/localtime');
  const at = link?.lastIndexOf('zoneinfo/') ?? -1;
  if (link && at !== -1) {
    // posix/ and right/ are variants of the same zone, not zone names
    const fromLink = validTz(link.slice(at + 'zoneinfo/'.length).replace(/^(?:posix|right)\//, ''));
    if (fromLink) return fromLink;
  }
  return isHostRoot(root) ? validTz(Intl.DateTimeFormat().resolvedOptions().timeZone) : undefined;
}

export async function collectMachineId(root: string): Promise<string | undefined> {
  const id = firstLine((await readSmallTextIn(root, '/etc/machine-id')) ?? '');
  // 'uninitialized' (first boot) and empty files are no identity
  return /^[0-9a-f]{1,64}$/.test(id) ? id : undefined;
}

export async function collectRebootRequired(root: string): Promise<boolean> {
  for (const p of ['/var/run/reboot-required', '/run/reboot-required']) {
    try {
      if (await existsIn(root, p)) return true;
    } catch {
      // unreadable: keep looking
    }
  }
  return false;
}

export function collectKernel(root: string, release?: string): { release: string; version?: string } {
  const kernel: { release: string; version?: string } = { release: clip(release ?? os.release(), 256) };
  // os.version() describes the running kernel, which is only the device's own kernel for '/'
  if (isHostRoot(root)) kernel.version = clip(os.version(), LIMITS.maxTextLength);
  return kernel;
}
