/** Custom patch bundles and the authors the catalog trusts, over HTTP (see bundles.ts). */
import { z } from 'zod';
import { can } from '../http/auth.js';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { BUNDLE_DEFAULT_MAX_BYTES, parsePublicKeyFile, PatchwardenError } from '@patchwarden/core';
import type { AppContext } from '../http/context.js';
import { currentCustomRole, listCustomRole, uploadBundle } from './bundles.js';
import { importOfflineMetadata } from './tuf/offline.js';

export function bundleRoutes(ctx: AppContext, opts: { maxBundleBytes?: number } = {}): FastifyPluginAsyncZod {
  const maxBytes = opts.maxBundleBytes ?? BUNDLE_DEFAULT_MAX_BYTES;
  return async (app) => {
    // a bundle is sent as it is, one file, and checked before anything of it is stored
    app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer', bodyLimit: maxBytes }, (_req, body, done) => done(null, body));

    app.post(
      '/api/v1/catalog/bundles',
      {
        config: can('publish'),
        bodyLimit: maxBytes,
        schema: {
          tags: ['catalog'],
          summary: 'Upload a custom patch bundle signed by an author (it is listed once an author signs the next custom listing)',
          consumes: ['application/octet-stream'],
        },
      },
      async (req) => {
        if (!Buffer.isBuffer(req.body)) {
          throw new PatchwardenError('E_UNSUPPORTED_MEDIA', 'send the bundle as application/octet-stream', { hint: '`patchwarden patch publish BUNDLE` does this' });
        }
        return uploadBundle(ctx, req.body, maxBytes);
      },
    );

    app.get(
      '/api/v1/catalog/custom-role',
      { config: can('view'), schema: { tags: ['catalog'], summary: 'The current custom listing (signed by authors) and the template of its next version' } },
      async () => currentCustomRole(ctx),
    );

    app.put(
      '/api/v1/catalog/custom-role',
      {
        config: can('publish'),
        bodyLimit: 64 * 1024 * 1024,
        schema: {
          tags: ['catalog'],
          summary: 'A new custom listing, signed by authors: lists the bundles it names, retracts those it leaves out',
          body: z.strictObject({ signed: z.record(z.string(), z.unknown()), signatures: z.array(z.record(z.string(), z.unknown())).max(64) }),
        },
      },
      async (req) => listCustomRole(ctx, req.body),
    );

    app.get(
      '/api/v1/catalog/bundles',
      {
        config: can('view'),
        schema: { tags: ['catalog'], summary: 'Custom patch bundles: uploaded, listed and retracted', querystring: z.strictObject({ id: z.string().max(255).optional() }) },
      },
      async (req) => {
        let q = ctx.db.selectFrom('bundles').selectAll();
        if (req.query.id) q = q.where('patch_id', '=', req.query.id);
        const rows = await q.orderBy('patch_id').orderBy('revision').execute();
        return {
          items: rows.map((r) => ({
            id: r.patch_id,
            revision: r.revision,
            status: r.status,
            sha256: r.sha256,
            length: r.length,
            signers: JSON.parse(r.signers) as string[],
            publishedAt: new Date(r.published_at).toISOString(),
            retractedAt: r.retracted_at === null ? null : new Date(r.retracted_at).toISOString(),
          })),
        };
      },
    );

    app.get(
      '/api/v1/catalog/metadata/:role',
      {
        config: can('view'),
        schema: { tags: ['catalog'], summary: 'The current root or top-level targets document, to sign its next version offline', params: z.strictObject({ role: z.enum(['root', 'targets']) }) },
      },
      async (req, reply) => {
        if (!(await ctx.tuf.initialized())) throw new PatchwardenError('E_NOT_FOUND', 'the catalog has no root yet', { hint: 'make one offline with `patchwarden keys root-init` and import it with `patchwarden catalog import-metadata`' });
        return reply.type('application/json').send((await ctx.tuf.role(req.params.role)).bytes);
      },
    );

    app.post(
      '/api/v1/catalog/metadata',
      {
        config: can('manage'),
        bodyLimit: 4 * 1024 * 1024,
        schema: {
          tags: ['catalog'],
          summary: 'Import root and/or top-level targets signed offline (a first root with its targets, a root rotation, new authors)',
          body: z.strictObject({ root: z.record(z.string(), z.unknown()).optional(), targets: z.record(z.string(), z.unknown()).optional() }),
        },
      },
      async (req) => importOfflineMetadata(ctx.tuf, ctx.now(), req.body),
    );

    app.get(
      '/api/v1/catalog/authors',
      { config: can('view'), schema: { tags: ['catalog'], summary: 'The author keys the catalog trusts for custom/* patches' } },
      async () => ({ holdsTargetsKeys: ctx.tuf.holdsTargetsKeys, items: (await ctx.tuf.currentAuthors()).map((a) => ({ keyid: a.keyid, public: a.public })) }),
    );

    app.post(
      '/api/v1/catalog/authors',
      {
        config: can('manage'),
        schema: {
          tags: ['catalog'],
          summary: 'Trust one more author key for custom/* patches (only where this server holds the targets keys)',
          body: z.strictObject({ key: z.unknown(), remove: z.boolean().default(false) }),
        },
      },
      async (req) => {
        const key = parsePublicKeyFile(req.body.key, 'the key');
        if (key.role !== 'author') throw new PatchwardenError('E_KEY_INVALID', `that is a ${key.role} key; custom patches are signed by author keys`, { hint: 'create one with `patchwarden keys create NAME --role author`' });
        const now = await ctx.tuf.currentAuthors();
        const next = req.body.remove ? now.filter((a) => a.keyid !== key.keyid) : [...now.filter((a) => a.keyid !== key.keyid), key];
        const version = await ctx.tuf.setAuthors(next);
        return { targetsVersion: version, authors: next.map((a) => a.keyid) };
      },
    );
  };
}
