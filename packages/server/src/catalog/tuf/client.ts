/**
 * The verifying TUF client a local server uses to mirror a whole catalog from its central server.
 *
 * tuf-js answers "what is target X?"; a mirror needs "every target, and every metadata file a
 * device could ask for", so this walks the whole delegation graph. It follows the client workflow
 * of the TUF specification (§5; section numbers below are the spec's) and python-tuf's
 * TrustedMetadataSet, with three differences that come from mirroring:
 *
 * - The trusted state is the caller's (`MirrorState`) and a sync is all-or-nothing: nothing is
 *   written anywhere, the caller persists `result.state` only when the promise resolves. So an
 *   expired final root (§5.3.10) fails the sync without "persisting" the roots before it; the
 *   next sync fetches them again.
 * - Roles whose version in the new snapshot equals the version already trusted are not fetched
 *   again: their bytes come from `state.roles` and go through every check a fetched file does.
 *   With consistent snapshots `metadata/{V}.{role}.json` never changes, so this is safe.
 * - Targets are resolved in two phases (see `loadDelegationGraph` and `resolveTarget`): first
 *   every role reachable through any delegation is loaded (a mirror must serve all of them),
 *   then each listed target path is looked up exactly as a device's client would look it up,
 *   pre-order depth-first from `targets`, honouring paths, terminating delegations, succinct
 *   hash bins and the delegation limit. A role listing a path it is not delegated is simply not
 *   consulted for that path, so its listing is refused and its other targets still count.
 *   Likewise a delegated role the snapshot does not list only costs the paths whose search
 *   reaches it (a per-target client would fail just those lookups); a signature, version or
 *   expiry fault in any role fails the whole sync.
 */
import { createHash, createPublicKey, verify, type KeyObject } from 'node:crypto';
import { canonicalJson, PatchwardenError, type ErrorCode } from '@patchwarden/core';
import { MetaFile, Root, Snapshot, TargetFile, Targets, Timestamp, type Key } from '@tufjs/models';
// Not re-exported by the package index (4.1.1); the package has no export map, so the file is reachable.
import { DelegatedRole, TOP_LEVEL_ROLE_NAMES, type SuccinctRoles } from '@tufjs/models/dist/role.js';

// ─── API ─────────────────────────────────────────────────────────────────────

export interface RemoteRepository {
  /**
   * The file at `path`, relative to the repository base and spelled as the layout names it
   * (`metadata/3.debian-bin-a.json`, `targets/debian/<sha256>.<basename>`; role names are
   * already `encodeURIComponent`-ed, target names are not: an HTTP implementation percent-encodes
   * each segment itself). `null` when the repository has no such file. It should not return more
   * than `maxBytes` (the client refuses a longer answer anyway). Throws on network errors; they
   * pass through `mirrorCatalog` untouched.
   */
  get(path: string, maxBytes: number): Promise<Uint8Array | null>;
}

export interface VerifiedRole {
  name: string;
  version: number;
  bytes: Uint8Array;
}

/** What was verified last time, persisted by the caller. Never mutated by this module. */
export interface MirrorState {
  root: Uint8Array;
  timestamp?: Uint8Array;
  snapshot?: Uint8Array;
  roles: Map<string, VerifiedRole>;
}

export interface MirroredTarget {
  role: string;
  length: number;
  sha256: string;
  custom?: unknown;
}

/** A target path some role lists but that the delegation rules do not give to that role. */
export interface RefusedTarget {
  path: string;
  role: string;
  reason: string;
}

export interface MirrorResult {
  /** the new trusted state (root is the newest verified root) */
  state: MirrorState;
  /** every root fetched, in order (the mirror serves them byte for byte) */
  newRoots: Uint8Array[];
  /** roles whose bytes were fetched and adopted this time ('root' when newRoots is not empty) */
  changedRoles: string[];
  /** every target path, resolved by the delegation rules (first matching role wins; terminating stops) */
  targets: Map<string, MirroredTarget>;
  /** listings that were not taken, with the reason (outside the role's delegated paths, shadowed, …) */
  refused: RefusedTarget[];
  /** files received from the remote (answers of "not found" are not counted) and their bytes */
  fetched: { files: number; bytes: number };
}

export interface MirrorLimits {
  rootBytes: number;
  timestampBytes: number;
  snapshotBytes: number;
  /** per targets role (top-level and each delegated one) */
  targetsBytes: number;
  /** new roots fetched in one sync at most; the next sync continues from there (as python-tuf) */
  maxRootRotations: number;
  /** roles visited when looking one target path up (the spec's limit on delegations; python-tuf's 32) */
  maxDelegations: number;
  /** roles in the whole delegation graph, hash bins included */
  maxRoles: number;
  /** metadata requests in flight at once */
  concurrency: number;
}

export const DEFAULT_MIRROR_LIMITS: Readonly<MirrorLimits> = Object.freeze({
  rootBytes: 512 * 1024,
  timestampBytes: 16 * 1024,
  snapshotBytes: 64 * 1024 * 1024,
  targetsBytes: 64 * 1024 * 1024,
  maxRootRotations: 256,
  maxDelegations: 32,
  maxRoles: 100_000,
  concurrency: 8,
});

export interface MirrorOptions {
  remote: RemoteRepository;
  state: MirrorState;
  /** the reference time of every expiry check (spec §5.1: fixed for the whole update) */
  now: Date;
  limits?: Partial<MirrorLimits>;
}

/**
 * Verifies and fetches what changed on the remote since `state`, and resolves every target.
 * Throws a PatchwardenError (E_SIGNATURE_INVALID, E_METADATA_EXPIRED, E_METADATA_ROLLBACK,
 * E_METADATA_INVALID, E_DIGEST_MISMATCH) naming the file and the fault; `state` stays as it was.
 */
