/**
 * The routes the web console needs beyond the feature APIs: dashboard, live events (SSE),
 * report exports, a patch's devices and relations, and a dry run of a deployment.
 * (The console's patch list filters live in GET /api/v1/catalog/patches, catalog/routes.ts.)
 */
import { Readable } from 'node:stream';
import { can } from '../http/auth.js';
import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { SEVERITIES } from '@patchwarden/core';
import type { AppContext } from '../http/context.js';
import { neededReport } from '../compliance/routes.js';
import { dashboard } from './dashboard.js';
import { EventBus } from './bus.js';

export { EventBus } from './bus.js';
import { StreamHub } from './stream.js';
import { checkPdfSize, csvLines, neededPdf, neededTable } from './reports.js';
import { PatchDevicesQuery, patchDevices, patchRelations } from './patches.js';
import { previewDeployment } from './preview.js';
import { CreateDeploymentBody } from '../deployments/routes.js';
import { CveExportQuery, CveReportQuery, cveTable, openCves } from './cves.js';


const ExportQuery = z.strictObject({
  by: z.enum(['device', 'patch']).default('device'),
  severity: z.enum(SEVERITIES).optional(),
  /** devices (by=device) or patches (by=patch), as in GET /api/v1/reports/needed; exports default to the maximum */
  limit: z.coerce.number().int().min(1).max(10_000).default(10_000),
});

export interface ConsoleApiOptions {
  /** open event streams at most (default 100) */
  maxStreams?: number;
  /** ping comment interval in ms (default 15 s) */
  pingMs?: number;
}

export function consoleApiRoutes(ctx: AppContext, opts: ConsoleApiOptions = {}): FastifyPluginAsyncZod {
  const { db } = ctx;
  const bus = (ctx.bus ??= new EventBus());
  const hub = new StreamHub(bus, db, opts.maxStreams, opts.pingMs);
  return async (app) => {
    bus.onListenerError = (err) => app.log.warn({ err }, 'event listener failed');
    app.addHook('preClose', (done) => {
      hub.closeAll();
      done();
    });

    app.get('/api/v1/dashboard', { config: can('view'), schema: { tags: ['console'], summary: 'Fleet summary for the console: devices, top patches, deployments, trend, time to patch' } }, async () =>
      dashboard(db, ctx.dialect, ctx.now()),
    );

    app.get(
      '/api/v1/events/stream',
      {
        config: can('view'),
        schema: {
          tags: ['console'],
          summary: 'Live events as Server-Sent Events: checkin, job, deployment; a `: ping` comment every 15 s',
        },
      },
      async (req, reply) => {
        hub.checkCapacity(); // E_RATE_LIMITED, answered as JSON before the stream starts
        reply.hijack();
        hub.attach(reply.raw);
        req.log.debug({ open: hub.open }, 'event stream opened');
      },
    );

    const filename = (by: string, ext: string) => `patchwarden-needed-by-${by}-${new Date(ctx.now()).toISOString().slice(0, 10)}.${ext}`;
    app.get(
      '/api/v1/reports/needed.csv',
      { config: can('view'), schema: { tags: ['reports'], summary: 'The needed-patches report as CSV (RFC 4180; formula-like cells prefixed with an apostrophe)', querystring: ExportQuery } },
      async (req, reply) => {
        const table = neededTable(await neededReport(db, req.query));
        return reply
          .header('content-type', 'text/csv; charset=utf-8')
          .header('content-disposition', `attachment; filename="${filename(req.query.by, 'csv')}"`)
          .header('cache-control', 'no-store')
          .send(Readable.from(csvLines(table)));
      },
    );
    app.get(
      '/api/v1/reports/needed.pdf',
      { config: can('view'), schema: { tags: ['reports'], summary: 'The needed-patches report as PDF (the same rows and columns as the CSV)', querystring: ExportQuery } },
      async (req, reply) => {
        const table = neededTable(await neededReport(db, req.query));
        checkPdfSize(table);
        return reply
          .header('content-type', 'application/pdf')
          .header('content-disposition', `attachment; filename="${filename(req.query.by, 'pdf')}"`)
          .header('cache-control', 'no-store')
          .send(neededPdf(table, new Date(ctx.now())));
      },
    );

    app.get(
      '/api/v1/reports/cves',
      {
        config: can('view'),
        schema: {
          tags: ['reports'],
          summary: 'Open CVEs: CVEs of patches that active devices need, exploited first, then by severity and devices',
          querystring: CveReportQuery,
        },
      },
      async (req) => openCves(db, req.query),
    );
    app.get(
      '/api/v1/reports/cves.csv',
      { config: can('view'), schema: { tags: ['reports'], summary: 'The open-CVEs report as CSV (RFC 4180; formula-like cells prefixed with an apostrophe)', querystring: CveExportQuery } },
      async (req, reply) => {
        const table = cveTable(await openCves(db, req.query));
        const day = new Date(ctx.now()).toISOString().slice(0, 10);
        return reply
          .header('content-type', 'text/csv; charset=utf-8')
          .header('content-disposition', `attachment; filename="patchwarden-open-cves-${day}.csv"`)
          .header('cache-control', 'no-store')
          .send(Readable.from(csvLines(table)));
      },
    );

    app.get(
      '/api/v1/catalog/patch/devices',
      { config: can('view'), schema: { tags: ['catalog'], summary: 'Active devices with a given state for one patch, by hostname', querystring: PatchDevicesQuery } },
      async (req) => patchDevices(db, req.query),
    );
    app.get(
      '/api/v1/catalog/patch/relations',
      {
        config: can('view'),
        schema: { tags: ['catalog'], summary: "A patch's requires, supersedes and conflicts, both ways", querystring: z.strictObject({ id: z.string().min(1).max(255) }) },
      },
      async (req) => patchRelations(ctx, req.query.id),
    );

    app.post(
      '/api/v1/deployments/preview',
      { config: can('deploy'), schema: { tags: ['deployments'], summary: 'What POST /api/v1/deployments would create, without writing anything', body: CreateDeploymentBody } },
      async (req) => previewDeployment(db, req.body),
    );
  };
}
