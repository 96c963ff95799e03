import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { FreezePeriod, JobReport, MaintenanceWindow, Ring } from '@patchwarden/core';
import type { AppContext } from '../http/context.js';
import { requireDevice } from '../http/auth.js';
import {
  createDeployment,
  getDeployment,
  getGroupSchedule,
  haltDeployment,
  jobsForDevice,
  listApprovals,
  listDeployments,
  reportJob,
  resumeDeployment,
  setApproval,
  setGroupSchedule,
  undoDeployment,
} from './service.js';

const PatchId = z.string().min(1).max(200);
const GroupRef = z.string().min(1).max(200);
const Id = z.object({ id: z.uuid() });
const Paging = {
  limit: z.coerce.number().int().min(1).max(1000).default(50),
  offset: z.coerce.number().int().min(0).max(10_000_000).default(0),
};
/** A report: at most 200 events and 3 × 64 KiB of detail, so well below this. */
const REPORT_BODY_LIMIT = 512 * 1024;

export function deploymentRoutes(ctx: AppContext): FastifyPluginAsyncZod {
  const { db } = ctx;
  return async (app) => {
    const admin = { auth: 'admin' as const };
    const device = { auth: 'device' as const };

    app.post(
      '/api/v1/approvals',
      {
        config: admin,
        schema: {
          tags: ['deployments'],
          summary: 'Approve or decline a patch for a group (compliance states do not change)',
          body: z.strictObject({ patch: PatchId, group: GroupRef, decision: z.enum(['approve', 'decline']) }),
        },
      },
      async (req) => setApproval(db, ctx.now(), req.body.patch, req.body.group, req.body.decision),
    );
    app.get(
      '/api/v1/approvals',
      {
        config: admin,
        schema: { tags: ['deployments'], summary: 'List approvals', querystring: z.strictObject({ patch: PatchId.optional(), group: GroupRef.optional(), ...Paging }) },
      },
      async (req) => listApprovals(db, req.query),
    );

    app.get(
      '/api/v1/groups/:name/windows',
      { config: admin, schema: { tags: ['groups'], summary: "A group's maintenance windows and freezes", params: z.object({ name: GroupRef }) } },
      async (req) => getGroupSchedule(db, req.params.name),
    );
    app.put(
      '/api/v1/groups/:name/windows',
      {
        config: admin,
        schema: {
          tags: ['groups'],
          summary: "Replace a group's maintenance windows and freezes (in each device's time zone)",
          params: z.object({ name: GroupRef }),
          body: z.strictObject({ windows: z.array(MaintenanceWindow).max(100), freezes: z.array(FreezePeriod).max(100).default([]) }),
        },
      },
      async (req) => setGroupSchedule(db, ctx.now(), req.params.name, req.body.windows, req.body.freezes),
    );

    app.post(
      '/api/v1/deployments',
      {
        config: admin,
        schema: {
          tags: ['deployments'],
          summary: 'Deploy approved patches to groups or devices, in rings',
          body: z.strictObject({
            patches: z.array(PatchId).min(1).max(100),
            groups: z.array(GroupRef).min(1).max(100).optional(),
            devices: z.array(z.string().min(1).max(255)).min(1).max(10_000).optional(),
            start: z.iso.datetime({ offset: true }),
            deadline: z.iso.datetime({ offset: true }).optional(),
            rings: z.array(Ring).min(1).max(20).optional(),
          }),
        },
      },
      async (req, reply) => reply.status(201).send(await createDeployment(db, ctx.now(), req.body)),
    );
    app.get(
      '/api/v1/deployments',
      { config: admin, schema: { tags: ['deployments'], summary: 'List deployments, newest first', querystring: z.strictObject(Paging) } },
      async (req) => listDeployments(db, ctx.now(), req.query),
    );
    app.get(
      '/api/v1/deployments/:id',
      { config: admin, schema: { tags: ['deployments'], summary: 'A deployment: rings with verdicts and counts, jobs by state', params: Id } },
      async (req) => getDeployment(db, ctx.now(), req.params.id),
    );
    app.post(
      '/api/v1/deployments/:id/halt',
      {
        config: admin,
        schema: { tags: ['deployments'], summary: 'Halt a deployment', params: Id, body: z.strictObject({ reason: z.string().min(1).max(500).optional() }).optional() },
      },
      async (req) => haltDeployment(db, ctx.now(), req.params.id, req.body?.reason ?? 'halted by an administrator'),
    );
    app.post(
      '/api/v1/deployments/:id/resume',
      { config: admin, schema: { tags: ['deployments'], summary: 'Resume a halted deployment', params: Id } },
      async (req) => resumeDeployment(db, ctx.now(), req.params.id),
    );
    app.post(
      '/api/v1/deployments/:id/undo',
      { config: admin, schema: { tags: ['deployments'], summary: 'Undo a deployment: undo jobs for every device whose install succeeded', params: Id } },
      async (req) => undoDeployment(db, ctx.now(), req.params.id),
    );

    app.get(
      '/api/v1/agent/jobs',
      { config: device, schema: { tags: ['agent'], summary: 'The jobs this device may run now' } },
      async (req) => ({ jobs: await jobsForDevice(db, ctx.now(), requireDevice(req).id) }),
    );
    app.post(
      '/api/v1/agent/jobs/:id/report',
      {
        config: device,
        bodyLimit: REPORT_BODY_LIMIT,
        schema: { tags: ['agent'], summary: "A job's final report (idempotent)", params: Id, body: JobReport },
      },
      async (req) => reportJob(db, ctx.now(), requireDevice(req).id, req.params.id, req.body),
    );
  };
}
