/** Cached vendor payloads over HTTP: filling the cache, and serving content by its sha256. */
import { z } from 'zod';
import { can } from '../http/auth.js';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { PatchId, PatchwardenError } from '@patchwarden/core';
import type { AppContext } from '../http/context.js';
import { cachePayloads } from './payloads.js';

export function payloadRoutes(ctx: AppContext): FastifyPluginAsyncZod {
  return async (app) => {
    app.post(
      '/api/v1/catalog/payloads/cache',
      {
        config: can('manage'),
        schema: {
          tags: ['catalog'],
          summary: "Fetch the package files of these patches (default: every patch some device needs) from their vendors' repositories into the content store",
          body: z.strictObject({ patches: z.array(PatchId).max(50_000).optional() }),
        },
      },
      async (req) => cachePayloads(ctx, req.body.patches ? { patches: req.body.patches } : {}),
    );

    app.get(
      '/api/v1/content/:sha256',
      {
        config: { auth: 'reader' },
        schema: {
          tags: ['catalog'],
          summary: 'A file of the content store by its sha256 (cached vendor payloads, bundles, patch objects); check it against the signed hash you hold',
          params: z.strictObject({ sha256: z.string().regex(/^[0-9a-f]{64}$/, 'a sha256 in lowercase hex') }),
        },
      },
      async (req, reply) => {
        const row = await ctx.db.selectFrom('content').select('bytes').where('sha256', '=', req.params.sha256).executeTakeFirst();
        if (!row) throw new PatchwardenError('E_NOT_FOUND', `the content store has no file ${req.params.sha256}`, { hint: 'cache it first: `patchwarden catalog cache-payloads`' });
        const bytes = Buffer.from(row.bytes);
        reply.type('application/octet-stream').header('cache-control', 'private, max-age=31536000, immutable').header('accept-ranges', 'bytes');
        // an agent resumes a cut-off download with `Range: bytes=N-`; other range forms get the whole file
        const range = /^bytes=(\d{1,12})-$/.exec(req.headers.range ?? '');
        if (range) {
          const from = Number(range[1]);
          if (from >= bytes.length) return reply.code(416).header('content-range', `bytes */${bytes.length}`).send(Buffer.alloc(0));
          return reply.code(206).header('content-range', `bytes ${from}-${bytes.length - 1}/${bytes.length}`).send(bytes.subarray(from));
        }
        return reply.send(bytes);
      },
    );
  };
}
