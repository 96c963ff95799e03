/**
 * Databases for tests that need several at once (a central server and local servers). On
 * PostgreSQL each gets a database of its own rather than a schema: Kysely's migrator looks for
 * its tables in every schema of a database, so a second schema opened in one process finds the
 * first one's tables and then fails to use them in its own.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { LightMyRequestResponse } from 'fastify';
import type { Kysely } from 'kysely';
import type { PatchManifest } from '@patchwarden/core';
import { buildApp, type PatchwardenApp } from '../../app.js';
import { createAdminToken } from '../../auth/store.js';
import { openDatabase, type Database } from '../../db/database.js';
import type { DB } from '../../db/schema.js';
import { pgUrl, type TestDatabase } from '../../testing/databases.js';
import { packagePatch } from '../../testing/fixtures.js';
import type { MirrorConfig } from './service.js';

export async function openIsolated(tdb: TestDatabase): Promise<Database> {
  if (tdb.name === 'sqlite') return tdb.open();
  const name = `pw_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: pgUrl! });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const url = pgUrl!.replace(/\/[^/?]*(\?|$)/, `/${name}$1`);
  const d = await openDatabase({ url, poolSize: 4 });
  return {
    ...d,
    async close() {
      await d.close();
      const c = new pg.Client({ connectionString: pgUrl! });
      await c.connect();
      try {
        // the pool's connections end a moment after close() resolves; dropping "with (force)"
        // at once would kill one mid-goodbye, and its client would throw outside any test.
        // So wait for them to go (a few seconds at most), and force only as a last resort.
        for (let i = 0; ; i++) {
          try {
            await c.query(`drop database if exists ${name}`);
            break;
          } catch (err) {
            if ((err as { code?: string }).code !== '55006' || i >= 50) {
              await c.query(`drop database if exists ${name} with (force)`);
              break;
            }
            await new Promise((r) => setTimeout(r, 100));
          }
        }
      } finally {
        await c.end();
      }
    },
  };
}


export function zlibPatch(id: string, fixed: string, revision = 1, pkg = 'zlib1g'): PatchManifest {
  return packagePatch(id, pkg, fixed, { revision, title: `${id} ${fixed}`, fixes: [] });
}

/** A local server (in process) on its own database, pinned to the central root. */
export interface Local {
  app: PatchwardenApp;
  db: Kysely<DB>;
  adminToken: string;
  admin(method: string, url: string, body?: unknown): Promise<LightMyRequestResponse>;
  close(): Promise<void>;
}

export async function startLocal(database: Database, mirror: MirrorConfig, now: () => number): Promise<Local> {
  const app = await buildApp({ db: database.db, dialect: database.dialect, logger: false, now, mirror });
  const { token } = await createAdminToken(database.db, 'local admin', now());
  return {
    app,
    db: database.db,
    adminToken: token,
    admin: (method, url, body) =>
      app.inject({ method: method as 'GET', url, headers: { authorization: `Bearer ${token}` }, ...(body === undefined ? {} : { payload: body as object }) }),
    async close() {
      await app.close();
      await database.close();
    },
  };
}