export async function mirrorCatalog(opts: MirrorOptions): Promise<MirrorResult> {
  const run = new MirrorRun(opts);
  try {
    return await run.run();
  } finally {
    // A failure in the middle must not leave prefetches running after we return.
    await run.settle();
  }
}

/** Fetches one target file of the layout (`targets/{dirname}/{sha256}.{basename}`) and checks its length and SHA-256. */
export async function fetchTarget(remote: RemoteRepository, entry: { length: number; sha256: string }, path: string): Promise<Uint8Array> {
  const problem = targetPathProblem(path);
  if (problem) fail('E_METADATA_INVALID', `target path ${JSON.stringify(path)} ${problem}`);
  if (!SHA256_RE.test(entry.sha256)) fail('E_METADATA_INVALID', `${path}: ${JSON.stringify(entry.sha256)} is not a SHA-256 in lowercase hex`);
  if (!Number.isSafeInteger(entry.length) || entry.length < 0) fail('E_METADATA_INVALID', `${path}: length ${entry.length} is not a byte count`);
  const [dirname, basename] = path.split('/') as [string, string];
  const file = `targets/${dirname}/${entry.sha256}.${basename}`;
  const bytes = await remote.get(file, entry.length);
  if (bytes === null) fail('E_NOT_FOUND', `${file}: not found on the remote`);
  if (bytes.length !== entry.length) fail('E_DIGEST_MISMATCH', `${file}: ${bytes.length} bytes, but the signed metadata says ${entry.length}`);
  const got = sha256Hex(bytes);
  if (got !== entry.sha256) fail('E_DIGEST_MISMATCH', `${file}: SHA-256 ${got}, but the signed metadata says ${entry.sha256}`);
  return bytes;
}

/**
 * Why a target path is unsafe or outside the layout, or undefined when it is fine. Paths become
 * file names on the mirror (`targets/{dirname}/{sha256}.{basename}`), so anything that could
 * leave that directory or mean something else on another system is refused.
 */
export function targetPathProblem(path: string): string | undefined {
  if (path.length === 0) return 'is empty';
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return 'contains a control character (NUL included)';
  }
  if (path.includes('\\')) return 'contains a backslash';
  if (path.startsWith('/')) return 'is absolute';
  const segments = path.split('/');
  if (segments.some((s) => s === '')) return 'has an empty segment';
  if (segments.some((s) => s === '.' || s === '..')) return 'has a "." or ".." segment';
  if (segments.length !== 2) return `has ${segments.length} segments; the layout takes exactly dirname/basename`;
  return undefined;
}

// ─── Internals ───────────────────────────────────────────────────────────────

const SHA256_RE = /^[0-9a-f]{64}$/;
const HEX_RE = /^[0-9a-f]+$/;
/** TUF's date form; python-tuf accepts exactly this one. */
const EXPIRES_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;
const HASH_ALGORITHMS = new Set(['sha256', 'sha384', 'sha512']);
const utf8 = new TextDecoder('utf-8', { fatal: true });

function fail(code: ErrorCode, message: string): never {
  throw new PatchwardenError(code, message);
}

function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function own<T>(record: Record<string, T> | undefined, key: string): T | undefined {
  return record !== undefined && Object.hasOwn(record, key) ? record[key] : undefined;
}

type Kind = 'root' | 'timestamp' | 'snapshot' | 'targets';
type JsonObject = Parameters<typeof Root.fromJSON>[0];
type Delegations = NonNullable<Targets['delegations']>;

/** The model fills in keys and roles a root leaves out with defaults: a root must state them. */
function rootFromJSON(raw: JsonObject): Root {
  if (!isObject(raw.keys) || !isObject(raw.roles)) throw new TypeError('root needs "keys" and "roles"');
  return Root.fromJSON(raw);
}

/** The model makes up snapshot version 1 when `meta` is missing: a timestamp must state it. */
function timestampFromJSON(raw: JsonObject): Timestamp {
  if (!isObject(raw.meta) || !isObject(raw.meta['snapshot.json'])) throw new TypeError('timestamp needs meta["snapshot.json"]');
  return Timestamp.fromJSON(raw);
}

/*
 * Snapshot and targets are read with the models for everything but their big maps: the models
 * build `meta` and `targets` with an object spread per entry, which is quadratic (a targets role
 * of 20,000 entries takes minutes). Those maps are read here, one entry at a time.
 */
interface SnapshotModel {
  version: number;
  expires: string;
  meta: Map<string, MetaFile>;
}

function snapshotFromJSON(raw: JsonObject): SnapshotModel {
  const { meta, ...rest } = raw;
  const model = Snapshot.fromJSON({ ...rest, meta: {} });
  if (!isObject(meta)) throw new TypeError('meta must be an object');
  const entries = new Map<string, MetaFile>();
  for (const [name, entry] of Object.entries(meta)) {
    if (!isObject(entry)) throw new TypeError(`meta ${name} must be an object`);
    entries.set(name, MetaFile.fromJSON(entry as JsonObject));
  }
  return { version: model.version, expires: model.expires, meta: entries };
}

interface TargetsModel {
  version: number;
  expires: string;
  delegations?: Delegations;
  /** the `targets` object as sent; each entry is checked when the role is accepted */
  targets: Record<string, unknown>;
}

function targetsFromJSON(raw: JsonObject): TargetsModel {
  const { targets, ...rest } = raw;
  const model = Targets.fromJSON({ ...rest, targets: {} });
  if (!isObject(targets)) throw new TypeError('targets must be an object');
  return { version: model.version, expires: model.expires, delegations: model.delegations, targets };
}

