/**
 * Custom patches: bundles signed by their authors, relayed by the server.
 *
 * Publishing is two steps, because the server holds no author key:
 * 1. the bundle is uploaded; it must verify against the author keys that top-level targets
 *    delegates `custom/*` to, name a `custom/` id, keep `(id, revision)` immutable and keep the
 *    catalog's dependency graph free of cycles. It is stored, not yet listed.
 * 2. an author signs the next version of the `custom` role (the listing of custom patches,
 *    `patchwarden patch publish --key` does this on the author's machine) and uploads it; the
 *    server checks the signatures, that every listed bundle was uploaded with that hash and
 *    length, and then lists them — store, signed catalog and compliance in one transaction.
 * A bundle left out of the next listing is retracted.
 */
import { Metadata, MetadataKind, type Targets } from '@tufjs/models';
import {
  canonicalJson,
  checkCatalogGraph,
  PatchwardenError,
  sha256Hex,
  verifyBundle,
  type PatchManifest,
  type TufPublicKey,
} from '@patchwarden/core';
import type { AppContext } from '../http/context.js';
import { upsertPatchesIn } from './store.js';
import { LIFETIME, patchOfTargetPath, revisionOfTarget, targetPathOf } from './tuf/repo.js';

type Ctx = Pick<AppContext, 'db' | 'tuf' | 'compliance' | 'now'>;

export interface UploadedBundle {
  id: string;
  revision: number;
  path: string;
  sha256: string;
  length: number;
  signers: string[];
}

const iso = (ms: number) => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');

async function authorKeys(ctx: Ctx): Promise<Map<string, TufPublicKey>> {
  const authors = await ctx.tuf.currentAuthors();
  if (!authors.length) {
    throw new PatchwardenError('E_FORBIDDEN', 'the catalog trusts no author keys yet, so it cannot take custom patches', {
      hint: 'register an author: `patchwarden keys create alice --role author`, then `patchwarden keys trust alice.pub`',
    });
  }
  return new Map(authors.map((a) => [a.keyid, a.public]));
}

/** Step 1: verify and store a bundle (not yet listed). */
export async function uploadBundle(ctx: Ctx, bytes: Buffer, maxBytes: number): Promise<UploadedBundle> {
  const trusted = await authorKeys(ctx);
  const b = verifyBundle(bytes, { trusted, threshold: 1, maxBytes });
  const m = b.manifest;
  if (!m.id.startsWith('custom/')) {
    throw new PatchwardenError('E_VALIDATION', `${m.id}: a custom patch's id starts with custom/`, { hint: 'rename it (`custom/NAME`), rebuild and sign it again' });
  }
  const existing = await ctx.db.selectFrom('patches').select(['revision', 'digest']).where('id', '=', m.id).executeTakeFirst();
  if (existing && existing.revision > m.revision) throw new PatchwardenError('E_CONFLICT', `${m.id} is at revision ${existing.revision}; revision ${m.revision} is older`);
  if (existing && existing.revision === m.revision && existing.digest !== b.digest) {
    throw new PatchwardenError('E_CONFLICT', `${m.id} revision ${m.revision} exists with other content`, { hint: 'an (id, revision) pair never changes: raise the revision' });
  }
  const same = await ctx.db.selectFrom('bundles').select('sha256').where('patch_id', '=', m.id).where('revision', '=', m.revision).executeTakeFirst();
  const sha = sha256Hex(bytes);
  if (same && same.sha256 !== sha) {
    // the same manifest may come back with more signatures; anything else is a changed pair
    const prev = await ctx.db.selectFrom('content').select('bytes').where('sha256', '=', same.sha256).executeTakeFirst();
    const prevDigest = prev ? verifyBundle(Buffer.from(prev.bytes), { trusted, threshold: 0, maxBytes }).digest : null;
    if (prevDigest !== b.digest) throw new PatchwardenError('E_CONFLICT', `${m.id} revision ${m.revision} was uploaded with other content`, { hint: 'an (id, revision) pair never changes: raise the revision' });
  }
  // the catalog with this patch in it must keep an acyclic graph of requirements
  const cat = await ctx.compliance.catalog();
  const problems = checkCatalogGraph([...[...cat.manifests.values()].filter((x) => x.id !== m.id), m]).filter((p) => p.id === m.id || (p.chain ?? []).includes(m.id) || (p.members ?? []).includes(m.id));
  if (problems.length) {
    const p = problems[0]!;
    throw new PatchwardenError(p.code === 'E_DEPENDENCY_CYCLE' ? 'E_DEPENDENCY_CYCLE' : 'E_VALIDATION', p.message, { details: problems });
  }
  const now = ctx.now();
  await ctx.db.transaction().execute(async (tx) => {
    await tx.insertInto('content').values({ sha256: sha, length: bytes.length, bytes, created_at: now }).onConflict((oc) => oc.column('sha256').doNothing()).execute();
    const row = { sha256: sha, length: bytes.length, signers: JSON.stringify(b.signers), status: 'uploaded', published_at: now, retracted_at: null };
    await tx
      .insertInto('bundles')
      .values({ patch_id: m.id, revision: m.revision, ...row })
      .onConflict((oc) => oc.columns(['patch_id', 'revision']).doUpdateSet(row))
      .execute();
  });
  return { id: m.id, revision: m.revision, path: targetPathOf(m.id, 'bundle'), sha256: sha, length: bytes.length, signers: b.signers };
}

