/**
 * The databases every store test runs against: a SQLite file and, when the test setup found
 * one, PostgreSQL (each test gets a schema of its own, dropped afterwards).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { openDatabase, type Database } from '../db/database.js';

export interface TestDatabase {
  name: 'sqlite' | 'postgres';
  /** false: PostgreSQL is not reachable on this machine (never under CI: the setup fails then). */
  available: boolean;
  open(): Promise<Database>;
}

export const pgUrl = process.env.PATCHWARDEN_TEST_PG_READY || null;

export const testDatabases: TestDatabase[] = [
  {
    name: 'sqlite',
    available: true,
    async open() {
      const dir = mkdtempSync(join(tmpdir(), 'pw-sqlite-'));
      const d = await openDatabase({ url: join(dir, 'test.db') });
      return {
        ...d,
        async close() {
          await d.close();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  },
  {
    name: 'postgres',
    available: pgUrl !== null,
    async open() {
      const schema = `pw_test_${randomBytes(6).toString('hex')}`;
      const d = await openDatabase({ url: pgUrl!, pgSchema: schema, poolSize: 4 });
      return {
        ...d,
        async close() {
          await d.close();
          const c = new pg.Client({ connectionString: pgUrl! });
          await c.connect();
          await c.query(`drop schema if exists "${schema}" cascade`);
          await c.end();
        },
      };
    },
  },
];
