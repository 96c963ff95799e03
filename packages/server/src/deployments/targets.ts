/**
 * A deployment's target: groups (static or dynamic), labels and devices, as a union, less the
 * excluded groups, labels and devices; and the approval check per device: a patch may go to a
 * device when at least one of its groups approved it and none declined it (a decline wins).
 */
import type { Kysely } from 'kysely';
import { PatchwardenError } from '@patchwarden/core';
import type { DB } from '../db/schema.js';
import { computeMembership, textList, type FleetDevice, type GroupDef, type Membership } from '../groups/membership.js';

type Db = Kysely<DB>;

export interface TargetSpec {
  groups?: string[] | undefined;
  labels?: string[] | undefined;
  devices?: string[] | undefined;
  exclude?: { groups?: string[] | undefined; labels?: string[] | undefined; devices?: string[] | undefined } | undefined;
}

export interface ResolvedTarget {
  membership: Membership;
  devices: FleetDevice[];
  /** what is stored with the deployment: group names, labels, device ids */
  stored: { groups: string[]; labels: string[]; devices: string[]; exclude: { groups: string[]; labels: string[]; devices: string[] } };
}

const uniq = (xs: readonly string[] | undefined) => [...new Set(xs ?? [])];

export async function resolveTarget(db: Db, spec: TargetSpec): Promise<ResolvedTarget> {
  const groups = uniq(spec.groups);
  const labels = uniq(spec.labels);
  const devices = uniq(spec.devices);
  const ex = { groups: uniq(spec.exclude?.groups), labels: uniq(spec.exclude?.labels), devices: uniq(spec.exclude?.devices) };
  if (groups.length + labels.length + devices.length === 0) {
    throw new PatchwardenError('E_VALIDATION', 'a deployment targets at least one group, label or device', { hint: 'give groups, labels or devices (any combination)' });
  }
  const m = await computeMembership(db);
  const missing: string[] = [];

  const findGroups = (refs: string[]): GroupDef[] =>
    refs.flatMap((ref) => {
      const g = m.groups.find((x) => x.name === ref) ?? m.groups.find((x) => x.id === ref);
      if (!g) missing.push(`no group '${ref}'`);
      return g ? [g] : [];
    });
  const allLabels = uniq([...labels, ...ex.labels]);
  const knownLabels = allLabels.length
    ? new Set(
        (
          await db
            .selectFrom('device_labels as l')
            .innerJoin('devices as d', 'd.id', 'l.device_id')
            .select('l.label')
            .distinct()
            .where('d.status', '=', 'active')
            .where('l.label', 'in', textList(db, allLabels))
            .execute()
        ).map((r) => r.label),
      )
    : new Set<string>();
  const checkLabels = (xs: string[]) => {
    for (const l of xs) if (!knownLabels.has(l)) missing.push(`no active device with label '${l}'`);
  };
  const byRef = new Map<string, FleetDevice>();
  for (const d of m.devices) byRef.set(d.hostname, d);
  for (const d of m.devices) byRef.set(d.id, d);
  const findDevices = (refs: string[]): FleetDevice[] => {
    const bad = refs.filter((r) => !byRef.has(r));
    if (bad.length) missing.push(`no active device ${bad.map((b) => `'${b}'`).join(', ')}`);
    return refs.flatMap((r) => (byRef.has(r) ? [byRef.get(r)!] : []));
  };

  const targetGroups = findGroups(groups);
  checkLabels(labels);
  const targetDevices = findDevices(devices);
  const exGroups = findGroups(ex.groups);
  checkLabels(ex.labels);
  const exDevices = findDevices(ex.devices);
  if (missing.length) {
    throw new PatchwardenError('E_NOT_FOUND', missing.join('; '), { hint: 'list groups with `patchwarden groups list` and devices with `patchwarden devices list`', details: { notFound: missing } });
  }

  const chosen = new Map<string, FleetDevice>();
  for (const g of targetGroups) for (const d of m.membersOf(g.id)) chosen.set(d.id, d);
  if (labels.length) for (const d of m.devices) if (d.facts.labels.some((l) => labels.includes(l))) chosen.set(d.id, d);
  for (const d of targetDevices) chosen.set(d.id, d);
  for (const g of exGroups) for (const d of m.membersOf(g.id)) chosen.delete(d.id);
  if (ex.labels.length) for (const d of m.devices) if (d.facts.labels.some((l) => ex.labels.includes(l))) chosen.delete(d.id);
  for (const d of exDevices) chosen.delete(d.id);

  return {
    membership: m,
    devices: [...chosen.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)),
    stored: {
      groups: targetGroups.map((g) => g.name),
      labels,
      devices: targetDevices.map((d) => d.id).sort(),
      exclude: { groups: exGroups.map((g) => g.name), labels: ex.labels, devices: exDevices.map((d) => d.id).sort() },
    },
  };
}

