/**
 * The catalog as stored: one row per patch id at its current revision. `(id, revision)` is
 * immutable: the same pair with other content is refused, a lower revision too; a higher one
 * replaces. A generation counter moves on every change, so evaluations know they are stale.
 */
import type { Kysely, Transaction } from 'kysely';
import { canonicalDigest, CatalogIndex, PatchwardenError, type PatchManifest, type Platform } from '@patchwarden/core';
import type { DB } from '../db/schema.js';

export interface CatalogSource {
  kind: string;
  [k: string]: unknown;
}

export interface UpsertResult {
  created: number;
  updated: number;
  unchanged: number;
  /** ids created or replaced: what compliance must re-evaluate */
  changed: string[];
}

const CHUNK = 500;
/** Sources whose patches the server numbers itself (see upsertPatches). */
const FEED_KINDS = new Set(['apt', 'osv', 'debian-tracker']);

export async function generation(db: Kysely<DB>): Promise<number> {
  const r = await db.selectFrom('catalog_meta').select('value').where('key', '=', 'generation').executeTakeFirst();
  return r ? Number(r.value) : 0;
}

async function bumpGeneration(db: Kysely<DB>): Promise<number> {
  const next = (await generation(db)) + 1;
  await db
    .insertInto('catalog_meta')
    .values({ key: 'generation', value: next })
    .onConflict((oc) => oc.column('key').doUpdateSet({ value: next }))
    .execute();
  return next;
}

export function coverageKey(p: Platform): string {
  return [p.family, p.distribution ?? '*', p.release ?? '*', (p.arch ?? ['*']).slice().sort().join(',')].join('/');
}

export async function upsertPatches(
  db: Kysely<DB>,
  patches: PatchManifest[],
  coverage: Platform[],
  source: CatalogSource,
  now: number,
): Promise<UpsertResult> {
  return db.transaction().execute((tx) => upsertPatchesIn(tx, patches, coverage, source, now));
}

/** The same, inside a transaction the caller holds (so the signed catalog moves with it). */
export async function upsertPatchesIn(
  tx: Transaction<DB>,
  patches: PatchManifest[],
  coverage: Platform[],
  source: CatalogSource,
  now: number,
): Promise<UpsertResult> {
  const result: UpsertResult = { created: 0, updated: 0, unchanged: 0, changed: [] };
  checkUnique(patches);
  await upsertIn(tx, patches, coverage, source, now, result);
  return result;
}

function checkUnique(patches: PatchManifest[]) {
  const seen = new Set<string>();
  for (const p of patches) {
    if (seen.has(p.id)) throw new PatchwardenError('E_VALIDATION', `patch ${p.id} appears twice in one upload`);
    seen.add(p.id);
  }
}

