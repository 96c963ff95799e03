/**
 * The catalog's TUF repository, written with `@tufjs/models`.
 *
 * Roles (DESIGN.md, "Identity, signing and trust"):
 * - `root` and `targets`: offline keys (a threshold of them); on a server that holds them
 *   (`npm start`'s local mode) the server signs them, otherwise the administrator does.
 * - `snapshot`, `timestamp`: the online key, re-signed on a schedule before they expire.
 * - `targets` delegates first to `custom` (paths `custom/*`, terminating, the authors' keys:
 *   the server never holds them, so no online key can ever sign a `custom/*` patch), then to
 *   `vendors` (paths `*` + `/*`, online), which delegates one terminating role per vendor
 *   namespace (`debian` for `debian/*` …), which spreads its patches over hashed bins
 *   (TUF's succinct hash delegations, `debian-bin-0a3` …), so that a change to 1% of a large
 *   catalog re-signs and transfers only the bins that hold the changed patches.
 *
 * Layout served (consistent snapshots): `metadata/{N}.root.json`, `metadata/timestamp.json`,
 * `metadata/{V}.{role}.json`, `targets/{namespace}/{sha256}.{name}`. Every file is stored byte
 * for byte as signed, so a mirror serves exactly these bytes.
 */
import { Metadata, MetadataKind, Signature as TufSignature, Targets, type Root } from '@tufjs/models';
import type { Kysely, Transaction } from 'kysely';
import { canonicalJson, PatchwardenError, ruleFactKeys, sha256Hex, signBytes, type PrivateKeyFile, type PublicKeyFile, type Rule } from '@patchwarden/core';
import type { DB } from '../../db/schema.js';

export const SPEC_VERSION = '1.0.31';
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** How long each role's signature lasts; online roles are re-signed at half their life. */
export const LIFETIME = {
  root: 365 * DAY,
  targets: 365 * DAY,
  custom: 365 * DAY,
  online: 60 * DAY,
  snapshot: 7 * DAY,
  timestamp: DAY,
};

export interface RepoKeys {
  /** timestamp, snapshot, vendors, vendor roles and bins */
  online: PrivateKeyFile;
  /** present only where this server may sign root (local mode) */
  root?: PrivateKeyFile[];
  /** present only where this server may sign top-level targets (local mode) */
  targets?: PrivateKeyFile[];
}

export interface TargetInput {
  path: string;
  bytes: Uint8Array;
  patchId: string;
  revision: number;
}

const iso = (ms: number) => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
const tufKeyJson = (k: { public: PrivateKeyFile['public'] }) => ({ keytype: k.public.keytype, scheme: k.public.scheme, keyval: { public: k.public.keyval.public } });

/**
 * `debian/openssl-3.0.15-1~deb12u1` → `debian/openssl-3.0.15-1~deb12u1.json`. The revision is
 * not part of the path: a new revision replaces the target under the same name (its hash and
 * the `custom.revision` of its entry change), so it stays in the same hash bin and a re-sync
 * fetches one bin, not two.
 */
export function targetPathOf(id: string, kind: 'json' | 'bundle'): string {
  const at = id.indexOf('/');
  // a target path has exactly two segments (namespace/name), so deeper ids write '/' as '.S.':
  // URL-safe (tuf-js puts target names into URLs as they are) and never part of an id, whose
  // letters are lowercase
  return `${id.slice(0, at)}/${id.slice(at + 1).replaceAll('/', '.S.')}.${kind}`;
}

/** The inverse of targetPathOf; null for a path that is not a patch target. */
export function patchOfTargetPath(path: string): { id: string; kind: 'json' | 'bundle' } | null {
  const m = /^([a-z0-9][a-z0-9._+~-]*)\/([a-z0-9][a-z0-9._+~S-]*)\.(json|bundle)$/.exec(path);
  if (!m) return null;
  return { id: `${m[1]}/${m[2]!.replaceAll('.S.', '/')}`, kind: m[3] as 'json' | 'bundle' };
}

/** The revision a target entry states in its `custom` field (what listings carry), or null. */
export function revisionOfTarget(custom: unknown): number | null {
  const r = (custom as { revision?: unknown } | null | undefined)?.revision;
  return typeof r === 'number' && Number.isSafeInteger(r) && r >= 1 ? r : null;
}