const MAX_NAMED = 5;
function named(devices: string[]): string {
  const shown = devices.slice(0, MAX_NAMED).join(', ');
  return `${devices.length} device${devices.length === 1 ? '' : 's'}: ${shown}${devices.length > MAX_NAMED ? ', …' : ''}`;
}

/**
 * Refuses unless every (device, patch) pair is cleared: one of the device's groups approved the
 * patch and none declined it. The message groups the devices by patch and groups.
 */
export async function requireApproved(db: Db, m: Membership, pairs: { device: FleetDevice; patch: string }[]): Promise<void> {
  if (!pairs.length) return;
  const patches = uniq(pairs.map((p) => p.patch));
  const rows = await db.selectFrom('approvals').select(['patch_id', 'group_id', 'decision']).where('patch_id', 'in', textList(db, patches)).execute();
  const decision = new Map(rows.map((r) => [`${r.patch_id}\0${r.group_id}`, r.decision]));
  const noGroup: string[] = [];
  const notApproved = new Map<string, string[]>();
  const declined = new Map<string, string[]>();
  for (const { device, patch } of pairs) {
    const groups = m.groupsOf(device.id);
    if (!groups.length) {
      if (!noGroup.includes(device.hostname)) noGroup.push(device.hostname);
      continue;
    }
    const decl = groups.filter((g) => decision.get(`${patch}\0${g.id}`) === 'decline');
    if (decl.length) {
      const key = `${patch} declined for group${decl.length === 1 ? '' : 's'} ${decl.map((g) => g.name).join(', ')}`;
      declined.set(key, [...(declined.get(key) ?? []), device.hostname]);
    } else if (!groups.some((g) => decision.get(`${patch}\0${g.id}`) === 'approve')) {
      const key = `${patch} for group${groups.length === 1 ? '' : 's'} ${groups.map((g) => g.name).join(', ')}`;
      notApproved.set(key, [...(notApproved.get(key) ?? []), device.hostname]);
    }
  }
  if (noGroup.length) {
    throw new PatchwardenError('E_CONFLICT', `${noGroup.length === 1 ? `device '${noGroup[0]}' is` : `devices ${noGroup.slice(0, MAX_NAMED).map((h) => `'${h}'`).join(', ')}${noGroup.length > MAX_NAMED ? ', …' : ''} are`} in no group, so no patch is approved for ${noGroup.length === 1 ? 'it' : 'them'}`, {
      hint: 'put devices in a group (static, or a dynamic group whose query matches them) and approve the patches there',
      details: { noGroup },
    });
  }
  if (!notApproved.size && !declined.size) return;
  const parts: string[] = [];
  if (notApproved.size) parts.push(`not approved: ${[...notApproved].map(([k, ds]) => `${k} (${named(ds)})`).join('; ')}`);
  if (declined.size) parts.push(`declined (a decline by any of a device's groups wins over approvals by its other groups): ${[...declined].map(([k, ds]) => `${k} (${named(ds)})`).join('; ')}`);
  throw new PatchwardenError('E_CONFLICT', parts.join('; '), {
    hint: declined.size
      ? 'exclude the devices of the declining group (--exclude-group), or change that decision with `patchwarden approve PATCH --group GROUP`'
      : 'approve with `patchwarden approve PATCH --group GROUP`',
    details: { notApproved: [...notApproved.keys()], declined: [...declined.keys()] },
  });
}
