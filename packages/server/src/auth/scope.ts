/**
 * An operator limited to groups acts only on devices in them: deployments (all their target
 * devices), undo, halt and resume of deployments whose devices are all theirs, scans, and
 * approvals for their groups. Fleet-wide switches (flagging exploited CVEs, applying every
 * approval rule) need an operator without that limit.
 */
import type { Kysely } from 'kysely';
import { PatchwardenError } from '@patchwarden/core';
import type { DB } from '../db/schema.js';
import { computeMembership } from '../groups/membership.js';
import { findGroup } from '../groups/store.js';
import type { AdminIdentity } from './store.js';

type Db = Kysely<DB>;

const limited = (who: AdminIdentity | undefined): who is AdminIdentity & { groups: string[] } => !!who && who.groups !== null;

export async function assertDevicesInScope(db: Db, who: AdminIdentity | undefined, deviceIds: readonly string[]): Promise<void> {
  if (!limited(who) || deviceIds.length === 0) return;
  const allowed = new Set(who.groups);
  const m = await computeMembership(db, { deviceIds: [...new Set(deviceIds)] });
  const outside = m.devices.filter((d) => !m.groupsOf(d.id).some((g) => allowed.has(g.id)));
  if (outside.length) {
    const names = outside.slice(0, 5).map((d) => d.hostname).join(', ');
    throw new PatchwardenError('E_FORBIDDEN', `${outside.length} device(s) are outside the groups '${who.name}' may act on: ${names}${outside.length > 5 ? ', …' : ''}`, {
      hint: 'narrow the target to your groups, or ask an administrator',
      details: { outside: outside.length },
    });
  }
}

export async function assertGroupInScope(db: Db, who: AdminIdentity | undefined, groupRef: string): Promise<void> {
  if (!limited(who)) return;
  const g = await findGroup(db, groupRef);
  if (!who.groups.includes(g.id)) throw new PatchwardenError('E_FORBIDDEN', `the group '${g.name}' is outside the groups '${who.name}' may act on`, { hint: 'ask an administrator' });
}

export function assertUnlimited(who: AdminIdentity | undefined, what: string): void {
  if (limited(who)) throw new PatchwardenError('E_FORBIDDEN', `${what} affects the whole fleet; '${who.name}' may act on some groups only`, { hint: 'ask an administrator or an operator without group limits' });
}

/** The devices a deployment's jobs run on. */
export async function deploymentDevices(db: Db, deploymentId: string): Promise<string[]> {
  const rows = await db.selectFrom('jobs').select('device_id').distinct().where('deployment_id', '=', deploymentId).execute();
  return rows.map((r) => r.device_id);
}

export async function approvalRuleGroup(db: Db, id: string): Promise<string | null> {
  const r = await db.selectFrom('approval_rules').select('group_id').where('id', '=', id).executeTakeFirst();
  return r?.group_id ?? null;
}
