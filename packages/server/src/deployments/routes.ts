import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { can } from '../http/auth.js';
import { assertDevicesInScope, assertGroupInScope, deploymentDevices } from '../auth/scope.js';
import { resolveTarget } from './targets.js';
import { FreezePeriod, JobReport, MaintenanceWindow, RebootPolicy, Ring } from '@patchwarden/core';
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
import { forgetProgress } from './progress.js';
import { emitDeployment, emitJobReported, emitJobsHanded } from '../console-api/bus.js';

const PatchId = z.string().min(1).max(200);
const GroupRef = z.string().min(1).max(200);
const LabelRef = z.string().min(1).max(63);
const DeviceRef = z.string().min(1).max(255);
const Id = z.object({ id: z.uuid() });
const Paging = {
  limit: z.coerce.number().int().min(1).max(1000).default(50),
  offset: z.coerce.number().int().min(0).max(10_000_000).default(0),
};
/** A report: at most 200 events and 3 × 64 KiB of detail, so well below this. */
const REPORT_BODY_LIMIT = 512 * 1024;

/**
 * True when the ring of `jobId` has no job left without a report. Asked after every report: it
 * looks for one open job (limit 1) rather than counting them all, which stops at the first one
 * while the ring runs instead of reading every open job of a large ring per report.
 */
async function ringComplete(db: AppContext['db'], jobId: string): Promise<boolean> {
  const job = await db.selectFrom('jobs').select(['deployment_id', 'ring', 'kind']).where('id', '=', jobId).executeTakeFirst();
  if (!job || job.kind !== 'install') return false;
  const open = await db
    .selectFrom('jobs')
    .select('id')
    .where('deployment_id', '=', job.deployment_id)
    .where('ring', '=', job.ring)
    .where('kind', '=', 'install')
    .where('report_json', 'is', null)
    .limit(1)
    .executeTakeFirst();
  return open === undefined;
}

/** The body of POST /api/v1/deployments; the console's preview takes the same. */
export const CreateDeploymentBody = z.strictObject({
  patches: z.array(PatchId).min(1).max(100),
  groups: z.array(GroupRef).max(100).optional(),
  labels: z.array(LabelRef).max(100).optional(),
  devices: z.array(DeviceRef).max(10_000).optional(),
  exclude: z
    .strictObject({ groups: z.array(GroupRef).max(100).optional(), labels: z.array(LabelRef).max(100).optional(), devices: z.array(DeviceRef).max(10_000).optional() })
    .optional(),
  start: z.iso.datetime({ offset: true }),
  deadline: z.iso.datetime({ offset: true }).optional(),
  rings: z.array(Ring).min(1).max(20).optional(),
  reboot: RebootPolicy.optional(),
});

