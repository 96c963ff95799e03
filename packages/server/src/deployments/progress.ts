/**
 * Where a deployment stands: its rings' verdicts (core `ringVerdict`) from job counts per ring and
 * state, counted in SQL rather than read job by job. Agents poll often and every poll asks which
 * ring is current, so that answer is cached per deployment for a short while; a report of the
 * deployment (or a halt, resume, undo) forgets it at once, and a cached answer is never used
 * for a decision that halts.
 */
import type { Kysely } from 'kysely';
import { deploymentProgress, isFinalJobState, PatchwardenError, ringVerdict, type DeploymentProgress, type Ring, type RingVerdict } from '@patchwarden/core';
import type { DB, DeploymentsTable } from '../db/schema.js';

type Db = Kysely<DB>;
const MINUTE = 60_000;

export interface Evaluation {
  row: DeploymentsTable;
  rings: Ring[];
  verdicts: RingVerdict[];
  progress: DeploymentProgress;
}

export async function evaluate(db: Db, now: number, id: string): Promise<Evaluation> {
  const row = await db.selectFrom('deployments').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw new PatchwardenError('E_NOT_FOUND', `no deployment '${id}'`, { hint: 'list deployments with `patchwarden deploy list`' });
  const rings = JSON.parse(row.rings_json) as Ring[];
  const counts = await db
    .selectFrom('jobs')
    .select(['ring', 'state'])
    .select((eb) => [eb.fn.countAll<number>().as('n'), eb.fn.max('finished_at').as('last')])
    .where('deployment_id', '=', id)
    .where('kind', '=', 'install')
    .groupBy(['ring', 'state'])
    .execute();
  const deadlinePassed = row.deadline_at !== null && now >= row.deadline_at;
  const verdicts = rings.map((ring, i) => {
    const mine = counts.filter((c) => c.ring === i);
    const total = mine.reduce((a, c) => a + Number(c.n), 0);
    const allDone = total > 0 && mine.every((c) => isFinalJobState(c.state));
    const lastEnd = allDone ? Math.max(...mine.map((c) => Number(c.last ?? 0))) : undefined;
    const bakeStartedAt = lastEnd ?? (deadlinePassed ? row.deadline_at! : undefined);
    // counted in SQL: one entry per state with its count, whatever the ring's size
    return ringVerdict({
      jobs: mine.map((c) => ({ state: c.state, n: Number(c.n) })),
      total,
      failureThreshold: ring.failureThreshold,
      maxNotReporting: ring.maxNotReporting,
      ...(bakeStartedAt === undefined ? {} : { bakeStartedAt }),
      bakeMs: ring.bakeMinutes * MINUTE,
      deadlinePassed,
      now,
    });
  });
  return { row, rings, verdicts, progress: deploymentProgress(verdicts) };
}

/** How long a poll may reuse another poll's answer to "which ring is current". */
export const PROGRESS_TTL_MS = 10_000;

const cache = new WeakMap<Db, Map<string, { at: number; ring: number }>>();

/** The index of the ring whose jobs may go out now, cached per deployment for PROGRESS_TTL_MS. */
export async function currentRing(db: Db, now: number, id: string): Promise<number> {
  let mine = cache.get(db);
  if (!mine) cache.set(db, (mine = new Map()));
  const hit = mine.get(id);
  // the injected clock may move backwards in tests: only an answer from [now - TTL, now] is reused
  if (hit && hit.at <= now && now - hit.at < PROGRESS_TTL_MS) return hit.ring;
  const ring = (await evaluate(db, now, id)).progress.ring;
  if (mine.size > 10_000) mine.clear();
  mine.set(id, { at: now, ring });
  return ring;
}

/** A report, halt, resume or undo of the deployment: the next poll evaluates it anew. */
export function forgetProgress(db: Db, id: string): void {
  cache.get(db)?.delete(id);
}
