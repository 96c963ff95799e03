/**
 * Opens the database named by the configuration: a SQLite file (the default, zero setup) or
 * PostgreSQL (postgres:// URL). Migrations run on open, from one definition for both.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, Migrator, PostgresDialect, SqliteDialect, sql, type LogEvent } from 'kysely';
import pg from 'pg';
import { PatchwardenError } from '@patchwarden/core';
import { migrationProvider } from './migrations.js';
import type { DB } from './schema.js';

export type Dialect = 'sqlite' | 'postgres';

export interface Database {
  db: Kysely<DB>;
  dialect: Dialect;
  /** Where it is, with any password removed, for logs and status pages. */
  location: string;
  close(): Promise<void>;
}

export interface OpenOptions {
  /** `postgres://…` or a SQLite file path (`sqlite:` prefix optional), or `:memory:`. */
  url: string;
  /** PostgreSQL schema to use (tests give each run its own). */
  pgSchema?: string;
  poolSize?: number;
  /** Called after every query with its SQL and duration (slow-query logging, benchmarks). */
  onQuery?: (sql: string, ms: number) => void;
  /**
   * Migrations to run on open: all of them (the default), up to and including the one named (a
   * restore of an older backup), or none (null: a backup reads a running server's database as it is).
   */
  migrateTo?: string | null;
}

export function isPostgresUrl(url: string): boolean {
  return /^postgres(ql)?:\/\//.test(url);
}

export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
}

export async function openDatabase(opts: OpenOptions): Promise<Database> {
  const database = isPostgresUrl(opts.url) ? await openPostgres(opts) : openSqlite(opts.url, opts.onQuery);
  try {
    if (opts.migrateTo !== null) await migrateDatabase(database, opts.migrateTo);
  } catch (err) {
    await database.close();
    throw err;
  }
  return database;
}

function queryLog(onQuery: OpenOptions['onQuery']) {
  return onQuery
    ? (e: LogEvent) => {
        onQuery(e.query.sql, e.queryDurationMillis);
      }
    : undefined;
}

function openSqlite(url: string, onQuery?: OpenOptions['onQuery']): Database {
  const file = url.replace(/^sqlite:/, '');
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
  let sqlite: SQLite.Database;
  try {
    sqlite = new SQLite(file);
  } catch (err) {
    throw new PatchwardenError('E_DATABASE', `cannot open SQLite database ${file}: ${(err as Error).message}`, {
      hint: 'check that the data directory exists and is writable',
      cause: err,
    });
  }
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('synchronous = NORMAL');
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma('busy_timeout = 5000');
  // 64 MiB of page cache (the default is 2 MiB): the state table's index pages stay in memory
  // through a recompute instead of being re-read for each context
  sqlite.pragma('cache_size = -65536');
  const log = queryLog(onQuery);
  const db = new Kysely<DB>({ dialect: new SqliteDialect({ database: withStatementCache(sqlite) }), ...(log ? { log } : {}) });
  return { db, dialect: 'sqlite', location: file, close: () => db.destroy() };
}

/**
 * Kysely prepares every statement anew; compiling SQL costs more than running it for the small
 * statements of a check-in, so prepared statements are kept, keyed by their SQL text.
 */
function withStatementCache(sqlite: SQLite.Database, max = 500): SQLite.Database {
  const cache = new Map<string, SQLite.Statement>();
  const prepare = sqlite.prepare.bind(sqlite);
  return new Proxy(sqlite, {
    get(target, prop, receiver) {
      if (prop !== 'prepare') {
        const v = Reflect.get(target, prop, receiver) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      }
      return (source: string) => {
        let stmt = cache.get(source);
        if (!stmt) {
          stmt = prepare(source);
          if (cache.size >= max) cache.delete(cache.keys().next().value!);
          cache.set(source, stmt);
        }
        return stmt;
      };
    },
  });
}

async function openPostgres(opts: OpenOptions): Promise<Database> {
  const int8 = 20;
  const types = {
    // counts and epoch-millisecond times fit in a double; the driver would return strings
    getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
      oid === int8 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
  };
  const pool = new pg.Pool({
    connectionString: opts.url,
    max: opts.poolSize ?? 10,
    types,
    ...(opts.pgSchema ? { options: `-c search_path=${opts.pgSchema}` } : {}),
  });
  try {
    const c = await pool.connect();
    if (opts.pgSchema) await c.query(`create schema if not exists "${opts.pgSchema.replace(/"/g, '')}"`);
    c.release();
  } catch (err) {
    await pool.end().catch(() => {});
    throw new PatchwardenError('E_DATABASE', `cannot connect to PostgreSQL at ${redactUrl(opts.url)}: ${(err as Error).message}`, {
      hint: 'check that PostgreSQL is running and the URL (user, database, password) is right',
      cause: err,
    });
  }
  // an idle connection that PostgreSQL ends (a restart, a failover, a cut network) leaves the
  // pool, which makes a new one for the next query; unheard, the pool's 'error' would end the server
  pool.on('error', () => {});
  // while PostgreSQL is away, a query that cannot get a connection fails with a coded error
  // (503 E_DATABASE), so callers see "unavailable", not an internal error
  const heard = new WeakSet<pg.PoolClient>();
  const guarded = {
    connect: async () => {
      let client: pg.PoolClient;
      try {
        client = await pool.connect();
      } catch (err) {
        throw databaseUnavailable(err);
      }
      // a connection that dies while a query holds it fails that query and leaves the pool on
      // release; its 'error' event, unheard, would end the server. The event carries the error
      // the query failed with (a socket's ECONNRESET, say), marked here so it is answered as E_DATABASE
      if (!heard.has(client)) {
        heard.add(client);
        client.on('error', (err: Error) => lostConnections.add(err));
      }
      return client;
    },
    end: () => pool.end(),
  };
  const log = queryLog(opts.onQuery);
  const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool: guarded }), ...(log ? { log } : {}) });
  return { db, dialect: 'postgres', location: redactUrl(opts.url), close: () => db.destroy() };
}

/** Errors a query failed with because its PostgreSQL connection died under it. */
const lostConnections = new WeakSet<Error>();

export function isLostConnection(err: unknown): boolean {
  return err instanceof Error && lostConnections.has(err);
}

/** PostgreSQL could not be reached or dropped the connection: the request may be tried again. */
export function databaseUnavailable(err: unknown): PatchwardenError {
  return new PatchwardenError('E_DATABASE', `the database is unavailable: ${(err as Error).message || String(err)}`, {
    hint: 'PostgreSQL is down, restarting or unreachable; try again shortly (agents retry on their own)',
    cause: err,
  });
}

/** Runs the migrations not yet applied: all of them, or up to and including `to`. */
export async function migrateDatabase(database: Database, to?: string): Promise<void> {
  // Kysely looks for its bookkeeping tables in every schema unless told which one: name the
  // current schema, or a database that has them in another schema is taken as migrated
  const schema =
    database.dialect === 'postgres' ? (await sql<{ s: string }>`select current_schema() as s`.execute(database.db)).rows[0]?.s : undefined;
  const migrator = new Migrator({ db: database.db, provider: migrationProvider(database.dialect), ...(schema ? { migrationTableSchema: schema } : {}) });
  const { error, results } = to === undefined ? await migrator.migrateToLatest() : await migrator.migrateTo(to);
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new PatchwardenError('E_DATABASE', `database migration ${failed} failed: ${(error as Error).message}`, {
      cause: error,
    });
  }
}
