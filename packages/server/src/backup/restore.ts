/**
 * `patchwarden restore`: a backup into a fresh data directory and an empty database (SQLite in
 * the data directory by default, or PostgreSQL), either dialect from either.
 *
 * Order: read the manifest and refuse a newer schema; refuse a target that is not empty; verify
 * every entry's size and sha256 (nothing is written before this); then migrate the new database
 * to the backup's schema version, insert every row in one transaction (tables in foreign-key
 * order; auto-increment keys set above the restored rows), migrate to this server's latest
 * schema, and write the keys (0600) and other files. A failure at any point removes what the
 * restore made: the database file or the tables it created, and the files it wrote.
 */
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve, sep } from 'node:path';
import { sql } from 'kysely';
import { PatchwardenError } from '@patchwarden/core';
import { isPostgresUrl, migrateDatabase, openDatabase, type Database } from '../db/database.js';
import { migrationProvider } from '../db/migrations.js';
import { ArchiveReader, dataDirPathOf, invalid, MANIFEST_NAME, type BackupManifest } from './archive.js';
import { columnsOf, dropAll, foreignKeys, insertOrder, listRelations, listTables, writeSequences, type AnyDb, type ForeignKey } from './tables.js';

export interface RestoreProgress {
  phase: 'verify' | 'rows' | 'files';
  /** bytes verified, rows inserted, files written */
  done: number;
  total: number;
  item?: string;
}

export interface RestoreOptions {
  /** the backup file */
  archive: string;
  /** the new data directory: absent or empty */
  dataDir: string;
  /** `postgres://…` (an empty database) or a SQLite file; default `<dataDir>/patchwarden.db` */
  database?: string;
  pgSchema?: string;
  onProgress?: (p: RestoreProgress) => void;
}

export interface RestoreResult {
  dataDir: string;
  database: string;
  dialect: Database['dialect'];
  from: { dialect: Database['dialect']; createdAt: string; serverVersion: string; migration: string };
  /** the schema after the restore (this server's newest migration) */
  migration: string;
  tables: { name: string; rows: number }[];
  rows: number;
  content: number;
  keys: number;
  files: number;
  ms: number;
  warnings: string[];
}

const PARAMS_PER_STATEMENT = 10_000;
const BATCH_BLOB_BYTES = 16 * 1024 * 1024;

function dirIsEmpty(dir: string): boolean {
  return readdirSync(dir).length === 0;
}

/** Every size and hash of the manifest against the archive, and nothing in the archive it does not name. */
async function verify(archive: ArchiveReader, m: BackupManifest, progress: (p: RestoreProgress) => void): Promise<void> {
  const named = new Map<string, { size: number; sha256: string }>();
  for (const t of m.tables) {
    if (t.file !== `db/${t.name}.jsonl`) throw invalid(`table ${t.name} names the file ${JSON.stringify(t.file)}`);
    if (named.has(t.file)) throw invalid(`${t.file} is named twice`);
    if (new Set(t.columns).size !== t.columns.length) throw invalid(`table ${t.name} names a column twice`);
    named.set(t.file, t);
  }
  for (const f of m.files) {
    const kindOk =
      (f.kind === 'content' && f.path === `content/${f.sha256}`) || (f.kind === 'key' && f.path.startsWith('keys/')) || (f.kind === 'file' && f.path.startsWith('files/'));
    if (!kindOk || !archive.entries.has(f.path)) {
      // a name outside the data directory can never be an entry (the reader refuses those)
      throw invalid(`the manifest names ${JSON.stringify(f.path.slice(0, 200))}, which is not an entry of this backup or not a safe path`);
    }
    if (named.has(f.path)) throw invalid(`${f.path} is named twice`);
    named.set(f.path, f);
  }
  for (const name of archive.entries.keys()) {
    if (name !== MANIFEST_NAME && !named.has(name)) throw invalid(`${name} is in the archive but not in the manifest`);
  }
  const total = [...named.values()].reduce((a, e) => a + e.size, 0);
  let done = 0;
  progress({ phase: 'verify', done, total });
  for (const [name, want] of named) {
    const e = archive.entries.get(name);
    if (!e) throw invalid(`${name} is missing (the archive is truncated?)`);
    if (e.size !== want.size) throw invalid(`${name} is ${e.size} bytes, the manifest says ${want.size}`);
    const got = await archive.sha256(name);
    if (got !== want.sha256) {
      throw new PatchwardenError('E_DIGEST_MISMATCH', `${name} in the backup does not match its sha256 in the manifest (the file was altered or damaged)`, {
        hint: 'restore from another copy of the backup; nothing was written',
        details: { entry: name, expected: want.sha256, actual: got },
      });
    }
    done += want.size;
    progress({ phase: 'verify', done, total, item: name });
  }
}

