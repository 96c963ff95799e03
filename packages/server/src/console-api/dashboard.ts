/**
 * The console's dashboard in a handful of set-based queries: device buckets, most needed patches,
 * devices most behind, open deployments, the 30-day trend and time-to-patch by severity. States
 * are aggregated per evaluation context first (identical devices share one), then weighted by
 * the number of active devices in each context.
 */
import { sql, type Kysely } from 'kysely';
import { SEVERITIES } from '@patchwarden/core';
import type { DB } from '../db/schema.js';
import type { Dialect } from '../db/database.js';
import { dayOf } from '../compliance/history.js';
import { getDeployment } from '../deployments/service.js';

type Db = Kysely<DB>;

export interface DashboardAnswer {
  devices: {
    /** active devices */
    total: number;
    /** assessed, with no needed patch */
    fullyPatched: number;
    /** assessed devices by their most severe needed patch (`unknown` also holds severity `none`) */
    needing: { critical: number; high: number; medium: number; low: number; unknown: number };
    /** no feed covers the device's platform: never counted as patched */
    notAssessed: number;
    /** no inventory evaluated yet (enrolled, first check-in pending) */
    unknownState: number;
  };
  /** the 10 patches needed on most devices */
  topPatches: { patch: { id: string; title: string; severity: string }; devices: number }[];
  /** the 10 devices with most needed patches (ties: most critical, then hostname) */
  devicesBehind: { device: { id: string; hostname: string }; needed: number; critical: number }[];
  /** deployments neither complete nor undone, newest first (of the 50 newest not undone) */
  deployments: { id: string; status: string; patches: string[]; createdAt: string; jobs: { total: number; finished: number; succeeded: number; failed: number } }[];
  /** one entry per day with a snapshot in the last 30 days, oldest first */
  trend: { day: string; devices: number; needing: number; bySeverity: { critical: number; high: number; medium: number; low: number } }[];
  /** time to patch per severity (nearest-rank median and 90th percentile, hours, one decimal) */
  sla: { severity: string; patched: number; medianHours: number | null; p90Hours: number | null }[];
}

const RANK = sql`case p.severity when 'critical' then 0 when 'high' then 1 when 'medium' then 2 when 'low' then 3 else 4 end`;
const BUCKETS = ['critical', 'high', 'medium', 'low', 'unknown'] as const;
const OPEN_DEPLOYMENTS_SCANNED = 50;

/** Active devices per context, and per context its needed patches: count, critical count, worst rank. */
const perContext = sql`
  dev_ctx as (select context_id, count(*) as n from devices where status = 'active' and context_id is not null group by context_id),
  need_ctx as (
    select s.context_id, count(*) as needed, sum(case when p.severity = 'critical' then 1 else 0 end) as critical, min(${RANK}) as worst
      from effective_states s
      join dev_ctx dc on dc.context_id = s.context_id
      join patches p on p.pk = s.patch_pk
     where s.state = 'needed'
     group by s.context_id)`;