/** Namespaces that would collide with a role of the repository itself. */
export function namespaceProblem(ns: string): string | null {
  if (['root', 'targets', 'snapshot', 'timestamp', 'vendors', 'custom'].includes(ns)) return `the namespace ${ns} is reserved by the signed catalog`;
  if (/-bin-[0-9a-f]+$/.test(ns)) return `the namespace ${ns} looks like a hash bin's role name`;
  return null;
}

export function metadataPath(role: string, version: number): string {
  return role === 'timestamp' ? 'metadata/timestamp.json' : `metadata/${version}.${encodeURIComponent(role)}.json`;
}

export function targetFilePath(path: string, sha256: string): string {
  const at = path.lastIndexOf('/');
  return `targets/${path.slice(0, at)}/${sha256}.${path.slice(at + 1)}`;
}

/** Bins per vendor, from the size of its first import: about 16 patches a bin, 2 to 16,384 bins. */
export function binBitsFor(count: number): number {
  return Math.min(14, Math.max(1, Math.ceil(Math.log2(Math.max(count, 1) / 16))));
}

type SuccinctRoles = NonNullable<NonNullable<Targets['delegations']>['succinctRoles']>;
/** The hash-bin delegation of a vendor role, read through the models (as clients read it). */
function binsOf(signed: Record<string, unknown>): SuccinctRoles {
  const s = Targets.fromJSON(signed as never).delegations?.succinctRoles;
  if (!s) throw new PatchwardenError('E_INTERNAL', 'a vendor role without hash bins');
  return s;
}

type Kind = MetadataKind.Root | MetadataKind.Targets | MetadataKind.Snapshot | MetadataKind.Timestamp;
type Db = Kysely<DB> | Transaction<DB>;

/**
 * Hash bins are signed directly: the models' targets (de)serialisation copies the whole map
 * for every entry (quadratic), which made a 34,000-patch import spend most of its time there.
 * The bytes are the same canonical form the models produce (a test checks that).
 */
export function signBinFast(signed: Record<string, unknown>, signer: PrivateKeyFile): Buffer {
  const sig = signBytes(signer, canonicalJson(signed));
  return canonicalJson({ signatures: [{ keyid: sig.keyid, sig: sig.sig }], signed });
}

export function signMetadata(kind: Kind, signed: Record<string, unknown>, signers: PrivateKeyFile[]): Buffer {
  // through the models, so what is signed is checked by the same code that reads it
  const md = Metadata.fromJSON(kind as MetadataKind.Targets, { signed, signatures: [] } as never);
  for (const k of signers) md.sign((data) => new TufSignature({ keyID: k.keyid, sig: signBytes(k, data).sig }), true);
  return canonicalJson(md.toJSON());
}

/** A targets role signed by these keys (what an author's machine does for the custom listing). */
export function signTargetsRole(signed: Record<string, unknown>, signers: PrivateKeyFile[]): Buffer {
  return signMetadata(MetadataKind.Targets, signed, signers);
}

export class TufRepository {
  constructor(
    private readonly db: Kysely<DB>,
    private readonly keys: RepoKeys,
    private readonly now: () => number,
  ) {}

  /** The `vendors` role, version 1, with no vendor yet (a new catalog). */
  async createVendors(tx: Db): Promise<void> {
    const now = this.now();
    const vendors = { _type: 'targets', spec_version: SPEC_VERSION, version: 1, expires: iso(now + LIFETIME.online), targets: {}, delegations: { keys: {}, roles: [] } };
    await this.store(tx, 'vendors', 1, signMetadata(MetadataKind.Targets, vendors, [this.keys.online]), now + LIFETIME.online);
  }

  /** Runs `fn` in one transaction of the repository's database. */
  async transaction<T>(fn: (tx: Transaction<DB>) => Promise<T>): Promise<T> {
    return this.db.transaction().execute(fn);
  }

  /** The online key's public half: what an offline root names for timestamp and snapshot. */
  get onlinePublic(): PublicKeyFile {
    const k = this.keys.online;
    return { type: 'patchwarden-public-key', name: k.name, role: k.role, keyid: k.keyid, public: k.public };
  }

