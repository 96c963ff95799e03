/**
 * Install and undo actions of a patch. Everything here ends up on a device's command line or
 * file system, so each field is checked against the grammar of the tool that will read it
 * before it can get there: a name that starts with '-' would be read as an option, a '..'
 * would leave the directory it was meant for.
 */
import { z } from 'zod';
import { ARCH_RE, DPKG_NAME_RE, LIMITS, Sha256Hex } from './facts.js';
import { VERSION_SCHEMES } from './version/index.js';

type Issue = { message: string; path: (string | number)[] };
const addAll = (ctx: z.RefinementCtx, issues: Issue[]) => {
  for (const i of issues) ctx.addIssue({ code: 'custom', message: i.message, path: i.path });
};

// ── payload paths: where a file sits inside the bundle ─────────────────────────────────────

const PAYLOAD_SEGMENT_RE = /^[A-Za-z0-9][A-Za-z0-9._+~-]*$/;
export const MAX_PAYLOAD_PATH = 200;

/** Why `p` is not a relative POSIX path inside the bundle, or null. */
export function payloadPathProblem(p: string): string | null {
  // the specific refusals come first: they say what an author most likely meant
  if (p === '') return 'a payload path is not empty';
  if (p.length > MAX_PAYLOAD_PATH) return `a payload path has at most ${MAX_PAYLOAD_PATH} characters`;
  if (p.includes('\\')) return `payload path '${p}' contains '\\': payload paths use '/'`;
  if (p.startsWith('/')) return `payload path '${p}' is absolute: it is relative to the bundle`;
  const segments = p.split('/');
  if (segments.includes('..')) return `payload path '${p}' contains '..': it must stay inside the bundle`;
  if (segments.includes('')) return `payload path '${p}' has an empty segment`;
  const bad = segments.find((s) => !PAYLOAD_SEGMENT_RE.test(s));
  if (bad !== undefined) return `payload path segment '${bad}' is not letters, digits and . _ + ~ - starting with a letter or digit`;
  return null;
}

export const PayloadPath = z.string().superRefine((p, ctx) => {
  const why = payloadPathProblem(p);
  if (why !== null) ctx.addIssue({ code: 'custom', message: why });
});

// ── device paths: where a file action acts on the device ───────────────────────────────────

export const MAX_DEVICE_PATH = 1024;
const WINDOWS_ABS_RE = /^[A-Za-z]:\\/;

function hasControl(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}

export function isWindowsPath(p: string): boolean {
  return WINDOWS_ABS_RE.test(p);
}

