/**
 * TUF metadata built and signed by hand, for the tests of the mirroring client: plain objects,
 * canonical JSON from @tufjs/canonical-json and Ed25519 signatures from node:crypto. Nothing
 * here goes through a repository writer of ours, so a test can publish metadata no writer would
 * (wrong versions, foreign signatures, hostile paths) by editing the objects or the files.
 */
import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { canonicalize } from '@tufjs/canonical-json';
import type { MirrorState, RemoteRepository } from '../client.js';

// The metadata are plain JSON objects that tests edit freely.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = Record<string, any>;

export interface TestKey {
  keyid: string;
  /** raw 32-byte public key, hex */
  public: string;
  privateKey: KeyObject;
}

export function sha256(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The public key object as TUF lists it under `keys`. */
export function keyJson(key: Pick<TestKey, 'public'>): Json {
  return { keytype: 'ed25519', scheme: 'ed25519', keyval: { public: key.public } };
}

/** TUF's key id: the SHA-256 of the canonical JSON of the public key object. */
export function keyidOf(json: Json): string {
  return sha256(canonicalize(json));
}

export function newKey(): TestKey {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const x = publicKey.export({ format: 'jwk' }).x!;
  const pub = Buffer.from(x, 'base64url').toString('hex');
  return { keyid: keyidOf(keyJson({ public: pub })), public: pub, privateKey };
}

/** Signatures of `signed` (over its canonical JSON) by each key, under the key's id or `keyid` if given. */
export function signaturesOf(signed: Json, keys: TestKey[], keyid?: string): Array<{ keyid: string; sig: string }> {
  const data = Buffer.from(canonicalize(signed), 'utf8');
  return keys.map((k) => ({ keyid: keyid ?? k.keyid, sig: sign(null, data, k.privateKey).toString('hex') }));
}

export function envelope(signed: Json, signatures: Array<{ keyid: string; sig: string }>): Uint8Array {
  return new Uint8Array(Buffer.from(JSON.stringify({ signed, signatures }), 'utf8'));
}

/** A TUF date `days` from `from` (negative: in the past). */
export function isoDays(from: Date, days: number): string {
  return new Date(from.getTime() + days * 86_400_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** The hash bin of a path under succinct_roles (TAP 15), computed independently of @tufjs/models. */
export function binOf(path: string, prefix: string, bitLength: number): string {
  const n = createHash('sha256').update(path).digest().readUInt32BE(0) >>> (32 - bitLength);
  const width = ((1 << bitLength) - 1).toString(16).length;
  return `${prefix}-${n.toString(16).padStart(width, '0')}`;
}

/** A remote over a map of files that records every request. */
export class MapRemote implements RemoteRepository {
  readonly requests: string[] = [];
  constructor(readonly files: Map<string, Uint8Array>) {}

  async get(path: string, _maxBytes: number): Promise<Uint8Array | null> {
    this.requests.push(path);
    const bytes = this.files.get(path);
    return bytes ? new Uint8Array(bytes) : null;
  }
}

export interface DelegateOptions {
  paths?: string[];
  pathHashPrefixes?: string[];
  terminating?: boolean;
  keys?: TestKey[];
  threshold?: number;
}

/**
 * A small consistent-snapshot repository in the layout of the mirror: `metadata/{N}.root.json`,
 * `metadata/timestamp.json`, `metadata/{V}.snapshot.json`, `metadata/{V}.{role}.json`,
 * `targets/{dirname}/{sha256}.{basename}`. Every role starts at version 1 with one key.
 */
export class HandmadeRepository {
  readonly files = new Map<string, Uint8Array>();
  /** who signs each role's metadata ('root', 'timestamp', 'snapshot', 'targets', delegated roles) */
  readonly signers = new Map<string, TestKey[]>();
  /** the signed part of targets and every delegated role, by name */
  readonly roles = new Map<string, Json>();
  /** the last bytes published per role, for snapshot meta hashes */
  readonly published = new Map<string, Uint8Array>();
  root: Json;
  timestamp: Json;
  snapshot: Json;
  /** list length and sha256 of each role in snapshot meta, and of the snapshot in timestamp meta */
  snapshotHashes = false;
  timestampHashes = false;

  constructor(readonly now: Date) {
    const keys: Json = {};
    const roles: Json = {};
    for (const role of ['root', 'timestamp', 'snapshot', 'targets']) {
      const k = newKey();
      keys[k.keyid] = keyJson(k);
      roles[role] = { keyids: [k.keyid], threshold: 1 };
      this.signers.set(role, [k]);
    }
    this.root = { _type: 'root', spec_version: '1.0.31', version: 1, expires: isoDays(now, 365), consistent_snapshot: true, keys, roles };
    this.roles.set('targets', this.emptyTargets());
    this.snapshot = { _type: 'snapshot', spec_version: '1.0.31', version: 1, expires: isoDays(now, 30), meta: {} };
    this.timestamp = { _type: 'timestamp', spec_version: '1.0.31', version: 1, expires: isoDays(now, 1), meta: {} };
    this.publishRoot();
    this.publishAll();
  }

  emptyTargets(): Json {
    return { _type: 'targets', spec_version: '1.0.31', version: 1, expires: isoDays(this.now, 90), targets: {} };
  }

  remote(): MapRemote {
    return new MapRemote(this.files);
  }

  /** What a local server starts from: the root it pins, nothing else. */
  initialState(): MirrorState {
    return { root: this.files.get('metadata/1.root.json')!, roles: new Map() };
  }

  role(name: string): Json {
    const r = this.roles.get(name);
    if (!r) throw new Error(`no role ${name}`);
    return r;
  }

  /** Gives a top-level role new keys in the (unpublished) root, and makes them its signers. */
  setTopLevelKeys(role: string, keys: TestKey[], threshold = 1): void {
    for (const k of keys) this.root.keys[k.keyid] = keyJson(k);
    this.root.roles[role] = { keyids: keys.map((k) => k.keyid), threshold };
    this.signers.set(role, keys);
  }

  /** Signs the current root (by default with the root signers) and writes `metadata/{version}.root.json`. */
  publishRoot(signers = this.signers.get('root')!): Uint8Array {
    const bytes = envelope(this.root, signaturesOf(this.root, signers));
    this.files.set(`metadata/${this.root.version}.root.json`, bytes);
    return bytes;
  }

  /**
   * The next root: `change` edits it, then it is signed by the previous root keys and the new
   * ones (the threshold of both is what a client checks) and published.
   */
  rotateRoot(change: (root: Json) => void = () => {}): Uint8Array {
    const old = this.signers.get('root')!;
    change(this.root);
    this.root.version += 1;
    const signers = [...new Map([...old, ...this.signers.get('root')!].map((k) => [k.keyid, k])).values()];
    return this.publishRoot(signers);
  }

  /** Adds a delegation from `from` to a new role `name` (version 1, no targets) with its own key unless given. */
  delegate(from: string, name: string, opts: DelegateOptions = {}): TestKey[] {
    const keys = opts.keys ?? [newKey()];
    const d = this.delegationsOf(from);
    for (const k of keys) d.keys[k.keyid] = keyJson(k);
    d.roles ??= [];
    const entry: Json = { name, keyids: keys.map((k) => k.keyid), threshold: opts.threshold ?? 1, terminating: opts.terminating ?? false };
    if (opts.pathHashPrefixes) entry.path_hash_prefixes = opts.pathHashPrefixes;
    else entry.paths = opts.paths ?? ['*/*'];
    d.roles.push(entry);
    if (!this.roles.has(name)) this.roles.set(name, this.emptyTargets());
    this.signers.set(name, keys);
    return keys;
  }

  /** Delegates `from`'s whole namespace to 2^bitLength hash bins named `{prefix}-{hex}`, all signed by one key. */
  delegateBins(from: string, prefix: string, bitLength: number, keys: TestKey[] = [newKey()]): string[] {
    const d = this.delegationsOf(from);
    for (const k of keys) d.keys[k.keyid] = keyJson(k);
    d.succinct_roles = { keyids: keys.map((k) => k.keyid), threshold: 1, bit_length: bitLength, name_prefix: prefix };
    const width = ((1 << bitLength) - 1).toString(16).length;
    const bins: string[] = [];
    for (let i = 0; i < 1 << bitLength; i++) {
      const bin = `${prefix}-${i.toString(16).padStart(width, '0')}`;
      this.roles.set(bin, this.emptyTargets());
      this.signers.set(bin, keys);
      bins.push(bin);
    }
    return bins;
  }

  private delegationsOf(from: string): Json {
    const r = this.role(from);
    r.delegations ??= { keys: {} };
    return r.delegations;
  }

  /** Lists a target in a role (unpublished) and stores its file; returns the entry. */
  addTarget(role: string, path: string, content: string | Uint8Array, custom?: unknown): Json {
    const bytes = typeof content === 'string' ? Buffer.from(content, 'utf8') : content;
    const digest = sha256(bytes);
    const entry: Json = { length: bytes.length, hashes: { sha256: digest } };
    if (custom !== undefined) entry.custom = custom;
    this.role(role).targets[path] = entry;
    const slash = path.lastIndexOf('/');
    this.files.set(`targets/${path.slice(0, slash)}/${digest}.${path.slice(slash + 1)}`, new Uint8Array(bytes));
    return entry;
  }

  /** Signs a role (by its signers unless given) and writes `metadata/{version}.{role}.json`. */
  publishRole(name: string, signers = this.signers.get(name)!): Uint8Array {
    const signed = this.role(name);
    const bytes = envelope(signed, signaturesOf(signed, signers));
    this.files.set(`metadata/${signed.version}.${encodeURIComponent(name)}.json`, bytes);
    this.published.set(name, bytes);
    return bytes;
  }

  /** Snapshot meta from the versions of every role as it stands now. */
  snapshotMeta(): Json {
    const meta: Json = {};
    for (const [name, signed] of this.roles) {
      const entry: Json = { version: signed.version };
      const bytes = this.published.get(name);
      if (this.snapshotHashes && bytes) Object.assign(entry, { length: bytes.length, hashes: { sha256: sha256(bytes) } });
      meta[`${name}.json`] = entry;
    }
    return meta;
  }

  publishSnapshot(signers = this.signers.get('snapshot')!): Uint8Array {
    this.snapshot.meta = this.snapshotMeta();
    const bytes = envelope(this.snapshot, signaturesOf(this.snapshot, signers));
    this.files.set(`metadata/${this.snapshot.version}.snapshot.json`, bytes);
    this.published.set('snapshot', bytes);
    return bytes;
  }

  publishTimestamp(signers = this.signers.get('timestamp')!): Uint8Array {
    const entry: Json = { version: this.snapshot.version };
    const snap = this.published.get('snapshot');
    if (this.timestampHashes && snap) Object.assign(entry, { length: snap.length, hashes: { sha256: sha256(snap) } });
    this.timestamp.meta = { 'snapshot.json': entry };
    const bytes = envelope(this.timestamp, signaturesOf(this.timestamp, signers));
    this.files.set('metadata/timestamp.json', bytes);
    return bytes;
  }

  /** Publishes every role, the snapshot and the timestamp at their current versions. */
  publishAll(): void {
    for (const name of this.roles.keys()) this.publishRole(name);
    this.publishSnapshot();
    this.publishTimestamp();
  }

  /** A new release: each changed role, the snapshot and the timestamp go up one version and are published. */
  commit(...changed: string[]): void {
    for (const name of changed) {
      this.role(name).version += 1;
      this.publishRole(name);
    }
    this.snapshot.version += 1;
    this.publishSnapshot();
    this.timestamp.version += 1;
    this.publishTimestamp();
  }
}

/**
 * The shape of the Patchwarden catalog: `targets` delegates first to `custom` (custom/*,
 * terminating, an author's key), then to `vendors` (every dirname/basename); `vendors` delegates
 * `debian/*` (terminating) to `debian`, which spreads its namespace over 2^bitLength hash bins.
 * Everything is published at version 1, without targets.
 */
export function catalogRepository(now: Date, bitLength = 4): { repo: HandmadeRepository; bins: string[] } {
  const repo = new HandmadeRepository(now);
  repo.delegate('targets', 'custom', { paths: ['custom/*'], terminating: true });
  repo.delegate('targets', 'vendors', { paths: ['*/*'] });
  repo.delegate('vendors', 'debian', { paths: ['debian/*'], terminating: true });
  const bins = repo.delegateBins('debian', 'debian-bin', bitLength);
  repo.publishAll();
  return { repo, bins };
}

/** A deep copy of a state in plain values, to check that a sync left the state it was given alone. */
export function frozenState(state: MirrorState): unknown {
  const hex = (b?: Uint8Array) => (b ? Buffer.from(b).toString('hex') : undefined);
  return {
    root: hex(state.root),
    timestamp: hex(state.timestamp),
    snapshot: hex(state.snapshot),
    roles: [...state.roles].map(([k, v]) => [k, v.name, v.version, hex(v.bytes)]),
  };
}