export async function dashboard(db: Db, dialect: Dialect, now: number): Promise<DashboardAnswer> {
  const buckets = await sql<{ bucket: string; n: number | string }>`
    with ${perContext}
    select case when d.context_id is null or c.id is null then 'unknownState'
                when c.covered = 0 then 'notAssessed'
                when nc.worst is null then 'fullyPatched'
                else ${sql.lit('r')} || cast(nc.worst as text) end as bucket,
           count(*) as n
      from devices d
      left join eval_contexts c on c.id = d.context_id
      left join need_ctx nc on nc.context_id = d.context_id
     where d.status = 'active'
     group by 1`.execute(db);
  const devices: DashboardAnswer['devices'] = { total: 0, fullyPatched: 0, needing: { critical: 0, high: 0, medium: 0, low: 0, unknown: 0 }, notAssessed: 0, unknownState: 0 };
  for (const r of buckets.rows) {
    const n = Number(r.n);
    devices.total += n;
    if (r.bucket === 'unknownState' || r.bucket === 'notAssessed' || r.bucket === 'fullyPatched') devices[r.bucket] += n;
    else devices.needing[BUCKETS[Math.min(4, Number(r.bucket.slice(1)))]!] += n;
  }

  const top = await sql<{ id: string; title: string; severity: string; devices: number | string }>`
    with dev_ctx as (select context_id, count(*) as n from devices where status = 'active' and context_id is not null group by context_id)
    select p.id, p.title, p.severity, sum(dc.n) as devices
      from effective_states s
      join dev_ctx dc on dc.context_id = s.context_id
      join patches p on p.pk = s.patch_pk
     where s.state = 'needed'
     group by p.pk, p.id, p.title, p.severity
     order by sum(dc.n) desc, p.id
     limit 10`.execute(db);

  const behind = await sql<{ id: string; hostname: string; needed: number | string; critical: number | string }>`
    with ${perContext}
    select d.id, d.hostname, nc.needed, nc.critical
      from devices d
      join need_ctx nc on nc.context_id = d.context_id
     where d.status = 'active'
     order by nc.needed desc, nc.critical desc, d.hostname, d.id
     limit 10`.execute(db);

  // deployments: the row says undone or not; complete is a verdict over its rings (progress.ts)
  const candidates = await db
    .selectFrom('deployments')
    .select('id')
    .where('status', '<>', 'undone')
    .orderBy('created_at', 'desc')
    .orderBy('id')
    .limit(OPEN_DEPLOYMENTS_SCANNED)
    .execute();
  const jobCounts = candidates.length
    ? await db
        .selectFrom('jobs')
        .select(['deployment_id'])
        .select((eb) => [
          eb.fn.countAll<number>().as('total'),
          eb.fn.count<number>('finished_at').as('finished'),
          eb.fn.sum<number>(sql`case when state in ('done', 'succeeded') then 1 else 0 end`).as('succeeded'),
          eb.fn.sum<number>(sql`case when state in ('failed', 'rolled-back', 'needs-attention') then 1 else 0 end`).as('failed'),
        ])
        .where('kind', '=', 'install')
        .where(
          'deployment_id',
          'in',
          candidates.map((c) => c.id),
        )
        .groupBy('deployment_id')
        .execute()
    : [];
  const countsOf = new Map(jobCounts.map((j) => [j.deployment_id, { total: Number(j.total), finished: Number(j.finished), succeeded: Number(j.succeeded ?? 0), failed: Number(j.failed ?? 0) }]));
  const deployments: DashboardAnswer['deployments'] = [];
  for (const c of candidates) {
    const d = await getDeployment(db, now, c.id);
    if (d.status === 'complete' || d.status === 'undone') continue;
    deployments.push({ id: d.id, status: d.status, patches: d.patches, createdAt: d.createdAt, jobs: countsOf.get(d.id) ?? { total: 0, finished: 0, succeeded: 0, failed: 0 } });
  }

  const trend = await trendOf(db, now);

  // time to patch: from the later of the patch's availability (release date, else import) and the deployment's creation
  const released = dialect === 'postgres' ? sql`(extract(epoch from cast(p.release_date as date)) * 1000)` : sql`((julianday(p.release_date) - 2440587.5) * 86400000)`;
  const later = dialect === 'postgres' ? sql`greatest` : sql`max`;
  const slaRows = await sql<{ severity: string; patched: number | string; median: number | string | null; p90: number | string | null }>`
    with t as (
      select p.severity as severity,
             (j.finished_at - ${later}(coalesce(${released}, p.created_at), dep.created_at)) / 3600000.0 as h
        from jobs j
        join deployments dep on dep.id = j.deployment_id
        join patches p on p.id = j.patch_id
       where j.kind = 'install' and j.state in ('done', 'succeeded') and j.finished_at is not null),
    r as (select severity, h, row_number() over (partition by severity order by h) as rn, count(*) over (partition by severity) as n from t)
    select severity, max(n) as patched,
           min(case when rn >= 0.5 * n then h end) as median,
           min(case when rn >= 0.9 * n then h end) as p90
      from r
     group by severity`.execute(db);
  const slaBy = new Map(slaRows.rows.map((r) => [r.severity, r]));
  const hours = (x: number | string | null | undefined) => (x === null || x === undefined ? null : Math.round(Math.max(0, Number(x)) * 10) / 10);
  const sla = SEVERITIES.filter((s) => slaBy.has(s) || (s !== 'none' && s !== 'unknown')).map((severity) => {
    const r = slaBy.get(severity);
    return { severity, patched: r ? Number(r.patched) : 0, medianHours: hours(r?.median), p90Hours: hours(r?.p90) };
  });

  return {
    devices,
    topPatches: top.rows.map((r) => ({ patch: { id: r.id, title: r.title, severity: r.severity }, devices: Number(r.devices) })),
    devicesBehind: behind.rows.map((r) => ({ device: { id: r.id, hostname: r.hostname }, needed: Number(r.needed), critical: Number(r.critical) })),
    deployments,
    trend,
    sla,
  };
}

type TrendDay = DashboardAnswer['trend'][number];
/** Days before today are final (only today's snapshot is rewritten): kept per database. */
const pastDays = new WeakMap<Db, Map<string, TrendDay>>();

/**
 * The last 30 days of compliance_history, aggregated per device first (rows come in primary-key
 * order, so no sort), then per day. Past days are computed once per process.
 */
async function trendOf(db: Db, now: number): Promise<TrendDay[]> {
  const today = dayOf(now);
  const from = dayOf(now - 29 * 86_400_000);
  let cache = pastDays.get(db);
  if (!cache) pastDays.set(db, (cache = new Map()));
  for (const day of cache.keys()) if (day < from || day >= today) cache.delete(day);
  const cachedDays = [...cache.keys()];
  const sev = (name: string) => sql<number>`sum(case when state = 'needed' and severity = ${sql.lit(name)} then count else 0 end)`.as(name);
  let perDevice = db
    .selectFrom('compliance_history')
    .select(['day', 'device_id', sql<number>`max(case when state = 'needed' then 1 else 0 end)`.as('needing'), sev('critical'), sev('high'), sev('medium'), sev('low')])
    .where('day', '>=', from)
    .groupBy(['day', 'device_id']);
  if (cachedDays.length) perDevice = perDevice.where('day', 'not in', cachedDays);
  const rows = await db
    .selectFrom(perDevice.as('pd'))
    .select('pd.day')
    .select((eb) => [
      eb.fn.countAll<number>().as('devices'),
      eb.fn.sum<number>('pd.needing').as('needing'),
      eb.fn.sum<number>('pd.critical').as('critical'),
      eb.fn.sum<number>('pd.high').as('high'),
      eb.fn.sum<number>('pd.medium').as('medium'),
      eb.fn.sum<number>('pd.low').as('low'),
    ])
    .groupBy('pd.day')
    .execute();
  const fresh = rows.map(
    (r): TrendDay => ({
      day: r.day,
      devices: Number(r.devices),
      needing: Number(r.needing),
      bySeverity: { critical: Number(r.critical), high: Number(r.high), medium: Number(r.medium), low: Number(r.low) },
    }),
  );
  for (const t of fresh) if (t.day < today) cache.set(t.day, t);
  return [...cache.values(), ...fresh.filter((t) => t.day >= today)].sort((a, b) => (a.day < b.day ? -1 : a.day > b.day ? 1 : 0));
}
