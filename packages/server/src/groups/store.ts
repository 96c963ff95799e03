import type { Kysely } from 'kysely';
import { parseDeviceQuery, deviceQueryNeeds, PatchwardenError, type DeviceQuery, type GroupInfo } from '@patchwarden/core';
import type { DB } from '../db/schema.js';
import { newId } from '../auth/tokens.js';
import { computeMembership, loadGroupDefs, type GroupDef } from './membership.js';

/** A group as the API answers it: the core shape plus targeting settings. */
export interface Group extends GroupInfo {
  kind: 'static' | 'dynamic';
  query: DeviceQuery | null;
  testRing: boolean;
  requireTestPass: boolean;
}

export interface GroupSettings {
  query?: unknown;
  testRing?: boolean | undefined;
  requireTestPass?: boolean | undefined;
}

function toGroup(g: GroupDef, deviceCount: number): Group {
  return {
    id: g.id,
    name: g.name,
    description: g.description,
    createdAt: new Date(g.createdAt).toISOString(),
    deviceCount,
    kind: g.kind,
    query: g.query,
    testRing: g.testRing,
    requireTestPass: g.requireTestPass,
  };
}

export async function listGroups(db: Kysely<DB>): Promise<Group[]> {
  const defs = await loadGroupDefs(db);
  const counts = await db
    .selectFrom('devices')
    .select('group_id')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('group_id', 'is not', null)
    .groupBy('group_id')
    .execute();
  const staticCount = new Map(counts.map((c) => [c.group_id!, Number(c.n)]));
  const m = defs.some((g) => g.kind === 'dynamic') ? await computeMembership(db, { groups: defs }) : null;
  return defs.map((g) => toGroup(g, g.kind === 'dynamic' ? (m?.membersOf(g.id).length ?? 0) : (staticCount.get(g.id) ?? 0)));
}

export async function findGroup(db: Kysely<DB>, ref: string): Promise<{ id: string; name: string }> {
  const g = await db
    .selectFrom('groups')
    .select(['id', 'name'])
    .where((eb) => eb.or([eb('name', '=', ref), eb('id', '=', ref)]))
    .executeTakeFirst();
  if (!g) throw new PatchwardenError('E_NOT_FOUND', `no group '${ref}'`, { hint: 'list groups with `patchwarden groups list`' });
  return g;
}

export async function getGroup(db: Kysely<DB>, ref: string): Promise<GroupDef> {
  const { id } = await findGroup(db, ref);
  return (await loadGroupDefs(db)).find((g) => g.id === id)!;
}

/** Checks a query from outside; its `group` tests must name static groups that exist. */
async function checkQuery(db: Kysely<DB>, input: unknown): Promise<DeviceQuery> {
  const r = parseDeviceQuery(input);
  if (!r.ok) throw new PatchwardenError('E_VALIDATION', `invalid device query: ${r.reason}`, { hint: 'see `patchwarden groups create --help` for the query language' });
  const wanted = [...deviceQueryNeeds(r.query).groups];
  if (wanted.length) {
    const defs = await loadGroupDefs(db);
    const bad = wanted.filter((n) => !defs.some((g) => g.name === n && g.kind === 'static'));
    if (bad.length) {
      throw new PatchwardenError('E_VALIDATION', `invalid device query: ${bad.map((b) => `'${b}'`).join(', ')} ${bad.length === 1 ? 'is' : 'are'} not a static group`, {
        hint: 'a query can test membership in static groups only (so groups never depend on each other in a cycle)',
      });
    }
  }
  return r.query;
}

export async function createGroup(db: Kysely<DB>, name: string, description: string, now: number, settings: GroupSettings = {}): Promise<Group> {
  const exists = await db.selectFrom('groups').select('id').where('name', '=', name).executeTakeFirst();
  if (exists) throw new PatchwardenError('E_CONFLICT', `a group named '${name}' exists already`);
  const query = settings.query === undefined ? null : await checkQuery(db, settings.query);
  const id = newId();
  await db
    .insertInto('groups')
    .values({
      id,
      name,
      description,
      created_at: now,
      kind: query ? 'dynamic' : 'static',
      query_json: query ? JSON.stringify(query) : null,
      test_ring: settings.testRing ? 1 : 0,
      require_test_pass: settings.requireTestPass ? 1 : 0,
    })
    .execute();
  const g = await getGroup(db, id);
  const count = query ? (await computeMembership(db, { groups: await loadGroupDefs(db) })).membersOf(id).length : 0;
  return toGroup(g, count);
}

