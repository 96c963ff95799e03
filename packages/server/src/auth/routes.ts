/**
 * Sign-in and sign-out, who am I, users (administrators manage them) and API tokens (everyone
 * makes their own, never with more than they hold; administrators also make service tokens).
 */
import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { FastifyRequest } from 'fastify';
import { Password, PatchwardenError, PERMISSION_NAMES, PermissionName, RoleName, UserName, type WhoAmI } from '@patchwarden/core';
import { can, requireAdmin } from '../http/auth.js';
import type { AppContext } from '../http/context.js';
import type { AuditLog } from '../audit/log.js';
import { actorOf } from '../audit/record.js';
import { createSession, endSession, findSession, SESSION_COOKIE, SESSION_LIMITS } from './sessions.js';
import { createAdminToken, listTokens, revokeToken, type AdminIdentity } from './store.js';
import { authenticate, createUser, getUser, groupNamesOf, listUsers, updateUser } from './users.js';

const GroupRefs = z.array(z.string().min(1).max(200)).max(100);

export function whoAmI(a: AdminIdentity, groupNames: string[] | null): WhoAmI {
  return {
    kind: a.via === 'session' ? 'user' : 'token',
    id: a.id,
    name: a.name,
    user: a.userName,
    role: a.role,
    permissions: a.permissions,
    groups: groupNames,
    expiresAt: a.expiresAt === null ? null : new Date(a.expiresAt).toISOString(),
    ...(a.csrf ? { csrf: a.csrf } : {}),
  };
}

