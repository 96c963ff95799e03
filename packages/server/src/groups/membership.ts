/**
 * Who is in which group. Static groups: `devices.group_id`. Dynamic groups: the devices their
 * query (core `targeting.ts`) matches, evaluated in memory over facts loaded in a few set-based
 * queries (devices, labels, and only the packages some query names, per shared package set),
 * never one query per device. Only active devices are members.
 */
import { PostgresAdapter, sql, type Kysely } from 'kysely';
import { matchesDeviceQuery, parseDeviceQuery, deviceQueryNeeds, SystemFacts, type DeviceFacts, type DeviceQuery } from '@patchwarden/core';
import type { DB } from '../db/schema.js';
import type { Dialect } from '../db/database.js';

type Db = Kysely<DB>;

export function dialectOf(db: Db): Dialect {
  return db.getExecutor().adapter instanceof PostgresAdapter ? 'postgres' : 'sqlite';
}

/**
 * A whole array as one bound parameter (as inventory/store.ts does): one short statement however
 * long the list, instead of thousands of placeholders.
 */
export function textList(db: Db, values: readonly string[]) {
  return dialectOf(db) === 'postgres'
    ? sql<string>`(select unnest(${values as string[]}::text[]))`
    : sql<string>`(select value from json_each(${JSON.stringify(values)}))`;
}

export function intList(db: Db, values: readonly number[]) {
  return dialectOf(db) === 'postgres'
    ? sql<number>`(select unnest(${values as number[]}::int[]))`
    : sql<number>`(select value from json_each(${JSON.stringify(values)}))`;
}

export interface GroupDef {
  id: string;
  name: string;
  description: string;
  createdAt: number;
  kind: 'static' | 'dynamic';
  query: DeviceQuery | null;
  testRing: boolean;
  requireTestPass: boolean;
}

export async function loadGroupDefs(db: Db): Promise<GroupDef[]> {
  const rows = await db.selectFrom('groups').selectAll().orderBy('name').execute();
  return rows.map((r) => {
    // stored only after parseDeviceQuery; parsed again so a bad row matches nothing rather than everything
    const parsed = r.query_json === null ? null : parseDeviceQuery(JSON.parse(r.query_json));
    return {
      id: r.id,
      name: r.name,
      description: r.description,
      createdAt: r.created_at,
      kind: r.kind,
      query: parsed?.ok ? parsed.query : null,
      testRing: Boolean(r.test_ring),
      requireTestPass: Boolean(r.require_test_pass),
    };
  });
}

export interface FleetDevice {
  id: string;
  hostname: string;
  groupId: string | null;
  facts: DeviceFacts;
}

export interface Membership {
  groups: GroupDef[];
  devices: FleetDevice[];
  /** the groups of a device (static first, then dynamic by name) */
  groupsOf(deviceId: string): GroupDef[];
  /** the devices of a group, by hostname */
  membersOf(groupId: string): FleetDevice[];
}

function osFacts(json: string | null): Pick<DeviceFacts, 'os' | 'arch'> {
  if (json === null) return {};
  const r = SystemFacts.safeParse(JSON.parse(json));
  if (!r.success) return {};
  const os = r.data.os;
  return {
    os: { id: os.distribution, version: os.version, codename: os.versionCodename },
    arch: [os.machine, ...(os.packageArch ? [os.packageArch] : [])],
  };
}

/**
 * Membership of every group, for the given devices (default: every active device). The facts a
 * dynamic query reads are loaded once for all of them.
 */
export async function computeMembership(db: Db, opts: { deviceIds?: readonly string[]; groups?: GroupDef[] } = {}): Promise<Membership> {
  const groups = opts.groups ?? (await loadGroupDefs(db));
  const dynamic = groups.filter((g) => g.kind === 'dynamic' && g.query);
  let q = db.selectFrom('devices').select(['id', 'hostname', 'group_id', 'system_json', 'package_set_id']).where('status', '=', 'active');
  if (opts.deviceIds) {
    if (opts.deviceIds.length === 0) return membershipOf(groups, []);
    q = q.where('id', 'in', textList(db, opts.deviceIds));
  }
  const rows = await q.orderBy('hostname').orderBy('id').execute();
  const needs = { packages: new Set<string>(), groups: new Set<string>() };
  for (const g of dynamic) deviceQueryNeeds(g.query!, needs);

  const labels = new Map<string, string[]>();
  const packagesBySet = new Map<number, Map<string, string[]>>();
  if (dynamic.length && rows.length) {
    const labelRows = opts.deviceIds
      ? await db.selectFrom('device_labels').select(['device_id', 'label']).where('device_id', 'in', textList(db, rows.map((r) => r.id))).execute()
      : await db.selectFrom('device_labels').select(['device_id', 'label']).execute();
    for (const l of labelRows) labels.set(l.device_id, [...(labels.get(l.device_id) ?? []), l.label]);
    const sets = [...new Set(rows.map((r) => r.package_set_id).filter((s): s is number => s !== null))];
    if (needs.packages.size && sets.length) {
      const pkgRows = await db
        .selectFrom('package_set_members as m')
        .innerJoin('packages as p', 'p.id', 'm.package_id')
        .select(['m.set_id', 'p.name', 'p.version'])
        .where('p.name', 'in', textList(db, [...needs.packages]))
        .where('p.state', '<>', 'config-files')
        .where('m.set_id', 'in', intList(db, sets))
        .execute();
      for (const p of pkgRows) {
        let m = packagesBySet.get(p.set_id);
        if (!m) packagesBySet.set(p.set_id, (m = new Map()));
        m.set(p.name, [...(m.get(p.name) ?? []), p.version]);
      }
    }
  }
  const nameOf = new Map(groups.map((g) => [g.id, g.name]));
  const empty = new Map<string, string[]>();
  const devices = rows.map(
    (r): FleetDevice => ({
      id: r.id,
      hostname: r.hostname,
      groupId: r.group_id,
      facts: {
        hostname: r.hostname,
        ...osFacts(r.system_json),
        labels: labels.get(r.id) ?? [],
        // a device without an inventory has no package facts; one with an inventory lacks the others
        packages: r.package_set_id === null ? undefined : (packagesBySet.get(r.package_set_id) ?? empty),
        staticGroup: r.group_id === null ? null : (nameOf.get(r.group_id) ?? null),
      },
    }),
  );
  return membershipOf(groups, devices);
}

function membershipOf(groups: GroupDef[], devices: FleetDevice[]): Membership {
  const byDevice = new Map<string, GroupDef[]>();
  const byGroup = new Map<string, FleetDevice[]>(groups.map((g) => [g.id, []]));
  const staticById = new Map(groups.filter((g) => g.kind === 'static').map((g) => [g.id, g]));
  const dynamic = groups.filter((g) => g.kind === 'dynamic' && g.query);
  for (const d of devices) {
    const mine: GroupDef[] = [];
    const s = d.groupId === null ? undefined : staticById.get(d.groupId);
    if (s) mine.push(s);
    for (const g of dynamic) if (matchesDeviceQuery(g.query!, d.facts)) mine.push(g);
    byDevice.set(d.id, mine);
    for (const g of mine) byGroup.get(g.id)!.push(d);
  }
  return {
    groups,
    devices,
    groupsOf: (id) => byDevice.get(id) ?? [],
    membersOf: (id) => byGroup.get(id) ?? [],
  };
}