/** One metadata file, parsed but not yet trusted. */
interface Envelope<T> {
  /** where it came from, for messages */
  file: string;
  bytes: Uint8Array;
  model: T;
  /** the `signed` object as sent: unknown fields included, as the spec requires (§4) */
  raw: Record<string, unknown>;
  /** what the signatures cover: the canonical JSON of `raw` (not of a re-serialised model) */
  signedBytes: Buffer;
  /** key id → every signature given under it (duplicates are allowed here and count once) */
  signatures: Map<string, string[]>;
}

/** Who may sign a role: the delegator's keys and the role entry (key ids + threshold) it gives. */
interface Edge {
  /** the delegator, for messages: `root v3`, `vendors` */
  from: string;
  keys: Record<string, Key>;
  keyIDs: string[];
  threshold: number;
}

interface ListedTarget {
  length: number;
  sha256: string;
  custom?: unknown;
}

interface Child {
  name: string;
  edge: Edge;
  terminating: boolean;
}

/** A targets role as fetched or reused (checked for length, hashes and form, not yet signatures). */
interface RoleFile {
  name: string;
  env: Envelope<TargetsModel>;
  fetched: boolean;
}

/** A targets role accepted into the graph: signed by at least one way into it, current, well-formed. */
interface LoadedRole extends RoleFile {
  targets: Map<string, ListedTarget>;
  /** every delegation, in order (all bins of a succinct delegation) */
  children: Child[];
  /** the delegations a given target path follows, in order */
  childrenFor(path: string): Child[];
}

/**
 * Reads one metadata file: JSON, `_type`, the model's form checks, a positive integer version, a
 * TUF date, the signature list. Nothing here says the file is trusted.
 */
function parseEnvelope<T extends { version: number; expires: string }>(bytes: Uint8Array, kind: Kind, file: string, fromJSON: (raw: JsonObject) => T): Envelope<T> {
  let doc: unknown;
  try {
    doc = JSON.parse(utf8.decode(bytes));
  } catch (err) {
    fail('E_METADATA_INVALID', `${file}: not JSON in UTF-8 (${(err as Error).message})`);
  }
  if (!isObject(doc) || !isObject(doc.signed) || !Array.isArray(doc.signatures)) {
    fail('E_METADATA_INVALID', `${file}: not TUF metadata (needs a "signed" object and a "signatures" list)`);
  }
  const raw = doc.signed;
  if (raw._type !== kind) fail('E_METADATA_INVALID', `${file}: _type is ${JSON.stringify(raw._type)}, expected "${kind}"`);
  let model: T;
  let signedBytes: Buffer;
  try {
    model = fromJSON(raw as JsonObject);
    // Throws on floats and other values canonical JSON cannot carry.
    signedBytes = canonicalJson(raw);
  } catch (err) {
    fail('E_METADATA_INVALID', `${file}: ${(err as Error).message}`);
  }
  if (!Number.isSafeInteger(model.version) || model.version < 1) fail('E_METADATA_INVALID', `${file}: version ${String(model.version)} is not a positive integer`);
  // An unparseable date would make Signed.isExpired() answer "not expired" forever.
  const expires = Date.parse(model.expires);
  if (!EXPIRES_RE.test(model.expires) || Number.isNaN(expires) || new Date(expires).toISOString().slice(0, 19) !== model.expires.slice(0, 19)) {
    fail('E_METADATA_INVALID', `${file}: expires ${JSON.stringify(model.expires)} is not a date of the form 2030-01-31T00:00:00Z`);
  }
  const signatures = new Map<string, string[]>();
  for (const s of doc.signatures) {
    if (!isObject(s) || typeof s.keyid !== 'string' || typeof s.sig !== 'string') fail('E_METADATA_INVALID', `${file}: a signature is not { keyid, sig }`);
    const list = signatures.get(s.keyid);
    if (list) list.push(s.sig);
    else signatures.set(s.keyid, [s.sig]);
  }
  return { file, bytes, model, raw, signedBytes, signatures };
}

function isExpired(model: { expires: string }, now: Date): boolean {
  return now.getTime() >= Date.parse(model.expires);
}

function checkNotExpired(env: Envelope<{ expires: string }>, now: Date): void {
  if (isExpired(env.model, now)) fail('E_METADATA_EXPIRED', `${env.file}: expired at ${env.model.expires}`);
}

/** Version, length and hashes of one `meta` entry, checked before they are relied on. */
function checkMetaFile(meta: MetaFile, where: string): void {
  if (!Number.isSafeInteger(meta.version) || meta.version < 1) fail('E_METADATA_INVALID', `${where}: version ${meta.version} is not a positive integer`);
  if (meta.length !== undefined && (!Number.isSafeInteger(meta.length) || meta.length < 0)) fail('E_METADATA_INVALID', `${where}: length ${meta.length} is not a byte count`);
  for (const [alg, value] of Object.entries(meta.hashes ?? {})) {
    if (!HASH_ALGORITHMS.has(alg)) fail('E_METADATA_INVALID', `${where}: hash algorithm ${JSON.stringify(alg)} is not supported`);
    if (!HEX_RE.test(value)) fail('E_METADATA_INVALID', `${where}: ${alg} ${JSON.stringify(value)} is not lowercase hex`);
  }
}

function matchesMetaFile(bytes: Uint8Array, meta: MetaFile): boolean {
  if (meta.length !== undefined && bytes.length !== meta.length) return false;
  return Object.entries(meta.hashes ?? {}).every(([alg, value]) => createHash(alg).update(bytes).digest('hex') === value);
}

/** Spec §5.5.2 / §5.6.2: the file must be the one the listing (timestamp or snapshot) names. */
function checkAgainstMetaFile(bytes: Uint8Array, meta: MetaFile, file: string, lister: string): void {
  if (meta.length !== undefined && bytes.length !== meta.length) fail('E_DIGEST_MISMATCH', `${file}: ${bytes.length} bytes, but ${lister} says ${meta.length}`);
  for (const [alg, want] of Object.entries(meta.hashes ?? {})) {
    const got = createHash(alg).update(bytes).digest('hex');
    if (got !== want) fail('E_DIGEST_MISMATCH', `${file}: ${alg} ${got}, but ${lister} says ${want}`);
  }
}

