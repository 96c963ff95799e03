/**
 * Debian's names as feeds write them. OSV says `Debian:12`, the tracker `bookworm`; patches use
 * the codename (as the apt importer does), so both feeds and apt agree on a release, and a
 * platform matches a device by its VERSION_CODENAME or VERSION_ID either way.
 */
import { DPKG_NAME_RE, LIMITS, parseDebVersion } from '@patchwarden/core';
import { quote } from './problems.js';

/** Debian's release numbers and codenames (distro-info-data's debian.csv). */
export const DEBIAN_CODENAMES: Readonly<Record<string, string>> = {
  '7': 'wheezy',
  '8': 'jessie',
  '9': 'stretch',
  '10': 'buster',
  '11': 'bullseye',
  '12': 'bookworm',
  '13': 'trixie',
  '14': 'forky',
  '15': 'duke',
};

const CODENAME_RE = /^[a-z][a-z0-9-]{0,31}$/;

/**
 * The release of an OSV Debian ecosystem (`Debian:12` → bookworm), `null` when the ecosystem is
 * not Debian's, `undefined` when it is Debian's but names no usable release.
 */
export function debianRelease(ecosystem: string): string | null | undefined {
  if (ecosystem !== 'Debian' && !ecosystem.startsWith('Debian:')) return null;
  const r = ecosystem.slice('Debian:'.length);
  if (ecosystem === 'Debian' || r === '') return undefined;
  if (/^[0-9]{1,3}$/.test(r)) return DEBIAN_CODENAMES[r] ?? r;
  return CODENAME_RE.test(r) ? r : undefined;
}

/** A tracker release name (bookworm, sid, bookworm-security is not one). */
export function isCodename(s: string): boolean {
  return CODENAME_RE.test(s);
}

/** Why a source package name breaks dpkg's grammar, or null. `-rf`, `../x` and `A` are refused here. */
export function sourceNameProblem(name: string): string | null {
  if (name.length > LIMITS.maxNameLength) return `source package name is ${name.length} characters long`;
  if (!DPKG_NAME_RE.test(name)) return `invalid source package name ${quote(name)}`;
  return null;
}

/**
 * Why a version breaks dpkg's grammar, or null. dpkg trims blanks around a version; a feed's
 * version goes into ids and rules as it stands, so blanks anywhere are refused.
 */
export function versionProblem(v: string, what = 'version'): string | null {
  if (v.length > LIMITS.maxVersionLength) return `${what} is ${v.length} characters long`;
  if (/\s/.test(v)) return `invalid ${what} ${quote(v)}: it holds blanks`;
  const r = parseDebVersion(v);
  return r.ok ? null : `invalid ${what} ${quote(v)}: ${r.reason}`;
}
