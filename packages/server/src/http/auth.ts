/**
 * Every route declares who may call it (`config.auth`), and a route for people also the
 * permission it needs (`config.permission`); a route without a declaration stops the server at
 * start-up, so no endpoint is ever open by omission. People come with an API token (Bearer) or
 * a console session (cookie; then every change must carry the session's X-CSRF-Token).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import { PatchwardenError, PERMISSION_NAMES, type Permission } from '@patchwarden/core';
import type { DB } from '../db/schema.js';
import { findAdminByToken, type AdminIdentity } from '../auth/store.js';
import { findSession, SESSION_COOKIE } from '../auth/sessions.js';
import { bearerToken } from '../auth/tokens.js';
import { findDeviceByToken, type DeviceIdentity } from '../checkin/service.js';
import { findSiteByToken, type SiteIdentity } from '../sites/store.js';
import { expectDeviceSignature } from './device-signature.js';

/**
 * `admin`: a user or an API token holding the route's `permission`. `reader`: any user or token,
 * an enrolled device or a site (signed catalog files, which all fetch). `site`: a local patch
 * server's own credential (the site channel).
 */
export type AuthRequirement = 'public' | 'admin' | 'device' | 'reader' | 'site';
const REQUIREMENTS = new Set<unknown>(['public', 'admin', 'device', 'reader', 'site']);

declare module 'fastify' {
  interface FastifyContextConfig {
    auth?: AuthRequirement;
    permission?: Permission;
  }
  interface FastifyInstance {
    /** Every route with its auth requirement, as registered (tests check each one). */
    declaredRoutes: { method: string; url: string; auth: AuthRequirement; permission: Permission | null }[];
  }
  interface FastifyRequest {
    admin?: AdminIdentity;
    device?: DeviceIdentity;
    site?: SiteIdentity;
  }
}

