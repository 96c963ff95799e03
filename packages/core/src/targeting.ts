/**
 * Device targeting: the query of a dynamic group, over what the server knows of a device (OS,
 * architecture, labels, hostname, installed packages, static group). JSON, schema-checked, with
 * limits on depth and size so a hostile query costs little. Pure: the server loads the facts.
 *
 *   { "all": [ { "os": { "id": "debian", "codename": "bookworm" } },
 *              { "label": "env=" },
 *              { "not": { "package": { "name": "openssl", "version": { "lt": "3.0.15-1~deb12u1" } } } } ] }
 *
 * A device that has not reported a fact does not match a test of it (so `not` of that test
 * matches): targeting decides where a deployment may go, and never guesses a compliance state.
 */
import { z } from 'zod';
import { VERSION_SCHEMES } from './version/index.js';
import { COMPARISONS, type Comparison } from './rules/schema.js';

export const MAX_QUERY_DEPTH = 8;
export const MAX_QUERY_NODES = 256;
export const MAX_QUERY_CHILDREN = 64;
/** Serialized size: a query is stored with its group and read on every membership check. */
export const MAX_QUERY_BYTES = 16 * 1024;

const QUERY_SCHEMES = ['deb', 'rpm'] as const;
const short = z.string().min(1).max(64);

export const OsQuery = z
  .strictObject({
    /** os-release ID (debian, ubuntu, rhel …) */
    id: short.optional(),
    /** os-release VERSION_ID (12, 24.04 …), compared as a string */
    version: short.optional(),
    /** os-release VERSION_CODENAME (bookworm, noble …) */
    codename: short.optional(),
  })
  .refine((o) => Object.keys(o).length > 0, 'an os test names at least one of id, version, codename');

export const PackageQuery = z
  .strictObject({
    name: z.string().min(1).max(200),
    /** `{ "lt": "1.2-3" }`: exactly one comparison; absent: the package is installed in any version */
    version: z
      .partialRecord(z.enum(COMPARISONS), z.string().min(1).max(256))
      .refine((o) => Object.keys(o).length === 1, 'a version test has exactly one of lt, le, eq, ne, ge, gt')
      .optional(),
    scheme: z.enum(QUERY_SCHEMES).optional(),
  })
  .superRefine((o, ctx) => {
    if (!o.version) return;
    const scheme = VERSION_SCHEMES[o.scheme ?? 'deb']!;
    for (const v of Object.values(o.version)) {
      const why = scheme.invalidReason(v);
      if (why !== null) ctx.addIssue({ code: 'custom', message: `invalid ${scheme.name} version '${v}': ${why}`, path: ['version'] });
    }
  });

/** `env=prod` matches that label exactly; `env=` matches every label that starts with it. */
const LabelQuery = z.string().min(1).max(63).regex(/^[A-Za-z0-9][A-Za-z0-9._:=/-]*$/, 'a label is letters, digits and . _ : = / -, starting with a letter or digit');
/** `*` any run of characters, `?` one character; case-insensitive. */
const HostnameQuery = z.string().min(1).max(255).regex(/^[A-Za-z0-9.*?_-]+$/, 'a hostname glob is letters, digits, . _ - and the wildcards * ?');
const ArchQuery = short.regex(/^[a-z0-9][a-z0-9_-]*$/, 'an architecture is lowercase letters, digits, _ and -');
const GroupQuery = z.string().min(1).max(100);

export type OsQuery = z.infer<typeof OsQuery>;
export type PackageQuery = z.infer<typeof PackageQuery>;

export type DeviceQuery =
  | { all: DeviceQuery[] }
  | { any: DeviceQuery[] }
  | { not: DeviceQuery }
  | { os: OsQuery }
  | { arch: string }
  | { label: string }
  | { hostname: string }
  | { package: PackageQuery }
  | { group: string };

const LEAVES = { os: OsQuery, arch: ArchQuery, label: LabelQuery, hostname: HostnameQuery, package: PackageQuery, group: GroupQuery } as const;
const KEYS = 'all, any, not, os, arch, label, hostname, package, group';

/**
 * The zod form of a query, for places that embed it in a larger schema. Checked by the same walk
 * as parseDeviceQuery (a union schema would only say that no alternative matched).
 */
export const DeviceQuerySchema: z.ZodType<DeviceQuery> = z.unknown().superRefine((v, ctx) => {
  const r = parseDeviceQuery(v);
  if (!r.ok) ctx.addIssue({ code: 'custom', message: r.reason });
}) as unknown as z.ZodType<DeviceQuery>;

interface Walk {
  nodes: number;
}