  /** Whether this server can sign top-level targets (add authors) itself. */
  get holdsTargetsKeys(): boolean {
    return (this.keys.targets ?? this.keys.root ?? []).length > 0;
  }

  async initialized(): Promise<boolean> {
    return !!(await this.db.selectFrom('tuf_roles').select('name').where('name', '=', 'root').executeTakeFirst());
  }

  /** Creates root, targets, vendors, snapshot and timestamp, version 1 (local mode). */
  async initialize(opts: { rootThreshold?: number; authors?: PublicKeyFile[] } = {}): Promise<void> {
    const rootKeys = this.keys.root ?? [];
    if (!rootKeys.length) throw new PatchwardenError('E_CONFIG_INVALID', 'the catalog has no root yet and this server holds no root key', { hint: 'import a root made offline with `patchwarden keys root-init`' });
    const targetsKeys = this.keys.targets ?? rootKeys;
    const threshold = opts.rootThreshold ?? 1;
    const now = this.now();
    const online = this.keys.online;
    const keys: Record<string, unknown> = {};
    for (const k of [...rootKeys, ...targetsKeys, online]) keys[k.keyid] = tufKeyJson(k);
    const root = {
      _type: 'root',
      spec_version: SPEC_VERSION,
      version: 1,
      expires: iso(now + LIFETIME.root),
      consistent_snapshot: true,
      keys,
      roles: {
        root: { keyids: rootKeys.map((k) => k.keyid), threshold },
        targets: { keyids: targetsKeys.map((k) => k.keyid), threshold: Math.min(threshold, targetsKeys.length) },
        snapshot: { keyids: [online.keyid], threshold: 1 },
        timestamp: { keyids: [online.keyid], threshold: 1 },
      },
    };
    await this.db.transaction().execute(async (tx) => {
      await this.store(tx, 'root', 1, signMetadata(MetadataKind.Root, root, rootKeys), now + LIFETIME.root);
      await this.store(tx, 'targets', 1, signMetadata(MetadataKind.Targets, this.topTargets(1, opts.authors ?? []), targetsKeys), now + LIFETIME.targets);
      await this.createVendors(tx);
      await this.snapshotAndTimestamp(tx);
    });
  }

  private topTargets(version: number, authors: PublicKeyFile[]) {
    const online = this.keys.online;
    const keys: Record<string, unknown> = { [online.keyid]: tufKeyJson(online) };
    for (const a of authors) keys[a.keyid] = tufKeyJson(a);
    const roles: unknown[] = [];
    // `custom` first and terminating: nothing after it is ever asked about a custom/* path. It
    // is there even before any author is trusted (with no keys, so nothing can sign for it):
    // otherwise custom/* paths would fall through to the online `vendors` role
    roles.push({ name: 'custom', keyids: authors.map((a) => a.keyid), threshold: 1, terminating: true, paths: ['custom/*'] });
    roles.push({ name: 'vendors', keyids: [online.keyid], threshold: 1, terminating: false, paths: ['*/*'] });
    return { _type: 'targets', spec_version: SPEC_VERSION, version, expires: iso(this.now() + LIFETIME.targets), targets: {}, delegations: { keys, roles } };
  }

  /** Re-signs top-level targets with these author keys on the `custom` role (local mode). */
  async setAuthors(authors: PublicKeyFile[]): Promise<number> {
    const signers = this.keys.targets ?? this.keys.root ?? [];
    if (!signers.length) throw new PatchwardenError('E_FORBIDDEN', 'this server does not hold the targets keys', { hint: 'sign a new targets role offline with `patchwarden keys` and import it' });
    const cur = await this.role('targets');
    await this.db.transaction().execute(async (tx) => {
      await this.store(tx, 'targets', cur.version + 1, signMetadata(MetadataKind.Targets, this.topTargets(cur.version + 1, authors), signers), this.now() + LIFETIME.targets);
      await this.snapshotAndTimestamp(tx);
    });
    return cur.version + 1;
  }