/** The keys and threshold a top-level role needs, as one comparable string (for §5.3.11). */
function roleKeysFingerprint(root: Root, role: string): string {
  const r = root.roles[role]!;
  const keys = [...new Set(r.keyIDs)].sort().map((id) => {
    const k = own(root.keys, id);
    return k ? `${id}=${k.keyType}/${k.scheme}/${k.keyVal.public ?? ''}` : `${id}=?`;
  });
  return `${r.threshold}|${keys.join(',')}`;
}

class Verifier {
  /** public key hex → key object (null: not a usable Ed25519 key) */
  private readonly keyObjects = new Map<string, KeyObject | null>();

  /** The raw public key of a usable Ed25519 key, the only type this layout uses; other types never count. */
  private publicKey(key: Key): { hex: string; object: KeyObject } | undefined {
    if (key.keyType !== 'ed25519' || key.scheme !== 'ed25519') return undefined;
    const hex = key.keyVal.public?.toLowerCase();
    if (hex === undefined || !/^[0-9a-f]{64}$/.test(hex)) return undefined;
    let object = this.keyObjects.get(hex);
    if (object === undefined) {
      try {
        object = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(hex, 'hex').toString('base64url') }, format: 'jwk' });
      } catch {
        object = null;
      }
      this.keyObjects.set(hex, object);
    }
    return object ? { hex, object } : undefined;
  }

  /**
   * How many distinct keys of the edge signed the envelope. Distinct means distinct public keys:
   * a signature listed twice, or one key listed under two key ids, counts once.
   */
  countSigners(env: Envelope<unknown>, edge: Edge): number {
    const signers = new Set<string>();
    for (const keyid of new Set(edge.keyIDs)) {
      const key = own(edge.keys, keyid);
      const pub = key && this.publicKey(key);
      if (!pub || signers.has(pub.hex)) continue;
      const sigs = env.signatures.get(keyid) ?? [];
      if (sigs.some((sig) => /^[0-9a-fA-F]{128}$/.test(sig) && verifySafely(env.signedBytes, pub.object, sig))) signers.add(pub.hex);
    }
    return signers.size;
  }

  signedBy(env: Envelope<unknown>, edge: Edge): boolean {
    return this.countSigners(env, edge) >= edge.threshold;
  }

  check(env: Envelope<unknown>, edge: Edge, role: string): void {
    const n = this.countSigners(env, edge);
    if (n < edge.threshold) fail('E_SIGNATURE_INVALID', signatureMessage(env.file, role, n, edge));
  }
}

function signatureMessage(file: string, role: string, n: number, edge: Edge): string {
  return `${file}: ${role} is signed by ${n} of the ${edge.threshold} distinct key(s) ${edge.from} requires for it`;
}

function verifySafely(data: Buffer, key: KeyObject, sigHex: string): boolean {
  try {
    return verify(null, data, key, Buffer.from(sigHex, 'hex'));
  } catch {
    return false;
  }
}

function rootEdge(root: Root, role: string, version: number): Edge {
  const r = root.roles[role]!;
  return { from: `root v${version}`, keys: root.keys, keyIDs: r.keyIDs, threshold: r.threshold };
}

/** Counts what the remote sends and keeps the number of requests in flight bounded. */
class Fetcher {
  files = 0;
  bytes = 0;
  private active = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(
    private readonly remote: RemoteRepository,
    private readonly concurrency: number,
  ) {}

  async get(path: string, maxBytes: number): Promise<Uint8Array | null> {
    if (this.active < this.concurrency) this.active++;
    else await new Promise<void>((resolve) => this.waiting.push(resolve)); // the slot is handed over
    try {
      const bytes = await this.remote.get(path, maxBytes);
      if (bytes !== null) {
        this.files++;
        this.bytes += bytes.length;
      }
      return bytes;
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }

  /** A metadata file that signed metadata lists (with a version and perhaps a length). */
  async getListed(file: string, meta: MetaFile, limit: number, lister: string): Promise<Uint8Array> {
    if (meta.length !== undefined && meta.length > limit) fail('E_METADATA_INVALID', `${file}: ${lister} gives it ${meta.length} bytes, more than the ${limit}-byte limit`);
    const max = meta.length ?? limit;
    const bytes = await this.get(file, max);
    if (bytes === null) fail('E_METADATA_INVALID', `${file}: not found on the remote, though ${lister} lists version ${meta.version}`);
    if (bytes.length > max) {
      if (meta.length !== undefined) fail('E_DIGEST_MISMATCH', `${file}: ${bytes.length} bytes, but ${lister} says ${meta.length}`);
      fail('E_METADATA_INVALID', `${file}: ${bytes.length} bytes, more than the ${limit}-byte limit`);
    }
    return bytes;
  }
}

class MirrorRun {
  private readonly limits: MirrorLimits;
  private readonly state: MirrorState;
  private readonly now: Date;
  private readonly fetcher: Fetcher;
  private readonly verifier = new Verifier();
  /** role name → its file, fetched or reused; a promise so that children can be prefetched */
  private readonly roleFiles = new Map<string, Promise<RoleFile>>();
  /** edge → role file → signed by that edge? (each check is done once) */
  private readonly edgeChecks = new WeakMap<Edge, WeakMap<Envelope<TargetsModel>, boolean>>();
  /**
   * Delegated roles the snapshot does not list. Not an error by itself: a delegation can exist
   * before its role's first file (`custom` before an author uploads a listing). A path whose
   * search reaches such a role is refused, and the search stops there rather than going on
   * to roles the delegation order ranks lower.
   */
  private readonly unlisted = new Set<string>();
  /** pattern segment → target segment → match (see segmentMatches) */
  private readonly segmentMatches = new Map<string, Map<string, boolean>>();

