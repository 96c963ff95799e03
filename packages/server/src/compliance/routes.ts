import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { can } from '../http/auth.js';
import { decideStates, PATCH_STATES, PatchwardenError, SEVERITIES, traceRule } from '@patchwarden/core';
import type { AppContext } from '../http/context.js';
import { resolveDeviceId } from '../devices/store.js';
import { dayOf, readHistory, recordHistory } from './history.js';

export function complianceRoutes(ctx: AppContext): FastifyPluginAsyncZod {
  const { db } = ctx;
  return async (app) => {

    app.get(
      '/api/v1/devices/:ref/patches',
      {
        config: can('view'),
        schema: {
          tags: ['compliance'],
          summary: "A device's patch states (not_applicable omitted)",
          params: z.object({ ref: z.string().min(1).max(255) }),
          querystring: z.strictObject({ state: z.enum(PATCH_STATES).optional() }),
        },
      },
      async (req) => {
        const id = await resolveDeviceId(db, req.params.ref);
        const d = await db
          .selectFrom('devices as d')
          .leftJoin('eval_contexts as c', 'c.id', 'd.context_id')
          .select(['d.context_id', 'c.covered'])
          .where('d.id', '=', id)
          .executeTakeFirstOrThrow();
        if (d.context_id === null) return { deviceId: id, assessed: 'pending', items: [] };
        if (d.covered === 0) return { deviceId: id, assessed: 'not_assessed', items: [] };
        let q = db
          .selectFrom('effective_states as s')
          .innerJoin('patches as p', 'p.pk', 's.patch_pk')
          .select(['p.id', 'p.title', 'p.severity', 's.state', 's.detail'])
          .where('s.context_id', '=', d.context_id);
        if (req.query.state) q = q.where('s.state', '=', req.query.state);
        const rows = await q.orderBy('p.id').execute();
        return {
          deviceId: id,
          assessed: 'assessed',
          items: rows.map((r) => ({ patch: r.id, title: r.title, severity: r.severity, state: r.state, ...(r.detail ? (JSON.parse(r.detail) as object) : {}) })),
        };
      },
    );

    app.get(
      '/api/v1/devices/:ref/explain',
      {
        config: can('view'),
        schema: {
          tags: ['compliance'],
          summary: 'Why a patch is in its state on a device: the rules with the leaves that decided',
          params: z.object({ ref: z.string().min(1).max(255) }),
          querystring: z.strictObject({ patch: z.string().min(1).max(255) }),
        },
      },
      async (req) => {
        const id = await resolveDeviceId(db, req.params.ref);
        const dev = await db.selectFrom('devices').select(['hostname', 'context_id']).where('id', '=', id).executeTakeFirstOrThrow();
        if (dev.context_id === null) throw new PatchwardenError('E_CONFLICT', 'this device has not reported an inventory yet', { hint: 'wait for its next check-in' });
        const cat = await ctx.compliance.catalog();
        const patch = cat.manifests.get(req.query.patch);
        if (!patch) throw new PatchwardenError('E_NOT_FOUND', `no patch '${req.query.patch}'`, { hint: '`patchwarden report needed` lists patch ids' });
        const { facts, covered } = await ctx.compliance.deviceFacts(dev.context_id);
        const decision = decideStates(cat.index, facts, { covered }, [patch.id]).get(patch.id)!;
        return {
          device: { id, hostname: dev.hostname },
          patch: { id: patch.id, revision: patch.revision, title: patch.title, severity: patch.severity },
          ...decision,
          applicability: traceRule(patch.applicability, facts),
          installed: traceRule(patch.installed, facts),
        };
      },
    );

    app.get(
      '/api/v1/reports/needed',
      {
        config: can('view'),
        schema: {
          tags: ['reports'],
          summary: 'Needed patches per device, or devices per needed patch',
          querystring: z.strictObject({
            by: z.enum(['device', 'patch']).default('device'),
            severity: z.enum(SEVERITIES).optional(),
            limit: z.coerce.number().int().min(1).max(10_000).default(1000),
            offset: z.coerce.number().int().min(0).max(10_000_000).default(0),
            devicesPerPatch: z.coerce.number().int().min(1).max(100_000).optional(),
          }),
        },
      },
      async (req) => neededReport(db, req.query),
    );

    app.get(
      '/api/v1/reports/history',
      {
        config: can('view'),
        schema: {
          tags: ['reports'],
          summary: 'Daily compliance history: patches by state and severity, devices needing patches',
          querystring: z.strictObject({ days: z.coerce.number().int().min(1).max(3660).default(30), device: z.string().max(255).optional() }),
        },
      },
      async (req) => {
        const from = dayOf(ctx.now() - (req.query.days - 1) * 86_400_000);
        const device = req.query.device ? await resolveDeviceId(db, req.query.device) : undefined;
        return { from, days: await readHistory(db, from, device) };
      },
    );

    app.post(
      '/api/v1/compliance/history/snapshot',
      { config: can('manage'), schema: { tags: ['compliance'], summary: "Record today's compliance counts now (the server also does it every hour)" } },
      async () => ({ day: dayOf(ctx.now()), ...(await recordHistory(db, dayOf(ctx.now()))) }),
    );

    app.post(
      '/api/v1/compliance/recompute',
      { config: can('manage'), schema: { tags: ['compliance'], summary: 'Re-evaluate every device from scratch (repair)' } },
      async () => {
        const started = Date.now();
        const r = await ctx.compliance.recomputeAll();
        return { contexts: r.contexts, ms: Date.now() - started };
      },
    );
  };
}