async function upsertIn(tx: Transaction<DB>, patches: PatchManifest[], coverage: Platform[], source: CatalogSource, now: number, result: UpsertResult) {
  {
    for (let i = 0; i < patches.length; i += CHUNK) {
      const part = patches.slice(i, i + CHUNK);
      const existing = new Map(
        (await tx.selectFrom('patches').select(['id', 'revision', 'digest']).where('id', 'in', part.map((p) => p.id)).execute()).map((r) => [r.id, r]),
      );
      const inserts = [];
      for (const sent of part) {
        const old = existing.get(sent.id);
        let p = sent;
        let digest = canonicalDigest(p);
        // A feed (apt indexes, OSV) is re-read as it is republished: its patches change with
        // the archive (dates, suites, supersedes) while the feed knows no revisions. The server
        // numbers them: changed content becomes the next revision, never the same one.
        if (FEED_KINDS.has(source.kind) && old && old.digest !== digest) {
          const same = canonicalDigest({ ...p, revision: old.revision });
          if (same === old.digest) {
            result.unchanged++;
            continue;
          }
          p = { ...p, revision: Math.max(old.revision + 1, p.revision) };
          digest = canonicalDigest(p);
        }
        if (old && old.revision === p.revision) {
          if (old.digest !== digest) {
            throw new PatchwardenError('E_CONFLICT', `patch ${p.id} revision ${p.revision} exists with other content`, {
              hint: 'an (id, revision) pair never changes: publish a higher revision',
            });
          }
          result.unchanged++;
          continue;
        }
        if (old && old.revision > p.revision) {
          throw new PatchwardenError('E_CONFLICT', `patch ${p.id} is at revision ${old.revision}; revision ${p.revision} is older`);
        }
        const row = {
          id: p.id,
          revision: p.revision,
          digest,
          title: p.title,
          severity: p.severity,
          release_date: p.releaseDate ?? null,
          source_kind: source.kind,
          manifest_json: JSON.stringify(p),
          updated_at: now,
        };
        if (old) {
          await tx.updateTable('patches').set(row).where('id', '=', p.id).execute();
          result.updated++;
        } else {
          inserts.push({ ...row, created_at: now });
          result.created++;
        }
        result.changed.push(p.id);
      }
      if (inserts.length) await tx.insertInto('patches').values(inserts).execute();
    }
    // an import sends its coverage with every batch: only a new or changed entry is a catalog change
    const known = coverage.length
      ? new Map((await tx.selectFrom('coverage').select(['key', 'platform_json']).where('key', 'in', coverage.map(coverageKey)).execute()).map((r) => [r.key, r.platform_json]))
      : new Map<string, string>();
    let coverageChanged = false;
    for (const c of coverage) {
      const row = { key: coverageKey(c), platform_json: JSON.stringify(c), source_json: JSON.stringify(source), updated_at: now };
      if (known.get(row.key) !== row.platform_json) coverageChanged = true;
      await tx
        .insertInto('coverage')
        .values(row)
        .onConflict((oc) => oc.column('key').doUpdateSet({ platform_json: row.platform_json, source_json: row.source_json, updated_at: now }))
        .execute();
    }
    // a new generation makes every evaluator reload the whole catalog, so it moves only on a change
    if (result.changed.length || coverageChanged) await bumpGeneration(tx as unknown as Kysely<DB>);
  }
}

export interface LoadedCatalog {
  generation: number;
  index: CatalogIndex;
  manifests: Map<string, PatchManifest>;
  /** each manifest's digest, so the next load parses only what changed */
  digests: Map<string, string>;
  pkOf: Map<string, number>;
  coverage: Platform[];
  /** file paths and registry values the rules read: what agents are asked to collect */
  collect: { files: string[]; registry: string[] };
}

/**
 * The whole catalog in memory (the evaluator reads it for every context). Given the previous
 * load, only manifests whose digest changed are read and parsed again: an import that moves the
 * generation once per batch would otherwise parse the whole catalog after every batch.
 */
export async function loadCatalog(db: Kysely<DB>, previous?: LoadedCatalog): Promise<LoadedCatalog> {
  const gen = await generation(db);
  const heads = await db.selectFrom('patches').select(['pk', 'id', 'digest']).execute();
  const manifests = new Map<string, PatchManifest>();
  const digests = new Map<string, string>();
  const pkOf = new Map<string, number>();
  const stale: number[] = [];
  for (const r of heads) {
    const kept = previous?.digests.get(r.id) === r.digest ? previous.manifests.get(r.id) : undefined;
    if (kept) manifests.set(r.id, kept);
    else stale.push(r.pk);
    digests.set(r.id, r.digest);
    pkOf.set(r.id, r.pk);
  }
  for (let i = 0; i < stale.length; i += 5000) {
    const rows = await db.selectFrom('patches').select(['id', 'manifest_json']).where('pk', 'in', stale.slice(i, i + 5000)).execute();
    // rows stored before actions and payloads existed lack those fields: same defaults as the schema
    for (const r of rows) manifests.set(r.id, { payload: [], install: [], undo: [], ...(JSON.parse(r.manifest_json) as Partial<PatchManifest>) } as PatchManifest);
  }
  const coverage = (await db.selectFrom('coverage').select('platform_json').execute()).map((r) => JSON.parse(r.platform_json) as Platform);
  const index = new CatalogIndex(manifests.values());
  const files: string[] = [];
  const registry: string[] = [];
  for (const key of index.byFactKey.keys()) {
    if (key.startsWith('file:')) files.push(key.slice(5));
    else if (key.startsWith('registry:')) registry.push(key.slice(9));
  }
  return { generation: gen, index, manifests, digests, pkOf, coverage, collect: { files: files.sort().slice(0, 256), registry: registry.sort().slice(0, 256) } };
}
