/**
 * The rule language (the "detection signature"): JSON, schema-checked. Combinators `all`,
 * `any`, `not`; leaves test the OS, a package, a file, a registry value or a hotfix.
 *
 *   { "all": [ { "os": { "distribution": "debian", "codename": "bookworm" } },
 *              { "package": { "manager": "dpkg", "name": "openssl", "version": { "lt": "3.0.15-1~deb12u1" } } } ] }
 */
import { z } from 'zod';
import { VERSION_SCHEMES } from '../version/index.js';

export const COMPARISONS = ['lt', 'le', 'eq', 'ne', 'ge', 'gt'] as const;
export type Comparison = (typeof COMPARISONS)[number];

export const RULE_MANAGERS = ['dpkg', 'rpm', 'apk', 'msi', 'pkg'] as const;
export type RuleManager = (typeof RULE_MANAGERS)[number];
/** The scheme a manager's versions follow, unless a rule names another. */
export const MANAGER_SCHEME: Record<RuleManager, string> = { dpkg: 'deb', rpm: 'rpm', apk: 'apk', msi: 'windows', pkg: 'generic' };

const name = z.string().min(1).max(200);
/** `{ "lt": "1.2" }`: exactly one comparison. */
const VersionTest = z
  .partialRecord(z.enum(COMPARISONS), z.string().min(1).max(256))
  .refine((o) => Object.keys(o).length === 1, 'a version test has exactly one of lt, le, eq, ne, ge, gt');

function schemeChecked<T extends { version?: Record<string, string> | undefined; scheme?: string | undefined }>(
  defaultScheme: (o: T) => string,
) {
  return (o: T, ctx: z.RefinementCtx) => {
    if (!o.version) return;
    const schemeName = o.scheme ?? defaultScheme(o);
    const scheme = Object.hasOwn(VERSION_SCHEMES, schemeName) ? VERSION_SCHEMES[schemeName] : undefined;
    if (!scheme) {
      ctx.addIssue({ code: 'custom', message: `unknown version scheme '${schemeName}'`, path: ['scheme'] });
      return;
    }
    for (const v of Object.values(o.version)) {
      const why = scheme.invalidReason(v);
      if (why !== null) ctx.addIssue({ code: 'custom', message: `invalid ${schemeName} version '${v}': ${why}`, path: ['version'] });
    }
  };
}

export const OsMatch = z
  .strictObject({
    family: z.string().max(32).optional(),
    distribution: z.string().max(64).optional(),
    version: z.string().max(64).optional(),
    codename: z.string().max(64).optional(),
    arch: z.array(z.string().max(32)).min(1).max(16).optional(),
  })
  .refine((o) => Object.keys(o).length > 0, 'an os test names at least one field');

export const PackageTest = z
  .strictObject({
    manager: z.enum(RULE_MANAGERS),
    name,
    arch: z.string().max(32).optional(),
    /** `source`: `name` is a source package, its version the binaries' source version. */
    match: z.enum(['binary', 'source']).optional(),
    installed: z.literal(true).optional(),
    absent: z.literal(true).optional(),
    version: VersionTest.optional(),
    scheme: z.string().max(32).optional(),
  })
  .refine((o) => [o.installed, o.absent, o.version].filter((x) => x !== undefined).length === 1, 'a package test has exactly one of installed, absent, version')
  .superRefine(schemeChecked((o) => MANAGER_SCHEME[o.manager]));

export const FileTest = z
  .strictObject({
    path: z.string().min(1).max(1024),
    exists: z.boolean().optional(),
    sha256: z.string().regex(/^[0-9a-f]{64}$/).optional(),
    version: VersionTest.optional(),
    /** which PE version resource field: the file version (default) or the product version */
    field: z.enum(['file', 'product']).optional(),
    scheme: z.string().max(32).optional(),
    mtime: z.partialRecord(z.enum(COMPARISONS), z.iso.datetime()).optional(),
  })
  .refine((o) => [o.exists, o.sha256, o.version, o.mtime].filter((x) => x !== undefined).length === 1, 'a file test has exactly one of exists, sha256, version, mtime')
  .superRefine(schemeChecked(() => 'windows'));