export interface NeededQuery {
  by: 'device' | 'patch';
  severity?: (typeof SEVERITIES)[number] | undefined;
  limit: number;
  offset?: number | undefined;
  /** by patch: list at most this many devices per patch (deviceCount has them all) */
  devicesPerPatch?: number | undefined;
}
export type NeededByDevice = { device: { id: string; hostname: string }; needed: { patch: string; title: string; severity: string }[] };
export type NeededByPatch = { patch: { id: string; title: string; severity: string }; deviceCount: number; devices: { id: string; hostname: string }[] };
/** `total`: items before paging; `notAssessed` lists at most 1,000 devices, `notAssessedTotal` counts them all */
export type NeededReport =
  | { by: 'device'; total: number; items: NeededByDevice[]; notAssessed: { id: string; hostname: string }[]; notAssessedTotal: number }
  | { by: 'patch'; total: number; items: NeededByPatch[]; notAssessed: { id: string; hostname: string }[]; notAssessedTotal: number };

/**
 * The needed-patches report (GET /api/v1/reports/needed; the console's CSV and PDF exports read
 * the same). States are read per evaluation context (identical devices share one), so the
 * database returns a few rows per context rather than one per device and patch; the expansion
 * to devices happens here.
 */
export async function neededReport(db: AppContext['db'], query: NeededQuery): Promise<NeededReport> {
  const devices = await db
    .selectFrom('devices as d')
    .innerJoin('eval_contexts as c', 'c.id', 'd.context_id')
    .select(['d.id', 'd.hostname', 'd.context_id', 'c.covered'])
    .where('d.status', '=', 'active')
    .orderBy('d.hostname')
    .orderBy('d.id')
    .execute();
  let q = db
    .selectFrom('effective_states as s')
    .innerJoin('patches as p', 'p.pk', 's.patch_pk')
    .select(['s.context_id', 'p.id', 'p.title', 'p.severity'])
    .where('s.state', '=', 'needed')
    .where('s.context_id', 'in', (eb) => eb.selectFrom('devices').select('context_id').distinct().where('status', '=', 'active').where('context_id', 'is not', null));
  if (query.severity) q = q.where('p.severity', '=', query.severity);
  const rows = await q.execute();
  const notAssessedAll = devices.filter((d) => d.covered === 0).map((d) => ({ id: d.id, hostname: d.hostname }));
  const notAssessed = notAssessedAll.slice(0, 1000);
  const notAssessedTotal = notAssessedAll.length;
  const from = query.offset ?? 0;
  const rank = (s: string) => SEVERITIES.indexOf(s as (typeof SEVERITIES)[number]);
  const byContext = new Map<number, { patch: string; title: string; severity: string }[]>();
  for (const r of rows) {
    let list = byContext.get(r.context_id);
    if (!list) byContext.set(r.context_id, (list = []));
    list.push({ patch: r.id, title: r.title, severity: r.severity });
  }
  for (const list of byContext.values()) list.sort((a, b) => rank(a.severity) - rank(b.severity) || a.patch.localeCompare(b.patch));
  if (query.by === 'device') {
    const items: NeededByDevice[] = [];
    for (const d of devices) {
      const needed = byContext.get(d.context_id!);
      if (needed) items.push({ device: { id: d.id, hostname: d.hostname }, needed: [...needed] });
    }
    items.sort((a, b) => b.needed.length - a.needed.length || a.device.hostname.localeCompare(b.device.hostname));
    return { by: 'device', total: items.length, items: items.slice(from, from + query.limit), notAssessed, notAssessedTotal };
  }
  const map = new Map<string, NeededByPatch>();
  for (const d of devices) {
    for (const n of byContext.get(d.context_id!) ?? []) {
      let e = map.get(n.patch);
      if (!e) map.set(n.patch, (e = { patch: { id: n.patch, title: n.title, severity: n.severity }, deviceCount: 0, devices: [] }));
      e.deviceCount++;
      if (query.devicesPerPatch === undefined || e.devices.length < query.devicesPerPatch) e.devices.push({ id: d.id, hostname: d.hostname });
    }
  }
  const all = [...map.values()].sort((a, b) => rank(a.patch.severity) - rank(b.patch.severity) || b.deviceCount - a.deviceCount || a.patch.id.localeCompare(b.patch.id));
  return { by: 'patch', total: all.length, items: all.slice(from, from + query.limit), notAssessed, notAssessedTotal };
}