/** The lines of a table file, checked against its hash again as they are read. */
async function* tableRows(archive: ArchiveReader, t: BackupManifest['tables'][number]): AsyncGenerator<unknown[]> {
  const hash = createHash('sha256');
  let rest = Buffer.alloc(0);
  let n = 0;
  const parse = (line: Buffer): unknown[] => {
    n++;
    let v: unknown;
    try {
      v = JSON.parse(line.toString('utf8'));
    } catch {
      throw invalid(`${t.file} line ${n} is not JSON`);
    }
    if (!Array.isArray(v) || v.length !== t.columns.length) throw invalid(`${t.file} line ${n} is not a row of ${t.columns.length} values`);
    return v;
  };
  for await (const chunk of archive.chunks(t.file)) {
    hash.update(chunk);
    let buf = rest.length ? Buffer.concat([rest, chunk]) : chunk;
    let nl: number;
    while ((nl = buf.indexOf(0x0a)) >= 0) {
      yield parse(buf.subarray(0, nl));
      buf = buf.subarray(nl + 1);
    }
    rest = Buffer.from(buf);
  }
  if (rest.length) throw invalid(`${t.file} does not end with a complete line`);
  if (hash.digest('hex') !== t.sha256) throw new PatchwardenError('E_DIGEST_MISMATCH', `${t.file} changed while being restored`);
  if (n !== t.rows) throw invalid(`${t.file} holds ${n} rows, the manifest says ${t.rows}`);
}

/** Rows of a table that references itself, parents first. */
function parentsFirst(rows: unknown[][], columns: string[], fks: ForeignKey[]): unknown[][] {
  const key = (vals: unknown[]) => JSON.stringify(vals);
  const refs = fks.map((fk) => ({ from: fk.columns.map((c) => columns.indexOf(c)), to: fk.refColumns.map((c) => columns.indexOf(c)) }));
  if (refs.some((r) => r.from.includes(-1) || r.to.includes(-1))) return rows;
  const out: unknown[][] = [];
  const have = refs.map(() => new Set<string>());
  let left = rows;
  while (left.length) {
    const next: unknown[][] = [];
    for (const row of left) {
      const ready = refs.every((r, i) => {
        const v = r.from.map((x) => row[x]);
        return v.some((x) => x === null) || have[i]!.has(key(v)) || key(v) === key(r.to.map((x) => row[x]));
      });
      if (!ready) {
        next.push(row);
        continue;
      }
      out.push(row);
      refs.forEach((r, i) => have[i]!.add(key(r.to.map((x) => row[x]))));
    }
    // a reference to a row that is not there: insert them anyway and let the database say so
    if (next.length === left.length) return [...out, ...next];
    left = next;
  }
  return out;
}