  /** The current signed bytes and parsed form of a role. */
  async role(name: string, db: Db = this.db): Promise<{ version: number; bytes: Buffer; json: { signed: Record<string, unknown> } }> {
    const r = await db.selectFrom('tuf_roles').select(['version']).where('name', '=', name).executeTakeFirst();
    if (!r) throw new PatchwardenError('E_NOT_FOUND', `the catalog has no role ${name}`);
    const f = await db.selectFrom('tuf_files').select('bytes').where('path', '=', metadataPath(name, r.version)).executeTakeFirstOrThrow();
    const bytes = Buffer.from(f.bytes);
    return { version: r.version, bytes, json: JSON.parse(bytes.toString('utf8')) as { signed: Record<string, unknown> } };
  }

  /** The newest root: what agents and local servers pin. */
  async currentRoot(): Promise<Buffer> {
    return (await this.role('root')).bytes;
  }

  async store(tx: Db, role: string, version: number, bytes: Buffer, expiresAt: number) {
    const path = metadataPath(role, version);
    const row = { path, role, version, bytes, created_at: this.now() };
    await tx
      .insertInto('tuf_files')
      .values(row)
      .onConflict((oc) => oc.column('path').doUpdateSet({ bytes, version, created_at: row.created_at }))
      .execute();
    const meta = { version, expires_at: expiresAt, length: bytes.length, sha256: sha256Hex(bytes) };
    await tx
      .insertInto('tuf_roles')
      .values({ name: role, ...meta })
      .onConflict((oc) => oc.column('name').doUpdateSet(meta))
      .execute();
  }

  /**
   * A new snapshot listing every targets role's version, then a timestamp naming it. `life`
   * is longer only for an export file (signForExport).
   */
  async snapshotAndTimestamp(tx: Db, life: { snapshot: number; timestamp: number } = LIFETIME) {
    const now = this.now();
    const roles = await tx.selectFrom('tuf_roles').select(['name', 'version']).where('name', 'not in', ['root', 'snapshot', 'timestamp']).execute();
    const meta: Record<string, { version: number }> = {};
    for (const r of roles.sort((a, b) => (a.name < b.name ? -1 : 1))) meta[`${r.name}.json`] = { version: r.version };
    const prev = await tx.selectFrom('tuf_roles').select('version').where('name', '=', 'snapshot').executeTakeFirst();
    const sv = (prev?.version ?? 0) + 1;
    const snap = signMetadata(MetadataKind.Snapshot, { _type: 'snapshot', spec_version: SPEC_VERSION, version: sv, expires: iso(now + life.snapshot), meta }, [this.keys.online]);
    await this.store(tx, 'snapshot', sv, snap, now + life.snapshot);
    const prevTs = await tx.selectFrom('tuf_roles').select('version').where('name', '=', 'timestamp').executeTakeFirst();
    const tv = (prevTs?.version ?? 0) + 1;
    const ts = {
      _type: 'timestamp',
      spec_version: SPEC_VERSION,
      version: tv,
      expires: iso(now + life.timestamp),
      meta: { 'snapshot.json': { version: sv, length: snap.length, hashes: { sha256: sha256Hex(snap) } } },
    };
    await this.store(tx, 'timestamp', tv, signMetadata(MetadataKind.Timestamp, ts, [this.keys.online]), now + life.timestamp);
  }