  constructor(opts: MirrorOptions) {
    this.limits = { ...DEFAULT_MIRROR_LIMITS, ...opts.limits };
    this.state = opts.state;
    this.now = opts.now;
    this.fetcher = new Fetcher(opts.remote, Math.max(1, this.limits.concurrency));
  }

  async settle(): Promise<void> {
    await Promise.allSettled(this.roleFiles.values());
  }

  async run(): Promise<MirrorResult> {
    const changedRoles: string[] = [];

    // §5.2: the trusted root. It was verified when it was stored; checking it signs itself
    // again catches a damaged state before anything is fetched.
    let root = parseEnvelope(this.state.root, 'root', 'state.root', rootFromJSON);
    this.verifier.check(root, rootEdge(root.model, 'root', root.model.version), 'root');

    // §5.3: walk the root chain N → N+1 until the remote has no next root.
    const newRoots: Uint8Array[] = [];
    let rotated = false;
    for (let i = 0; i < this.limits.maxRootRotations; i++) {
      const version = root.model.version + 1;
      const file = `metadata/${version}.root.json`;
      const bytes = await this.fetcher.get(file, this.limits.rootBytes);
      if (bytes === null) break;
      if (bytes.length > this.limits.rootBytes) fail('E_METADATA_INVALID', `${file}: ${bytes.length} bytes, more than the ${this.limits.rootBytes}-byte limit`);
      const next = parseEnvelope(bytes, 'root', file, rootFromJSON);
      // §5.3.4: signed by a threshold of the trusted root's keys, then (§5.3.5) the version, then
      // by a threshold of its own keys.
      this.verifier.check(next, rootEdge(root.model, 'root', root.model.version), 'root');
      if (next.model.version <= root.model.version) fail('E_METADATA_ROLLBACK', `${file}: version ${next.model.version}, but root v${root.model.version} is already trusted`);
      if (next.model.version !== version) fail('E_METADATA_INVALID', `${file}: version ${next.model.version}, expected ${version}`);
      this.verifier.check(next, rootEdge(next.model, 'root', next.model.version), 'root');
      // §5.3.11 needs to know whether timestamp or snapshot keys changed anywhere on the way.
      for (const role of ['timestamp', 'snapshot']) {
        if (roleKeysFingerprint(root.model, role) !== roleKeysFingerprint(next.model, role)) rotated = true;
      }
      root = next;
      newRoots.push(bytes);
    }
    if (newRoots.length > 0) changedRoles.push('root');

    // §5.3.10: the final root must be current (intermediate ones may have expired).
    checkNotExpired(root, this.now);
    const finalRoot = root.model;
    // The layout is consistent snapshots: versioned file names are what make re-syncs incremental
    // and what the mirror serves.
    if (!finalRoot.consistentSnapshot) fail('E_METADATA_INVALID', `${root.file}: consistent_snapshot is false; the mirror needs versioned metadata files`);

    // §5.3.11 fast-forward attack recovery: when timestamp or snapshot keys were rotated, the
    // trusted timestamp and snapshot no longer bound what may come next.
    const trustedTimestamp = !rotated && this.state.timestamp ? parseEnvelope(this.state.timestamp, 'timestamp', 'state.timestamp', timestampFromJSON) : undefined;
    const trustedSnapshot = !rotated && this.state.snapshot ? parseEnvelope(this.state.snapshot, 'snapshot', 'state.snapshot', snapshotFromJSON) : undefined;

    // §5.4: timestamp.
    const tsFile = 'metadata/timestamp.json';
    const tsBytes = await this.fetcher.get(tsFile, this.limits.timestampBytes);
    if (tsBytes === null) fail('E_METADATA_INVALID', `${tsFile}: not found on the remote`);
    if (tsBytes.length > this.limits.timestampBytes) fail('E_METADATA_INVALID', `${tsFile}: ${tsBytes.length} bytes, more than the ${this.limits.timestampBytes}-byte limit`);
    const newTimestamp = parseEnvelope(tsBytes, 'timestamp', tsFile, timestampFromJSON);
    this.verifier.check(newTimestamp, rootEdge(finalRoot, 'timestamp', finalRoot.version), 'timestamp');
    let timestamp = newTimestamp;
    if (trustedTimestamp) {
      const was = trustedTimestamp.model;
      const is = newTimestamp.model;
      if (is.version < was.version) fail('E_METADATA_ROLLBACK', `${tsFile}: version ${is.version}, but version ${was.version} is already trusted`);
      if (is.version === was.version) {
        // Same version: keep what is trusted (a changed body under an old version is not news).
        timestamp = trustedTimestamp;
      } else if (is.snapshotMeta.version < was.snapshotMeta.version) {
        fail('E_METADATA_ROLLBACK', `${tsFile}: names snapshot version ${is.snapshotMeta.version}, but version ${was.snapshotMeta.version} is already trusted`);
      }
    }
    // Expiry is checked last: an expired trusted timestamp still guards against rollback.
    checkNotExpired(timestamp, this.now);
    if (timestamp === newTimestamp) changedRoles.push('timestamp');

    // §5.5: snapshot, reused when the trusted one is the version the timestamp names.
    const snapMeta = timestamp.model.snapshotMeta;
    checkMetaFile(snapMeta, `${timestamp.file} meta snapshot.json`);
    const snapFile = `metadata/${snapMeta.version}.snapshot.json`;
    const snapshotEdge = rootEdge(finalRoot, 'snapshot', finalRoot.version);
    let snapshot: Envelope<SnapshotModel>;
    if (
      trustedSnapshot &&
      trustedSnapshot.model.version === snapMeta.version &&
      matchesMetaFile(trustedSnapshot.bytes, snapMeta) &&
      this.verifier.signedBy(trustedSnapshot, snapshotEdge) &&
      !isExpired(trustedSnapshot.model, this.now)
    ) {
      snapshot = trustedSnapshot;
    } else {
      const bytes = await this.fetcher.getListed(snapFile, snapMeta, this.limits.snapshotBytes, tsFile);
      checkAgainstMetaFile(bytes, snapMeta, snapFile, tsFile);
      snapshot = parseEnvelope(bytes, 'snapshot', snapFile, snapshotFromJSON);
      this.verifier.check(snapshot, snapshotEdge, 'snapshot');
      if (trustedSnapshot) checkSnapshotRollback(trustedSnapshot, snapshot);
      changedRoles.push('snapshot');
    }
    // §5.5.4 and §5.5.6: the final snapshot is the version the timestamp names, and current.
    if (snapshot.model.version !== snapMeta.version) fail('E_METADATA_INVALID', `${snapFile}: version ${snapshot.model.version}, but ${tsFile} names version ${snapMeta.version}`);
    checkNotExpired(snapshot, this.now);
    for (const [name, meta] of snapshot.model.meta) checkMetaFile(meta, `${snapFile} meta ${name}`);
    if (!snapshot.model.meta.has('targets.json')) fail('E_METADATA_INVALID', `${snapFile}: does not list targets.json`);

    // §5.6: every targets role, then every target.
    const targetsEdge = rootEdge(finalRoot, 'targets', finalRoot.version);
    const roles = await this.loadDelegationGraph(snapshot, targetsEdge);
    const { targets, refused } = this.resolveAll(roles, targetsEdge);

    const newRoles = new Map<string, VerifiedRole>();
    for (const role of roles.values()) {
      newRoles.set(role.name, { name: role.name, version: role.env.model.version, bytes: role.env.bytes });
      if (role.fetched) changedRoles.push(role.name);
    }
    return {
      state: { root: root.bytes, timestamp: timestamp.bytes, snapshot: snapshot.bytes, roles: newRoles },
      newRoots,
      changedRoles,
      targets,
      refused,
      fetched: { files: this.fetcher.files, bytes: this.fetcher.bytes },
    };
  }