export async function restore(opts: RestoreOptions): Promise<RestoreResult> {
  const started = performance.now();
  const progress = opts.onProgress ?? (() => {});
  const dataDir = resolve(opts.dataDir);
  const url = opts.database ?? join(dataDir, 'patchwarden.db');
  const sqliteFile = isPostgresUrl(url) ? null : resolve(url.replace(/^sqlite:/, ''));
  const archive = await ArchiveReader.open(resolve(opts.archive));
  let database: Database | null = null;
  let createdDir = false;
  let dbTouched = false;
  const written: string[] = [];
  try {
    const m = await archive.manifest();

    // this server's schema must know every migration the backup's database had
    const known = Object.keys(await migrationProvider(sqliteFile ? 'sqlite' : 'postgres').getMigrations()).sort();
    const unknown = m.schema.migrations.filter((x) => !known.includes(x));
    if (unknown.length || m.schema.migration !== m.schema.migrations[m.schema.migrations.length - 1] || !known.includes(m.schema.migration)) {
      throw new PatchwardenError('E_BACKUP_INVALID', `the backup's schema (${m.schema.migration}) is newer than this server's (${known[known.length - 1]}): ${unknown.join(', ') || m.schema.migration} unknown here`, {
        hint: `restore with the Patchwarden version that made it (${m.serverVersion}) or a newer one`,
        details: { backup: m.schema.migration, server: known[known.length - 1], unknown },
      });
    }

    // the target: a new or empty data directory, an empty database
    const notEmpty = (what: string) =>
      new PatchwardenError('E_CONFLICT', `${what} is not empty: a restore goes into a fresh data directory and an empty database`, {
        hint: 'restore into a new --data-dir (and a new, empty database with --database), or move the old one aside first',
      });
    if (existsSync(dataDir)) {
      if (!statSync(dataDir).isDirectory()) throw notEmpty(`${dataDir} (not a directory)`);
      if (!dirIsEmpty(dataDir)) throw notEmpty(`the data directory ${dataDir}`);
    }
    if (sqliteFile) {
      for (const s of ['', '-wal', '-shm', '-journal']) {
        if (existsSync(sqliteFile + s) && (s !== '' || lstatSync(sqliteFile).size > 0)) throw notEmpty(`the database ${sqliteFile}`);
      }
    } else {
      database = await openDatabase({ url, migrateTo: null, poolSize: 2, ...(opts.pgSchema ? { pgSchema: opts.pgSchema } : {}) });
      const rels = await listRelations(database.db as AnyDb, database.dialect);
      if (rels.length) throw notEmpty(`the database ${database.location} (it has ${rels.length} tables and views: ${rels.slice(0, 5).map((r) => r.name).join(', ')}${rels.length > 5 ? ', …' : ''})`);
    }

    // every byte checked before anything is written
    await verify(archive, m, progress);

    // ─── writing from here on; a failure undoes it ───
    if (!existsSync(dataDir)) {
      mkdirSync(dataDir, { recursive: true, mode: 0o700 });
      createdDir = true;
    }
    dbTouched = true;
    if (database) await migrateDatabase(database, m.schema.migration);
    else database = await openDatabase({ url: sqliteFile!, migrateTo: m.schema.migration });
    const db = database.db as AnyDb;
    const dialect = database.dialect;

    const targetTables = await listTables(db, dialect);
    const byName = new Map(m.tables.map((t) => [t.name, t]));
    for (const t of m.tables) {
      if (!targetTables.includes(t.name)) throw invalid(`table ${t.name} is not part of the schema at ${m.schema.migration}`);
      const cols = new Set((await columnsOf(db, dialect, t.name)).map((c) => c.name));
      const extra = t.columns.filter((c) => !cols.has(c));
      if (extra.length) throw invalid(`table ${t.name} has columns the schema at ${m.schema.migration} does not: ${extra.join(', ')}`);
    }
    const fks = await foreignKeys(db, dialect, targetTables);
    const order = insertOrder(targetTables, fks).filter((t) => byName.has(t));
    const totalRows = m.tables.reduce((a, t) => a + t.rows, 0);
    const contentSha = new Set(m.files.filter((f) => f.kind === 'content').map((f) => f.sha256));

    const decode = async (v: unknown, where: string): Promise<unknown> => {
      if (v === null || typeof v === 'string' || typeof v === 'number') return v;
      if (typeof v === 'boolean') return dialect === 'sqlite' ? Number(v) : v;
      if (typeof v === 'object' && !Array.isArray(v)) {
        const keys = Object.keys(v);
        const o = v as Record<string, unknown>;
        if (keys.length === 1 && typeof o.$bytes === 'string') {
          if (!contentSha.has(o.$bytes)) throw invalid(`${where} refers to content/${o.$bytes.slice(0, 64)}, which the backup does not hold`);
          const b = await archive.read(`content/${o.$bytes}`);
          if (createHash('sha256').update(b).digest('hex') !== o.$bytes) throw new PatchwardenError('E_DIGEST_MISMATCH', `content/${o.$bytes} changed while being restored`);
          return b;
        }
        if (keys.length === 1 && typeof o.$bigint === 'string' && /^-?\d{1,20}$/.test(o.$bigint)) return dialect === 'sqlite' ? BigInt(o.$bigint) : o.$bigint;
      }
      throw invalid(`${where} holds a value a backup does not write`);
    };

    const tableCounts: { name: string; rows: number }[] = [];
    await db.transaction().execute(async (tx) => {
      // checked at commit (SQLite); PostgreSQL's are satisfied by the order
      if (dialect === 'sqlite') await sql`pragma defer_foreign_keys = on`.execute(tx);
      let done = 0;
      progress({ phase: 'rows', done, total: totalRows });
      for (const name of order) {
        const t = byName.get(name)!;
        const per = Math.max(1, Math.min(1000, Math.floor(PARAMS_PER_STATEMENT / t.columns.length)));
        const cols = sql.join(t.columns.map((c) => sql.ref(c)));
        let batch: unknown[][] = [];
        let blobBytes = 0;
        const flush = async () => {
          if (!batch.length) return;
          try {
            await sql`insert into ${sql.table(name)} (${cols}) values ${sql.join(batch.map((r) => sql`(${sql.join(r)})`))}`.execute(tx);
          } catch (err) {
            throw invalid(`the rows of ${name} do not fit the schema: ${(err as Error).message.slice(0, 300)}`);
          }
          done += batch.length;
          progress({ phase: 'rows', done, total: totalRows, item: name });
          batch = [];
          blobBytes = 0;
        };
        const self = fks.filter((f) => f.table === name && f.ref === name);
        let count = 0;
        let source: AsyncIterable<unknown[]> = tableRows(archive, t);
        if (self.length) {
          const all: unknown[][] = [];
          for await (const r of source) all.push(r);
          source = (async function* () {
            yield* parentsFirst(all, t.columns, self);
          })();
        }
        for await (const raw of source) {
          count++;
          const row: unknown[] = [];
          for (const [i, v] of raw.entries()) {
            const d = await decode(v, `${name}.${t.columns[i]} (row ${count})`);
            if (Buffer.isBuffer(d)) blobBytes += d.length;
            row.push(d);
          }
          batch.push(row);
          if (batch.length >= per || blobBytes >= BATCH_BLOB_BYTES) await flush();
        }
        await flush();
        tableCounts.push({ name, rows: count });
      }
      await writeSequences(tx as AnyDb, dialect, m.sequences);
    }).catch((err: unknown) => {
      // a deferred foreign key fails the commit itself
      if (err instanceof PatchwardenError) throw err;
      throw invalid(`the rows do not fit the schema: ${(err as Error).message.slice(0, 300)}`);
    });

    // the backup may come from an older version: the rest of this server's migrations
    await migrateDatabase(database);
    const latest = known[known.length - 1]!;

    // keys and the other files, owner-only
    const entries = m.files.filter((f) => f.kind !== 'content');
    let i = 0;
    for (const f of entries) {
      const rel = dataDirPathOf(f.path);
      const target = resolve(dataDir, rel);
      if (!target.startsWith(dataDir + sep)) throw invalid(`${f.path} would be written outside the data directory`);
      mkdirSync(dirname(target), { recursive: true, mode: 0o700 });
      const data = await archive.read(f.path);
      if (createHash('sha256').update(data).digest('hex') !== f.sha256) throw new PatchwardenError('E_DIGEST_MISMATCH', `${f.path} changed while being restored`);
      writeFileSync(target, data, { mode: 0o600, flag: 'wx' });
      written.push(target);
      progress({ phase: 'files', done: ++i, total: entries.length, item: rel });
    }

    const warnings: string[] = [];
    const config = join(dataDir, 'server.json');
    if (existsSync(config)) {
      try {
        const c = JSON.parse(readFileSync(config, 'utf8')) as { database?: unknown };
        if (typeof c.database === 'string' && c.database !== opts.database) {
          warnings.push(`the restored server.json sets "database" to another database than the one restored into; edit it or start the server with --database`);
        }
      } catch {
        warnings.push('the restored server.json is not JSON');
      }
    }
    const location = database.location;
    await database.close();
    database = null;
    return {
      dataDir,
      database: location,
      dialect,
      from: { dialect: m.dialect, createdAt: m.createdAt, serverVersion: m.serverVersion, migration: m.schema.migration },
      migration: latest,
      tables: tableCounts,
      rows: tableCounts.reduce((a, t) => a + t.rows, 0),
      content: contentSha.size,
      keys: entries.filter((f) => f.kind === 'key').length,
      files: entries.filter((f) => f.kind === 'file').length,
      ms: Math.round(performance.now() - started),
      warnings,
    };
  } catch (err) {
    // leave the target as it was
    for (const f of written) rmSync(f, { force: true });
    if (database && dbTouched && !sqliteFile) await dropAll(database.db as AnyDb, database.dialect).catch(() => {});
    if (database) await database.close().catch(() => {});
    database = null;
    if (dbTouched && sqliteFile) for (const s of ['', '-wal', '-shm', '-journal']) rmSync(sqliteFile + s, { force: true });
    if (createdDir) rmSync(dataDir, { recursive: true, force: true });
    else if (dbTouched && existsSync(dataDir)) for (const e of readdirSync(dataDir)) rmSync(join(dataDir, e), { recursive: true, force: true });
    throw err;
  } finally {
    if (database) await database.close();
    await archive.close();
  }
}
