import { sql, type Kysely } from 'kysely';
import { PatchwardenError, SystemFacts, type DeviceDetail, type DeviceSort, type DeviceSummary } from '@patchwarden/core';
import type { DB, DevicesTable } from '../db/schema.js';
import { rowToFact } from '../inventory/store.js';
import { containsPattern } from '../http/like.js';

export const DEVICE_SORTS: Record<DeviceSort, string> = { hostname: 'd.hostname', lastSeen: 'd.last_seen_at', packages: 'd.package_count', os: 'd.os_pretty', needed: 'needed' };

export interface DeviceQuery {
  search?: string;
  /** part of the OS's pretty name (Debian GNU/Linux 12 …), case-insensitive */
  os?: string;
  group?: string;
  label?: string;
  status?: 'active' | 'pending' | 'revoked';
  sort?: DeviceSort;
  order?: 'asc' | 'desc';
  limit: number;
  offset: number;
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

function parseSystem(json: string | null): SystemFacts | null {
  if (json === null) return null;
  const r = SystemFacts.safeParse(JSON.parse(json));
  return r.success ? r.data : null;
}

type Row = Pick<
  DevicesTable,
  'id' | 'hostname' | 'status' | 'enrolled_at' | 'last_seen_at' | 'system_json' | 'package_count' | 'inventory_status' | 'inventory_message' | 'public_key' | 'duplicate_of' | 'clone_suspected_at'
> & { group_id: string | null; group_name: string | null; needed?: number | string | null };

function toSummary(r: Row, labels: string[]): DeviceSummary {
  const system = parseSystem(r.system_json);
  const inventory: DeviceSummary['inventory'] = { status: r.inventory_status };
  if (r.inventory_message) inventory.message = r.inventory_message;
  return {
    id: r.id,
    hostname: r.hostname,
    status: r.status,
    group: r.group_id && r.group_name ? { id: r.group_id, name: r.group_name } : null,
    labels,
    os: system?.os ?? null,
    kernel: system?.kernel.release ?? null,
    enrolledAt: iso(r.enrolled_at)!,
    lastSeenAt: iso(r.last_seen_at),
    packageCount: r.package_count,
    inventory,
    needed: Number(r.needed ?? 0),
    identity: { signed: !!r.public_key, duplicateOf: r.duplicate_of ?? null, cloneSuspectedAt: iso(r.clone_suspected_at ?? null) },
  };
}

function baseQuery(db: Kysely<DB>, onlyDevice?: string) {
  // needed patches per evaluation context, counted once per context (devices share them); for
  // one device, in its own context only
  return db
    .with('nc', (w) => {
      const q = w.selectFrom('effective_states').select(['context_id', (eb) => eb.fn.countAll<number>().as('n')]).where('state', '=', 'needed');
      return (onlyDevice === undefined ? q : q.where('context_id', '=', (eb) => eb.selectFrom('devices').select('context_id').where('id', '=', onlyDevice))).groupBy('context_id');
    })
    .selectFrom('devices as d')
    .leftJoin('groups as g', 'g.id', 'd.group_id')
    .leftJoin('nc', 'nc.context_id', 'd.context_id')
    .select((eb) => eb.fn.coalesce('nc.n', sql<number>`0`).as('needed'))
    .select([
      'd.id',
      'd.hostname',
      'd.status',
      'd.enrolled_at',
      'd.last_seen_at',
      'd.system_json',
      'd.package_count',
      'd.inventory_status',
      'd.inventory_message',
      'd.public_key',
      'd.duplicate_of',
      'd.clone_suspected_at',
      'd.group_id',
      'g.name as group_name',
    ]);
}

async function labelsOf(db: Kysely<DB>, ids: string[]): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  if (ids.length === 0) return out;
  const rows = await db.selectFrom('device_labels').select(['device_id', 'label']).where('device_id', 'in', ids).orderBy('label').execute();
  for (const r of rows) {
    const l = out.get(r.device_id) ?? [];
    l.push(r.label);
    out.set(r.device_id, l);
  }
  return out;
}