  /**
   * Lists vendor patch objects (signed by the online key, through their vendor role's bins).
   * A patch's older revisions leave the catalog. All or nothing, in one transaction.
   */
  async publishVendorTargets(inputs: TargetInput[], outer?: Transaction<DB>): Promise<{ bins: number; targets: number }> {
    if (!inputs.length) return { bins: 0, targets: 0 };
    const byNs = new Map<string, TargetInput[]>();
    for (const t of inputs) {
      const ns = t.path.slice(0, t.path.indexOf('/'));
      if (ns === 'custom') throw new PatchwardenError('E_FORBIDDEN', `${t.path}: custom patches are signed by their authors, never by the server`);
      const why = namespaceProblem(ns);
      if (why) throw new PatchwardenError('E_VALIDATION', `${t.patchId}: ${why}`, { hint: 'give the feed\'s patches another namespace' });
      byNs.set(ns, [...(byNs.get(ns) ?? []), t]);
    }
    let bins = 0;
    const body = async (tx: Transaction<DB>) => {
      const now = this.now();
      const online = this.keys.online;
      const vendorsNow = await this.role('vendors', tx);
      const vendorRoles = ((vendorsNow.json.signed.delegations as { roles: { name: string }[] }).roles ?? []).map((r) => r.name);
      const added: string[] = [];
      const changedBins = new Set<string>();
      for (const [ns, items] of byNs) {
        let succinct: SuccinctRoles;
        if (!vendorRoles.includes(ns)) {
          // a new vendor: its role and every (empty) bin, sized by this first import
          const bits = binBitsFor(items.length);
          const delegations = {
            keys: { [online.keyid]: tufKeyJson(online) },
            succinct_roles: { keyids: [online.keyid], threshold: 1, bit_length: bits, name_prefix: `${ns}-bin` },
          };
          const nsRole = { _type: 'targets', spec_version: SPEC_VERSION, version: 1, expires: iso(now + LIFETIME.online), targets: {}, delegations };
          await this.store(tx, ns, 1, signMetadata(MetadataKind.Targets, nsRole, [online]), now + LIFETIME.online);
          succinct = binsOf(nsRole);
          for (const bin of succinct.getRoles()) changedBins.add(bin);
          added.push(ns);
        } else {
          const cur = await this.role(ns, tx);
          succinct = binsOf(cur.json.signed);
        }
        for (const t of items) changedBins.add(succinct.getRoleForTarget(t.path));
        // in batches: the content, then each patch's one current target (older revisions leave)
        for (let i = 0; i < items.length; i += 200) {
          const part = items.slice(i, i + 200);
          const content = new Map(part.map((t) => [sha256Hex(t.bytes), t.bytes]));
          await tx
            .insertInto('content')
            .values([...content].map(([sha, bytes]) => ({ sha256: sha, length: bytes.length, bytes: Buffer.from(bytes), created_at: now })))
            .onConflict((oc) => oc.column('sha256').doNothing())
            .execute();
          // a revision's path may fall in another bin than the one it replaces: both are re-signed
          const leaving = await tx.selectFrom('tuf_targets').select('role').where('patch_id', 'in', part.map((t) => t.patchId)).execute();
          for (const r of leaving) changedBins.add(r.role);
          await tx.deleteFrom('tuf_targets').where('patch_id', 'in', part.map((t) => t.patchId)).execute();
          await tx.deleteFrom('tuf_targets').where('path', 'in', part.map((t) => t.path)).execute();
          await tx
            .insertInto('tuf_targets')
            .values(part.map((t) => ({ path: t.path, role: succinct.getRoleForTarget(t.path), length: t.bytes.length, sha256: sha256Hex(t.bytes), patch_id: t.patchId, revision: t.revision })))
            .execute();
        }
      }
      if (added.length) {
        const roles = [...((vendorsNow.json.signed.delegations as { roles: unknown[] }).roles ?? [])];
        for (const ns of added) roles.push({ name: ns, keyids: [online.keyid], threshold: 1, terminating: true, paths: [`${ns}/*`] });
        const v = { ...vendorsNow.json.signed, version: vendorsNow.version + 1, expires: iso(now + LIFETIME.online), delegations: { keys: { [online.keyid]: tufKeyJson(online) }, roles } };
        await this.store(tx, 'vendors', vendorsNow.version + 1, signMetadata(MetadataKind.Targets, v, [online]), now + LIFETIME.online);
      }
      await this.resignBins(tx, [...changedBins]);
      bins = changedBins.size;
      await this.snapshotAndTimestamp(tx);
    };
    await (outer ? body(outer) : this.db.transaction().execute(body));
    return { bins, targets: inputs.length };
  }