export const RegistryTest = z
  .strictObject({
    key: z.string().min(1).max(1024),
    value: z.string().max(256).optional(),
    exists: z.boolean().optional(),
    equals: z.string().max(4096).optional(),
    version: VersionTest.optional(),
    scheme: z.string().max(32).optional(),
  })
  .refine((o) => [o.exists, o.equals, o.version].filter((x) => x !== undefined).length === 1, 'a registry test has exactly one of exists, equals, version')
  .superRefine(schemeChecked(() => 'windows'));

export type OsMatch = z.infer<typeof OsMatch>;
export type PackageTest = z.infer<typeof PackageTest>;
export type FileTest = z.infer<typeof FileTest>;
export type RegistryTest = z.infer<typeof RegistryTest>;

export type Rule =
  | { all: Rule[] }
  | { any: Rule[] }
  | { not: Rule }
  | { os: OsMatch }
  | { package: PackageTest }
  | { file: FileTest }
  | { registry: RegistryTest }
  | { hotfix: string };

export const MAX_RULE_DEPTH = 32;

export const Rule: z.ZodType<Rule> = z.lazy(() =>
  z.union([
    z.strictObject({ all: z.array(Rule).min(1).max(1024) }),
    z.strictObject({ any: z.array(Rule).min(1).max(1024) }),
    z.strictObject({ not: Rule }),
    z.strictObject({ os: OsMatch }),
    z.strictObject({ package: PackageTest }),
    z.strictObject({ file: FileTest }),
    z.strictObject({ registry: RegistryTest }),
    z.strictObject({ hotfix: z.string().regex(/^KB\d{6,8}$/, 'a hotfix id is KB followed by 6 to 8 digits') }),
  ]),
);

const LEAVES = { os: OsMatch, package: PackageTest, file: FileTest, registry: RegistryTest } as const;

function check(input: unknown, path: string, depth: number): string | null {
  if (depth > MAX_RULE_DEPTH) return `${path}: rule nests deeper than ${MAX_RULE_DEPTH} levels`;
  if (typeof input !== 'object' || input === null || Array.isArray(input)) return `${path}: a rule is an object`;
  const keys = Object.keys(input);
  if (keys.length !== 1) return `${path}: a rule has exactly one key (all, any, not, os, package, file, registry, hotfix), not ${keys.length}`;
  const key = keys[0]!;
  const value = (input as Record<string, unknown>)[key];
  const at = `${path}.${key}`;
  if (key === 'all' || key === 'any') {
    if (!Array.isArray(value) || value.length === 0 || value.length > 1024) return `${at}: a list of 1 to 1024 rules`;
    for (let i = 0; i < value.length; i++) {
      const why = check(value[i], `${at}[${i}]`, depth + 1);
      if (why) return why;
    }
    return null;
  }
  if (key === 'not') return check(value, at, depth + 1);
  if (key === 'hotfix') return typeof value === 'string' && /^KB\d{6,8}$/.test(value) ? null : `${at}: a hotfix id is KB followed by 6 to 8 digits`;
  const schema = Object.hasOwn(LEAVES, key) ? LEAVES[key as keyof typeof LEAVES] : undefined;
  if (!schema) return `${path}: unknown rule '${key}' (all, any, not, os, package, file, registry, hotfix)`;
  const r = schema.safeParse(value);
  if (r.success) return null;
  const i = r.error.issues[0]!;
  return `${at}${i.path.length ? `.${i.path.join('.')}` : ''}: ${i.message}`;
}

/**
 * Parses a rule from untrusted JSON. Walks it by hand so that the error names the exact place
 * (a union schema would only say that no alternative matched) and a hostile depth stops early.
 */
export function parseRule(input: unknown): { ok: true; rule: Rule } | { ok: false; reason: string } {
  const why = check(input, 'rule', 0);
  return why === null ? { ok: true, rule: input as Rule } : { ok: false, reason: why };
}
