/**
 * What POST /api/v1/deployments would make, without writing: the same target resolution
 * (deployments/targets.ts), the same needed-states query, the same approval check (per patch, so
 * every blocked patch is named) and core's ring assignment.
 *
 * Percentage rings pick devices by a hash salted with the deployment's id, which exists only
 * once the deployment is created: for them the preview's sizes are exact, the members are a
 * sample (`exact: false`). Group rings are exact.
 */
import type { Kysely } from 'kysely';
import { assignRings, PatchwardenError, type Ring } from '@patchwarden/core';
import type { DB } from '../db/schema.js';
import { newId } from '../auth/tokens.js';
import { textList } from '../groups/membership.js';
import { requireApproved, resolveTarget } from '../deployments/targets.js';
import { undoLimitsOf, type CreateDeployment } from '../deployments/service.js';

type Db = Kysely<DB>;

export interface PreviewAnswer {
  /** devices the target resolves to (needing a patch or not) */
  targeted: number;
  rings: { name: string; /** false: a percentage ring, members chosen again at creation (sizes hold) */ exact: boolean; devices: { id: string; hostname: string }[]; jobs: number }[];
  /** devices with jobs that no ring selects */
  unassigned: { id: string; hostname: string }[];
  undoLimits: { patch: string; reasons: string[] }[];
  /** per patch, what the approvals block (any entry: creation answers 409 E_CONFLICT); message, hint and details as that error gives them */
  notApproved: { patch: string; message: string; hint: string | null; details: unknown }[];
}

const DEFAULT_RINGS: Ring[] = [{ name: 'all', percent: 100, bakeMinutes: 0, failureThreshold: 0, maxNotReporting: 0 }];

export async function previewDeployment(db: Db, body: CreateDeployment): Promise<PreviewAnswer> {
  const start = Date.parse(body.start);
  const deadline = body.deadline === undefined ? null : Date.parse(body.deadline);
  if (deadline !== null && deadline <= start) throw new PatchwardenError('E_VALIDATION', 'the deadline must come after the start');
  const rings = body.rings ?? DEFAULT_RINGS;
  if (new Set(rings.map((r) => r.name)).size !== rings.length) throw new PatchwardenError('E_VALIDATION', 'ring names must differ');
  const known = new Set((await db.selectFrom('patches').select('id').where('id', 'in', textList(db, body.patches)).execute()).map((r) => r.id));
  const missing = body.patches.filter((p) => !known.has(p));
  if (missing.length) throw new PatchwardenError('E_NOT_FOUND', `no patch ${missing.map((m) => `'${m}'`).join(', ')} in the catalog`, { hint: 'list patches with `patchwarden patch list`' });

  const target = await resolveTarget(db, body);
  const m = target.membership;
  const needed = target.devices.length
    ? await db
        .selectFrom('devices as d')
        .innerJoin('effective_states as s', 's.context_id', 'd.context_id')
        .innerJoin('patches as p', 'p.pk', 's.patch_pk')
        .select(['d.id as device_id', 'p.id as patch_id'])
        .where('s.state', '=', 'needed')
        .where('d.id', 'in', textList(db, target.devices.map((d) => d.id)))
        .where('p.id', 'in', textList(db, body.patches))
        .execute()
    : [];
  const byDevice = new Map<string, string[]>();
  for (const n of needed) byDevice.set(n.device_id, [...(byDevice.get(n.device_id) ?? []), n.patch_id]);
  const jobDevices = target.devices.filter((d) => byDevice.has(d.id));

  const notApproved: PreviewAnswer['notApproved'] = [];
  for (const patch of [...new Set(body.patches)]) {
    const pairs = jobDevices.filter((d) => byDevice.get(d.id)!.includes(patch)).map((device) => ({ device, patch }));
    try {
      await requireApproved(db, m, pairs);
    } catch (err) {
      if (!(err instanceof PatchwardenError) || err.code !== 'E_CONFLICT') throw err;
      notApproved.push({ patch, message: err.message, hint: err.hint ?? null, details: err.details ?? null });
    }
  }

  const assignment = assignRings(
    jobDevices.map((d) => ({ id: d.id, groups: m.groupsOf(d.id).map((g) => g.name) })),
    rings,
    newId(),
  );
  const hostname = new Map(jobDevices.map((d) => [d.id, d.hostname]));
  const device = (id: string) => ({ id, hostname: hostname.get(id)! });
  return {
    targeted: target.devices.length,
    rings: assignment.rings.map((r, i) => ({
      name: r.name,
      exact: 'groups' in rings[i]!,
      devices: r.devices.map(device),
      jobs: r.devices.reduce((n, id) => n + byDevice.get(id)!.length, 0),
    })),
    unassigned: assignment.unassigned.map(device),
    undoLimits: await undoLimitsOf(db, body.patches),
    notApproved,
  };
}
