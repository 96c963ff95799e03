/**
 * Patches for the console: the catalog list with filters, sorts and a device count per patch
 * (GET /api/v1/catalog/patches, registered in catalog/routes.ts), the devices in a state for one
 * patch, and a patch's relations both ways. Sort keys map to fixed SQL expressions; filter
 * values are bound parameters only.
 */
import { sql, type Kysely } from 'kysely';
import { z } from 'zod';
import { PATCH_STATES, PatchwardenError, SEVERITIES } from '@patchwarden/core';
import type { DB } from '../db/schema.js';
import type { Dialect } from '../db/database.js';
import type { AppContext } from '../http/context.js';
import { containsPattern } from '../http/like.js';

type Db = Kysely<DB>;

const SEVERITY_LIST = new RegExp(`^(${SEVERITIES.join('|')})(,(${SEVERITIES.join('|')}))*$`);
export const PATCH_SORTS = ['id', 'severity', 'releaseDate', 'devices'] as const;

/** The query of GET /api/v1/catalog/patches (the first four fields were there before). */
export const PatchListQuery = z.strictObject({
  search: z.string().max(200).optional(),
  /** one severity or a comma list: `critical,high` */
  severity: z.string().regex(SEVERITY_LIST, `one of ${SEVERITIES.join(', ')}, or a comma list of them`).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  offset: z.coerce.number().int().min(0).default(0),
  /** the manifest's vendor, else the id's namespace (`debian/…`), any case */
  vendor: z.string().min(1).max(100).optional(),
  /** patches that fix this CVE (exact id, any case) */
  cve: z.string().min(1).max(50).optional(),
  /** needed: needed on at least one active device */
  state: z.enum(['needed']).optional(),
  /** how the patch came in: apt, osv, custom, … (`source` in the answer) */
  source: z.string().min(1).max(32).optional(),
  /** patches for this platform: a manifest platform whose distribution or release is this (any case) */
  platform: z.string().min(1).max(64).optional(),
  sort: z.enum(PATCH_SORTS).default('id'),
  order: z.enum(['asc', 'desc']).default('asc'),
});
export type PatchListQuery = z.infer<typeof PatchListQuery>;

export interface PatchListItem {
  id: string;
  revision: number;
  title: string;
  severity: string;
  releaseDate: string | null;
  source: string;
  /** active devices that need it */
  devices: number;
}
export interface PatchListAnswer {
  total: number;
  items: PatchListItem[];
}

const SEVERITY_RANK = sql<number>`case p.severity when 'critical' then 5 when 'high' then 4 when 'medium' then 3 when 'low' then 2 when 'none' then 1 else 0 end`;

/** Active devices needing each patch: states per context, weighted by the context's devices. */
function neededDevices(db: Db) {
  const devCtx = db
    .selectFrom('devices')
    .select('context_id')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('status', '=', 'active')
    .where('context_id', 'is not', null)
    .groupBy('context_id')
    .as('dc');
  return db
    .selectFrom('effective_states as s')
    .innerJoin(devCtx, 'dc.context_id', 's.context_id')
    .select('s.patch_pk')
    .select((eb) => eb.fn.sum<number>('dc.n').as('devices'))
    .where('s.state', '=', 'needed')
    .groupBy('s.patch_pk')
    .as('nd');
}

