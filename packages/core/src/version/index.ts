import { PatchwardenError } from '../errors.js';
import { apkInvalidReason, compareApkVersions } from './apk.js';
import { compareDebVersions, parseDebVersion } from './deb.js';
import { compareGenericVersions, genericInvalidReason } from './generic.js';
import { compareRpmVersions, rpmInvalidReason } from './rpm.js';
import { compareSemVer, semverInvalidReason } from './semver.js';
import { compareWindowsVersions, windowsInvalidReason } from './windows.js';

export * from './deb.js';
export * from './rpm.js';
export * from './apk.js';
export * from './windows.js';
export * from './semver.js';
export * from './generic.js';

export interface VersionScheme {
  name: string;
  /** One line for help texts: what the scheme is for and where its rules come from. */
  summary: string;
  /** A pair that shows the scheme's character, and what compare() returns for it. */
  example: readonly [a: string, b: string, result: -1 | 0 | 1];
  /** Why the version is invalid, or null when it is valid. */
  invalidReason(version: string): string | null;
  /**
   * -1, 0 or 1. Both versions must be valid: on an invalid one the result is unspecified (some
   * schemes throw E_VERSION_INVALID), so check untrusted input first, e.g. with compareChecked.
   */
  compare(a: string, b: string): -1 | 0 | 1;
}

export const VERSION_SCHEMES: Record<string, VersionScheme> = {
  deb: {
    name: 'deb',
    summary: "Debian/Ubuntu packages, exactly as dpkg orders [epoch:]upstream[-revision]",
    example: ['1.0~rc1-1', '1.0-1', -1],
    invalidReason: (v) => {
      const r = parseDebVersion(v);
      return r.ok ? null : r.reason;
    },
    compare: compareDebVersions,
  },
  rpm: {
    name: 'rpm',
    summary: 'RHEL/Fedora/SUSE packages, exactly as rpm orders [epoch:]version[-release]',
    example: ['1.0^git1-1', '1.0-1', 1],
    invalidReason: rpmInvalidReason,
    compare: compareRpmVersions,
  },
  apk: {
    name: 'apk',
    summary: 'Alpine packages, as apk-tools orders digit{.digit}{letter}{_suffix{#}}{~hash}{-r#}',
    example: ['1.2.3_rc1-r0', '1.2.3-r0', -1],
    invalidReason: apkInvalidReason,
    compare: compareApkVersions,
  },
  windows: {
    name: 'windows',
    summary: 'Windows file/product versions: 1 to 4 numbers 0-65535, missing ones 0',
    example: ['10.0.19041', '10.0.19041.0', 0],
    invalidReason: windowsInvalidReason,
    compare: compareWindowsVersions,
  },
  semver: {
    name: 'semver',
    summary: 'Semantic Versioning 2.0.0 precedence (build metadata ignored)',
    example: ['1.0.0-rc.10', '1.0.0-rc.9', 1],
    invalidReason: semverInvalidReason,
    compare: compareSemVer,
  },
  generic: {
    name: 'generic',
    summary: 'third-party applications: numbers and words, pre-release words below the release',
    example: ['4.10.0-beta2', '4.10.0', -1],
    invalidReason: genericInvalidReason,
    compare: compareGenericVersions,
  },
};

export function getScheme(name: string): VersionScheme {
  const s = Object.hasOwn(VERSION_SCHEMES, name) ? VERSION_SCHEMES[name] : undefined;
  if (!s) {
    throw new PatchwardenError('E_VALIDATION', `unknown version scheme '${name}'`, {
      hint: `known schemes: ${Object.keys(VERSION_SCHEMES).join(', ')}`,
    });
  }
  return s;
}

/** Validates both versions, then compares them; the error names the version and the reason. */
export function compareChecked(scheme: VersionScheme, a: string, b: string): -1 | 0 | 1 {
  for (const v of [a, b]) {
    const reason = scheme.invalidReason(v);
    if (reason !== null) {
      throw new PatchwardenError('E_VERSION_INVALID', `invalid ${scheme.name} version '${v}': ${reason}`);
    }
  }
  return scheme.compare(a, b);
}