  /** Re-signs these bins from the targets table, each at its next version. */
  private async resignBins(tx: Db, bins: string[]) {
    const now = this.now();
    const versions = new Map<string, number>();
    const byBin = new Map<string, Record<string, unknown>>();
    for (let i = 0; i < bins.length; i += 500) {
      const part = bins.slice(i, i + 500);
      for (const r of await tx.selectFrom('tuf_roles').select(['name', 'version']).where('name', 'in', part).execute()) versions.set(r.name, r.version);
      const rows = await tx.selectFrom('tuf_targets').selectAll().where('role', 'in', part).execute();
      const files = await this.ruleFiles(tx, rows.map((t) => t.sha256));
      for (const t of rows) {
        const m = byBin.get(t.role) ?? {};
        // the files its rules read, signed with the entry: an agent asked to report a file finds
        // the patches that name it without fetching every patch (agent catalog.ts, vouchedFiles)
        const named = files.get(t.sha256);
        m[t.path] = { length: t.length, hashes: { sha256: t.sha256 }, custom: { patch: t.patch_id, revision: t.revision, ...(named?.length ? { files: named } : {}) } };
        byBin.set(t.role, m);
      }
    }
    for (const bin of bins) {
      const version = (versions.get(bin) ?? 0) + 1;
      const signed = { _type: 'targets', spec_version: SPEC_VERSION, version, expires: iso(now + LIFETIME.online), targets: byBin.get(bin) ?? {} };
      await this.store(tx, bin, version, signBinFast(signed, this.keys.online), now + LIFETIME.online);
    }
  }

