import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { can } from '../http/auth.js';
import type { AppContext } from '../http/context.js';
import { createSecret, listSecrets, revokeSecret, rotateSecret } from './store.js';
import { createHash } from 'node:crypto';
import { formatEnrollmentString, PatchwardenError } from '@patchwarden/core';

/** The secret with the fingerprints a device pins: the server's CA and the catalog root. */
async function enrollmentStringFor(ctx: AppContext, secret: string): Promise<string> {
  const root = (await ctx.tuf.initialized()) ? createHash('sha256').update(await ctx.tuf.currentRoot()).digest('hex') : null;
  return formatEnrollmentString({ secret, caSha256: ctx.tls?.caSha256 ?? null, rootSha256: root });
}

const Id = z.object({ id: z.string().min(1).max(100) });

export function enrollmentSecretRoutes(ctx: AppContext): FastifyPluginAsyncZod {
  const { db } = ctx;
  return async (app) => {
    app.get('/api/v1/enrollment-secrets', { config: can('view'), schema: { tags: ['enrollment'], summary: 'List enrollment secrets (never their values)' } }, async () => ({
      items: await listSecrets(db),
    }));
    app.post(
      '/api/v1/enrollment-secrets',
      {
        config: can('manage'),
        schema: {
          tags: ['enrollment'],
          summary: 'Create an enrollment secret; its value is in this answer only',
          body: z.strictObject({
            name: z.string().min(1).max(100),
            group: z.string().min(1).max(200).nullable().default(null),
            expiresInDays: z.number().int().min(1).max(3650).nullish(),
            maxUses: z.number().int().min(1).max(1_000_000).nullish(),
          }),
        },
      },
      async (req, reply) => {
        const b = req.body;
        const s = await createSecret(db, b.name, b.group, ctx.now(), { expiresAt: b.expiresInDays ? ctx.now() + b.expiresInDays * 86_400_000 : null, maxUses: b.maxUses ?? null });
        return reply.status(201).send({ ...s, enrollmentString: await enrollmentStringFor(ctx, s.secret) });
      },
    );
    app.post(
      '/api/v1/enrollment-secrets/:id/rotate',
      { config: can('manage'), schema: { tags: ['enrollment'], summary: 'Give a secret a new value; the old one stops working', params: Id } },
      async (req) => {
        const s = await rotateSecret(db, req.params.id, ctx.now());
        return { ...s, enrollmentString: await enrollmentStringFor(ctx, s.secret) };
      },
    );
    app.get(
      '/api/v1/tls/ca.crt',
      { config: { auth: 'public' }, schema: { tags: ['enrollment'], summary: "The certificate devices pin (PEM); they check its SHA-256 against the enrollment string's before trusting it" } },
      async (_req, reply) => {
        if (!ctx.tls) throw new PatchwardenError('E_NOT_FOUND', 'this server speaks plain HTTP: it has no certificate', { hint: 'start it without --insecure-http' });
        return reply.type('application/x-pem-file').send(ctx.tls.caPem);
      },
    );
    app.post(
      '/api/v1/enrollment-secrets/:id/revoke',
      { config: can('manage'), schema: { tags: ['enrollment'], summary: 'Revoke a secret', params: Id } },
      async (req) => revokeSecret(db, req.params.id, ctx.now()),
    );
  };
}
