/**
 * Sites over HTTP. Administrators of the central server create, list and revoke site
 * credentials; a local server, with its site token, reads what it needs besides the signed
 * catalog (its mode, the coverage the catalog claims) and reports what it serves.
 */
import { z } from 'zod';
import { can } from '../http/auth.js';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { AppContext } from '../http/context.js';
import { requireSite } from '../http/auth.js';
import { createSite, listSites, recordReport, revokeSite, SITE_MODES, touchSite } from './store.js';

const Id = z.object({ id: z.string().min(1).max(100) });
const Version = z.number().int().min(1).max(2 ** 31).nullable();

export function siteRoutes(ctx: AppContext): FastifyPluginAsyncZod {
  const { db } = ctx;
  return async (app) => {
    const site = { auth: 'site' as const };

    app.get('/api/v1/sites', { config: can('view'), schema: { tags: ['sites'], summary: 'Local patch servers syncing from this server, with what each last reported and whether it is behind' } }, async () => ({
      items: await listSites(db),
    }));

    app.post(
      '/api/v1/sites',
      {
        config: can('manage'),
        schema: {
          tags: ['sites'],
          summary: 'Create a site credential for a local patch server; its token is in this answer only',
          body: z.strictObject({ name: z.string().min(1).max(100).regex(/^[A-Za-z0-9][A-Za-z0-9 ._-]*$/, 'letters, digits, space, . _ -'), mode: z.enum(SITE_MODES) }),
        },
      },
      async (req, reply) => reply.status(201).send(await createSite(db, req.body.name, req.body.mode, ctx.now())),
    );

    app.post(
      '/api/v1/sites/:id/revoke',
      { config: can('manage'), schema: { tags: ['sites'], summary: 'Revoke a site credential (by id or name): its syncs stop at once', params: Id } },
      async (req) => revokeSite(db, req.params.id, ctx.now()),
    );

    app.get(
      '/api/v1/sites/self',
      { config: site, schema: { tags: ['sites'], summary: "The calling site: its mode, and the platforms the catalog covers (what a local server's compliance needs beside the signed catalog)" } },
      async (req) => {
        const s = requireSite(req);
        await touchSite(db, s.id, ctx.now());
        const cat = await ctx.compliance.catalog();
        return { name: s.name, mode: s.mode, coverage: cat.coverage };
      },
    );

    app.get(
      '/api/v1/sites/self/approvals',
      { config: site, schema: { tags: ['sites'], summary: 'Approvals for a replica site (the channel exists; approvals themselves do not yet)' } },
      async (req) => {
        const s = requireSite(req);
        return {
          mode: s.mode,
          items: [] as unknown[],
          note:
            s.mode === 'replica'
              ? 'this server has no approvals yet; when it has, a replica site takes them from here'
              : 'an autonomous site keeps its own approvals and takes none from here',
        };
      },
    );

    app.post(
      '/api/v1/sites/self/report',
      {
        config: site,
        schema: {
          tags: ['sites'],
          summary: 'A local server reports what it serves after a sync (or why the sync failed)',
          body: z.strictObject({
            root: Version,
            timestamp: Version,
            snapshot: Version,
            targets: z.number().int().min(0).max(100_000_000),
            expires: z.string().max(40).nullable(),
            syncedAt: z.string().max(40).nullable(),
            error: z.string().max(2000).nullable(),
          }),
        },
      },
      async (req) => {
        const s = requireSite(req);
        await recordReport(db, s.id, req.body, ctx.now());
        return { recorded: true };
      },
    );
  };
}
