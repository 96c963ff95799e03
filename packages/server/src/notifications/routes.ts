import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { can } from '../http/auth.js';
import { WebhookEventKind } from '@patchwarden/core';
import type { AppContext } from '../http/context.js';
import { createWebhook, deleteWebhook, listDeliveries, listWebhooks, pingWebhook } from './store.js';
import type { WebhookWorker } from './worker.js';

export const WEBHOOK_URL_MAX = 2048;

/** http or https, a host, no user or password in it (a secret there would be shown in every listing). */
export const WebhookUrl = z
  .string()
  .min(1)
  .max(WEBHOOK_URL_MAX)
  .superRefine((v, ctx) => {
    let u: URL;
    try {
      u = new URL(v);
    } catch {
      ctx.addIssue({ code: 'custom', message: 'not a URL' });
      return;
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') ctx.addIssue({ code: 'custom', message: 'the URL must be http or https' });
    if (u.username || u.password) ctx.addIssue({ code: 'custom', message: 'the URL must not hold a user name or password: give the receiver the signing secret instead' });
    if (!u.hostname) ctx.addIssue({ code: 'custom', message: 'the URL needs a host' });
  });

const Id = z.object({ id: z.uuid() });

export function webhookRoutes(ctx: AppContext, worker: WebhookWorker): FastifyPluginAsyncZod {
  const { db } = ctx;
  return async (app) => {
    const tags = ['webhooks'];

    app.post(
      '/api/v1/webhooks',
      {
        config: can('manage'),
        schema: {
          tags,
          summary: 'Subscribe a URL to events; the answer shows the signing secret, once',
          body: z.strictObject({
            url: WebhookUrl,
            events: z.array(WebhookEventKind).min(1).max(20),
            secret: z.string().min(16).max(256).regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces').optional(),
          }),
        },
      },
      async (req, reply) => reply.status(201).send(await createWebhook(db, ctx.now(), req.body)),
    );
    app.get('/api/v1/webhooks', { config: can('view'), schema: { tags, summary: 'List webhooks (never their secrets)' } }, async () => listWebhooks(db));
    app.delete(
      '/api/v1/webhooks/:id',
      { config: can('manage'), schema: { tags, summary: 'Remove a webhook and its deliveries', params: Id } },
      async (req) => deleteWebhook(db, req.params.id),
    );
    app.post(
      '/api/v1/webhooks/:id/test',
      { config: can('manage'), schema: { tags, summary: 'Queue a ping delivery to a webhook', params: Id } },
      async (req, reply) => {
        const r = await pingWebhook(db, ctx.now(), req.params.id);
        worker.kick();
        return reply.status(202).send(r);
      },
    );
    app.get(
      '/api/v1/webhooks/:id/deliveries',
      {
        config: can('view'),
        schema: {
          tags,
          summary: "A webhook's deliveries, newest first: status, attempts, last answer",
          params: Id,
          querystring: z.strictObject({
            limit: z.coerce.number().int().min(1).max(1000).default(50),
            offset: z.coerce.number().int().min(0).max(10_000_000).default(0),
          }),
        },
      },
      async (req) => listDeliveries(db, req.params.id, req.query),
    );
  };
}
