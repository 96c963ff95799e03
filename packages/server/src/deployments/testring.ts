/**
 * The test ring: a patch "passed" it when a deployment that included it reached a test-ring
 * group (recorded at creation in the target's `testRings`), every install job of the patch in
 * that deployment ended `done` (at least one, none failed, rolled back or needing attention), and
 * the bake of every ring those jobs are in ended healthy. An undone deployment does not count.
 */
import type { Kysely } from 'kysely';
import { PatchwardenError } from '@patchwarden/core';
import type { DB } from '../db/schema.js';
import { textList } from '../groups/membership.js';
import { evaluate } from './progress.js';

type Db = Kysely<DB>;

export interface StoredTarget {
  groups: string[];
  labels: string[];
  devices: string[];
  exclude: { groups: string[]; labels: string[]; devices: string[] };
  /** test-ring groups that had at least one device with a job, when it was created */
  testRings: string[];
}

export function parseTarget(json: string): StoredTarget {
  const t = JSON.parse(json) as Partial<StoredTarget>;
  return {
    groups: t.groups ?? [],
    labels: t.labels ?? [],
    devices: t.devices ?? [],
    exclude: { groups: t.exclude?.groups ?? [], labels: t.exclude?.labels ?? [], devices: t.exclude?.devices ?? [] },
    testRings: t.testRings ?? [],
  };
}

/** Of the given patches (default: all), those that passed the test ring now. */
export async function passedTestRing(db: Db, now: number, patchIds?: readonly string[]): Promise<Set<string>> {
  const passed = new Set<string>();
  if (patchIds && patchIds.length === 0) return passed;
  let q = db.selectFrom('deployments').select(['id', 'target_json']).where('status', '<>', 'undone');
  if (patchIds) {
    q = q.where('id', 'in', db.selectFrom('jobs').select('deployment_id').where('patch_id', 'in', textList(db, patchIds)).where('kind', '=', 'install'));
  }
  const deployments = (await q.execute()).filter((d) => parseTarget(d.target_json).testRings.length > 0);
  for (const d of deployments) {
    const e = await evaluate(db, now, d.id);
    let jq = db.selectFrom('jobs').select(['patch_id', 'ring', 'state']).select((eb) => eb.fn.countAll<number>().as('n')).where('deployment_id', '=', d.id).where('kind', '=', 'install');
    if (patchIds) jq = jq.where('patch_id', 'in', textList(db, patchIds));
    const rows = await jq.groupBy(['patch_id', 'ring', 'state']).execute();
    const bad = new Set<string>();
    const seen = new Set<string>();
    for (const r of rows) {
      seen.add(r.patch_id);
      if (r.state !== 'done' || e.verdicts[r.ring]?.status !== 'healthy') bad.add(r.patch_id);
    }
    for (const p of seen) if (!bad.has(p)) passed.add(p);
  }
  return passed;
}

/** The refusal for a patch that has not passed: names the test-ring groups to deploy it to. */
export async function notPassedError(db: Db, patch: string, why: string): Promise<PatchwardenError> {
  const rings = await db.selectFrom('groups').select('name').where('test_ring', '=', 1).orderBy('name').execute();
  const hint = rings.length
    ? `deploy it to the test ring first (${rings.map((r) => `\`patchwarden deploy create ${patch} --group ${r.name}\``).join(' or ')}) and wait until every job is done and the ring's bake time ended`
    : 'no group is a test ring yet: mark one with `patchwarden groups set NAME --test-ring`, then deploy the patch to it';
  const where = rings.length ? `; use test ring ${rings.map((r) => `'${r.name}'`).join(' or ')}` : '; no group is marked as a test ring';
  return new PatchwardenError('E_CONFLICT', `${why}: patch ${patch} has not passed the test ring${where}`, { hint });
}
