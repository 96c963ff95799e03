/**
 * The switch at the end of a sync: in one transaction, the verified metadata files (byte for
 * byte, at the paths the layout serves them under), the current version of each role, the
 * target listing, the local catalog (`patches`, read from the verified targets, source kind
 * `mirror`), the coverage, and the trusted state. Compliance moves afterwards, as it does for
 * every catalog change.
 *
 * Coverage is not signed metadata: the central server states it over the site channel (or in
 * the export file's coverage.json). A platform is taken only when some verified patch names its
 * release, so a forged coverage can at most drop platforms (devices then read "not assessed",
 * never "fully patched" by a claim with no patch behind it).
 */
import type { Kysely, Transaction } from 'kysely';
import { parseManifest, PatchwardenError, readBundle, sha256Hex, type PatchManifest, type Platform } from '@patchwarden/core';
import type { AppContext } from '../../http/context.js';
import type { DB } from '../../db/schema.js';
import { coverageKey, upsertPatchesIn } from '../store.js';
import type { MirroredTarget, MirrorResult } from '../tuf/client.js';
import { metadataPath, patchOfTargetPath, revisionOfTarget } from '../tuf/repo.js';
import { MIRROR_ROW, type PinnedRoot } from './state.js';

type Ctx = Pick<AppContext, 'db' | 'compliance' | 'now'>;

export interface ApplyResult {
  /** whether anything agents see changed (metadata or targets) */
  changed: boolean;
  root: number;
  timestamp: number;
  snapshot: number;
  /** the earliest expiry of the catalog now served: it must be synced (or imported) again before */
  expires: string;
  patches: { created: number; updated: number; unchanged: number; removed: number; unreadable: { path: string; reason: string }[] };
  /** platforms the local catalog covers after the sync */
  coverage: number;
  contextsEvaluated: number;
}

interface ApplyInput {
  result: MirrorResult;
  /** the pinned root, on the first sync (it is served too) */
  firstRoot: Uint8Array | null;
  pin: PinnedRoot;
  source: string;
  coverage: Platform[] | null;
  /** targets that are new or have other content than what is served */
  changedTargets: [string, MirroredTarget][];
  /** what is served now: path → sha256 */
  served: Map<string, string>;
}

interface Parsed {
  version: number;
  expiresAt: number;
}

function parsed(bytes: Uint8Array): Parsed {
  const s = (JSON.parse(Buffer.from(bytes).toString('utf8')) as { signed: { version: number; expires: string } }).signed;
  return { version: s.version, expiresAt: Date.parse(s.expires) };
}

const releaseOf = (p: Platform) => `${p.family}/${p.distribution ?? '*'}/${p.release ?? '*'}`;

/** Patch manifests of the changed targets, read from the content store (verified on arrival). */
async function readManifests(db: Kysely<DB>, changed: [string, MirroredTarget][]): Promise<{ manifests: PatchManifest[]; unreadable: { path: string; reason: string }[] }> {
  const byId = new Map<string, PatchManifest>();
  const unreadable: { path: string; reason: string }[] = [];
  const patchTargets = changed.filter(([path]) => patchOfTargetPath(path) !== null);
  for (let i = 0; i < patchTargets.length; i += 200) {
    const part = patchTargets.slice(i, i + 200);
    const rows = await db.selectFrom('content').select(['sha256', 'bytes']).where('sha256', 'in', [...new Set(part.map(([, t]) => t.sha256))]).execute();
    const bytesOf = new Map(rows.map((r) => [r.sha256, r.bytes]));
    for (const [path, t] of part) {
      const p = patchOfTargetPath(path)!;
      const bytes = bytesOf.get(t.sha256);
      if (!bytes) throw new PatchwardenError('E_INTERNAL', `${path}: verified, but not in the content store`);
      try {
        const m = p.kind === 'bundle' ? readBundle(bytes, { maxBytes: Number.MAX_SAFE_INTEGER }).manifest : parseManifest(JSON.parse(Buffer.from(bytes).toString('utf8')));
        const stated = revisionOfTarget(t.custom);
        if (m.id !== p.id || (stated !== null && m.revision !== stated)) throw new Error(`it holds ${m.id} r${m.revision}`);
        const prev = byId.get(m.id);
        if (!prev || prev.revision < m.revision) byId.set(m.id, m);
      } catch (err) {
        // signed, so it stays mirrored for devices; this server's compliance leaves it out
        unreadable.push({ path, reason: (err as Error).message.slice(0, 300) });
      }
    }
  }
  return { manifests: [...byId.values()], unreadable };
}

