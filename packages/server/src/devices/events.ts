/**
 * Device events: things that happened to a device outside a job's own history. Today: a patch
 * that a job installed and that is needed again (removed or downgraded by hand), noticed at the
 * check-in that reports it; the agent's monitoring makes that check-in come within seconds.
 */
import { sql, type Kysely } from 'kysely';
import type { DB } from '../db/schema.js';
import { resolveDeviceId } from './store.js';

const iso = (t: number) => new Date(t).toISOString();

/** Records one `patch-removed` event per installing job whose patch is needed again. Returns how many. */
export async function detectRemovedPatches(db: Kysely<DB>, now: number, deviceId: string): Promise<number> {
  const rows = await db
    .selectFrom('jobs as j')
    .innerJoin('devices as d', 'd.id', 'j.device_id')
    .innerJoin('patches as p', 'p.id', 'j.patch_id')
    .innerJoin('effective_states as s', (join) => join.onRef('s.context_id', '=', 'd.context_id').onRef('s.patch_pk', '=', 'p.pk'))
    .select(['j.id', 'j.patch_id', 'j.finished_at'])
    .where('j.device_id', '=', deviceId)
    .where('j.kind', '=', 'install')
    .where('j.state', '=', 'done')
    .where('s.state', '=', 'needed')
    .where(({ not, exists, selectFrom }) =>
      not(exists(selectFrom('jobs as u').select(sql<number>`1`.as('x')).whereRef('u.undoes', '=', 'j.id').where('u.state', '=', 'done'))),
    )
    .where(({ not, exists, selectFrom }) =>
      not(exists(selectFrom('device_events as e').select(sql<number>`1`.as('x')).whereRef('e.job_id', '=', 'j.id').where('e.kind', '=', 'patch-removed'))),
    )
    .execute();
  if (!rows.length) return 0;
  await db
    .insertInto('device_events')
    .values(
      rows.map((r) => ({
        device_id: deviceId,
        at: now,
        kind: 'patch-removed',
        patch_id: r.patch_id,
        job_id: r.id,
        message: `${r.patch_id} is needed again: job ${r.id} installed it${r.finished_at ? ` on ${iso(r.finished_at)}` : ''}, and it was removed or downgraded outside Patchwarden since`,
      })),
    )
    .execute();
  return rows.length;
}

export async function recordDeviceEvent(db: Kysely<DB>, e: { deviceId: string; at: number; kind: string; message: string; patchId?: string; jobId?: string }): Promise<void> {
  await db.insertInto('device_events').values({ device_id: e.deviceId, at: e.at, kind: e.kind, message: e.message, patch_id: e.patchId ?? null, job_id: e.jobId ?? null }).execute();
}

export async function listDeviceEvents(db: Kysely<DB>, ref: string, q: { limit: number; offset: number }) {
  const id = await resolveDeviceId(db, ref);
  const base = db.selectFrom('device_events').where('device_id', '=', id);
  const [rows, n] = await Promise.all([
    base.select(['at', 'kind', 'patch_id', 'job_id', 'message']).orderBy('at', 'desc').orderBy('id', 'desc').limit(q.limit).offset(q.offset).execute(),
    base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow(),
  ]);
  return {
    items: rows.map((r) => ({ at: iso(r.at), kind: r.kind, patch: r.patch_id, job: r.job_id, message: r.message })),
    total: Number(n.n),
  };
}