function check(input: unknown, path: string, depth: number, walk: Walk): string | null {
  if (depth > MAX_QUERY_DEPTH) return `${path}: a query nests deeper than ${MAX_QUERY_DEPTH} levels`;
  if (++walk.nodes > MAX_QUERY_NODES) return `${path}: a query has at most ${MAX_QUERY_NODES} tests and combinators`;
  if (typeof input !== 'object' || input === null || Array.isArray(input)) return `${path}: a query is an object with one key (${KEYS})`;
  const keys = Object.keys(input);
  if (keys.length !== 1) return `${path}: a query has exactly one key (${KEYS}), not ${keys.length}`;
  const key = keys[0]!;
  const value = (input as Record<string, unknown>)[key];
  const at = `${path}.${key}`;
  if (key === 'all' || key === 'any') {
    if (!Array.isArray(value) || value.length === 0 || value.length > MAX_QUERY_CHILDREN) return `${at}: a list of 1 to ${MAX_QUERY_CHILDREN} queries`;
    for (let i = 0; i < value.length; i++) {
      const why = check(value[i], `${at}[${i}]`, depth + 1, walk);
      if (why) return why;
    }
    return null;
  }
  if (key === 'not') return check(value, at, depth + 1, walk);
  const schema = Object.hasOwn(LEAVES, key) ? LEAVES[key as keyof typeof LEAVES] : undefined;
  if (!schema) return `${path}: unknown test '${key.slice(0, 64)}' (${KEYS})`;
  const r = schema.safeParse(value);
  if (r.success) return null;
  const i = r.error.issues[0]!;
  return `${at}${i.path.length ? `.${i.path.join('.')}` : ''}: ${i.message}`;
}

/** Parses a device query from untrusted JSON; the reason names the exact place (`query.all[1].os`). */
export function parseDeviceQuery(input: unknown): { ok: true; query: DeviceQuery } | { ok: false; reason: string } {
  // the walk first: it stops at the depth and node limits, so what is serialized after it is small
  const why = check(input, 'query', 0, { nodes: 0 });
  if (why !== null) return { ok: false, reason: why };
  const size = JSON.stringify(input).length;
  if (size > MAX_QUERY_BYTES) return { ok: false, reason: `query: ${size} bytes, at most ${MAX_QUERY_BYTES}` };
  return { ok: true, query: input as DeviceQuery };
}

/** What a query is evaluated over. Absent fields: the device has not reported them. */
export interface DeviceFacts {
  hostname: string;
  os?: { id?: string | undefined; version?: string | undefined; codename?: string | undefined } | undefined;
  /** The kernel's and the package manager's names (x86_64, amd64). */
  arch?: readonly string[] | undefined;
  labels: readonly string[];
  /** Installed packages by name: their versions (several with multiarch). Absent: no inventory. */
  packages?: ReadonlyMap<string, readonly string[]> | undefined;
  /** The name of the device's static group, if any. */
  staticGroup: string | null;
}

function holds(c: number, op: Comparison): boolean {
  switch (op) {
    case 'lt': return c < 0;
    case 'le': return c <= 0;
    case 'eq': return c === 0;
    case 'ne': return c !== 0;
    case 'ge': return c >= 0;
    case 'gt': return c > 0;
  }
}

const globCache = new Map<string, RegExp>();
function globRegExp(glob: string): RegExp {
  let re = globCache.get(glob);
  if (!re) {
    const body = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
    re = new RegExp(`^${body}$`, 'i');
    if (globCache.size > 1000) globCache.clear();
    globCache.set(glob, re);
  }
  return re;
}

function packageMatches(q: PackageQuery, facts: DeviceFacts): boolean {
  const versions = facts.packages?.get(q.name);
  if (!versions || versions.length === 0) return false;
  if (!q.version) return true;
  const [op, wanted] = Object.entries(q.version)[0] as [Comparison, string];
  const scheme = VERSION_SCHEMES[q.scheme ?? 'deb']!;
  return versions.some((v) => scheme.invalidReason(v) === null && holds(scheme.compare(v, wanted), op));
}

/** Whether a device matches a query (parsed with parseDeviceQuery). */
export function matchesDeviceQuery(query: DeviceQuery, facts: DeviceFacts): boolean {
  if ('all' in query) return query.all.every((q) => matchesDeviceQuery(q, facts));
  if ('any' in query) return query.any.some((q) => matchesDeviceQuery(q, facts));
  if ('not' in query) return !matchesDeviceQuery(query.not, facts);
  if ('os' in query) {
    const os = facts.os;
    if (!os) return false;
    const q = query.os;
    return (q.id === undefined || q.id === os.id) && (q.version === undefined || q.version === os.version) && (q.codename === undefined || q.codename === os.codename);
  }
  if ('arch' in query) return facts.arch?.includes(query.arch) ?? false;
  if ('label' in query) return query.label.endsWith('=') ? facts.labels.some((l) => l.startsWith(query.label)) : facts.labels.includes(query.label);
  if ('hostname' in query) return globRegExp(query.hostname).test(facts.hostname);
  if ('package' in query) return packageMatches(query.package, facts);
  return facts.staticGroup === query.group;
}

/** What a query reads, so the server loads only those facts: package names and static groups. */
export function deviceQueryNeeds(query: DeviceQuery, out = { packages: new Set<string>(), groups: new Set<string>() }) {
  if ('all' in query) for (const q of query.all) deviceQueryNeeds(q, out);
  else if ('any' in query) for (const q of query.any) deviceQueryNeeds(q, out);
  else if ('not' in query) deviceQueryNeeds(query.not, out);
  else if ('package' in query) out.packages.add(query.package.name);
  else if ('group' in query) out.groups.add(query.group);
  return out;
}
