/**
 * Local patch servers and air-gapped sites over HTTP: a sync now, its status, importing an
 * export file (on a local server), and making one (on any server).
 */
import type { Readable } from 'node:stream';
import { can } from '../../http/auth.js';
import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { PatchwardenError } from '@patchwarden/core';
import type { AppContext } from '../../http/context.js';
import { buildExport, DEFAULT_EXPORT_DAYS } from './export-file.js';
import type { MirrorService } from './service.js';

function notLocal(): PatchwardenError {
  return new PatchwardenError('E_CONFLICT', 'this server is not a local patch server: it signs its own catalog', {
    hint: 'a local server is started with --upstream-root (and --upstream URL --upstream-token pws_… when it can reach the central server)',
  });
}

export function mirrorRoutes(ctx: AppContext, mirror: MirrorService | null): FastifyPluginAsyncZod {
  return async (app) => {
    // an export file is sent as it is and spooled to disk, never held in memory
    app.addContentTypeParser('application/x-tar', (_req, payload, done) => done(null, payload));

    app.post(
      '/api/v1/mirror/sync',
      {
        config: can('manage'),
        schema: {
          tags: ['mirror'],
          summary: 'Sync this local server from its central server now (wait=false: start it and answer at once; follow it with GET /api/v1/mirror/status)',
          querystring: z.strictObject({ wait: z.enum(['true', 'false']).default('true') }),
        },
      },
      async (req, reply) => {
        if (!mirror) throw notLocal();
        const running = mirror.sync();
        if (req.query.wait === 'false') {
          running.catch(() => {}); // its outcome is in the status
          return reply.status(202).send({ started: true });
        }
        return running;
      },
    );

    app.get(
      '/api/v1/mirror/status',
      { config: can('view'), schema: { tags: ['mirror'], summary: "What this local server mirrors, and how its last and current sync went; a central server answers { mode: 'central' }" } },
      // a central server mirrors nothing: that is an answer, not an error (the console asks every server)
      async () => (mirror ? { mode: 'local' as const, ...(await mirror.status()) } : { mode: 'central' as const }),
    );

    app.post(
      '/api/v1/mirror/import',
      {
        config: can('manage'),
        schema: {
          tags: ['mirror'],
          summary: 'Import a catalog export file (application/x-tar), verified like an online sync (wait=false: answer once the file is received; follow it with GET /api/v1/mirror/status)',
          consumes: ['application/x-tar'],
          querystring: z.strictObject({ name: z.string().max(200).default('upload'), wait: z.enum(['true', 'false']).default('true') }),
        },
      },
      async (req, reply) => {
        if (!mirror) throw notLocal();
        const body = req.body as Readable | undefined;
        if (!body || typeof (body as Readable).pipe !== 'function') {
          throw new PatchwardenError('E_UNSUPPORTED_MEDIA', 'send the export file as application/x-tar', { hint: '`patchwarden catalog import FILE` does this' });
        }
        const { done } = await mirror.importStream(body, req.query.name);
        if (req.query.wait === 'false') {
          done.catch(() => {}); // its outcome is in the status
          return reply.status(202).send({ started: true });
        }
        return done;
      },
    );

    app.get(
      '/api/v1/catalog/export-file',
      {
        config: can('manage'),
        schema: {
          tags: ['catalog'],
          summary: 'The signed catalog as one file for an air-gapped site: metadata (snapshot and timestamp re-signed to last expiresDays), every root, every target, the coverage',
          querystring: z.strictObject({ expiresDays: z.coerce.number().int().min(1).max(365).default(DEFAULT_EXPORT_DAYS) }),
        },
      },
      async (req, reply) => {
        const built = await buildExport(ctx, { days: req.query.expiresDays });
        return reply
          .type('application/x-tar')
          .header('content-disposition', `attachment; filename="patchwarden-catalog-${built.index.snapshot}.tar"`)
          .header('x-patchwarden-expires', built.index.expires)
          .header('x-patchwarden-export', JSON.stringify({ ...built.index, limitedBy: built.limitedBy }))
          .header('cache-control', 'no-store')
          .send(built.stream);
      },
    );
  };
}
