/**
 * The backup file: one plain ustar archive, written owner-only because it holds the catalog's
 * private keys, the audit key and every credential hash of the database.
 *
 *   db/{table}.jsonl     one JSON array per row, in the column order the manifest names
 *   content/{sha256}     every binary value of every table, by the sha256 of its bytes (the
 *                        content store's patch objects, bundles and package files, the signed
 *                        metadata); a row holds {"$bytes": sha256} in their place
 *   keys/…               the data directory's keys/ (catalog and audit keys)
 *   files/…              the data directory's other files (admin token, server.json, the audit
 *                        anchor, the built-in agent's identity)
 *   manifest.json        last: format, versions, schema, and the size and sha256 of every entry
 *
 * Every entry is a regular file with mode 0600. Reading is strict: regular files only, names of
 * the forms above with no `..`, absolute or empty segments, each named by the manifest exactly
 * once with its size, nothing truncated, nothing but zeros after the end.
 */
import { createHash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { Header } from 'tar';
import { z } from 'zod';
import { PatchwardenError } from '@patchwarden/core';

const BLOCK = 512;
export const BACKUP_FORMAT = 'patchwarden-backup';
export const BACKUP_FORMAT_VERSION = 1;
export const MANIFEST_NAME = 'manifest.json';
const MANIFEST_LIMIT = 64 * 1024 * 1024;
const MAX_ENTRIES = 10_000_000;

export const invalid = (message: string, details?: unknown) =>
  new PatchwardenError('E_BACKUP_INVALID', `not a usable backup: ${message}`, {
    hint: 'the file is truncated, altered or not a Patchwarden backup; restore from another copy (`patchwarden backup --out FILE` makes a new one)',
    ...(details === undefined ? {} : { details }),
  });

// ─── Names ───────────────────────────────────────────────────────────────────

const SEGMENT = /^[A-Za-z0-9_@+][A-Za-z0-9._@+-]{0,199}$/;

/** A relative path below the data directory: plain segments only, never `..`, `.`, absolute or empty. */
export function safeRelativePath(p: string): boolean {
  if (p.length === 0 || p.length > 900 || p.includes('\\') || p.includes('\0')) return false;
  const parts = p.split('/');
  return parts.every((s) => SEGMENT.test(s) && s !== '.' && s !== '..');
}

export const TABLE_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

export function entryNameOk(name: string): boolean {
  if (name === MANIFEST_NAME) return true;
  const db = /^db\/([a-z0-9_]+)\.jsonl$/.exec(name);
  if (db) return TABLE_NAME.test(db[1]!);
  if (/^content\/[0-9a-f]{64}$/.test(name)) return true;
  const f = /^(keys|files)\/(.+)$/.exec(name);
  return !!f && safeRelativePath(f[2]!);
}

/** Where an archive entry of keys/ or files/ goes, relative to the data directory. */
export function dataDirPathOf(name: string): string {
  if (name.startsWith('keys/')) return name;
  if (name.startsWith('files/')) return name.slice('files/'.length);
  throw invalid(`${name} is not a data directory file`);
}

// ─── Manifest ────────────────────────────────────────────────────────────────

const Sha = z.string().regex(/^[0-9a-f]{64}$/);
const Count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

export const BackupManifest = z.strictObject({
  format: z.literal(BACKUP_FORMAT),
  formatVersion: z.literal(BACKUP_FORMAT_VERSION),
  createdAt: z.string().max(40),
  serverVersion: z.string().max(40),
  /** the database the backup was taken from: a restore may go to the other one */
  dialect: z.enum(['sqlite', 'postgres']),
  schema: z.strictObject({
    /** the newest migration applied: the schema version */
    migration: z.string().min(1).max(200),
    migrations: z.array(z.string().min(1).max(200)).max(10_000),
  }),
  tables: z
    .array(
      z.strictObject({
        name: z.string().regex(TABLE_NAME),
        file: z.string().max(100),
        columns: z.array(z.string().regex(TABLE_NAME)).min(1).max(1000),
        rows: Count,
        size: Count,
        sha256: Sha,
      }),
    )
    .max(10_000),
  /** the high-water mark of each auto-increment key, so a restore never hands out an id twice */
  sequences: z.record(z.string().regex(TABLE_NAME), Count),
  files: z
    .array(
      z.strictObject({
        path: z.string().max(1000),
        kind: z.enum(['content', 'key', 'file']),
        size: Count,
        sha256: Sha,
      }),
    )
    .max(MAX_ENTRIES),
});
export type BackupManifest = z.infer<typeof BackupManifest>;

// ─── Writing ─────────────────────────────────────────────────────────────────

/**
 * Appends entries to a file opened owner-only. A streamed entry reserves its header block and
 * writes it once its size is known, so table files need no staging copy.
 */
export class ArchiveWriter {
  private offset = 0;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  bytes = 0;

  private constructor(
    private readonly fh: FileHandle,
    private readonly mtime: Date,
  ) {}

  static async create(path: string, mtime: Date): Promise<ArchiveWriter> {
    // 'wx': never over an existing file; 0600: the archive holds private keys
    const fh = await open(path, 'wx', 0o600);
    return new ArchiveWriter(fh, mtime);
  }

  private header(path: string, size: number): Buffer {
    const h = Buffer.alloc(BLOCK);
    const header = new Header({ path, mode: 0o600, uid: 0, gid: 0, size, mtime: this.mtime, type: 'File', uname: '', gname: '' });
    if (header.encode(h, 0)) throw new PatchwardenError('E_INTERNAL', `the backup entry name ${path} does not fit a ustar header`, { hint: 'rename the file in the data directory to a shorter name' });
    return h;
  }

  private async push(b: Buffer): Promise<void> {
    this.pending.push(b);
    this.pendingBytes += b.length;
    if (this.pendingBytes >= 1 << 20) await this.flush();
  }

  private async flush(): Promise<void> {
    if (!this.pendingBytes) return;
    const all = Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    let done = 0;
    while (done < all.length) done += (await this.fh.write(all, done, all.length - done, this.offset + done)).bytesWritten;
    this.offset += all.length;
  }

  private async pad(size: number): Promise<void> {
    const pad = (BLOCK - (size % BLOCK)) % BLOCK;
    if (pad) await this.push(Buffer.alloc(pad));
  }

  async add(path: string, data: Buffer): Promise<void> {
    await this.push(this.header(path, data.length));
    if (data.length) await this.push(data);
    await this.pad(data.length);
    this.bytes += data.length;
  }

  /** A streamed entry: write() chunks, then end() gives its size and sha256. */
  async begin(path: string): Promise<{ write(b: Buffer): Promise<void>; end(): Promise<{ size: number; sha256: string }> }> {
    await this.flush();
    const at = this.offset;
    await this.push(Buffer.alloc(BLOCK));
    const hash = createHash('sha256');
    let size = 0;
    return {
      write: async (b: Buffer) => {
        hash.update(b);
        size += b.length;
        await this.push(b);
      },
      end: async () => {
        await this.pad(size);
        await this.flush();
        const h = this.header(path, size);
        await this.fh.write(h, 0, BLOCK, at);
        this.bytes += size;
        return { size, sha256: hash.digest('hex') };
      },
    };
  }

  /** The end-of-archive marker; synced to disk. */
  async finish(): Promise<number> {
    await this.push(Buffer.alloc(BLOCK * 2));
    await this.flush();
    await this.fh.sync();
    await this.fh.close();
    return this.offset;
  }

  async abort(): Promise<void> {
    await this.fh.close().catch(() => {});
  }
}

// ─── Reading ─────────────────────────────────────────────────────────────────

export interface Entry {
  offset: number;
  size: number;
}

/** An archive indexed by a strict walk of its headers; entries are read on demand. */
export class ArchiveReader {
  private constructor(
    private readonly fh: FileHandle,
    readonly entries: Map<string, Entry>,
    readonly size: number,
  ) {}

  static async open(path: string): Promise<ArchiveReader> {
    let fh: FileHandle;
    try {
      fh = await open(path, 'r');
    } catch (err) {
      throw new PatchwardenError('E_NOT_FOUND', `cannot read the backup ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    try {
      const { size } = await fh.stat();
      return new ArchiveReader(fh, await scan(fh, size), size);
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  async read(name: string, start = 0, length?: number): Promise<Buffer> {
    const e = this.entries.get(name);
    if (!e) throw invalid(`${name} is missing`);
    const n = Math.min(length ?? e.size - start, e.size - start);
    const buf = Buffer.alloc(n);
    let got = 0;
    while (got < n) {
      const { bytesRead } = await this.fh.read(buf, got, n - got, e.offset + start + got);
      if (bytesRead === 0) throw invalid(`${name} ends early (the file changed while being read?)`);
      got += bytesRead;
    }
    return buf;
  }

  /** The entry in chunks of at most 1 MiB. */
  async *chunks(name: string): AsyncGenerator<Buffer> {
    const e = this.entries.get(name);
    if (!e) throw invalid(`${name} is missing`);
    for (let p = 0; p < e.size; p += 1 << 20) yield await this.read(name, p, 1 << 20);
  }

  async sha256(name: string): Promise<string> {
    const h = createHash('sha256');
    for await (const c of this.chunks(name)) h.update(c);
    return h.digest('hex');
  }

  async manifest(): Promise<BackupManifest> {
    const e = this.entries.get(MANIFEST_NAME);
    if (!e) throw invalid(`${MANIFEST_NAME} is missing`);
    if (e.size > MANIFEST_LIMIT) throw invalid(`${MANIFEST_NAME} is larger than ${MANIFEST_LIMIT} bytes`);
    let json: unknown;
    try {
      json = JSON.parse((await this.read(MANIFEST_NAME)).toString('utf8'));
    } catch (err) {
      throw invalid(`${MANIFEST_NAME} is not JSON: ${(err as Error).message.slice(0, 200)}`);
    }
    const r = BackupManifest.safeParse(json);
    if (!r.success) {
      const i = r.error.issues[0]!;
      throw invalid(`${MANIFEST_NAME}: ${i.path.join('.') || '(root)'}: ${i.message}`);
    }
    return r.data;
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}

async function scan(fh: FileHandle, fileSize: number): Promise<Map<string, Entry>> {
  const entries = new Map<string, Entry>();
  const block = Buffer.alloc(BLOCK);
  let off = 0;
  for (;;) {
    if (off + BLOCK > fileSize) throw invalid(`the archive is truncated at byte ${fileSize} (no end-of-archive marker)`);
    await fh.read(block, 0, BLOCK, off);
    if (block.every((b) => b === 0)) {
      if (off + 2 * BLOCK > fileSize) throw invalid('the archive is truncated (half an end-of-archive marker)');
      const rest = Buffer.alloc(64 * 1024);
      for (let p = off + BLOCK; p < fileSize; p += rest.length) {
        const n = Math.min(rest.length, fileSize - p);
        await fh.read(rest, 0, n, p);
        if (!rest.subarray(0, n).every((b) => b === 0)) throw invalid('there are bytes after the end of the archive');
      }
      return entries;
    }
    const h = new Header(block, 0);
    if (!h.cksumValid) throw invalid(`the header at byte ${off} has a bad checksum`);
    const name = h.path ?? '';
    const shown = JSON.stringify(name.slice(0, 200));
    if (h.type !== 'File' && h.type !== 'OldFile') throw invalid(`${shown} is a ${h.type} entry; a backup holds regular files only (no links, directories or extension headers)`);
    if (!entryNameOk(name)) throw invalid(`${shown} is not a name a backup uses (an absolute path, "..", or an unknown kind of entry)`);
    if (entries.has(name)) throw invalid(`${name} appears twice`);
    if (entries.size >= MAX_ENTRIES) throw invalid(`more than ${MAX_ENTRIES} entries`);
    const size = h.size ?? -1;
    if (!Number.isSafeInteger(size) || size < 0) throw invalid(`${name} has no valid size`);
    const start = off + BLOCK;
    if (start + size > fileSize) throw invalid(`${name} is truncated (${fileSize - start} of ${size} bytes)`);
    entries.set(name, { offset: start, size });
    off = start + Math.ceil(size / BLOCK) * BLOCK;
  }
}