export async function listDevices(db: Kysely<DB>, q: DeviceQuery): Promise<{ items: DeviceSummary[]; total: number }> {
  let query = baseQuery(db);
  if (q.search) {
    const pat = containsPattern(q.search);
    query = query.where((eb) =>
      eb.or([
        eb(sql`lower(d.hostname)`, 'like', sql`${pat} escape '!'`),
        eb(sql`lower(coalesce(d.os_pretty, ''))`, 'like', sql`${pat} escape '!'`),
        eb(sql`lower(coalesce(g.name, ''))`, 'like', sql`${pat} escape '!'`),
        eb.exists(
          eb
            .selectFrom('device_labels as sl')
            .select('sl.device_id')
            .whereRef('sl.device_id', '=', 'd.id')
            .where(sql`lower(sl.label)`, 'like', sql`${pat} escape '!'`),
        ),
        eb('d.id', '=', q.search!),
      ]),
    );
  }
  if (q.group) query = query.where((eb) => eb.or([eb('g.name', '=', q.group!), eb('g.id', '=', q.group!)]));
  if (q.label) {
    query = query.where((eb) =>
      eb.exists(eb.selectFrom('device_labels as l').select('l.device_id').whereRef('l.device_id', '=', 'd.id').where('l.label', '=', q.label!)),
    );
  }
  if (q.status) query = query.where('d.status', '=', q.status);
  if (q.os) query = query.where(sql`lower(coalesce(d.os_pretty, ''))`, 'like', sql`${containsPattern(q.os)} escape '!'`);
  const countRow = await query
    .clearSelect()
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow();
  const column = DEVICE_SORTS[q.sort ?? 'hostname'];
  const order = q.order ?? 'asc';
  const rows = await query
    .orderBy(sql.ref(column), (ob) => (order === 'asc' ? ob.asc().nullsFirst() : ob.desc().nullsLast()))
    .orderBy('d.id')
    .limit(q.limit)
    .offset(q.offset)
    .execute();
  const labels = await labelsOf(
    db,
    rows.map((r) => r.id),
  );
  return { items: rows.map((r) => toSummary(r, labels.get(r.id) ?? [])), total: Number(countRow.n) };
}

/** Finds a device by id, or by hostname when exactly one device has it. */
export async function resolveDeviceId(db: Kysely<DB>, ref: string): Promise<string> {
  const byId = await db.selectFrom('devices').select('id').where('id', '=', ref).executeTakeFirst();
  if (byId) return byId.id;
  const byName = await db.selectFrom('devices').select('id').where('hostname', '=', ref).limit(2).execute();
  if (byName.length === 1) return byName[0]!.id;
  if (byName.length > 1) {
    throw new PatchwardenError('E_CONFLICT', `${byName.length}+ devices are named '${ref}'`, { hint: 'use the device id instead' });
  }
  throw new PatchwardenError('E_NOT_FOUND', `no device '${ref}'`, { hint: 'list devices with `patchwarden devices list`' });
}

export async function getDevice(db: Kysely<DB>, ref: string): Promise<DeviceDetail> {
  const id = await resolveDeviceId(db, ref);
  const r = await baseQuery(db, id)
    .select(['d.system_hash', 'd.package_set_id'])
    .leftJoin('package_sets as s', 's.id', 'd.package_set_id')
    .select('s.hash as set_hash')
    .where('d.id', '=', id)
    .executeTakeFirstOrThrow();
  const labels = (await labelsOf(db, [id])).get(id) ?? [];
  const system = parseSystem(r.system_json);
  return {
    ...toSummary(r, labels),
    timezone: system?.timezone ?? null,
    rebootRequired: system?.rebootRequired ?? false,
    agentVersion: system?.agentVersion ?? null,
    machineId: system?.machineId ?? null,
    collectors: system?.collectors ?? [],
    inventoryHash: r.set_hash ?? null,
    heldPackages: system?.heldPackages ?? [],
  };
}