export async function listPatches(db: Db, dialect: Dialect, query: PatchListQuery): Promise<PatchListAnswer> {
  let q = db.selectFrom('patches as p').leftJoin(neededDevices(db), 'nd.patch_pk', 'p.pk');
  if (query.search) q = q.where(sql`lower(p.id)`, 'like', sql<string>`${containsPattern(query.search)} escape '!'`);
  if (query.severity) q = q.where('p.severity', 'in', [...new Set(query.severity.split(','))]);
  if (query.source) q = q.where('p.source_kind', '=', query.source);
  if (query.state === 'needed') q = q.where(sql<number>`coalesce(nd.devices, 0)`, '>', 0);
  if (query.vendor) {
    const vendor =
      dialect === 'postgres'
        ? sql<string>`lower(coalesce(cast(p.manifest_json as jsonb) ->> 'vendor', split_part(p.id, '/', 1)))`
        : sql<string>`lower(coalesce(json_extract(p.manifest_json, '$.vendor'), substr(p.id, 1, instr(p.id, '/') - 1)))`;
    q = q.where(vendor, '=', query.vendor.toLowerCase());
  }
  if (query.cve) {
    const cve = query.cve.toUpperCase();
    // a cheap text pre-filter, then the exact check on the manifest's cves list
    q = q.where(sql`lower(p.manifest_json)`, 'like', sql<string>`${containsPattern(`"${cve}"`)} escape '!'`);
    q = q.where(
      dialect === 'postgres'
        ? sql<boolean>`(cast(p.manifest_json as jsonb) -> 'cves') @> jsonb_build_array(cast(${cve} as text))`
        : sql<boolean>`exists (select 1 from json_each(p.manifest_json, '$.cves') where value = ${cve})`,
    );
  }
  if (query.platform) {
    const platform = query.platform.toLowerCase();
    // a cheap text pre-filter (the value as a JSON string), then the exact check on the manifest's platforms
    q = q.where(sql`lower(p.manifest_json)`, 'like', sql<string>`${containsPattern(JSON.stringify(platform))} escape '!'`);
    q = q.where(
      dialect === 'postgres'
        ? sql<boolean>`exists (select 1 from jsonb_array_elements(cast(p.manifest_json as jsonb) -> 'platforms') as pl(v) where lower(pl.v ->> 'distribution') = ${platform} or lower(pl.v ->> 'release') = ${platform})`
        : sql<boolean>`exists (select 1 from json_each(p.manifest_json, '$.platforms') as pl where lower(json_extract(pl.value, '$.distribution')) = ${platform} or lower(json_extract(pl.value, '$.release')) = ${platform})`,
    );
  }
  const total = Number((await q.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
  const sortBy = {
    id: sql`p.id`,
    severity: SEVERITY_RANK,
    releaseDate: sql`coalesce(p.release_date, '')`,
    devices: sql`coalesce(nd.devices, 0)`,
  }[query.sort];
  const rows = await q
    .select(['p.id', 'p.revision', 'p.title', 'p.severity', 'p.release_date', 'p.source_kind'])
    .select(sql<number>`coalesce(nd.devices, 0)`.as('devices'))
    .orderBy(sortBy, (ob) => (query.order === 'desc' ? ob.desc() : ob.asc()))
    .orderBy('p.id')
    .limit(query.limit)
    .offset(query.offset)
    .execute();
  return {
    total,
    items: rows.map((r) => ({
      id: r.id,
      revision: r.revision,
      title: r.title,
      severity: r.severity,
      releaseDate: r.release_date,
      source: r.source_kind,
      devices: Number(r.devices),
    })),
  };
}

export const PatchDevicesQuery = z.strictObject({
  id: z.string().min(1).max(255),
  state: z.enum(PATCH_STATES).default('needed'),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  offset: z.coerce.number().int().min(0).max(10_000_000).default(0),
});
export type PatchDevicesQuery = z.infer<typeof PatchDevicesQuery>;

export interface PatchDevicesAnswer {
  patch: string;
  state: string;
  total: number;
  /** active devices, by hostname */
  items: { id: string; hostname: string; state: string }[];
}

async function patchPk(db: Db, id: string): Promise<number> {
  const r = await db.selectFrom('patches').select('pk').where('id', '=', id).executeTakeFirst();
  if (!r) throw new PatchwardenError('E_NOT_FOUND', `no patch '${id}'`, { hint: 'list patches with GET /api/v1/catalog/patches' });
  return r.pk;
}

/**
 * Devices with `state` for one patch. Stored states come from `effective_states`; `not_assessed`
 * is the context's flag (no feed covers the device); `not_applicable` is an assessed device
 * without a row for the patch (such rows are never stored).
 */
export async function patchDevices(db: Db, query: PatchDevicesQuery): Promise<PatchDevicesAnswer> {
  const pk = await patchPk(db, query.id);
  let q = db.selectFrom('devices as d').innerJoin('eval_contexts as c', 'c.id', 'd.context_id').where('d.status', '=', 'active');
  if (query.state === 'not_assessed') q = q.where('c.covered', '=', 0);
  else if (query.state === 'not_applicable') {
    q = q
      .where('c.covered', '=', 1)
      .where(({ not, exists, selectFrom }) =>
        not(exists(selectFrom('effective_states as s').select(sql`1`.as('one')).whereRef('s.context_id', '=', 'd.context_id').where('s.patch_pk', '=', pk))),
      );
  } else {
    q = q
      .where('c.covered', '=', 1)
      .where(({ exists, selectFrom }) =>
        exists(
          selectFrom('effective_states as s')
            .select(sql`1`.as('one'))
            .whereRef('s.context_id', '=', 'd.context_id')
            .where('s.patch_pk', '=', pk)
            .where('s.state', '=', query.state),
        ),
      );
  }
  const total = Number((await q.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
  const rows = await q.select(['d.id', 'd.hostname']).orderBy('d.hostname').orderBy('d.id').limit(query.limit).offset(query.offset).execute();
  return { patch: query.id, state: query.state, total, items: rows.map((r) => ({ id: r.id, hostname: r.hostname, state: query.state })) };
}

export interface RelatedPatch {
  id: string;
  /** null when the catalog does not hold it */
  title: string | null;
  /** listed: in the catalog; missing: named by a manifest but not in the catalog */
  state: 'listed' | 'missing';
}
export interface PatchRelationsAnswer {
  patch: string;
  requires: RelatedPatch[];
  supersedes: RelatedPatch[];
  conflicts: RelatedPatch[];
  requiredBy: RelatedPatch[];
  supersededBy: RelatedPatch[];
  conflictedBy: RelatedPatch[];
}

/** A patch's links both ways, from the in-memory catalog the evaluator keeps anyway. */
export async function patchRelations(ctx: AppContext, id: string): Promise<PatchRelationsAnswer> {
  const cat = await ctx.compliance.catalog();
  const m = cat.manifests.get(id);
  if (!m) throw new PatchwardenError('E_NOT_FOUND', `no patch '${id}'`, { hint: 'list patches with GET /api/v1/catalog/patches' });
  const info = (x: string): RelatedPatch => {
    const o = cat.manifests.get(x);
    return o ? { id: x, title: o.title, state: 'listed' } : { id: x, title: null, state: 'missing' };
  };
  const forward = (xs: readonly string[]) => [...new Set(xs)].sort().map(info);
  const requiredBy: string[] = [];
  const supersededBy: string[] = [];
  const conflictedBy: string[] = [];
  for (const o of cat.manifests.values()) {
    if (o.id === id) continue;
    if (o.requires.includes(id)) requiredBy.push(o.id);
    if (o.supersedes.includes(id)) supersededBy.push(o.id);
    if (o.conflicts.includes(id)) conflictedBy.push(o.id);
  }
  return {
    patch: id,
    requires: forward(m.requires),
    supersedes: forward(m.supersedes),
    conflicts: forward(m.conflicts),
    requiredBy: forward(requiredBy),
    supersededBy: forward(supersededBy),
    conflictedBy: forward(conflictedBy),
  };
}
