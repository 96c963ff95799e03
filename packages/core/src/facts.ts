/**
 * The facts model: what an agent knows of a device. Schemas here are the edge checks for every
 * agent report; the server stores nothing that did not pass them.
 */
import { z } from 'zod';
import { parseDebVersion } from './version/deb.js';

export const LIMITS = {
  maxPackages: 50_000,
  maxNameLength: 200,
  maxVersionLength: 256,
  maxTextLength: 512,
} as const;

/** dpkg's package-name grammar (lowercase, starts alphanumeric, at least two characters). */
export const DPKG_NAME_RE = /^[a-z0-9][a-z0-9+.-]+$/;
export const ARCH_RE = /^[a-z0-9][a-z0-9_-]*$/;
const HEX64_RE = /^[0-9a-f]{64}$/;

export const Sha256Hex = z.string().regex(HEX64_RE, 'expected 64 lowercase hex digits (sha256)');

export const PACKAGE_MANAGERS = ['dpkg'] as const;
export const PackageManager = z.enum(PACKAGE_MANAGERS);

/** dpkg's package states (the third word of the Status field), not-installed excluded. */
export const DPKG_STATES = [
  'installed',
  'config-files',
  'half-installed',
  'unpacked',
  'half-configured',
  'triggers-awaited',
  'triggers-pending',
] as const;
export const PackageState = z.enum(DPKG_STATES);

const debVersion = z
  .string()
  .max(LIMITS.maxVersionLength)
  .superRefine((v, ctx) => {
    const r = parseDebVersion(v);
    if (!r.ok) ctx.addIssue({ code: 'custom', message: `invalid Debian version: ${r.reason}` });
  });

export const PackageFact = z.strictObject({
  manager: PackageManager,
  name: z.string().max(LIMITS.maxNameLength).regex(DPKG_NAME_RE, 'invalid package name'),
  version: debVersion,
  arch: z.string().max(64).regex(ARCH_RE, 'invalid architecture'),
  /** Source package, when it differs from the binary package's name or version. */
  source: z.string().max(LIMITS.maxNameLength).regex(DPKG_NAME_RE, 'invalid source package name').optional(),
  sourceVersion: debVersion.optional(),
  state: PackageState,
});
export type PackageFact = z.infer<typeof PackageFact>;

export const PackageKey = z.strictObject({
  manager: PackageManager,
  name: z.string().max(LIMITS.maxNameLength).regex(DPKG_NAME_RE, 'invalid package name'),
  arch: z.string().max(64).regex(ARCH_RE, 'invalid architecture'),
});
export type PackageKey = z.infer<typeof PackageKey>;

export const OS_FAMILIES = ['linux', 'windows', 'darwin', 'freebsd', 'sunos', 'aix', 'other'] as const;

const text = z.string().max(LIMITS.maxTextLength);

export const OsFacts = z.strictObject({
  family: z.enum(OS_FAMILIES),
  /** os-release ID (debian, ubuntu, rhel …) */
  distribution: z.string().max(64).regex(/^[a-z0-9._-]+$/).optional(),
  idLike: z.array(z.string().max(64)).max(16).optional(),
  name: text.optional(),
  prettyName: text.optional(),
  version: z.string().max(64).optional(),
  versionCodename: z.string().max(64).optional(),
  /** Machine architecture as the kernel names it (x86_64, aarch64). */
  machine: z.string().max(64),
  /** Native package architecture (amd64, arm64). */
  packageArch: z.string().max(64).optional(),
});
export type OsFacts = z.infer<typeof OsFacts>;

export const COLLECTOR_STATES = ['ok', 'unsupported', 'error', 'absent'] as const;
export const CollectorReport = z.strictObject({
  name: z.string().max(64),
  status: z.enum(COLLECTOR_STATES),
  message: text.optional(),
  count: z.number().int().nonnegative().optional(),
});
export type CollectorReport = z.infer<typeof CollectorReport>;

export const FileFactSchema = z.strictObject({
  exists: z.boolean(),
  size: z.number().int().nonnegative().optional(),
  sha256: Sha256Hex.optional(),
  mtime: z.iso.datetime().optional(),
  fileVersion: z.string().max(64).optional(),
  productVersion: z.string().max(64).optional(),
});

/** At most this many files are watched per device: the paths catalog rules name. */
export const MAX_WATCHED_FILES = 256;

/** Every fact but the package inventory: small, sent whole whenever its hash changes. */
export const SystemFacts = z.strictObject({
  hostname: z.string().min(1).max(255),
  os: OsFacts,
  kernel: z.strictObject({ release: z.string().max(256), version: text.optional() }),
  timezone: z.string().max(64).optional(),
  machineId: z.string().max(64).regex(/^[0-9a-f]+$/).optional(),
  rebootRequired: z.boolean(),
  agentVersion: z.string().max(64),
  collectors: z.array(CollectorReport).max(32),
  /** Packages the administrator pinned on the device (`apt-mark hold`, dnf versionlock): patches leave them alone. */
  heldPackages: z.array(z.string().min(1).max(255)).max(4096).optional(),
  /** The files the server asked for (paths that verified catalog rules name), by path. */
  files: z.record(z.string().min(1).max(1024), FileFactSchema).optional(),
});
export type SystemFacts = z.infer<typeof SystemFacts>;
