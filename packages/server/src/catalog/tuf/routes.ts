/**
 * The signed catalog over HTTP, as TUF clients (agents, local servers) expect it: metadata and
 * target files by path, byte for byte as signed. Reading needs an admin or device token; the
 * files verify themselves, so the server adds nothing to them.
 */
import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { PatchwardenError } from '@patchwarden/core';
import type { AppContext } from '../../http/context.js';

// metadata/{N}.{role}.json, metadata/timestamp.json, targets/{ns}/{sha256}.{name}
const SERVED = /^(metadata\/(timestamp|\d{1,10}\.[A-Za-z0-9._%-]{1,200})\.json|targets\/[a-z0-9][a-z0-9._+~-]{0,63}\/[0-9a-f]{64}\.[A-Za-z0-9._+~%-]{1,300})$/;

export function tufRoutes(ctx: AppContext): FastifyPluginAsyncZod {
  return async (app) => {
    app.get(
      '/api/v1/tuf/*',
      {
        config: { auth: 'reader' },
        schema: {
          tags: ['catalog'],
          summary: 'A file of the signed catalog (TUF metadata or a target), byte for byte as signed',
          params: z.object({ '*': z.string().max(512) }),
        },
      },
      async (req, reply) => {
        const path = req.params['*'];
        if (!SERVED.test(path)) throw new PatchwardenError('E_NOT_FOUND', `the catalog has no file ${JSON.stringify(path.slice(0, 100))}`);
        const bytes = await ctx.tuf.file(path);
        if (!bytes) throw new PatchwardenError('E_NOT_FOUND', `the catalog has no file ${path}`);
        return reply.type(path.endsWith('.json') ? 'application/json' : 'application/octet-stream').header('cache-control', 'no-store').send(bytes);
      },
    );

    app.get(
      '/api/v1/tuf-root',
      // public: root metadata holds public keys only, and a device checks it (against a sha256 it
      // was given out of band) before it sends its enrollment secret
      { config: { auth: 'public' }, schema: { tags: ['catalog'], summary: 'The newest root metadata, what agents and local servers pin (compare its sha256 out of band)' } },
      async (_req, reply) => reply.type('application/json').send(await ctx.tuf.currentRoot()),
    );
  };
}
