import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { AppContext } from '../http/context.js';
import { createGroup, deleteGroup, listGroups } from './store.js';

export const GROUP_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}$/;

export function groupRoutes(ctx: AppContext): FastifyPluginAsyncZod {
  const { db } = ctx;
  return async (app) => {
    const admin = { auth: 'admin' as const };
    app.get('/api/v1/groups', { config: admin, schema: { tags: ['groups'], summary: 'List static groups' } }, async () => ({
      items: await listGroups(db),
    }));
    app.post(
      '/api/v1/groups',
      {
        config: admin,
        schema: {
          tags: ['groups'],
          summary: 'Create a static group',
          body: z.strictObject({
            name: z.string().regex(GROUP_NAME_RE, 'a group name is 1–100 letters, digits, spaces and . _ -'),
            description: z.string().max(1000).default(''),
          }),
        },
      },
      async (req, reply) => reply.status(201).send(await createGroup(db, req.body.name, req.body.description, ctx.now())),
    );
    app.delete(
      '/api/v1/groups/:ref',
      { config: admin, schema: { tags: ['groups'], summary: 'Delete a group (its devices stay, without a group)', params: z.object({ ref: z.string().max(200) }) } },
      async (req, reply) => {
        await deleteGroup(db, req.params.ref);
        return reply.status(204).send();
      },
    );
  };
}
