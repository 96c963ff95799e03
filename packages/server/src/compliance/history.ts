/**
 * Daily compliance history: per device, the count of patches by state and severity, for
 * trends and SLA reports. A day's snapshot is rewritten until the day ends, so the last one
 * of a day stands for it. A device that no feed covers is recorded as one `not_assessed` row,
 * so it is never counted as patched.
 */
import { sql, type Kysely } from 'kysely';
import type { DB } from '../db/schema.js';

export function dayOf(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

export async function recordHistory(db: Kysely<DB>, day: string): Promise<{ rows: number }> {
  return db.transaction().execute(async (tx) => {
    await tx.deleteFrom('compliance_history').where('day', '=', day).execute();
    await sql`insert into compliance_history (day, device_id, state, severity, count)
      select ${day}, d.id, s.state, p.severity, count(*)
      from devices d
      join eval_contexts c on c.id = d.context_id and c.covered = 1
      join effective_states s on s.context_id = d.context_id
      join patches p on p.pk = s.patch_pk
      where d.status = 'active'
      group by d.id, s.state, p.severity`.execute(tx);
    await sql`insert into compliance_history (day, device_id, state, severity, count)
      select ${day}, d.id, 'not_assessed', 'unknown', 1
      from devices d join eval_contexts c on c.id = d.context_id
      where d.status = 'active' and c.covered = 0`.execute(tx);
    const n = await tx.selectFrom('compliance_history').select((eb) => eb.fn.countAll<number>().as('n')).where('day', '=', day).executeTakeFirstOrThrow();
    return { rows: Number(n.n) };
  });
}

export interface HistoryDay {
  day: string;
  /** state → severity → patch count, summed over devices */
  patches: Record<string, Record<string, number>>;
  devices: { needing: number; compliant: number; notAssessed: number };
}

export async function readHistory(db: Kysely<DB>, fromDay: string, deviceId?: string): Promise<HistoryDay[]> {
  let q = db.selectFrom('compliance_history').select(['day', 'device_id', 'state', 'severity', 'count']).where('day', '>=', fromDay);
  if (deviceId) q = q.where('device_id', '=', deviceId);
  const rows = await q.orderBy('day').execute();
  const days = new Map<string, { patches: Record<string, Record<string, number>>; needing: Set<string>; all: Set<string>; na: Set<string> }>();
  for (const r of rows) {
    let d = days.get(r.day);
    if (!d) days.set(r.day, (d = { patches: {}, needing: new Set(), all: new Set(), na: new Set() }));
    d.all.add(r.device_id);
    if (r.state === 'not_assessed') d.na.add(r.device_id);
    else {
      const bySev = (d.patches[r.state] ??= {});
      bySev[r.severity] = (bySev[r.severity] ?? 0) + r.count;
      if (r.state === 'needed') d.needing.add(r.device_id);
    }
  }
  return [...days].map(([day, d]) => ({
    day,
    patches: d.patches,
    devices: { needing: d.needing.size, compliant: d.all.size - d.needing.size - d.na.size, notAssessed: d.na.size },
  }));
}