async function upsertFiles(tx: Transaction<DB>, files: { path: string; role: string; version: number; bytes: Uint8Array }[], now: number) {
  for (let i = 0; i < files.length; i += 200) {
    await tx
      .insertInto('tuf_files')
      .values(files.slice(i, i + 200).map((f) => ({ path: f.path, role: f.role, version: f.version, bytes: Buffer.from(f.bytes.buffer, f.bytes.byteOffset, f.bytes.length), created_at: now })))
      .onConflict((oc) => oc.column('path').doUpdateSet((eb) => ({ bytes: eb.ref('excluded.bytes'), role: eb.ref('excluded.role'), version: eb.ref('excluded.version'), created_at: eb.ref('excluded.created_at') })))
      .execute();
  }
}

async function upsertRoles(tx: Transaction<DB>, roles: { name: string; version: number; expires_at: number; length: number; sha256: string }[]) {
  for (let i = 0; i < roles.length; i += 200) {
    await tx
      .insertInto('tuf_roles')
      .values(roles.slice(i, i + 200))
      .onConflict((oc) =>
        oc.column('name').doUpdateSet((eb) => ({ version: eb.ref('excluded.version'), expires_at: eb.ref('excluded.expires_at'), length: eb.ref('excluded.length'), sha256: eb.ref('excluded.sha256') })),
      )
      .execute();
  }
}

