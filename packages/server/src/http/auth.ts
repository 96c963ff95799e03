/**
 * Every route declares who may call it (`config.auth`); a route without a declaration stops the
 * server at start-up, so no endpoint is ever open by omission.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import { PatchwardenError } from '@patchwarden/core';
import type { DB } from '../db/schema.js';
import { findAdminByToken, type AdminIdentity } from '../auth/store.js';
import { bearerToken } from '../auth/tokens.js';
import { findDeviceByToken, type DeviceIdentity } from '../checkin/service.js';
import { findSiteByToken, type SiteIdentity } from '../sites/store.js';

/**
 * `reader`: an administrator, an enrolled device or a site (signed catalog files, which all
 * fetch). `site`: a local patch server's own credential (the site channel).
 */
export type AuthRequirement = 'public' | 'admin' | 'device' | 'reader' | 'site';
const REQUIREMENTS = new Set<unknown>(['public', 'admin', 'device', 'reader', 'site']);

declare module 'fastify' {
  interface FastifyContextConfig {
    auth?: AuthRequirement;
  }
  interface FastifyInstance {
    /** Every route with its auth requirement, as registered (tests check each one). */
    declaredRoutes: { method: string; url: string; auth: AuthRequirement }[];
  }
  interface FastifyRequest {
    admin?: AdminIdentity;
    device?: DeviceIdentity;
    site?: SiteIdentity;
  }
}

export function requireAdmin(req: FastifyRequest): AdminIdentity {
  if (!req.admin) throw new PatchwardenError('E_UNAUTHENTICATED', 'administrator credentials required');
  return req.admin;
}

export function requireDevice(req: FastifyRequest): DeviceIdentity {
  if (!req.device) throw new PatchwardenError('E_UNAUTHENTICATED', 'device credentials required');
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

export function registerAuth(app: FastifyInstance, db: Kysely<DB>): void {
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
    for (const method of [route.method].flat()) declared.push({ method, url: route.url, auth });
  });

  app.addHook('onRequest', async (req) => {
    const auth = req.routeOptions.config.auth;
    if (auth === 'public' || auth === undefined) return;
    const token = bearerToken(req.headers.authorization);
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
      const admin = await findAdminByToken(db, token);
      if (admin) {
        req.admin = admin;
        return;
      }
      const device = await findDeviceByToken(db, token);
      if (!device || device.status !== 'active') throw new PatchwardenError('E_UNAUTHENTICATED', 'the token is not valid for the catalog', { hint: 'use an admin token, an enrolled device token or a site token' });
      req.device = device;
    } else if (auth === 'site') {
      const site = await activeSite(db, token);
      if (!site) throw new PatchwardenError('E_UNAUTHENTICATED', 'the site token is not valid', { hint: 'an administrator of the central server creates site credentials (POST /api/v1/sites)' });
      req.site = site;
    } else if (auth === 'admin') {
      const admin = await findAdminByToken(db, token);
      if (!admin) throw new PatchwardenError('E_UNAUTHENTICATED', 'the admin token is not valid', { hint: 'create a new one with `patchwarden token create`' });
      req.admin = admin;
    } else {
      const device = await findDeviceByToken(db, token);
      if (!device) throw new PatchwardenError('E_UNAUTHENTICATED', 'the device token is not valid', { hint: 'enroll the agent again' });
      if (device.status !== 'active') {
        throw new PatchwardenError('E_DEVICE_REVOKED', 'this device has been revoked', { hint: 'an administrator must enroll it again' });
      }
      req.device = device;
    }
  });
}
