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

/** `reader`: an administrator or an enrolled device (signed catalog files, which both fetch). */
export type AuthRequirement = 'public' | 'admin' | 'device' | 'reader';

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

export function registerAuth(app: FastifyInstance, db: Kysely<DB>): void {
  const declared: FastifyInstance['declaredRoutes'] = [];
  app.decorate('declaredRoutes', declared);
  app.addHook('onRoute', (route) => {
    // the console's static files and the API documentation are public by nature
    if (!route.url.startsWith('/api/') || route.url.startsWith('/api/docs')) {
      route.config = { ...route.config, auth: route.config?.auth ?? 'public' };
    }
    const auth = route.config?.auth;
    if (auth !== 'public' && auth !== 'admin' && auth !== 'device' && auth !== 'reader') {
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
        hint: auth === 'admin' ? 'pass an admin token (--token, PATCHWARDEN_TOKEN or the data directory\'s admin-token file)' : 'enroll the agent first',
      });
    }
    if (auth === 'reader') {
      const admin = await findAdminByToken(db, token);
      if (admin) {
        req.admin = admin;
        return;
      }
      const device = await findDeviceByToken(db, token);
      if (!device || device.status !== 'active') throw new PatchwardenError('E_UNAUTHENTICATED', 'the token is not valid for the catalog', { hint: 'use an admin token or an enrolled device token' });
      req.device = device;
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
