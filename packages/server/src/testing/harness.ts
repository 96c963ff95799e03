/** An app on a test database with an admin token and helpers to enroll and check in. */
import { gzipSync } from 'node:zlib';
import type { LightMyRequestResponse } from 'fastify';
import { canonicalDigest, PROTOCOL_VERSION, type SystemFacts } from '@patchwarden/core';
import { buildApp, type PatchwardenApp } from '../app.js';
import { createAdminToken } from '../auth/store.js';
import type { Database } from '../db/database.js';

export interface Harness {
  app: PatchwardenApp;
  database: Database;
  adminToken: string;
  clock: { now: number };
  admin(method: string, url: string, body?: unknown): Promise<LightMyRequestResponse>;
  enroll(opts?: { hostname?: string; group?: string | null }): Promise<{ deviceId: string; token: string; secret: string }>;
  checkin(token: string, body: unknown, opts?: { gzip?: boolean; raw?: string | Buffer; headers?: Record<string, string> }): Promise<LightMyRequestResponse>;
  close(): Promise<void>;
}

export function systemFacts(hostname = 'web-1'): SystemFacts {
  return {
    hostname,
    os: { family: 'linux', distribution: 'debian', name: 'Debian GNU/Linux', prettyName: 'Debian GNU/Linux 12 (bookworm)', version: '12', versionCodename: 'bookworm', machine: 'x86_64', packageArch: 'amd64' },
    kernel: { release: '6.1.0-28-amd64' },
    timezone: 'Europe/Berlin',
    rebootRequired: false,
    agentVersion: '0.1.0',
    collectors: [{ name: 'dpkg', status: 'ok', count: 0 }],
  };
}

export function checkinBody(system: SystemFacts | undefined, inventory: unknown, systemHash?: string) {
  return {
    protocol: PROTOCOL_VERSION,
    systemHash: systemHash ?? canonicalDigest(system),
    ...(system ? { system } : {}),
    inventory,
  };
}

export async function makeHarness(database: Database): Promise<Harness> {
  const clock = { now: Date.parse('2026-11-26T10:00:00Z') };
  const app = await buildApp({ db: database.db, dialect: database.dialect, logger: false, now: () => clock.now });
  const { token: adminToken } = await createAdminToken(database.db, 'test admin', clock.now);
  const admin = (method: string, url: string, body?: unknown) =>
    app.inject({
      method: method as 'GET',
      url,
      headers: { authorization: `Bearer ${adminToken}` },
      ...(body === undefined ? {} : { payload: body as object }),
    });
  return {
    app,
    database,
    adminToken,
    clock,
    admin,
    async enroll(opts = {}) {
      const s = await admin('POST', '/api/v1/enrollment-secrets', { name: 'test', group: opts.group ?? null });
      if (s.statusCode !== 201) throw new Error(`secret: ${s.body}`);
      const secret = s.json().secret as string;
      const r = await app.inject({ method: 'POST', url: '/api/v1/enroll', payload: { secret, system: systemFacts(opts.hostname) } });
      if (r.statusCode !== 200) throw new Error(`enroll: ${r.body}`);
      return { ...(r.json() as { deviceId: string; token: string }), secret };
    },
    checkin(token, body, opts = {}) {
      const headers: Record<string, string> = { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...opts.headers };
      let payload: string | Buffer = opts.raw ?? JSON.stringify(body);
      if (opts.gzip) {
        payload = gzipSync(payload);
        headers['content-encoding'] = 'gzip';
      }
      return app.inject({ method: 'POST', url: '/api/v1/agent/checkin', headers, payload });
    },
    async close() {
      await app.close();
      await database.close();
    },
  };
}