export function accessRoutes(ctx: AppContext, audit: AuditLog, opts: { secureCookies: boolean; loginPerMinute: number }): FastifyPluginAsyncZod {
  const { db } = ctx;
  const cookie = (maxAgeSeconds: number) => ({ path: '/', httpOnly: true, sameSite: 'strict' as const, secure: opts.secureCookies, maxAge: maxAgeSeconds });
  const log = (req: FastifyRequest, action: string, detail: unknown, actor = actorOf(req)) => {
    req.audited = true;
    return audit.append({ at: ctx.now(), actor, action, target: null, detail, ip: req.ip });
  };
  return async (app) => {
    app.post(
      '/api/v1/auth/login',
      {
        config: { auth: 'public', rateLimit: opts.loginPerMinute > 0 ? { max: opts.loginPerMinute, timeWindow: 60_000, keyGenerator: (req) => req.ip } : false },
        schema: { tags: ['access'], summary: 'Sign in with a user name and password: sets the session cookie and answers the CSRF token', body: z.strictObject({ name: z.string().min(1).max(64), password: z.string().min(1).max(256) }) },
      },
      async (req, reply) => {
        let user: { id: string; name: string };
        try {
          user = await authenticate(db, ctx.now(), req.body.name, req.body.password);
        } catch (err) {
          await log(req, 'sign-in failed', { name: req.body.name, code: (err as PatchwardenError).code }, { kind: 'anonymous', id: null, name: req.body.name });
          throw err;
        }
        const s = await createSession(db, user.id, ctx.now());
        reply.setCookie(SESSION_COOKIE, s.id, cookie(SESSION_LIMITS.maxMs / 1000));
        await log(req, 'sign-in', null, { kind: 'user', id: user.id, name: user.name });
        const u = await getUser(db, user.id, ctx.now());
        return { user: u.name, role: u.role, groups: u.groups, csrf: s.csrf, expiresAt: new Date(s.expiresAt).toISOString() };
      },
    );
    app.post('/api/v1/auth/logout', { config: { auth: 'public' }, schema: { tags: ['access'], summary: 'Sign out: ends this session' } }, async (req, reply) => {
      const id = req.cookies[SESSION_COOKIE];
      if (id) await endSession(db, id);
      reply.clearCookie(SESSION_COOKIE, { path: '/' });
      req.audited = !id;
      return reply.status(204).send();
    });
    app.get('/api/v1/auth/session', { config: { auth: 'public' }, schema: { tags: ['access'], summary: 'Whether the session cookie signs this browser in (and its CSRF token): the console asks on load' } }, async (req) => {
      const id = req.cookies[SESSION_COOKIE];
      const who = id ? await findSession(db, id, ctx.now()).catch(() => null) : null;
      return who ? { signedIn: true, user: who.name, role: who.role, csrf: who.csrf } : { signedIn: false };
    });
    app.get('/api/v1/whoami', { config: can('view'), schema: { tags: ['access'], summary: 'Who the caller is: user or token, role, permissions, groups (and the CSRF token of a session)' } }, async (req) => {
      const a = requireAdmin(req);
      return whoAmI(a, await groupNamesOf(db, a.groups));
    });

    // ── users ──
    app.get('/api/v1/users', { config: can('manage'), schema: { tags: ['access'], summary: 'List users' } }, async () => {
      const items = await listUsers(db, ctx.now());
      return { items, total: items.length };
    });
    app.post(
      '/api/v1/users',
      {
        config: can('manage'),
        schema: { tags: ['access'], summary: 'Create a user (operators may be limited to groups)', body: z.strictObject({ name: UserName, password: Password, role: RoleName, groups: GroupRefs.nullish() }) },
      },
      async (req, reply) => reply.status(201).send(await createUser(db, ctx.now(), req.body)),
    );
    app.patch(
      '/api/v1/users/:ref',
      {
        config: can('manage'),
        schema: {
          tags: ['access'],
          summary: "Change a user's role, groups or password, disable or unlock it; its sessions end",
          params: z.object({ ref: z.string().min(1).max(100) }),
          body: z.strictObject({ role: RoleName.optional(), groups: GroupRefs.nullish(), password: Password.optional(), disabled: z.boolean().optional(), unlock: z.boolean().optional() }),
        },
      },
      async (req) => {
        req.auditBefore = await getUser(db, req.params.ref, ctx.now());
        return updateUser(db, ctx.now(), req.params.ref, req.body);
      },
    );

    // ── API tokens ──
    app.get('/api/v1/tokens', { config: can('view'), schema: { tags: ['access'], summary: 'Your API tokens (all tokens for administrators)' } }, async (req) => {
      const a = requireAdmin(req);
      const items = await listTokens(db, a.permissions.includes('manage') ? undefined : (a.userId ?? '-'));
      return { items, total: items.length };
    });
    app.post(
      '/api/v1/tokens',
      {
        config: can('view'),
        schema: {
          tags: ['access'],
          summary: 'Create an API token acting for you, narrowed to scopes and with an expiry; administrators may make a service token with a role. The token is in this answer only.',
          body: z.strictObject({
            name: z.string().min(1).max(100),
            scopes: z.array(PermissionName).min(1).max(10).nullish(),
            expiresInDays: z.number().int().min(1).max(3650).nullish(),
            service: z.strictObject({ role: RoleName }).optional(),
          }),
        },
      },
      async (req, reply) => {
        const a = requireAdmin(req);
        const b = req.body;
        if (b.service && !a.permissions.includes('manage')) throw new PatchwardenError('E_FORBIDDEN', 'only administrators make service tokens');
        if (!b.service && a.userId === null) throw new PatchwardenError('E_VALIDATION', 'a service token acts for no user', { hint: 'pass service: { role } to make another service token' });
        // never more than the caller holds
        const wanted = b.scopes ?? a.permissions;
        const over = wanted.filter((p) => !a.permissions.includes(p));
        if (over.length) throw new PatchwardenError('E_FORBIDDEN', `you cannot give a token permissions you lack: ${over.join(', ')}`);
        const expiresAt = b.expiresInDays ? ctx.now() + b.expiresInDays * 86_400_000 : null;
        const t = await createAdminToken(db, b.name, ctx.now(), {
          ...(b.service ? { role: b.service.role } : { userId: a.userId }),
          scopes: b.scopes || a.permissions.length < PERMISSION_NAMES.length ? wanted : null,
          expiresAt,
        });
        return reply.status(201).send({ id: t.id, token: t.token, name: b.name, scopes: wanted, expiresAt: expiresAt === null ? null : new Date(expiresAt).toISOString() });
      },
    );
    app.post(
      '/api/v1/tokens/:id/revoke',
      { config: can('view'), schema: { tags: ['access'], summary: 'Revoke a token (your own; administrators any)', params: z.object({ id: z.uuid() }) } },
      async (req) => {
        const a = requireAdmin(req);
        await revokeToken(db, req.params.id, ctx.now(), a.permissions.includes('manage') ? undefined : (a.userId ?? '-'));
        return { revoked: req.params.id };
      },
    );

    // ── the audit log ──
    app.get(
      '/api/v1/audit',
      {
        config: can('audit'),
        schema: {
          tags: ['access'],
          summary: 'The audit log, newest first',
          querystring: z.strictObject({
            limit: z.coerce.number().int().min(1).max(1000).default(100),
            offset: z.coerce.number().int().min(0).max(10_000_000).default(0),
            action: z.string().min(1).max(200).optional(),
            actor: z.string().min(1).max(200).optional(),
            since: z.iso.datetime().optional(),
          }),
        },
      },
      async (req) => audit.list({ ...req.query, since: req.query.since ? Date.parse(req.query.since) : undefined }),
    );
    app.get('/api/v1/audit/verify', { config: can('audit'), schema: { tags: ['access'], summary: 'Verify the whole audit chain against the audit key and anchor' } }, async () => audit.verify());
  };
}
