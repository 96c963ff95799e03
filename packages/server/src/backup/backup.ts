/**
 * `patchwarden backup`: the database (every table, read in one consistent snapshot while the
 * server may be running), the content store (the `content` table's bytes, like every binary
 * value, as `content/{sha256}` entries), the data directory's keys and other files, in one
 * owner-only tar file. archive.ts describes the layout.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, open, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { sql, type RawBuilder } from 'kysely';
import { PatchwardenError } from '@patchwarden/core';
import { SERVER_VERSION } from '../app.js';
import { isPostgresUrl, openDatabase, type Database } from '../db/database.js';
import { ArchiveWriter, BACKUP_FORMAT, BACKUP_FORMAT_VERSION, MANIFEST_NAME, safeRelativePath, type BackupManifest } from './archive.js';
import { appliedMigrations, columnsOf, listTables, primaryKeyOf, readSequences, type AnyDb } from './tables.js';

export interface BackupProgress {
  phase: 'files' | 'tables' | 'write';
  /** tables done of all tables; in `tables`, `rows` counts the current table's rows so far */
  done: number;
  total: number;
  item?: string;
  rows?: number;
}

export interface BackupOptions {
  /** the server's data directory: its keys/ and other files are backed up */
  dataDir: string;
  /** `postgres://…` or a SQLite file; default `<dataDir>/patchwarden.db` */
  database?: string;
  /** PostgreSQL schema (tests run in a schema of their own) */
  pgSchema?: string;
  /** the archive to write; it must not exist yet */
  out: string;
  now?: () => number;
  onProgress?: (p: BackupProgress) => void;
}

export interface BackupResult {
  file: string;
  /** the archive's size on disk */
  bytes: number;
  ms: number;
  dialect: Database['dialect'];
  migration: string;
  tables: { name: string; rows: number; size: number }[];
  rows: number;
  content: { entries: number; bytes: number };
  keys: number;
  files: number;
  /** data directory entries left out (symbolic links, sockets …) */
  skipped: string[];
}

/** Directories of the data directory that are work areas, not state. */
const WORK_DIRS = new Set(['import']);
const PAGE_ROWS = 2000;
const PAGE_ROWS_BINARY = 64;

interface DataFile {
  name: string;
  kind: 'key' | 'file';
  data: Buffer;
}

/** Keys and other files of the data directory, read before the database snapshot (see below). */
function collectFiles(dataDir: string, exclude: Set<string>): { files: DataFile[]; skipped: string[] } {
  const files: DataFile[] = [];
  const skipped: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const full = join(dir, name);
      const rel = relative(dataDir, full).split(sep).join('/');
      if (exclude.has(full)) continue;
      const st = lstatSync(full);
      if (st.isDirectory()) {
        if (dir === dataDir && WORK_DIRS.has(name)) continue;
        walk(full);
        continue;
      }
      if (!st.isFile()) {
        skipped.push(rel);
        continue;
      }
      if (!safeRelativePath(rel)) {
        skipped.push(rel);
        continue;
      }
      const kind = rel.startsWith('keys/') ? 'key' : 'file';
      files.push({ name: kind === 'key' ? rel : `files/${rel}`, kind, data: readFileSync(full) });
    }
  };
  walk(dataDir);
  return { files, skipped };
}

type Json = null | string | number | boolean | { $bytes: string } | { $bigint: string };

