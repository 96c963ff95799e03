/**
 * Jobs as an administrator reads them: the jobs of a deployment (filterable by state and ring,
 * paged) and one job with its event history and the agent's report.
 */
import { z } from 'zod';
import { can } from '../http/auth.js';
import type { Kysely } from 'kysely';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { JOB_STATES, PatchwardenError } from '@patchwarden/core';
import type { DB } from '../db/schema.js';
import type { AppContext } from '../http/context.js';

const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());

export interface JobSummary {
  id: string;
  deploymentId: string;
  kind: string;
  device: { id: string; hostname: string };
  patch: { id: string; revision: number };
  ring: number;
  state: string;
  undoes: string | null;
  createdAt: string;
  handedAt: string | null;
  finishedAt: string | null;
}

function summary(r: {
  id: string;
  deployment_id: string;
  kind: string;
  device_id: string;
  hostname: string;
  patch_id: string;
  revision: number;
  ring: number;
  state: string;
  undoes: string | null;
  created_at: number;
  handed_at: number | null;
  finished_at: number | null;
}): JobSummary {
  return {
    id: r.id,
    deploymentId: r.deployment_id,
    kind: r.kind,
    device: { id: r.device_id, hostname: r.hostname },
    patch: { id: r.patch_id, revision: r.revision },
    ring: r.ring,
    state: r.state,
    undoes: r.undoes,
    createdAt: iso(r.created_at)!,
    handedAt: iso(r.handed_at),
    finishedAt: iso(r.finished_at),
  };
}

const COLUMNS = ['j.id', 'j.deployment_id', 'j.kind', 'j.device_id', 'd.hostname', 'j.patch_id', 'j.revision', 'j.ring', 'j.state', 'j.undoes', 'j.created_at', 'j.handed_at', 'j.finished_at'] as const;

export async function listJobs(db: Kysely<DB>, q: { deployment?: string | undefined; device?: string | undefined; state?: string | undefined; ring?: number | undefined; limit: number; offset: number }) {
  let base = db.selectFrom('jobs as j').innerJoin('devices as d', 'd.id', 'j.device_id');
  if (q.deployment) base = base.where('j.deployment_id', '=', q.deployment);
  if (q.device) base = base.where((eb) => eb.or([eb('j.device_id', '=', q.device!), eb('d.hostname', '=', q.device!)]));
  if (q.state) base = base.where('j.state', '=', q.state);
  if (q.ring !== undefined) base = base.where('j.ring', '=', q.ring);
  const [rows, n] = await Promise.all([
    base.select([...COLUMNS]).orderBy('j.created_at').orderBy('j.id').limit(q.limit).offset(q.offset).execute(),
    base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow(),
  ]);
  return { items: rows.map(summary), total: Number(n.n) };
}

export async function getJob(db: Kysely<DB>, id: string) {
  const r = await db.selectFrom('jobs as j').innerJoin('devices as d', 'd.id', 'j.device_id').select([...COLUMNS, 'j.report_json']).where('j.id', '=', id).executeTakeFirst();
  if (!r) throw new PatchwardenError('E_NOT_FOUND', `no job '${id}'`, { hint: 'list a deployment\'s jobs with `patchwarden deploy jobs ID`' });
  const events = await db.selectFrom('job_events').select(['seq', 'at', 'state', 'message']).where('job_id', '=', id).orderBy('seq').execute();
  const report = r.report_json ? (JSON.parse(r.report_json) as { detail?: Record<string, unknown> }) : null;
  return {
    ...summary(r),
    events: events.map((e) => ({ at: iso(e.at)!, state: e.state, ...(e.message ? { message: e.message } : {}) })),
    detail: report?.detail ?? null,
  };
}

export function jobHistoryRoutes(ctx: AppContext): FastifyPluginAsyncZod {
  const { db } = ctx;
  const Paging = {
    limit: z.coerce.number().int().min(1).max(1000).default(100),
    offset: z.coerce.number().int().min(0).max(10_000_000).default(0),
  };
  const JobIdParam = z.string().regex(/^[A-Za-z0-9_-]{8,64}$/, 'not a job id');
  return async (app) => {
    app.get(
      '/api/v1/deployments/:id/jobs',
      {
        config: can('view'),
        schema: {
          tags: ['deployments'],
          summary: "A deployment's jobs (filter by state, ring or device; paged)",
          params: z.object({ id: JobIdParam }),
          querystring: z.strictObject({ state: z.enum(JOB_STATES).optional(), ring: z.coerce.number().int().min(0).max(100).optional(), device: z.string().max(255).optional(), ...Paging }),
        },
      },
      async (req) => {
        const exists = await db.selectFrom('deployments').select('id').where('id', '=', req.params.id).executeTakeFirst();
        if (!exists) throw new PatchwardenError('E_NOT_FOUND', `no deployment '${req.params.id}'`, { hint: 'list deployments with `patchwarden deploy list`' });
        return listJobs(db, { deployment: req.params.id, ...req.query });
      },
    );
    app.get(
      '/api/v1/jobs',
      {
        config: can('view'),
        schema: { tags: ['deployments'], summary: 'Jobs of every deployment (filter by device or state; paged)', querystring: z.strictObject({ device: z.string().max(255).optional(), state: z.enum(JOB_STATES).optional(), ...Paging }) },
      },
      async (req) => listJobs(db, req.query),
    );
    app.get(
      '/api/v1/jobs/:id',
      { config: can('view'), schema: { tags: ['deployments'], summary: 'One job with its event history and the agent report', params: z.object({ id: JobIdParam }) } },
      async (req) => getJob(db, req.params.id),
    );
  };
}