export async function listDevicePackages(
  db: Kysely<DB>,
  ref: string,
  q: { search?: string; limit: number; offset: number },
) {
  const id = await resolveDeviceId(db, ref);
  let query = db
    .selectFrom('devices as d')
    .innerJoin('package_set_members as m', 'm.set_id', 'd.package_set_id')
    .innerJoin('packages as p', 'p.id', 'm.package_id')
    .where('d.id', '=', id);
  if (q.search) {
    const pat = containsPattern(q.search);
    query = query.where((eb) =>
      eb.or([eb('p.name', 'like', sql<string>`${pat} escape '!'`), eb(sql`coalesce(p.source, '')`, 'like', sql`${pat} escape '!'`)]),
    );
  }
  const countRow = await query.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
  const rows = await query
    .select(['p.manager', 'p.name', 'p.arch', 'p.version', 'p.source', 'p.source_version', 'p.state'])
    .orderBy('p.name')
    .orderBy('p.arch')
    .limit(q.limit)
    .offset(q.offset)
    .execute();
  return { items: rows.map(rowToFact), total: Number(countRow.n) };
}

export async function revokeDevice(db: Kysely<DB>, ref: string, now: number): Promise<DeviceDetail> {
  const id = await resolveDeviceId(db, ref);
  await db.updateTable('devices').set({ status: 'revoked', revoked_at: now }).where('id', '=', id).where('status', '!=', 'revoked').execute();
  return getDevice(db, id);
}

/**
 * An administrator vouches for a device: a pending re-enrollment becomes the machine's active
 * record (the record it replaces is revoked, unless `keepOriginal`: two machines that share an
 * identity by design), and a clone suspicion is cleared, its check-in count starting afresh.
 */
export async function approveDevice(db: Kysely<DB>, ref: string, now: number, opts: { keepOriginal: boolean }): Promise<{ device: DeviceDetail; revoked: string | null }> {
  const id = await resolveDeviceId(db, ref);
  const revoked = await db.transaction().execute(async (tx) => {
    const d = await tx.selectFrom('devices').select(['status', 'duplicate_of', 'clone_suspected_at']).where('id', '=', id).executeTakeFirstOrThrow();
    if (d.status === 'revoked') throw new PatchwardenError('E_CONFLICT', 'this device is revoked: it cannot be approved', { hint: 'enroll the machine again' });
    if (d.status !== 'pending' && d.clone_suspected_at == null) throw new PatchwardenError('E_CONFLICT', 'this device is neither pending nor suspected of being a clone: there is nothing to approve');
    let gone: string | null = null;
    if (d.status === 'pending') {
      await tx.updateTable('devices').set({ status: 'active' }).where('id', '=', id).where('status', '=', 'pending').execute();
      if (d.duplicate_of && !opts.keepOriginal) {
        const r = await tx.updateTable('devices').set({ status: 'revoked', revoked_at: now }).where('id', '=', d.duplicate_of).where('status', '=', 'active').executeTakeFirst();
        if (Number(r.numUpdatedRows) === 1) gone = d.duplicate_of;
      }
    }
    await tx.updateTable('devices').set({ clone_suspected_at: null, last_sequence: null }).where('id', '=', id).execute();
    return gone;
  });
  return { device: await getDevice(db, id), revoked };
}

export async function setDeviceGroup(db: Kysely<DB>, ref: string, group: string | null): Promise<DeviceDetail> {
  const id = await resolveDeviceId(db, ref);
  let groupId: string | null = null;
  if (group !== null) {
    const g = await db
      .selectFrom('groups')
      .select('id')
      .where((eb) => eb.or([eb('name', '=', group), eb('id', '=', group)]))
      .executeTakeFirst();
    if (!g) throw new PatchwardenError('E_NOT_FOUND', `no group '${group}'`, { hint: 'create it with `patchwarden groups create NAME`' });
    groupId = g.id;
  }
  await db.updateTable('devices').set({ group_id: groupId }).where('id', '=', id).execute();
  return getDevice(db, id);
}

export async function changeDeviceLabels(db: Kysely<DB>, ref: string, add: string[], remove: string[]): Promise<DeviceDetail> {
  const id = await resolveDeviceId(db, ref);
  await db.transaction().execute(async (tx) => {
    if (remove.length) await tx.deleteFrom('device_labels').where('device_id', '=', id).where('label', 'in', remove).execute();
    if (add.length) {
      await tx
        .insertInto('device_labels')
        .values([...new Set(add)].map((label) => ({ device_id: id, label })))
        .onConflict((oc) => oc.columns(['device_id', 'label']).doNothing())
        .execute();
    }
  });
  return getDevice(db, id);
}
