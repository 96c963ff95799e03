/**
 * Decides once whether the PostgreSQL suite can run. Without PostgreSQL a user's `npm test`
 * runs the SQLite suite and says plainly that the PostgreSQL suite did not run; under CI a
 * missing PostgreSQL fails the run.
 */
import pg from 'pg';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    pgUrl: string | null;
  }
}

export default async function setup(project: TestProject) {
  const url = process.env.PATCHWARDEN_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test';
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('select 1');
    project.provide('pgUrl', url);
  } catch (err) {
    const why = `PostgreSQL at ${url.replace(/\/\/[^@]*@/, '//…@')} did not answer: ${(err as Error).message}`;
    if (process.env.CI === 'true') {
      throw new Error(`${why}. Under CI the PostgreSQL suite must run: start PostgreSQL (see .ci/run).`);
    }
    process.env.PATCHWARDEN_PG_SUITE_SKIPPED = why;
    project.provide('pgUrl', null);
  } finally {
    await client.end().catch(() => {});
  }
}
