/**
 * The server's periodic policy pass: approval rules add the approvals they stand for (a
 * cool-down ends, a patch passes its test ring, a CVE is flagged exploited), and each patch that
 * fixes an exploited CVE and is needed somewhere is announced once per revision
 * (`patch.exploited-needed`).
 */
import type { Kysely } from 'kysely';
import type { DB } from '../db/schema.js';
import { notifyPatchExploitedNeeded } from '../notifications/events.js';
import { applyApprovalRules, exploitedNeededPatches, type RuleApproval } from './rules.js';

export interface PolicyPass {
  approved: RuleApproval[];
  /** patches announced as exploited and needed in this pass */
  announced: string[];
}

export async function runPolicyPass(db: Kysely<DB>, now: number): Promise<PolicyPass> {
  const approved = await applyApprovalRules(db, now);
  const announced: string[] = [];
  for (const p of await exploitedNeededPatches(db)) {
    const row = await db.selectFrom('patches').select('revision').where('id', '=', p.patch).executeTakeFirst();
    if (!row) continue;
    const seen = await db.selectFrom('exploited_notified').select('patch_id').where('patch_id', '=', p.patch).where('revision', '=', row.revision).executeTakeFirst();
    if (seen) continue;
    const sent = await notifyPatchExploitedNeeded(db, now, p.patch);
    // remembered even without subscribers: a webhook added later is for news from then on
    await db.insertInto('exploited_notified').values({ patch_id: p.patch, revision: row.revision, notified_at: now }).onConflict((oc) => oc.doNothing()).execute();
    if (sent) announced.push(p.patch);
  }
  return { approved, announced };
}