  /**
   * Phase 1: every role reachable through any delegation, in pre-order depth-first order (the
   * order the spec searches in). A role is accepted the first time it is reached through a
   * delegation whose keys signed it; a role that no delegation reaching it signed fails the sync.
   * Which delegation may speak for which target path is decided in phase 2, edge by edge.
   */
  private async loadDelegationGraph(snapshot: Envelope<SnapshotModel>, targetsEdge: Edge): Promise<Map<string, LoadedRole>> {
    const accepted = new Map<string, LoadedRole>();
    const unsigned = new Map<string, string>();
    const stack: Array<{ name: string; edge: Edge }> = [{ name: 'targets', edge: targetsEdge }];
    while (stack.length > 0) {
      const { name, edge } = stack.pop()!;
      if (accepted.has(name)) continue; // cycles, and roles delegated more than once
      if (!snapshot.model.meta.has(`${name}.json`)) {
        this.unlisted.add(name);
        continue;
      }
      let file = await this.roleFile(name, snapshot);
      if (!file.fetched && (!this.edgeSigned(edge, file) || isExpired(file.env.model, this.now))) {
        // The copy from the state has the version the snapshot lists but no longer passes: the
        // repository re-signed that version (new delegator keys, new expiry). The mirror must
        // serve what the remote serves now, so fetch it; its verdict is final.
        file = await this.roleFile(name, snapshot, true);
      }
      if (!this.edgeSigned(edge, file)) {
        if (!unsigned.has(name)) unsigned.set(name, signatureMessage(file.env.file, name, this.verifier.countSigners(file.env, edge), edge));
        continue;
      }
      const role = this.acceptRole(file, snapshot);
      accepted.set(name, role);
      const fresh = new Set(role.children.map((c) => c.name).filter((n) => !this.roleFiles.has(n) && snapshot.model.meta.has(`${n}.json`)));
      if (this.roleFiles.size + fresh.size > this.limits.maxRoles) fail('E_METADATA_INVALID', `the delegation graph has more than ${this.limits.maxRoles} roles (reached at ${name})`);
      // Start fetching the children now; they are checked below in depth-first order.
      for (const n of fresh) void this.roleFile(n, snapshot).catch(() => {});
      for (let i = role.children.length - 1; i >= 0; i--) stack.push(role.children[i]!);
    }
    for (const [name, message] of unsigned) {
      if (!accepted.has(name)) fail('E_SIGNATURE_INVALID', message);
    }
    return accepted;
  }

  /**
   * The file of a role at the version the snapshot lists: reused from the state when it holds
   * that version (and the length and hashes the snapshot may give), else fetched.
   */
  private roleFile(name: string, snapshot: Envelope<SnapshotModel>, refetch = false): Promise<RoleFile> {
    let p = this.roleFiles.get(name);
    if (!p || refetch) {
      p = this.fetchRoleFile(name, snapshot, !refetch);
      this.roleFiles.set(name, p);
    }
    return p;
  }

  private async fetchRoleFile(name: string, snapshot: Envelope<SnapshotModel>, mayReuse: boolean): Promise<RoleFile> {
    const meta = snapshot.model.meta.get(`${name}.json`);
    if (!meta) throw new Error(`internal: ${name}.json is not in the snapshot`); // callers check first
    const file = `metadata/${meta.version}.${encodeURIComponent(name)}.json`;
    const cached = mayReuse ? this.state.roles.get(name) : undefined;
    if (cached && cached.version === meta.version && matchesMetaFile(cached.bytes, meta)) {
      try {
        const env = parseEnvelope(cached.bytes, 'targets', file, targetsFromJSON);
        if (env.model.version === meta.version) return { name, env, fetched: false };
      } catch {
        // a damaged copy in the state: fetch it again below
      }
    }
    const bytes = await this.fetcher.getListed(file, meta, this.limits.targetsBytes, snapshot.file);
    checkAgainstMetaFile(bytes, meta, file, snapshot.file);
    return { name, env: parseEnvelope(bytes, 'targets', file, targetsFromJSON), fetched: true };
  }