/** The route config of a route for people: who may call it is whoever holds `permission`. */
export function can(permission: Permission): { auth: 'admin'; permission: Permission } {
  return { auth: 'admin', permission };
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export function requireAdmin(req: FastifyRequest): AdminIdentity {
  if (!req.admin) throw new PatchwardenError('E_UNAUTHENTICATED', 'administrator credentials required');
  return req.admin;
}

export function requireDevice(req: FastifyRequest): DeviceIdentity {
  if (!req.device) throw new PatchwardenError('E_UNAUTHENTICATED', 'device credentials required');
  if (req.device.status === 'pending') {
    throw new PatchwardenError('E_DEVICE_PENDING', "this enrollment waits for an administrator's approval: the machine already has an active record", {
      hint: 'an administrator approves it (`patchwarden devices approve ID`) or revokes it; the agent asks again at each check-in',
    });
  }
  return req.device;
}

export function requireSite(req: FastifyRequest): SiteIdentity {
  if (!req.site) throw new PatchwardenError('E_UNAUTHENTICATED', 'site credentials required');
  return req.site;
}

/** A site token that is not revoked; a revoked one is told apart, so a local server can say why its sync stopped. */
async function activeSite(db: Kysely<DB>, token: string): Promise<SiteIdentity | null> {
  const site = await findSiteByToken(db, token);
  if (!site) return null;
  if (site.revoked) throw new PatchwardenError('E_FORBIDDEN', `the credential of site '${site.name}' has been revoked`, { hint: 'an administrator of the central server must create a new site credential' });
  return { kind: 'site', id: site.id, name: site.name, mode: site.mode };
}

function permitted(who: AdminIdentity, permission: Permission): AdminIdentity {
  if (!who.permissions.includes(permission)) {
    const as = who.via === 'token' ? `the token '${who.name}' (${who.role}${who.permissions.length < PERMISSION_NAMES.length ? `, may ${who.permissions.join(', ') || 'nothing'}` : ''})` : `the ${who.role} '${who.name}'`;
    throw new PatchwardenError('E_FORBIDDEN', `${as} lacks the permission '${permission}' this needs`, { hint: 'ask an administrator for a role that has it', details: { permission, role: who.role } });
  }
  return who;
}

export function registerAuth(app: FastifyInstance, db: Kysely<DB>, now: () => number): void {
  const declared: FastifyInstance['declaredRoutes'] = [];
  app.decorate('declaredRoutes', declared);
  app.addHook('onRoute', (route) => {
    // the console's static files and the API documentation are public by nature
    if (!route.url.startsWith('/api/') || route.url.startsWith('/api/docs')) {
      route.config = { ...route.config, auth: route.config?.auth ?? 'public' };
    }
    const auth = route.config?.auth;
    if (auth === undefined || !REQUIREMENTS.has(auth)) {
      throw new Error(`route ${String(route.method)} ${route.url} declares no auth requirement`);
    }
    const permission = route.config?.permission ?? null;
    if (auth === 'admin' && (permission === null || !PERMISSION_NAMES.includes(permission))) {
      throw new Error(`route ${String(route.method)} ${route.url} declares no permission`);
    }
    for (const method of [route.method].flat()) declared.push({ method, url: route.url, auth, permission });
  });

  app.addHook('onRequest', async (req) => {
    const auth = req.routeOptions.config.auth;
    if (auth === 'public' || auth === undefined) return;
    const token = bearerToken(req.headers.authorization);
    const sessionId = req.cookies?.[SESSION_COOKIE];
    if (!token && sessionId && auth === 'admin' && req.headers.authorization === undefined) {
      const who = await findSession(db, sessionId, now());
      if (!who) throw new PatchwardenError('E_UNAUTHENTICATED', 'the session is not valid', { hint: 'sign in again' });
      if (!SAFE_METHODS.has(req.method) && req.headers['x-csrf-token'] !== who.csrf) {
        throw new PatchwardenError('E_FORBIDDEN', 'this change lacks the session\'s CSRF token', { hint: 'send the X-CSRF-Token header that sign-in (or GET /api/v1/whoami) answered' });
      }
      req.admin = permitted(who, req.routeOptions.config.permission!);
      return;
    }
    if (!token) {
      throw new PatchwardenError('E_UNAUTHENTICATED', 'this request needs a bearer token', {
        hint:
          auth === 'admin'
            ? 'pass an admin token (--token, PATCHWARDEN_TOKEN or the data directory\'s admin-token file)'
            : auth === 'site'
              ? 'pass the site token the central server made for this site'
              : 'enroll the agent first',
      });
    }
    if (auth === 'reader') {
      // a site token says what it is by its prefix; the others are tried as before
      if (token.startsWith('pws_')) {
        const site = await activeSite(db, token);
        if (site) {
          req.site = site;
          return;
        }
      }
      const admin = await findAdminByToken(db, token, now());
      if (admin) {
        req.admin = admin;
        return;
      }
      const device = await findDeviceByToken(db, token);
      if (!device || device.status !== 'active') throw new PatchwardenError('E_UNAUTHENTICATED', 'the token is not valid for the catalog', { hint: 'use an admin token, an enrolled device token or a site token' });
      expectDeviceSignature(req, device, now());
      req.device = device;
    } else if (auth === 'site') {
      const site = await activeSite(db, token);
      if (!site) throw new PatchwardenError('E_UNAUTHENTICATED', 'the site token is not valid', { hint: 'an administrator of the central server creates site credentials (POST /api/v1/sites)' });
      req.site = site;
    } else if (auth === 'admin') {
      const admin = await findAdminByToken(db, token, now());
      if (!admin) throw new PatchwardenError('E_UNAUTHENTICATED', 'the token is not valid', { hint: 'sign in, or create a token with `patchwarden token create`' });
      req.admin = permitted(admin, req.routeOptions.config.permission!);
    } else {
      const device = await findDeviceByToken(db, token);
      if (!device) throw new PatchwardenError('E_UNAUTHENTICATED', 'the device token is not valid', { hint: 'enroll the agent again' });
      // a pending device proves who it is like any other; the routes tell it to wait
      expectDeviceSignature(req, device, now());
      if (device.status === 'revoked') {
        throw new PatchwardenError('E_DEVICE_REVOKED', 'this device has been revoked', { hint: 'an administrator must enroll it again' });
      }
      req.device = device;
    }
  });
}