  /** The file paths the rules of these patch objects read, by the object's sha256. */
  private async ruleFiles(tx: Db, shas: string[]): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    const unique = [...new Set(shas)];
    for (let i = 0; i < unique.length; i += 500) {
      for (const c of await tx.selectFrom('content').select(['sha256', 'bytes']).where('sha256', 'in', unique.slice(i, i + 500)).execute()) {
        try {
          const m = JSON.parse(Buffer.from(c.bytes).toString('utf8')) as { applicability?: Rule; installed?: Rule };
          const keys = [...(m.applicability ? ruleFactKeys(m.applicability) : []), ...(m.installed ? ruleFactKeys(m.installed) : [])];
          const files = [...new Set(keys.filter((k) => k.startsWith('file:')).map((k) => k.slice(5)))].sort();
          if (files.length) out.set(c.sha256, files);
        } catch {
          // not a manifest: it names no file
        }
      }
    }
    return out;
  }

  /**
   * Re-signs the online roles that have used half their life (timestamp, snapshot, vendor
   * roles and bins); reports offline roles that are close to expiry, which only their key
   * holders can renew. "Half their life" counts from when the current version was signed,
   * so a long-lived version signed for an export file is replaced on the normal schedule.
   */
  async refreshExpiring(): Promise<{ resigned: string[]; offlineExpiring: { role: string; expiresAt: number }[] }> {
    const now = this.now();
    const roles = await this.db
      .selectFrom('tuf_roles as r')
      .leftJoin('tuf_files as f', (j) => j.onRef('f.role', '=', 'r.name').onRef('f.version', '=', 'r.version'))
      .select(['r.name', 'r.version', 'r.expires_at', 'f.created_at as signed_at'])
      .execute();
    const half = (life: number) => (r: { expires_at: number; signed_at: number | null }) =>
      Number(r.expires_at) - now < life / 2 || (r.signed_at !== null && now - Number(r.signed_at) > life / 2);
    const offline = new Set(['root', 'targets', 'custom']);
    const onlineDue = roles.filter((r) => !offline.has(r.name) && r.name !== 'snapshot' && r.name !== 'timestamp' && half(LIFETIME.online)(r)).map((r) => r.name);
    const snap = roles.find((r) => r.name === 'snapshot');
    const ts = roles.find((r) => r.name === 'timestamp');
    const resigned: string[] = [];
    if (onlineDue.length || (snap && half(LIFETIME.snapshot)(snap)) || (ts && half(LIFETIME.timestamp)(ts))) {
      await this.db.transaction().execute(async (tx) => {
        for (const name of onlineDue) {
          const cur = await this.role(name, tx);
          const signed = { ...cur.json.signed, version: cur.version + 1, expires: iso(now + LIFETIME.online) };
          await this.store(tx, name, cur.version + 1, signMetadata(MetadataKind.Targets, signed, [this.keys.online]), now + LIFETIME.online);
          resigned.push(name);
        }
        await this.snapshotAndTimestamp(tx);
        resigned.push('snapshot', 'timestamp');
      });
    }
    const offlineExpiring = roles.filter((r) => offline.has(r.name) && r.expires_at - now < 30 * DAY).map((r) => ({ role: r.name, expiresAt: r.expires_at }));
    return { resigned, offlineExpiring };
  }

  /**
   * For an export file (air-gapped sites): new versions of snapshot and timestamp that last
   * `lifetime`, after re-signing the online targets roles that would expire before them. They
   * are the live versions too (versions only go up); refreshExpiring replaces them by age, on
   * the normal schedule. Answers when the exported metadata expires: the earliest expiry of
   * any role, so an offline role (root, targets, custom) that expires sooner limits it.
   */
  async signForExport(lifetime: number): Promise<{ expiresAt: number; limitedBy: string | null }> {
    const now = this.now();
    const until = now + lifetime;
    await this.db.transaction().execute(async (tx) => {
      const roles = await tx.selectFrom('tuf_roles').select(['name', 'expires_at']).execute();
      const notOnlineTargets = new Set(['root', 'targets', 'custom', 'snapshot', 'timestamp']);
      const life = Math.max(lifetime, LIFETIME.online);
      for (const r of roles) {
        if (notOnlineTargets.has(r.name) || Number(r.expires_at) >= until) continue;
        const cur = await this.role(r.name, tx);
        const signed: Record<string, unknown> = { ...cur.json.signed, version: cur.version + 1, expires: iso(now + life) };
        const bytes = signed.delegations ? signMetadata(MetadataKind.Targets, signed, [this.keys.online]) : signBinFast(signed, this.keys.online);
        await this.store(tx, r.name, cur.version + 1, bytes, now + life);
      }
      await this.snapshotAndTimestamp(tx, { snapshot: lifetime, timestamp: lifetime });
    });
    const after = await this.db.selectFrom('tuf_roles').select(['name', 'expires_at']).orderBy('expires_at').execute();
    const first = after[0]!;
    return { expiresAt: Number(first.expires_at), limitedBy: Number(first.expires_at) < until ? first.name : null };
  }

  /**
   * Root rotation (local mode, or with the keys passed in): the next root is signed by a
   * threshold of the old root's keys and of the new ones, so a client can walk from any
   * older root to it. `online` replaces the online key (recovery from a compromised one).
   */
  async rotateRoot(next: { root: PrivateKeyFile[]; threshold: number; online?: PrivateKeyFile; oldRoot?: PrivateKeyFile[] }): Promise<number> {
    const old = next.oldRoot ?? this.keys.root ?? [];
    const cur = await this.role('root');
    const prev = cur.json.signed as unknown as ReturnType<Root['toJSON']> & { roles: Record<string, { keyids: string[]; threshold: number }>; keys: Record<string, unknown> };
    const online = next.online ?? this.keys.online;
    const keys: Record<string, unknown> = {};
    const targetsIds = prev.roles.targets!.keyids;
    for (const id of targetsIds) keys[id] = prev.keys[id];
    for (const k of [...next.root, online]) keys[k.keyid] = tufKeyJson(k);
    const version = cur.version + 1;
    const now = this.now();
    const root = {
      ...prev,
      version,
      expires: iso(now + LIFETIME.root),
      keys,
      roles: {
        root: { keyids: next.root.map((k) => k.keyid), threshold: next.threshold },
        targets: prev.roles.targets,
        snapshot: { keyids: [online.keyid], threshold: 1 },
        timestamp: { keyids: [online.keyid], threshold: 1 },
      },
    };
    const signers = [...new Map([...old, ...next.root].map((k) => [k.keyid, k])).values()];
    const authors = next.online && this.holdsTargetsKeys ? await this.currentAuthors() : null;
    await this.db.transaction().execute(async (tx) => {
      await this.store(tx, 'root', version, signMetadata(MetadataKind.Root, root, signers), now + LIFETIME.root);
      if (next.online) {
        this.useOnlineKey(next.online);
        await this.resignOnlineRoles(tx);
        if (authors) {
          // the vendors delegation in top-level targets names the online key too: same transaction,
          // so no client ever sees a root and targets that disagree about it
          const t = await this.role('targets', tx);
          await this.store(tx, 'targets', t.version + 1, signMetadata(MetadataKind.Targets, this.topTargets(t.version + 1, authors), this.keys.targets ?? this.keys.root ?? []), now + LIFETIME.targets);
        }
      }
      await this.snapshotAndTimestamp(tx);
    });
    return version;
  }

  /** From now on this repository signs with `key` as its online key (after a rotation). */
  useOnlineKey(key: PrivateKeyFile): void {
    (this.keys as { online: PrivateKeyFile }).online = key;
  }

  /**
   * Every online-signed targets role (vendors, vendor roles, hash bins) at its next version,
   * signed by the current online key, delegating to it alone: what replacing a compromised
   * online key needs besides a new root (and top-level targets) naming it.
   */
  async resignOnlineRoles(tx: Db): Promise<string[]> {
    const now = this.now();
    const online = this.keys.online;
    const names = (await tx.selectFrom('tuf_roles').select('name').execute()).map((r) => r.name).filter((n) => !['root', 'targets', 'custom', 'snapshot', 'timestamp'].includes(n));
    for (const name of names) {
      const c = await this.role(name, tx);
      const signed = { ...c.json.signed, version: c.version + 1, expires: iso(now + LIFETIME.online) } as Record<string, unknown>;
      const d = signed.delegations as { keys: Record<string, unknown>; roles?: { keyids: string[] }[]; succinct_roles?: { keyids: string[] } } | undefined;
      if (d) {
        d.keys = { [online.keyid]: tufKeyJson(online) };
        for (const r of d.roles ?? []) r.keyids = [online.keyid];
        if (d.succinct_roles) d.succinct_roles.keyids = [online.keyid];
      }
      await this.store(tx, name, c.version + 1, d ? signMetadata(MetadataKind.Targets, signed, [online]) : signBinFast(signed, online), now + LIFETIME.online);
    }
    return names;
  }

  /** The author keys the current top-level targets delegates `custom/*` to. */
  async currentAuthors(): Promise<PublicKeyFile[]> {
    const t = (await this.role('targets')).json.signed as unknown as ReturnType<Targets['toJSON']> & {
      delegations: { keys: Record<string, PublicKeyFile['public']>; roles: { name: string; keyids: string[] }[] };
    };
    const custom = t.delegations.roles.find((r) => r.name === 'custom');
    return (custom?.keyids ?? []).map((id) => ({ type: 'patchwarden-public-key', name: id.slice(0, 12), role: 'author', keyid: id, public: t.delegations.keys[id]! }));
  }

  /** A file of the repository, by its served path; null when there is none. */
  async file(path: string): Promise<Buffer | null> {
    if (path.startsWith('metadata/')) {
      const f = await this.db.selectFrom('tuf_files').select('bytes').where('path', '=', path).executeTakeFirst();
      return f ? Buffer.from(f.bytes) : null;
    }
    const m = /^targets\/([^/]+)\/([0-9a-f]{64})\.([^/]+)$/.exec(path);
    if (!m) return null;
    // only what the catalog lists under that name and hash: the content store holds more
    // (cached vendor payloads) than the repository serves
    const listed = await this.db.selectFrom('tuf_targets').select('sha256').where('path', '=', `${m[1]}/${m[3]}`).where('sha256', '=', m[2]!).executeTakeFirst();
    if (!listed) return null;
    const c = await this.db.selectFrom('content').select('bytes').where('sha256', '=', m[2]!).executeTakeFirst();
    return c ? Buffer.from(c.bytes) : null;
  }

  /** Old consistent-snapshot files beyond the newest `keep` versions of each role. */
  async prune(keep = 3): Promise<number> {
    const rows = await this.db.selectFrom('tuf_files').select(['path', 'role', 'version']).where('role', 'not in', ['root', 'timestamp']).execute();
    const newest = new Map<string, number>();
    for (const r of rows) newest.set(r.role, Math.max(newest.get(r.role) ?? 0, r.version));
    const old = rows.filter((r) => r.version <= newest.get(r.role)! - keep).map((r) => r.path);
    for (let i = 0; i < old.length; i += 500) await this.db.deleteFrom('tuf_files').where('path', 'in', old.slice(i, i + 500)).execute();
    return old.length;
  }
}
