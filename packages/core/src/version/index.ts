import { PatchwardenError } from '../errors.js';
import { compareDebVersions, parseDebVersion } from './deb.js';

export * from './deb.js';

export interface VersionScheme {
  name: string;
  /** Why the version is invalid, or null when it is valid. */
  invalidReason(version: string): string | null;
  compare(a: string, b: string): -1 | 0 | 1;
}

export const VERSION_SCHEMES: Record<string, VersionScheme> = {
  deb: {
    name: 'deb',
    invalidReason: (v) => {
      const r = parseDebVersion(v);
      return r.ok ? null : r.reason;
    },
    compare: compareDebVersions,
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
