import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { can } from '../http/auth.js';
import type { AppContext } from '../http/context.js';
import { createGroup, deleteGroup, groupMembers, listGroups, updateGroup } from './store.js';

export const GROUP_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}$/;

/** The query is checked by core's parseDeviceQuery in the store, which names the exact place. */
const Query = z.unknown().describe('a device query (see core targeting.ts): all/any/not, os, arch, label, hostname, package, group');

export function groupRoutes(ctx: AppContext): FastifyPluginAsyncZod {
  const { db } = ctx;
  /** the group as it was, for the audit log */
  const groupBefore = async (ref: string) => (await listGroups(db)).find((g) => g.name === ref || g.id === ref) ?? null;
  return async (app) => {
    app.get('/api/v1/groups', { config: can('view'), schema: { tags: ['groups'], summary: 'List groups, static and dynamic' } }, async () => ({
      items: await listGroups(db),
    }));
    app.post(
      '/api/v1/groups',
      {
        config: can('manage'),
        schema: {
          tags: ['groups'],
          summary: 'Create a group: static, or dynamic with a device query',
          body: z.strictObject({
            name: z.string().regex(GROUP_NAME_RE, 'a group name is 1–100 letters, digits, spaces and . _ -'),
            description: z.string().max(1000).default(''),
            query: Query.optional(),
            testRing: z.boolean().optional(),
            requireTestPass: z.boolean().optional(),
          }),
        },
      },
      async (req, reply) => {
        const { name, description, ...settings } = req.body;
        return reply.status(201).send(await createGroup(db, name, description, ctx.now(), settings));
      },
    );
    app.patch(
      '/api/v1/groups/:ref',
      {
        config: can('manage'),
        schema: {
          tags: ['groups'],
          summary: "Change a group's description, query (dynamic groups), test-ring and require-test-pass settings",
          params: z.object({ ref: z.string().max(200) }),
          body: z.strictObject({ description: z.string().max(1000).optional(), query: Query.optional(), testRing: z.boolean().optional(), requireTestPass: z.boolean().optional() }),
        },
      },
      async (req) => {
        req.auditBefore = await groupBefore(req.params.ref);
        return updateGroup(db, req.params.ref, req.body);
      },
    );
    app.get(
      '/api/v1/groups/:name/members',
      {
        config: can('view'),
        schema: {
          tags: ['groups'],
          summary: 'The active devices of a group (static or dynamic), by hostname',
          params: z.object({ name: z.string().max(200) }),
          querystring: z.strictObject({
            limit: z.coerce.number().int().min(1).max(1000).default(100),
            offset: z.coerce.number().int().min(0).max(10_000_000).default(0),
          }),
        },
      },
      async (req) => groupMembers(db, req.params.name, req.query),
    );
    app.delete(
      '/api/v1/groups/:ref',
      { config: can('manage'), schema: { tags: ['groups'], summary: 'Delete a group (its devices stay, without a group)', params: z.object({ ref: z.string().max(200) }) } },
      async (req, reply) => {
        req.auditBefore = await groupBefore(req.params.ref);
        await deleteGroup(db, req.params.ref);
        return reply.status(204).send();
      },
    );
  };
}