  /** Is this role's file signed by a threshold of the keys this delegation gives it? Checked once per delegation. */
  private edgeSigned(edge: Edge, file: RoleFile): boolean {
    let checks = this.edgeChecks.get(edge);
    if (!checks) this.edgeChecks.set(edge, (checks = new WeakMap()));
    let ok = checks.get(file.env);
    if (ok === undefined) {
      ok = this.verifier.signedBy(file.env, edge);
      checks.set(file.env, ok);
    }
    return ok;
  }

  /** §5.6.4–5.6.5 and the form of the content, for a role whose signature was just accepted. */
  private acceptRole(file: RoleFile, snapshot: Envelope<SnapshotModel>): LoadedRole {
    const { env, name } = file;
    const meta = snapshot.model.meta.get(`${name}.json`)!;
    if (env.model.version !== meta.version) fail('E_METADATA_INVALID', `${env.file}: version ${env.model.version}, but ${snapshot.file} names version ${meta.version}`);
    checkNotExpired(env, this.now);

    const targets = new Map<string, ListedTarget>();
    for (const [path, entry] of Object.entries(env.model.targets)) {
      const problem = targetPathProblem(path);
      if (problem) fail('E_METADATA_INVALID', `${env.file}: target path ${JSON.stringify(path)} ${problem}`);
      let tf: TargetFile;
      try {
        tf = TargetFile.fromJSON(path, (isObject(entry) ? entry : {}) as JsonObject);
      } catch (err) {
        fail('E_METADATA_INVALID', `${env.file}: ${path}: ${(err as Error).message}`);
      }
      if (!Number.isSafeInteger(tf.length)) fail('E_METADATA_INVALID', `${env.file}: ${path}: length ${tf.length} is not a byte count`);
      const sha256 = own(tf.hashes, 'sha256');
      if (sha256 === undefined || !SHA256_RE.test(sha256)) fail('E_METADATA_INVALID', `${env.file}: ${path}: needs a sha256 hash in lowercase hex (the file name on the mirror is made of it)`);
      const listed: ListedTarget = { length: tf.length, sha256 };
      if (isObject(entry) && Object.hasOwn(entry, 'custom')) listed.custom = entry.custom;
      targets.set(path, listed);
    }

    const { children, childrenFor } = this.delegationsOf(env, name);
    return { ...file, targets, children, childrenFor };
  }

  private delegationsOf(env: Envelope<TargetsModel>, name: string): Pick<LoadedRole, 'children' | 'childrenFor'> {
    const d = env.model.delegations;
    const rawD = env.raw.delegations;
    if (!d || !isObject(rawD)) return { children: [], childrenFor: () => [] };
    const hasRoles = rawD.roles !== undefined;
    const hasBins = rawD.succinct_roles !== undefined;
    if (hasRoles === hasBins) fail('E_METADATA_INVALID', `${env.file}: delegations need exactly one of "roles" and "succinct_roles"`);

    if (hasBins) {
      const bins: SuccinctRoles | undefined = d.succinctRoles;
      if (!bins) fail('E_METADATA_INVALID', `${env.file}: delegations.succinct_roles is not an object`);
      if (bins.numberOfBins > this.limits.maxRoles) fail('E_METADATA_INVALID', `${env.file}: ${bins.numberOfBins} hash bins, more than the ${this.limits.maxRoles} roles allowed`);
      const edge: Edge = { from: name, keys: d.keys, keyIDs: bins.keyIDs, threshold: bins.threshold };
      // TAP 15: every bin is terminating, and a path belongs to exactly one bin.
      const children = [...bins.getRoles()].map((bin) => ({ name: bin, edge, terminating: true }));
      return { children, childrenFor: (path) => [{ name: bins.getRoleForTarget(path), edge, terminating: true }] };
    }

    // The model keeps roles in an object keyed by name, which loses duplicates and reorders
    // names that look like integers; the order is the priority, so take it from the list as sent.
    if (!Array.isArray(rawD.roles)) fail('E_METADATA_INVALID', `${env.file}: delegations.roles is not a list`);
    const seen = new Set<string>();
    const delegated: Array<{ role: DelegatedRole; edge: Edge }> = [];
    for (const r of rawD.roles as unknown[]) {
      const roleName = isObject(r) ? r.name : undefined;
      if (typeof roleName !== 'string') fail('E_METADATA_INVALID', `${env.file}: a delegated role has no name`);
      if (seen.has(roleName)) fail('E_METADATA_INVALID', `${env.file}: delegates to ${JSON.stringify(roleName)} twice`);
      if (TOP_LEVEL_ROLE_NAMES.includes(roleName)) fail('E_METADATA_INVALID', `${env.file}: delegates to the top-level role name ${JSON.stringify(roleName)}`);
      seen.add(roleName);
      const role = own(d.roles, roleName)!;
      if (role.paths === undefined && role.pathHashPrefixes === undefined) fail('E_METADATA_INVALID', `${env.file}: the delegation to ${JSON.stringify(roleName)} has neither paths nor path_hash_prefixes`);
      delegated.push({ role, edge: { from: name, keys: d.keys, keyIDs: role.keyIDs, threshold: role.threshold } });
    }
    const children = delegated.map(({ role, edge }) => ({ name: role.name, edge, terminating: role.terminating }));
    return {
      children,
      childrenFor: (path) => delegated.filter(({ role }) => this.isDelegatedPath(role, path)).map(({ role, edge }) => ({ name: role.name, edge, terminating: role.terminating })),
    };
  }