/** Why `p` is not an absolute, normalised device path (POSIX `/…` or Windows `C:\…`), or null. */
export function devicePathProblem(p: string): string | null {
  if (p.length > MAX_DEVICE_PATH) return `a device path has at most ${MAX_DEVICE_PATH} characters`;
  if (p.includes('\0')) return 'a device path contains no NUL character';
  // a newline or escape in a path would forge lines in the logs and the job journal
  if (hasControl(p)) return 'a device path contains no control characters';
  const windows = isWindowsPath(p);
  if (!windows && !p.startsWith('/')) return `device path '${p}' is not absolute (/… or C:\\…)`;
  // Windows accepts '/' as a separator too, so both split there
  const segments = windows ? p.slice(3).split(/[\\/]/) : p.slice(1).split('/');
  if (segments.includes('..')) return `device path '${p}' contains a '..' segment`;
  // one file, one spelling: '.' or '//' would let an action and a rule name it differently
  if (segments.includes('.')) return `device path '${p}' contains a '.' segment`;
  if (segments.includes('')) return `device path '${p}' has an empty segment or ends with a separator`;
  // after the drive, ':' only names an alternate data stream, a place no rule or snapshot sees
  if (windows && /[<>:"|?*]/.test(p.slice(3))) return `device path '${p}' contains a character Windows refuses or reads as a stream (< > : " | ? *)`;
  return null;
}

export const DevicePath = z.string().superRefine((p, ctx) => {
  const why = devicePathProblem(p);
  if (why !== null) ctx.addIssue({ code: 'custom', message: why });
});

// ── package actions ────────────────────────────────────────────────────────────────────────

export const PACKAGE_ACTION_MANAGERS = ['apt', 'dpkg', 'dnf', 'rpm', 'apk', 'msiexec', 'wusa', 'installer', 'pkg', 'pkgadd'] as const;
export type PackageActionManager = (typeof PACKAGE_ACTION_MANAGERS)[number];

const RPM_NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9._+-]*$/;
const APK_NAME_RE = /^[a-z0-9][a-z0-9._+-]*$/;
/** Windows product codes (`{GUID}`) and KB ids, macOS package ids, Solaris package names. */
const PRODUCT_NAME_RE = /^[A-Za-z0-9{][A-Za-z0-9._+{}-]*$/;

const NAME_GRAMMAR: Record<PackageActionManager, { re: RegExp; what: string }> = {
  apt: { re: DPKG_NAME_RE, what: 'a Debian package name (lowercase letters, digits, + . -; at least 2 characters)' },
  dpkg: { re: DPKG_NAME_RE, what: 'a Debian package name (lowercase letters, digits, + . -; at least 2 characters)' },
  dnf: { re: RPM_NAME_RE, what: 'an RPM package name (letters, digits, . _ + -)' },
  rpm: { re: RPM_NAME_RE, what: 'an RPM package name (letters, digits, . _ + -)' },
  apk: { re: APK_NAME_RE, what: 'an Alpine package name (lowercase letters, digits, . _ + -)' },
  msiexec: { re: PRODUCT_NAME_RE, what: 'a product name or id (letters, digits, . _ + - { })' },
  wusa: { re: PRODUCT_NAME_RE, what: 'a product name or id (letters, digits, . _ + - { })' },
  installer: { re: PRODUCT_NAME_RE, what: 'a product name or id (letters, digits, . _ + - { })' },
  pkg: { re: PRODUCT_NAME_RE, what: 'a product name or id (letters, digits, . _ + - { })' },
  pkgadd: { re: PRODUCT_NAME_RE, what: 'a product name or id (letters, digits, . _ + - { })' },
};

/** The version scheme of each manager (names in VERSION_SCHEMES). */
export const ACTION_MANAGER_SCHEME: Record<PackageActionManager, string> = {
  apt: 'deb',
  dpkg: 'deb',
  dnf: 'rpm',
  rpm: 'rpm',
  apk: 'apk',
  msiexec: 'windows',
  wusa: 'windows',
  installer: 'generic',
  pkg: 'generic',
  pkgadd: 'generic',
};

/** What a bundled package file must be called: the managers pick their parser by the suffix. */
const BUNDLE_SUFFIXES: Record<PackageActionManager, readonly string[]> = {
  apt: ['.deb'],
  dpkg: ['.deb'],
  dnf: ['.rpm'],
  rpm: ['.rpm'],
  apk: ['.apk'],
  msiexec: ['.msi', '.msp'],
  wusa: ['.msu'],
  installer: ['.pkg', '.mpkg'],
  pkg: ['.pkg', '.txz'],
  pkgadd: ['.pkg'],
};

/** Why `name` cannot be given to `manager`, or null. */
export function packageNameProblem(manager: PackageActionManager, name: string): string | null {
  if (name.startsWith('-')) return `package name '${name}' starts with '-', which ${manager} would read as an option`;
  const g = NAME_GRAMMAR[manager];
  return g.re.test(name) ? null : `'${name}' is not ${g.what}`;
}

/** Why `version` cannot be given to `manager`, or null. */
export function packageVersionProblem(manager: PackageActionManager, version: string): string | null {
  if (version.startsWith('-')) return `version '${version}' starts with '-', which ${manager} would read as an option`;
  const scheme = ACTION_MANAGER_SCHEME[manager];
  const why = VERSION_SCHEMES[scheme]!.invalidReason(version);
  return why === null ? null : `invalid ${scheme} version '${version}': ${why}`;
}

function packageProblems(a: { manager: PackageActionManager; op: string; name: string; version?: string | undefined; file?: string | undefined }): Issue[] {
  const out: Issue[] = [];
  const name = packageNameProblem(a.manager, a.name);
  if (name !== null) out.push({ message: name, path: ['name'] });
  if (a.version !== undefined) {
    const why = packageVersionProblem(a.manager, a.version);
    if (why !== null) out.push({ message: why, path: ['version'] });
  }
  if (a.file !== undefined) {
    if (a.op === 'remove') out.push({ message: 'a remove action takes no bundled file', path: ['file'] });
    const suffixes = BUNDLE_SUFFIXES[a.manager];
    if (!suffixes.some((s) => a.file!.toLowerCase().endsWith(s))) {
      out.push({ message: `a file for ${a.manager} ends with ${suffixes.join(' or ')}`, path: ['file'] });
    }
  }
  return out;
}

/**
 * Where a vendor's package file lives in the repository that published the patch, with the
 * size and sha256 its signed index states: a server fetches it once into its content store
 * (undo and air-gapped sites then work after the mirror drops that version), and the device
 * checks the file it is given against these before handing it to its package manager.
 */
export const RepositoryFile = z.strictObject({
  /** the repository's base URL, as the feed named it (http or https) */
  repository: z
    .string()
    .max(512)
    .regex(/^https?:\/\/[A-Za-z0-9.-]+(?::\d{1,5})?(?:\/[A-Za-z0-9._~%+-]+)*\/?$/, 'a repository is an http(s) URL without query or fragment'),
  /** the file's path below it (`pool/main/o/openssl/libssl3_3.0.15-1~deb12u1_amd64.deb`) */
  path: z
    .string()
    .max(512)
    .regex(/^[A-Za-z0-9][A-Za-z0-9._~%+-]*(?:\/[A-Za-z0-9][A-Za-z0-9._~%+-]*)*$/, 'a repository path is relative, segments of letters, digits and . _ ~ % + -'),
  size: z.number().int().min(1).max(4 * 1024 ** 3),
  sha256: Sha256Hex,
});
export type RepositoryFile = z.infer<typeof RepositoryFile>;

export const PackageAction = z
  .strictObject({
    type: z.literal('package'),
    manager: z.enum(PACKAGE_ACTION_MANAGERS),
    /** upgrade: only where the package is installed (a security update never adds packages) */
    op: z.enum(['install', 'upgrade', 'remove']),
    name: z.string().min(1).max(LIMITS.maxNameLength),
    version: z.string().min(1).max(LIMITS.maxVersionLength).optional(),
    arch: z.string().max(32).regex(ARCH_RE, 'invalid architecture').optional(),
    /** a package file in the payload; without it the package comes from repositories the device already trusts */
    file: PayloadPath.optional(),
    /** the package file in its vendor's repository (imported patches) */
    fetch: RepositoryFile.optional(),
  })
  .superRefine((a, ctx) => {
    addAll(ctx, packageProblems(a));
    if (a.fetch && a.file) ctx.addIssue({ code: 'custom', message: 'a package comes from the bundle (file) or from its repository (fetch), not both', path: ['fetch'] });
    if (a.fetch && a.op === 'remove') ctx.addIssue({ code: 'custom', message: 'a remove action fetches nothing', path: ['fetch'] });
  });
export type PackageAction = z.infer<typeof PackageAction>;

// ── file actions ───────────────────────────────────────────────────────────────────────────

export const FILE_OPS = ['place', 'replace', 'delete'] as const;

/** Each op states the device's file before and after, so that preflight and undo know both. */
const FILE_OP_FIELDS: Record<(typeof FILE_OPS)[number], { needs: string[]; refuses: string[]; why: string }> = {
  place: { needs: ['source', 'sha256'], refuses: ['priorSha256'], why: 'the file must not exist before' },
  replace: { needs: ['source', 'sha256', 'priorSha256'], refuses: [], why: 'priorSha256 is the content expected before' },
  delete: { needs: ['priorSha256'], refuses: ['source', 'sha256', 'mode'], why: 'priorSha256 is the content expected before' },
};

function fileProblems(a: Record<string, unknown> & { op: (typeof FILE_OPS)[number]; path: string }): Issue[] {
  const rule = FILE_OP_FIELDS[a.op];
  const out: Issue[] = [];
  for (const f of rule.needs) if (a[f] === undefined) out.push({ message: `a ${a.op} action needs ${f} (${rule.why})`, path: [f] });
  for (const f of rule.refuses) if (a[f] !== undefined) out.push({ message: `a ${a.op} action takes no ${f} (${rule.why})`, path: [f] });
  if (a.mode !== undefined && isWindowsPath(a.path)) out.push({ message: 'mode applies to POSIX paths only', path: ['mode'] });
  return out;
}

export const FileAction = z
  .strictObject({
    type: z.literal('file'),
    op: z.enum(FILE_OPS),
    path: DevicePath,
    source: PayloadPath.optional(),
    /** the content after the action (the source's hash) */
    sha256: Sha256Hex.optional(),
    /** the content expected before: a device whose file differs is not the one the patch was built for */
    priorSha256: Sha256Hex.optional(),
    mode: z.string().regex(/^[0-7]{3,4}$/, 'mode is an octal string such as 0644').optional(),
  })
  .superRefine((a, ctx) => addAll(ctx, fileProblems(a)));
export type FileAction = z.infer<typeof FileAction>;

// ── script actions ─────────────────────────────────────────────────────────────────────────

export const SCRIPT_INTERPRETERS = ['sh', 'bash', 'powershell', 'cmd', 'python3'] as const;

export const ScriptAction = z.strictObject({
  type: z.literal('script'),
  interpreter: z.enum(SCRIPT_INTERPRETERS),
  source: PayloadPath,
  args: z
    .array(z.string().max(1024).refine((s) => !s.includes('\0'), 'a script argument contains no NUL character'))
    .max(32)
    .optional(),
  timeoutSeconds: z.number().int().min(1).max(86_400),
  /** Windows exit codes are 32-bit (3010 = reboot required; HRESULTs appear signed or unsigned) */
  expectExit: z
    .array(z.number().int().min(-2_147_483_648).max(4_294_967_295))
    .min(1, 'a script lists at least one expected exit code')
    .max(64)
    .default([0]),
});
export type ScriptAction = z.infer<typeof ScriptAction>;

// ── the union ──────────────────────────────────────────────────────────────────────────────

export const ActionSchema = z.discriminatedUnion('type', [PackageAction, FileAction, ScriptAction]);
export type Action = z.infer<typeof ActionSchema>;

/** as many as a manifest has fixes: a source such as linux builds hundreds of binaries, one upgrade each */
export const MAX_ACTIONS = 10_000;

type WithActions = { install: readonly Action[]; undo: readonly Action[] };

/** The payload paths an action reads. */
export function actionPayloadRef(a: Action): string | undefined {
  return a.type === 'package' ? a.file : a.source;
}

/**
 * True when the patch needs its author's offline-held signature: an online key may sign native
 * package-manager actions against repositories the device already trusts, never a script, a
 * file operation or a package file it ships itself (DESIGN.md, "Identity, signing and trust").
 */
export function actionsNeedAuthor(m: WithActions): boolean {
  return [...m.install, ...m.undo].some((a) => a.type !== 'package' || a.file !== undefined);
}

/** Every payload path that install or undo actions read, sorted, each once. */
export function payloadRefs(m: WithActions): string[] {
  const refs = new Set<string>();
  for (const a of [...m.install, ...m.undo]) {
    const r = actionPayloadRef(a);
    if (r !== undefined) refs.add(r);
  }
  return [...refs].sort();
}