/** The current `custom` role (signed) or, before the first listing, a template for version 1. */
export async function currentCustomRole(ctx: Ctx): Promise<{ version: number; metadata: unknown | null; template: Record<string, unknown> }> {
  const r = await ctx.db.selectFrom('tuf_roles').select('version').where('name', '=', 'custom').executeTakeFirst();
  if (!r) {
    return { version: 0, metadata: null, template: { _type: 'targets', spec_version: '1.0.31', version: 1, expires: iso(ctx.now() + LIFETIME.custom), targets: {} } };
  }
  const cur = await ctx.tuf.role('custom');
  return { version: cur.version, metadata: cur.json, template: { ...cur.json.signed, version: cur.version + 1, expires: iso(ctx.now() + LIFETIME.custom) } };
}

/** Step 2: take a new `custom` role signed by authors, and list (or retract) bundles by it. */
export async function listCustomRole(ctx: Ctx, body: unknown): Promise<{ version: number; listed: number; retracted: string[]; contextsEvaluated: number }> {
  let md: Metadata<Targets>;
  try {
    md = Metadata.fromJSON(MetadataKind.Targets, body as never);
  } catch (err) {
    throw new PatchwardenError('E_METADATA_INVALID', `not targets metadata: ${(err as Error).message}`);
  }
  const top = Metadata.fromJSON(MetadataKind.Targets, (await ctx.tuf.role('targets')).json as never);
  try {
    top.verifyDelegate('custom', md);
  } catch (err) {
    throw new PatchwardenError('E_SIGNATURE_INVALID', `the custom listing is not signed by enough author keys: ${(err as Error).message}`, {
      hint: 'sign it with a registered author key (`patchwarden patch publish BUNDLE --key author.key`)',
    });
  }
  const cur = await currentCustomRole(ctx);
  if (md.signed.version !== cur.version + 1) {
    throw new PatchwardenError('E_METADATA_ROLLBACK', `the custom listing is version ${md.signed.version}; the catalog is at ${cur.version}, so the next is ${cur.version + 1}`, {
      hint: 'someone published meanwhile: run the command again',
    });
  }
  if (md.signed.isExpired(new Date(ctx.now()))) throw new PatchwardenError('E_METADATA_EXPIRED', `the custom listing expired at ${md.signed.expires}`);
  if (md.signed.delegations) throw new PatchwardenError('E_METADATA_INVALID', 'the custom role does not delegate further');
  const entries = Object.entries(md.signed.targets);
  const bundles = new Map<string, { id: string; revision: number; sha256: string; length: number }>();
  for (const [path, t] of entries) {
    const p = patchOfTargetPath(path);
    if (!p || p.kind !== 'bundle' || !p.id.startsWith('custom/')) throw new PatchwardenError('E_METADATA_INVALID', `the custom listing names ${JSON.stringify(path)}, which is not a custom bundle path`);
    const revision = revisionOfTarget(t.custom);
    if (revision === null) throw new PatchwardenError('E_METADATA_INVALID', `the custom listing's entry for ${path} states no revision (custom.revision)`);
    const { id } = p;
    const row = await ctx.db.selectFrom('bundles').selectAll().where('patch_id', '=', id).where('revision', '=', revision).executeTakeFirst();
    if (!row || row.sha256 !== t.hashes.sha256 || row.length !== t.length) {
      throw new PatchwardenError('E_DIGEST_MISMATCH', `the custom listing names ${path}, but no bundle with that hash and length was uploaded`, { hint: 'upload the bundle first (`patchwarden patch publish` does both)' });
    }
    if (bundles.has(id)) throw new PatchwardenError('E_METADATA_INVALID', `the custom listing names two revisions of ${id}`);
    bundles.set(id, { id, revision, sha256: row.sha256, length: row.length });
  }
  const previouslyListed = await ctx.db.selectFrom('bundles').select(['patch_id', 'revision']).where('status', '=', 'listed').execute();
  const retracted = previouslyListed.filter((p) => bundles.get(p.patch_id)?.revision !== p.revision);
  // the bundles this listing adds (or moves to another revision) are read again, from the
  // content store, for their manifests; those listed before are in the catalog already
  const listedBefore = new Map(previouslyListed.map((p) => [p.patch_id, p.revision]));
  const trusted = await authorKeys(ctx);
  const manifests: PatchManifest[] = [];
  for (const b of bundles.values()) {
    if (listedBefore.get(b.id) === b.revision) continue;
    const c = await ctx.db.selectFrom('content').select('bytes').where('sha256', '=', b.sha256).executeTakeFirstOrThrow();
    manifests.push(verifyBundle(Buffer.from(c.bytes), { trusted, threshold: 1, maxBytes: Number.MAX_SAFE_INTEGER }).manifest);
  }
  const now = ctx.now();
  const bytes = canonicalJson(md.toJSON());
  let changed: string[] = [];
  await ctx.db.transaction().execute(async (tx) => {
    await ctx.tuf.store(tx, 'custom', md.signed.version, bytes, Date.parse(md.signed.expires));
    await tx.deleteFrom('tuf_targets').where('role', '=', 'custom').execute();
    for (const b of bundles.values()) {
      await tx.insertInto('tuf_targets').values({ path: targetPathOf(b.id, 'bundle'), role: 'custom', length: b.length, sha256: b.sha256, patch_id: b.id, revision: b.revision }).execute();
      await tx.updateTable('bundles').set({ status: 'listed' }).where('patch_id', '=', b.id).where('revision', '=', b.revision).execute();
    }
    for (const r of retracted) {
      await tx.updateTable('bundles').set({ status: 'retracted', retracted_at: now }).where('patch_id', '=', r.patch_id).where('revision', '=', r.revision).execute();
      // a retracted patch leaves the catalog (unless a newer revision of it is listed now)
      if (!bundles.has(r.patch_id)) await tx.deleteFrom('patches').where('id', '=', r.patch_id).execute();
    }
    const up = await upsertPatchesIn(tx, manifests, [], { kind: 'custom' }, now);
    changed = [...up.changed, ...retracted.map((r) => r.patch_id)];
    if (retracted.length && !up.changed.length) {
      await tx.updateTable('catalog_meta').set((eb) => ({ value: eb('value', '+', 1) })).where('key', '=', 'generation').execute();
    }
    await ctx.tuf.snapshotAndTimestamp(tx);
  });
  const evaluated = await ctx.compliance.catalogChanged(changed);
  return { version: md.signed.version, listed: bundles.size, retracted: retracted.map((r) => `${r.patch_id} r${r.revision}`), contextsEvaluated: evaluated.contexts };
}