/** Changes a group's settings; a static group cannot get a query, nor a dynamic one lose it. */
export async function updateGroup(db: Kysely<DB>, ref: string, settings: GroupSettings & { description?: string | undefined }): Promise<Group> {
  const g = await getGroup(db, ref);
  if (settings.query !== undefined && g.kind !== 'dynamic') {
    throw new PatchwardenError('E_CONFLICT', `group '${g.name}' is static: its members are the devices assigned to it`, {
      hint: 'create a dynamic group with `patchwarden groups create NAME --query JSON`',
    });
  }
  const query = settings.query === undefined ? undefined : await checkQuery(db, settings.query);
  await db
    .updateTable('groups')
    .set({
      ...(settings.description === undefined ? {} : { description: settings.description }),
      ...(query === undefined ? {} : { query_json: JSON.stringify(query) }),
      ...(settings.testRing === undefined ? {} : { test_ring: settings.testRing ? 1 : 0 }),
      ...(settings.requireTestPass === undefined ? {} : { require_test_pass: settings.requireTestPass ? 1 : 0 }),
    })
    .where('id', '=', g.id)
    .execute();
  return (await listGroups(db)).find((x) => x.id === g.id)!;
}

export async function deleteGroup(db: Kysely<DB>, ref: string): Promise<void> {
  const g = await findGroup(db, ref);
  await db.transaction().execute(async (tx) => {
    // devices and secrets of the group stay, without a group
    await tx.updateTable('devices').set({ group_id: null }).where('group_id', '=', g.id).execute();
    await tx.updateTable('enrollment_secrets').set({ group_id: null }).where('group_id', '=', g.id).execute();
    await tx.deleteFrom('groups').where('id', '=', g.id).execute();
  });
}

export interface MemberInfo {
  id: string;
  hostname: string;
  os: string | null;
  labels: string[];
  staticGroup: string | null;
}

/** The active devices of a group, by hostname, paged. */
export async function groupMembers(db: Kysely<DB>, ref: string, page: { limit: number; offset: number }): Promise<{ group: string; kind: string; items: MemberInfo[]; total: number }> {
  const defs = await loadGroupDefs(db);
  const { id } = await findGroup(db, ref);
  const g = defs.find((x) => x.id === id)!;
  let ids: string[];
  let total: number;
  if (g.kind === 'static') {
    // in SQL: only the page is read
    const base = db.selectFrom('devices').where('group_id', '=', g.id).where('status', '=', 'active');
    const [rows, n] = await Promise.all([
      base.select('id').orderBy('hostname').orderBy('id').limit(page.limit).offset(page.offset).execute(),
      base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow(),
    ]);
    ids = rows.map((r) => r.id);
    total = Number(n.n);
  } else {
    const all = (await computeMembership(db, { groups: defs })).membersOf(g.id);
    ids = all.slice(page.offset, page.offset + page.limit).map((d) => d.id);
    total = all.length;
  }
  const m = await computeMembership(db, { deviceIds: ids, groups: defs.filter((x) => x.kind === 'static') });
  const labels = new Map<string, string[]>();
  if (ids.length) {
    const rows = await db.selectFrom('device_labels').select(['device_id', 'label']).where('device_id', 'in', ids).orderBy('label').execute();
    for (const r of rows) labels.set(r.device_id, [...(labels.get(r.device_id) ?? []), r.label]);
  }
  const byId = new Map(m.devices.map((d) => [d.id, d]));
  const items = ids.map((id): MemberInfo => {
    const d = byId.get(id)!;
    const os = d.facts.os;
    return {
      id,
      hostname: d.hostname,
      os: os?.id ? [os.id, os.version, os.codename && `(${os.codename})`].filter(Boolean).join(' ') : null,
      labels: labels.get(id) ?? [],
      staticGroup: d.facts.staticGroup,
    };
  });
  return { group: g.name, kind: g.kind, items, total };
}