  /**
   * DelegatedRole.isDelegatedPath, with the per-segment glob results remembered: the same
   * directory segment is tested against the same patterns for every target of a vendor, and
   * minimatch compiles the pattern on every call. Same semantics as tuf-js on the devices:
   * the pattern and the path have the same number of segments and each segment matches.
   */
  private isDelegatedPath(role: DelegatedRole, path: string): boolean {
    if (role.paths) {
      const parts = path.split('/');
      return role.paths.some((pattern) => {
        const patternParts = pattern.split('/');
        return patternParts.length === parts.length && patternParts.every((p, i) => this.segmentMatch(parts[i]!, p));
      });
    }
    return role.isDelegatedPath(path); // path_hash_prefixes
  }

  private segmentMatch(segment: string, pattern: string): boolean {
    // The most common pattern, answered without minimatch (a few microseconds a call, and the
    // basenames it meets are all different): with minimatch's defaults (dot: false), `*`
    // matches a non-empty segment that does not start with a dot. client.test.ts holds it to that.
    if (pattern === '*') return segment !== '' && !segment.startsWith('.');
    let byPattern = this.segmentMatches.get(pattern);
    if (!byPattern) {
      byPattern = new Map();
      this.segmentMatches.set(pattern, byPattern);
    }
    let hit = byPattern.get(segment);
    if (hit === undefined) {
      // A one-segment probe delegation gives minimatch(segment, pattern) exactly as tuf-js runs it.
      hit = new DelegatedRole({ name: 'probe', keyIDs: [], threshold: 1, terminating: false, paths: [pattern] }).isDelegatedPath(segment);
      byPattern.set(segment, hit);
    }
    return hit;
  }

  /** Phase 2: every path some accepted role lists, looked up as a device would look it up. */
  private resolveAll(roles: Map<string, LoadedRole>, targetsEdge: Edge): { targets: Map<string, MirroredTarget>; refused: RefusedTarget[] } {
    const listers = new Map<string, string[]>();
    for (const role of roles.values()) {
      for (const path of role.targets.keys()) listers.set(path, [...(listers.get(path) ?? []), role.name]);
    }
    const targets = new Map<string, MirroredTarget>();
    const refused: RefusedTarget[] = [];
    for (const path of [...listers.keys()].sort()) {
      const found = this.resolveTarget(path, roles, targetsEdge);
      if (found.role) {
        const listed = found.role.targets.get(path)!;
        const entry: MirroredTarget = { role: found.role.name, length: listed.length, sha256: listed.sha256 };
        if (Object.hasOwn(listed, 'custom')) entry.custom = listed.custom;
        targets.set(path, entry);
      }
      for (const role of listers.get(path)!) {
        if (role === found.role?.name) continue;
        const reason = found.role ? `${found.role.name} comes first for this path` : (found.stopped ?? `no chain of delegations gives this path to ${role}`);
        refused.push({ path, role, reason });
      }
    }
    return { targets, refused };
  }

  /**
   * Spec §5.6.7 for one path, as python-tuf's _preorder_depth_first_walk: a stack of roles to
   * visit, the first role listing the path wins, a terminating delegation drops every role
   * not yet visited, a role is visited once, at most maxDelegations roles are visited.
   * Every delegation followed must have signed the role it leads to (spec §5.6.3).
   */
  private resolveTarget(path: string, roles: Map<string, LoadedRole>, targetsEdge: Edge): { role?: LoadedRole; stopped?: string } {
    const stack: Array<{ name: string; edge: Edge }> = [{ name: 'targets', edge: targetsEdge }];
    const visited = new Set<string>();
    while (stack.length > 0) {
      const { name, edge } = stack.pop()!;
      if (visited.has(name)) continue;
      if (visited.size >= this.limits.maxDelegations) return { stopped: `the search for this path stopped after ${this.limits.maxDelegations} roles` };
      // Phase 1 went through every delegation of every accepted role: a role it did not accept
      // is one the snapshot does not list (one that no delegation signed failed the sync).
      const role = roles.get(name);
      if (!role) {
        if (!this.unlisted.has(name)) throw new Error(`internal: role ${name} was neither loaded nor found missing`);
        return { stopped: `the search for this path needs ${name}, which the snapshot does not list` };
      }
      if (!this.edgeSigned(edge, role)) fail('E_SIGNATURE_INVALID', signatureMessage(role.env.file, name, this.verifier.countSigners(role.env, edge), edge));
      if (role.targets.has(path)) return { role };
      visited.add(name);
      const next: Array<{ name: string; edge: Edge }> = [];
      for (const child of role.childrenFor(path)) {
        next.push({ name: child.name, edge: child.edge });
        if (child.terminating) {
          stack.length = 0;
          break;
        }
      }
      for (let i = next.length - 1; i >= 0; i--) stack.push(next[i]!);
    }
    return {};
  }
}

/** §5.5.5: no role the trusted snapshot listed may disappear or go back in version. */
function checkSnapshotRollback(trusted: Envelope<SnapshotModel>, next: Envelope<SnapshotModel>): void {
  if (next.model.version < trusted.model.version) fail('E_METADATA_ROLLBACK', `${next.file}: version ${next.model.version}, but version ${trusted.model.version} is already trusted`);
  for (const [name, was] of trusted.model.meta) {
    const is = next.model.meta.get(name);
    if (!is) fail('E_METADATA_ROLLBACK', `${next.file}: no longer lists ${name} (the trusted snapshot v${trusted.model.version} did)`);
    if (is.version < was.version) fail('E_METADATA_ROLLBACK', `${next.file}: lists ${name} version ${is.version}, but version ${was.version} is already trusted`);
  }
}