export function deploymentRoutes(ctx: AppContext): FastifyPluginAsyncZod {
  const { db } = ctx;
  const wakeups = ctx.wakeups;
  const shutdown = new AbortController();
  return async (app) => {
    app.addHook('preClose', (done) => {
      shutdown.abort();
      done();
    });
    const device = { auth: 'device' as const };

    app.post(
      '/api/v1/approvals',
      {
        config: can('approve'),
        schema: {
          tags: ['deployments'],
          summary: 'Approve or decline a patch for a group (compliance states do not change)',
          body: z.strictObject({ patch: PatchId, group: GroupRef, decision: z.enum(['approve', 'decline']) }),
        },
      },
      async (req) => {
        await assertGroupInScope(db, req.admin, req.body.group);
        req.auditBefore = (await listApprovals(db, { patch: req.body.patch, group: req.body.group, limit: 1, offset: 0 })).items[0] ?? null;
        return setApproval(db, ctx.now(), req.body.patch, req.body.group, req.body.decision);
      },
    );
    app.get(
      '/api/v1/approvals',
      {
        config: can('view'),
        schema: { tags: ['deployments'], summary: 'List approvals', querystring: z.strictObject({ patch: PatchId.optional(), group: GroupRef.optional(), ...Paging }) },
      },
      async (req) => listApprovals(db, req.query),
    );

    app.get(
      '/api/v1/groups/:name/windows',
      { config: can('view'), schema: { tags: ['groups'], summary: "A group's maintenance windows and freezes", params: z.object({ name: GroupRef }) } },
      async (req) => getGroupSchedule(db, req.params.name),
    );
    app.put(
      '/api/v1/groups/:name/windows',
      {
        config: can('manage'),
        schema: {
          tags: ['groups'],
          summary: "Replace a group's maintenance windows and freezes (in each device's time zone)",
          params: z.object({ name: GroupRef }),
          body: z.strictObject({ windows: z.array(MaintenanceWindow).max(100), freezes: z.array(FreezePeriod).max(100).default([]) }),
        },
      },
      async (req) => {
        req.auditBefore = await getGroupSchedule(db, req.params.name);
        return setGroupSchedule(db, ctx.now(), req.params.name, req.body.windows, req.body.freezes);
      },
    );

    app.post(
      '/api/v1/deployments',
      {
        config: can('deploy'),
        schema: {
          tags: ['deployments'],
          summary: 'Deploy approved patches to groups, labels and devices (a union, less the exclusions), in rings',
          body: CreateDeploymentBody,
        },
      },
      async (req, reply) => {
        if (req.admin?.groups) await assertDevicesInScope(db, req.admin, (await resolveTarget(db, req.body)).devices.map((d) => d.id));
        const created = await createDeployment(db, ctx.now(), req.body);
        emitDeployment(ctx.bus, 'created', created);
        await wakeups.wakeDeployment(db, created.id, 'install');
        return reply.status(201).send(created);
      },
    );
    app.get(
      '/api/v1/deployments',
      { config: can('view'), schema: { tags: ['deployments'], summary: 'List deployments, newest first', querystring: z.strictObject(Paging) } },
      async (req) => listDeployments(db, ctx.now(), req.query),
    );
    app.get(
      '/api/v1/deployments/:id',
      { config: can('view'), schema: { tags: ['deployments'], summary: 'A deployment: rings with verdicts and counts, jobs by state', params: Id } },
      async (req) => getDeployment(db, ctx.now(), req.params.id),
    );
    app.post(
      '/api/v1/deployments/:id/halt',
      {
        config: can('deploy'),
        schema: { tags: ['deployments'], summary: 'Halt a deployment', params: Id, body: z.strictObject({ reason: z.string().min(1).max(500).optional() }).optional() },
      },
      async (req) => {
        await assertDevicesInScope(db, req.admin, await deploymentDevices(db, req.params.id));
        forgetProgress(db, req.params.id);
        return haltDeployment(db, ctx.now(), req.params.id, req.body?.reason ?? 'halted by an administrator').then((r) => (emitDeployment(ctx.bus, 'halted', r), r));
      },
    );
    app.post(
      '/api/v1/deployments/:id/resume',
      { config: can('deploy'), schema: { tags: ['deployments'], summary: 'Resume a halted deployment', params: Id } },
      async (req) => {
        await assertDevicesInScope(db, req.admin, await deploymentDevices(db, req.params.id));
        forgetProgress(db, req.params.id);
        const r = await resumeDeployment(db, ctx.now(), req.params.id);
        emitDeployment(ctx.bus, 'resumed', r);
        await wakeups.wakeDeployment(db, req.params.id, 'install');
        return r;
      },
    );
    app.post(
      '/api/v1/deployments/:id/undo',
      {
        config: can('undo'),
        schema: {
          tags: ['deployments'],
          summary: 'Undo a deployment (it stops), one ring or some devices: undo jobs for every install there that succeeded',
          params: Id,
          body: z.strictObject({ ring: z.number().int().min(0).max(100).optional(), devices: z.array(DeviceRef).min(1).max(10_000).optional() }).nullish(),
        },
      },
      async (req) => {
        await assertDevicesInScope(db, req.admin, await deploymentDevices(db, req.params.id));
        forgetProgress(db, req.params.id);
        const r = await undoDeployment(db, ctx.now(), req.params.id, req.body ?? {});
        emitDeployment(ctx.bus, 'undone', r);
        await wakeups.wakeDeployment(db, req.params.id, 'undo');
        return r;
      },
    );

    app.get(
      '/api/v1/agent/jobs',
      {
        config: device,
        schema: {
          tags: ['agent'],
          summary: 'The jobs this device may run now; with wait=N the answer waits up to N seconds for one (long poll)',
          querystring: z.strictObject({
            wait: z.coerce.number().int().min(0).max(120).default(0),
            /** false: a report-only agent listens for "scan now" and takes no job */
            installs: z.enum(['true', 'false']).default('true'),
          }),
        },
      },
      async (req, reply) => {
        const deviceId = requireDevice(req).id;
        const takesJobs = req.query.installs === 'true';
        // an administrator's "scan now" is answered at once, and only once
        const scanNow = async () =>
          Number((await db.updateTable('devices').set({ scan_requested_at: null }).where('id', '=', deviceId).where('scan_requested_at', 'is not', null).executeTakeFirst()).numUpdatedRows) > 0;
        let jobs = takesJobs ? await jobsForDevice(db, ctx.now(), deviceId) : [];
        emitJobsHanded(ctx.bus, deviceId, jobs, ctx.now());
        if (await scanNow()) return { jobs, scanNow: true };
        if (jobs.length || req.query.wait === 0) return { jobs };
        const closed = new AbortController();
        req.raw.once('close', () => closed.abort());
        // a server that is stopping answers its long polls now instead of holding its close for them
        const onShutdown = () => closed.abort();
        shutdown.signal.addEventListener('abort', onShutdown, { once: true });
        reply.raw.once('close', () => shutdown.signal.removeEventListener('abort', onShutdown));
        const until = Date.now() + req.query.wait * 1000;
        while (!jobs.length && !closed.signal.aborted && Date.now() < until) {
          await wakeups.wait(deviceId, until - Date.now(), closed.signal);
          if (closed.signal.aborted) break;
          if (takesJobs) jobs = await jobsForDevice(db, ctx.now(), deviceId);
          if (await scanNow()) {
            emitJobsHanded(ctx.bus, deviceId, jobs, ctx.now());
            return { jobs, scanNow: true };
          }
        }
        emitJobsHanded(ctx.bus, deviceId, jobs, ctx.now());
        return { jobs };
      },
    );
    app.post(
      '/api/v1/agent/jobs/:id/report',
      {
        config: device,
        bodyLimit: REPORT_BODY_LIMIT,
        schema: { tags: ['agent'], summary: "A job's final report (idempotent)", params: Id, body: JobReport },
      },
      async (req) => {
        const answer = await reportJob(db, ctx.now(), requireDevice(req).id, req.params.id, req.body);
        await emitJobReported(ctx.bus, db, requireDevice(req).id, answer, ctx.now());
        const completed = !answer.duplicate && (await ringComplete(db, req.params.id));
        // The cached current ring (progress.ts) moves only when a ring completes (or with time,
        // which its TTL covers): a report that leaves its ring open while the deployment runs
        // changes no ring index (a failure that halts changes the status, and then the cache is
        // forgotten too). Forgetting it after every report made nearly every poll count all of
        // the deployment's jobs again (bench/deploy measured it).
        if (completed || answer.deployment.status !== 'running') forgetProgress(db, answer.deployment.id);
        // a ring that just completed may let the next one start (after a zero bake): wake its devices, not the fleet
        if (completed) await wakeups.wakeDeployment(db, answer.deployment.id, 'install');
        return answer;
      },
    );
  };
}