export async function applySync(ctx: Ctx, input: ApplyInput): Promise<ApplyResult> {
  const { result } = input;
  const now = ctx.now();
  const st = result.state;
  const top = { root: parsed(st.root), timestamp: parsed(st.timestamp!), snapshot: parsed(st.snapshot!) };

  // what is served now, to write only what differs
  const current = new Map((await ctx.db.selectFrom('tuf_roles').select(['name', 'version', 'sha256', 'expires_at']).execute()).map((r) => [r.name, r]));
  const fetched = new Set(result.changedRoles);
  const files: { path: string; role: string; version: number; bytes: Uint8Array }[] = [];
  const roles: { name: string; version: number; expires_at: number; length: number; sha256: string }[] = [];
  const take = (name: string, bytes: Uint8Array, p: Parsed, file = true) => {
    const sha = sha256Hex(bytes);
    const cur = current.get(name);
    if (cur && cur.version === p.version && cur.sha256 === sha) return;
    if (file) files.push({ path: metadataPath(name, p.version), role: name, version: p.version, bytes });
    roles.push({ name, version: p.version, expires_at: p.expiresAt, length: bytes.length, sha256: sha });
  };
  // every root from the pinned one on is served, so devices pinned to any of them can walk up
  for (const r of [...(input.firstRoot ? [input.firstRoot] : []), ...result.newRoots]) {
    const p = parsed(r);
    files.push({ path: metadataPath('root', p.version), role: 'root', version: p.version, bytes: r });
  }
  take('root', st.root, top.root, false);
  take('timestamp', st.timestamp!, top.timestamp);
  take('snapshot', st.snapshot!, top.snapshot);
  let expiresAt = Math.min(top.root.expiresAt, top.timestamp.expiresAt, top.snapshot.expiresAt);
  for (const role of st.roles.values()) {
    const cur = current.get(role.name);
    if (!fetched.has(role.name) && cur?.version === role.version) {
      // reused from the served tables by the client, so the very bytes served: nothing to write
      expiresAt = Math.min(expiresAt, Number(cur.expires_at));
      continue;
    }
    const p = parsed(role.bytes);
    expiresAt = Math.min(expiresAt, p.expiresAt);
    take(role.name, role.bytes, p);
  }
  const gone = [...current.keys()].filter((n) => !['root', 'timestamp', 'snapshot'].includes(n) && !st.roles.has(n));

  // the target listing
  const removedPaths = [...input.served.keys()].filter((p) => !result.targets.has(p));
  const { manifests, unreadable } = await readManifests(ctx.db, input.changedTargets);
  const listedIds = new Set<string>();
  for (const path of result.targets.keys()) {
    const p = patchOfTargetPath(path);
    if (p) listedIds.add(p.id);
  }
  const removedIds = (await ctx.db.selectFrom('patches').select('id').execute()).map((r) => r.id).filter((id) => !listedIds.has(id));

  // coverage: as stated, for releases some verified patch names (see the header)
  let coverage: Platform[] | null = null;
  if (input.coverage) {
    const releases = new Set<string>();
    for (const m of manifests) for (const p of m.platforms) releases.add(releaseOf(p));
    if (input.coverage.some((c) => !releases.has(releaseOf(c)))) {
      for (const r of await ctx.db.selectFrom('patches').select('manifest_json').execute()) {
        for (const p of (JSON.parse(r.manifest_json) as PatchManifest).platforms) releases.add(releaseOf(p));
      }
    }
    coverage = input.coverage.filter((c) => releases.has(releaseOf(c)));
    const stored = (await ctx.db.selectFrom('coverage').select('key').execute()).map((r) => r.key).sort();
    if (JSON.stringify(stored) === JSON.stringify(coverage.map(coverageKey).sort())) coverage = null;
  }

  const changed = files.length > 0 || roles.length > 0 || gone.length > 0 || input.changedTargets.length > 0 || removedPaths.length > 0 || coverage !== null;
  let up = { created: 0, updated: 0, unchanged: 0, changed: [] as string[] };
  await ctx.db.transaction().execute(async (tx) => {
    await upsertFiles(tx, files, now);
    await upsertRoles(tx, roles);
    for (let i = 0; i < gone.length; i += 500) await tx.deleteFrom('tuf_roles').where('name', 'in', gone.slice(i, i + 500)).execute();
    const replaced = [...removedPaths, ...input.changedTargets.map(([p]) => p)];
    for (let i = 0; i < replaced.length; i += 500) await tx.deleteFrom('tuf_targets').where('path', 'in', replaced.slice(i, i + 500)).execute();
    for (let i = 0; i < input.changedTargets.length; i += 500) {
      await tx
        .insertInto('tuf_targets')
        .values(
          input.changedTargets.slice(i, i + 500).map(([path, t]) => {
            const p = patchOfTargetPath(path);
            return { path, role: t.role, length: t.length, sha256: t.sha256, patch_id: p?.id ?? null, revision: p ? revisionOfTarget(t.custom) : null };
          }),
        )
        .execute();
    }
    up = await upsertPatchesIn(tx, manifests, [], { kind: 'mirror', upstream: input.source }, now);
    for (let i = 0; i < removedIds.length; i += 500) await tx.deleteFrom('patches').where('id', 'in', removedIds.slice(i, i + 500)).execute();
    if (coverage) {
      await tx.deleteFrom('coverage').execute();
      if (coverage.length) {
        await tx
          .insertInto('coverage')
          .values(coverage.map((c) => ({ key: coverageKey(c), platform_json: JSON.stringify(c), source_json: JSON.stringify({ kind: 'mirror', upstream: input.source }), updated_at: now })))
          .onConflict((oc) => oc.column('key').doNothing())
          .execute();
      }
    }
    if (removedIds.length || coverage) {
      // what compliance reads changed even where no patch was written
      await tx
        .insertInto('catalog_meta')
        .values({ key: 'generation', value: 1 })
        .onConflict((oc) => oc.column('key').doUpdateSet((eb) => ({ value: eb('catalog_meta.value', '+', 1) })))
        .execute();
    }
    const row = {
      source: input.source,
      root: Buffer.from(st.root),
      timestamp: Buffer.from(st.timestamp!),
      snapshot: Buffer.from(st.snapshot!),
      last_attempt_at: now,
      last_success_at: now,
      last_error: null,
      updated_at: now,
    };
    await tx
      .insertInto('mirror_state')
      .values({ id: MIRROR_ROW, pinned_sha256: input.pin.sha256, ...row })
      .onConflict((oc) => oc.column('id').doUpdateSet(row))
      .execute();
  });
  const covered = coverage ? coverage.length : Number((await ctx.db.selectFrom('coverage').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
  const evaluated = up.changed.length || removedIds.length || coverage ? await ctx.compliance.catalogChanged([...up.changed, ...removedIds]) : { contexts: 0 };
  return {
    changed,
    root: top.root.version,
    timestamp: top.timestamp.version,
    snapshot: top.snapshot.version,
    expires: new Date(expiresAt).toISOString(),
    patches: { created: up.created, updated: up.updated, unchanged: up.unchanged, removed: removedIds.length, unreadable },
    coverage: covered,
    contextsEvaluated: evaluated.contexts,
  };
}
