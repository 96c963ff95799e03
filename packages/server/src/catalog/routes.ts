import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { can } from '../http/auth.js';
import { PatchManifest, PatchwardenError, Platform } from '@patchwarden/core';
import type { AppContext } from '../http/context.js';
import { publishVendorPatches } from './service.js';
import { listPatches, PatchListQuery } from '../console-api/patches.js';

export function catalogRoutes(ctx: AppContext): FastifyPluginAsyncZod {
  const { db } = ctx;
  return async (app) => {
    app.post(
      '/api/v1/catalog/patches',
      {
        config: can('manage'),
        bodyLimit: 64 * 1024 * 1024,
        schema: {
          tags: ['catalog'],
          summary: 'Add or replace patches (by id and revision) and the platforms their feed covers',
          body: z.strictObject({
            patches: z.array(PatchManifest).max(5000),
            coverage: z.array(Platform).max(256).default([]),
            source: z.object({ kind: z.string().min(1).max(32) }).catchall(z.unknown()),
          }),
        },
      },
      async (req) => {
        const r = await publishVendorPatches(ctx, req.body.patches, req.body.coverage, req.body.source);
        return { created: r.created, updated: r.updated, unchanged: r.unchanged, contextsEvaluated: r.contextsEvaluated, signedBins: r.signed.bins };
      },
    );

    app.get(
      '/api/v1/catalog/patches',
      {
        config: can('view'),
        schema: {
          tags: ['catalog'],
          summary: 'List patches: filters (search in ids, severity list, vendor, CVE, needed, source), sorts, and the devices needing each',
          querystring: PatchListQuery,
        },
      },
      async (req) => listPatches(db, ctx.dialect, req.query),
    );

    app.get(
      '/api/v1/catalog/export',
      { config: can('view'), schema: { tags: ['catalog'], summary: 'The whole catalog as a catalog file: { coverage, patches } (what `scan --server` reads)' } },
      async () => {
        const cat = await ctx.compliance.catalog();
        return { coverage: cat.coverage, patches: [...cat.manifests.values()] };
      },
    );

    app.get(
      '/api/v1/catalog/patch',
      { config: can('view'), schema: { tags: ['catalog'], summary: 'One patch manifest', querystring: z.strictObject({ id: z.string().max(255) }) } },
      async (req) => {
        const r = await db.selectFrom('patches').select(['manifest_json', 'digest']).where('id', '=', req.query.id).executeTakeFirst();
        if (!r) throw new PatchwardenError('E_NOT_FOUND', `no patch '${req.query.id}'`, { hint: 'list patches with GET /api/v1/catalog/patches' });
        return { digest: r.digest, manifest: JSON.parse(r.manifest_json) as unknown };
      },
    );
  };
}
