import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { can } from '../http/auth.js';
import type { AppContext } from '../http/context.js';
import { createSecret, listSecrets, revokeSecret, rotateSecret } from './store.js';

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
          body: z.strictObject({ name: z.string().min(1).max(100), group: z.string().min(1).max(200).nullable().default(null) }),
        },
      },
      async (req, reply) => reply.status(201).send(await createSecret(db, req.body.name, req.body.group, ctx.now())),
    );
    app.post(
      '/api/v1/enrollment-secrets/:id/rotate',
      { config: can('manage'), schema: { tags: ['enrollment'], summary: 'Give a secret a new value; the old one stops working', params: Id } },
      async (req) => rotateSecret(db, req.params.id, ctx.now()),
    );
    app.post(
      '/api/v1/enrollment-secrets/:id/revoke',
      { config: can('manage'), schema: { tags: ['enrollment'], summary: 'Revoke a secret', params: Id } },
      async (req) => revokeSecret(db, req.params.id, ctx.now()),
    );
  };
}
