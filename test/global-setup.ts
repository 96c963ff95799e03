/**
 * Decides once whether the PostgreSQL suite can run, and tells the test workers through
 * PATCHWARDEN_TEST_PG_READY (workers are forked after this runs and inherit the environment).
 * Without PostgreSQL a user's `npm test` runs the SQLite suite and says plainly that the
 * PostgreSQL suite did not run; under CI a missing PostgreSQL fails the run.
 * The same for the console's browser suite (test/console), which needs Debian's Chromium.
 */
import { existsSync } from 'node:fs';
import pg from 'pg';
import { CHROMIUM, CHROMIUM_MISSING } from './console/availability.js';

export default async function setup() {
  if (!existsSync(CHROMIUM)) {
    if (process.env.CI === 'true') throw new Error(`${CHROMIUM_MISSING} (looked for ${CHROMIUM}).`);
    process.env.PATCHWARDEN_BROWSER_SUITE_SKIPPED = `${CHROMIUM} not found; ${CHROMIUM_MISSING}`;
  }
  const url = process.env.PATCHWARDEN_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test';
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('select 1');
    process.env.PATCHWARDEN_TEST_PG_READY = url;
  } catch (err) {
    const why = `PostgreSQL at ${url.replace(/\/\/[^@]*@/, '//…@')} did not answer: ${(err as Error).message}`;
    if (process.env.CI === 'true') {
      throw new Error(`${why}. Under CI the PostgreSQL suite must run: start PostgreSQL (see .ci/run).`);
    }
    process.env.PATCHWARDEN_TEST_PG_READY = '';
    process.env.PATCHWARDEN_PG_SUITE_SKIPPED = why;
  } finally {
    await client.end().catch(() => {});
  }
}