export async function backup(opts: BackupOptions): Promise<BackupResult> {
  const started = performance.now();
  const now = opts.now ?? Date.now;
  const dataDir = resolve(opts.dataDir);
  const url = opts.database ?? join(dataDir, 'patchwarden.db');
  const out = resolve(opts.out);
  const progress = opts.onProgress ?? (() => {});
  if (!existsSync(dataDir) || !statSync(dataDir).isDirectory()) {
    throw new PatchwardenError('E_NOT_FOUND', `the data directory ${dataDir} does not exist`, { hint: 'pass the server\'s --data-dir' });
  }
  const sqliteFile = isPostgresUrl(url) ? null : resolve(url.replace(/^sqlite:/, ''));
  if (sqliteFile && !existsSync(sqliteFile)) {
    throw new PatchwardenError('E_NOT_FOUND', `there is no database at ${sqliteFile}`, { hint: 'pass the server\'s --data-dir, and --database when it uses another database' });
  }
  if (existsSync(out)) throw new PatchwardenError('E_CONFLICT', `${out} exists already`, { hint: 'name a new file with --out (a backup never overwrites one)' });

  const partial = `${out}.partial-${randomBytes(4).toString('hex')}`;
  const exclude = new Set([out, partial]);
  if (sqliteFile) for (const s of ['', '-wal', '-shm', '-journal']) exclude.add(sqliteFile + s);

  // The files first, then the database: the audit anchor vouches for the newest audit entry, so
  // it must not be newer than the snapshot (an older anchor is fine, a newer one reads as a cut log).
  progress({ phase: 'files', done: 0, total: 1 });
  const { files, skipped } = collectFiles(dataDir, exclude);
  progress({ phase: 'files', done: 1, total: 1 });

  const database = await openDatabase({ url, migrateTo: null, ...(opts.pgSchema ? { pgSchema: opts.pgSchema } : {}), poolSize: 2 });
  const createdAt = new Date(now());
  let writer: ArchiveWriter | null = null;
  let staging: string | null = null;
  try {
    writer = await ArchiveWriter.create(partial, createdAt);
    staging = await mkdtemp(join(dirname(out), '.patchwarden-backup-'));
    const w = writer;
    const stageDir = staging;
    const written = new Map<string, number>();
    const manifestFiles: BackupManifest['files'] = [];
    const tables: BackupManifest['tables'] = [];

    const dump = async (tx: AnyDb) => {
      const migrations = await appliedMigrations(tx).catch(() => [] as string[]);
      if (!migrations.length) throw new PatchwardenError('E_DATABASE', `the database ${database.location} has no Patchwarden schema`, { hint: 'pass the server\'s --data-dir and --database' });
      const names = await listTables(tx, database.dialect);
      for (const [i, table] of names.entries()) {
        progress({ phase: 'tables', done: i, total: names.length, item: table, rows: 0 });
        const columns = await columnsOf(tx, database.dialect, table);
        const pk = await primaryKeyOf(tx, database.dialect, table);
        const page = columns.some((c) => c.binary) ? PAGE_ROWS_BINARY : PAGE_ROWS;
        const staged = await open(join(stageDir, `${table}.jsonl`), 'wx', 0o600);
        const hash = createHash('sha256');
        let size = 0;
        let count = 0;
        try {
          const encode = async (v: unknown, where: string): Promise<Json> => {
            if (v === null || v === undefined || typeof v === 'string' || typeof v === 'boolean') return v ?? null;
            if (typeof v === 'number') {
              if (!Number.isFinite(v)) throw new PatchwardenError('E_INTERNAL', `${where} holds ${v}, which JSON cannot carry`);
              return v;
            }
            if (typeof v === 'bigint') return { $bigint: v.toString() };
            if (v instanceof Uint8Array) {
              const b = Buffer.from(v.buffer, v.byteOffset, v.length);
              const sha = createHash('sha256').update(b).digest('hex');
              if (!written.has(sha)) {
                await w.add(`content/${sha}`, b);
                written.set(sha, b.length);
                manifestFiles.push({ path: `content/${sha}`, kind: 'content', size: b.length, sha256: sha });
              }
              return { $bytes: sha };
            }
            throw new PatchwardenError('E_INTERNAL', `${where} holds a value of a type a backup does not carry (${Object.prototype.toString.call(v)})`);
          };
          let after: unknown[] | null = null;
          for (;;) {
            const keyset: RawBuilder<unknown> = pk.length && after ? sql`where (${sql.join(pk.map((c) => sql.ref(c)))}) > (${sql.join(after)})` : sql``;
            const order = pk.length ? sql`order by ${sql.join(pk.map((c) => sql.ref(c)))} limit ${page}` : sql``;
            const got: Record<string, unknown>[] = (await sql<Record<string, unknown>>`select * from ${sql.table(table)} ${keyset} ${order}`.execute(tx)).rows;
            const lines: string[] = [];
            for (const row of got) {
              const vals: Json[] = [];
              for (const c of columns) vals.push(await encode(row[c.name], `${table}.${c.name}`));
              lines.push(`${JSON.stringify(vals)}\n`);
            }
            if (lines.length) {
              const chunk = Buffer.from(lines.join(''), 'utf8');
              hash.update(chunk);
              size += chunk.length;
              await staged.write(chunk);
            }
            count += got.length;
            progress({ phase: 'tables', done: i, total: names.length, item: table, rows: count });
            if (!pk.length || got.length < page) break;
            const last: Record<string, unknown> = got[got.length - 1]!;
            after = pk.map((c): unknown => last[c]);
          }
        } finally {
          await staged.close();
        }
        tables.push({ name: table, file: `db/${table}.jsonl`, columns: columns.map((c) => c.name), rows: count, size, sha256: hash.digest('hex') });
      }
      progress({ phase: 'tables', done: names.length, total: names.length });
      return { migrations, sequences: await readSequences(tx, database.dialect) };
    };
    // one snapshot: a read transaction (SQLite in WAL mode keeps it while writers go on;
    // PostgreSQL gets REPEATABLE READ, which is a snapshot there)
    const { migrations, sequences } =
      database.dialect === 'postgres'
        ? await database.db.transaction().setIsolationLevel('repeatable read').setAccessMode('read only').execute((tx) => dump(tx as AnyDb))
        : await database.db.transaction().execute((tx) => dump(tx as AnyDb));

    progress({ phase: 'write', done: 0, total: tables.length + files.length });
    for (const [i, t] of tables.entries()) {
      const entry = await w.begin(t.file);
      const fh = await open(join(stageDir, `${t.name}.jsonl`), 'r');
      try {
        const buf = Buffer.alloc(1 << 20);
        for (;;) {
          const { bytesRead } = await fh.read(buf, 0, buf.length, null);
          if (!bytesRead) break;
          await entry.write(Buffer.from(buf.subarray(0, bytesRead)));
        }
      } finally {
        await fh.close();
      }
      const e = await entry.end();
      if (e.sha256 !== t.sha256 || e.size !== t.size) throw new PatchwardenError('E_INTERNAL', `the staged copy of ${t.name} changed while the backup was written`);
      progress({ phase: 'write', done: i + 1, total: tables.length + files.length, item: t.file });
    }
    for (const [i, f] of files.entries()) {
      await w.add(f.name, f.data);
      manifestFiles.push({ path: f.name, kind: f.kind, size: f.data.length, sha256: createHash('sha256').update(f.data).digest('hex') });
      progress({ phase: 'write', done: tables.length + i + 1, total: tables.length + files.length, item: f.name });
    }
    const manifest: BackupManifest = {
      format: BACKUP_FORMAT,
      formatVersion: BACKUP_FORMAT_VERSION,
      createdAt: createdAt.toISOString(),
      serverVersion: SERVER_VERSION,
      dialect: database.dialect,
      schema: { migration: migrations[migrations.length - 1]!, migrations },
      tables,
      sequences,
      files: manifestFiles,
    };
    await w.add(MANIFEST_NAME, Buffer.from(`${JSON.stringify(manifest, null, 1)}\n`, 'utf8'));
    await w.finish();
    writer = null;
    await rename(partial, out);
    const contentBytes = [...written.values()].reduce((a, b) => a + b, 0);
    return {
      file: out,
      bytes: (await stat(out)).size,
      ms: Math.round(performance.now() - started),
      dialect: database.dialect,
      migration: manifest.schema.migration,
      tables: tables.map((t) => ({ name: t.name, rows: t.rows, size: t.size })),
      rows: tables.reduce((a, t) => a + t.rows, 0),
      content: { entries: written.size, bytes: contentBytes },
      keys: files.filter((f) => f.kind === 'key').length,
      files: files.filter((f) => f.kind === 'file').length,
      skipped,
    };
  } catch (err) {
    await writer?.abort();
    await rm(partial, { force: true });
    throw err;
  } finally {
    if (staging) await rm(staging, { recursive: true, force: true });
    await database.close();
  }
}
