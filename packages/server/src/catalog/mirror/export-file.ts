/**
 * The air-gap export file: one plain ustar archive carrying the signed catalog as it is served
 * (every root version, the current version of every other role, every listed target) and the
 * coverage the catalog claims. The vulnerability data (OSV, Debian tracker) are patch objects,
 * so they travel as targets like the rest.
 *
 *   patchwarden-export.json    what the file holds and its stated expiry (informative only)
 *   coverage.json              the platforms the catalog covers (unsigned; see apply.ts)
 *   metadata/{N}.root.json     …every root
 *   metadata/timestamp.json, metadata/{V}.{role}.json
 *   targets/{sha256}           each target once, by content (file names of the layout are too
 *                              long for ustar; the hash is what the client checks anyway)
 *
 * Reading is strict, because the file crosses an air gap from outside: only regular files with
 * exactly these names, checksums valid, sizes bounded per kind, nothing truncated, nothing but
 * zeros after the end. Entries are indexed, not loaded: a file is read when the verifying client
 * asks for it, and never more than the client's limit.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { Header } from 'tar';
import { z } from 'zod';
import { BUNDLE_DEFAULT_MAX_BYTES, canonicalJson, PatchwardenError, Platform, sha256Hex } from '@patchwarden/core';
import type { AppContext } from '../../http/context.js';
import type { RemoteRepository } from '../tuf/client.js';
import { metadataPath } from '../tuf/repo.js';
import { MirrorRepository } from './readonly.js';

const BLOCK = 512;
export const EXPORT_FORMAT = 'patchwarden-catalog-export';
export const DEFAULT_EXPORT_DAYS = 45;
const DAY = 86_400_000;

export const ExportIndex = z.object({
  format: z.literal(EXPORT_FORMAT),
  formatVersion: z.literal(1),
  createdAt: z.string(),
  expires: z.string(),
  root: z.object({ version: z.number().int(), sha256: z.string() }),
  timestamp: z.number().int(),
  snapshot: z.number().int(),
  roles: z.number().int(),
  targets: z.number().int(),
  /** cached vendor package files the exported patches install */
  payloads: z.number().int().default(0),
});
export type ExportIndex = z.infer<typeof ExportIndex>;

const LIMITS = {
  index: 64 * 1024,
  coverage: 16 * 1024 * 1024,
  metadata: 64 * 1024 * 1024,
  target: BUNDLE_DEFAULT_MAX_BYTES,
  entries: 5_000_000,
};

const bad = (message: string) =>
  new PatchwardenError('E_BUNDLE_INVALID', `not a valid catalog export file: ${message}`, { hint: 'make a new one on the central server with `patchwarden catalog export --out FILE`' });

function tarEntry(path: string, data: Uint8Array): Buffer[] {
  const h = Buffer.alloc(BLOCK);
  const header = new Header({ path, mode: 0o644, uid: 0, gid: 0, size: data.length, mtime: new Date(0), type: 'File', uname: '', gname: '' });
  if (header.encode(h, 0)) throw new PatchwardenError('E_INTERNAL', `the export entry name ${path} does not fit a ustar header`);
  const pad = (BLOCK - (data.length % BLOCK)) % BLOCK;
  return [h, Buffer.from(data.buffer, data.byteOffset, data.length), Buffer.alloc(pad)];
}

export interface BuiltExport {
  index: ExportIndex;
  /** the role that limits the expiry below what was asked (an offline role expiring sooner) */
  limitedBy: string | null;
  stream: Readable;
}

/**
 * Builds the export file of this server's catalog. On the central server, snapshot and
 * timestamp are re-signed first to last `days` (new live versions); a local server signs
 * nothing and exports what it mirrors, with the expiry it has.
 */
export async function buildExport(ctx: Pick<AppContext, 'db' | 'tuf' | 'compliance' | 'now'>, opts: { days?: number } = {}): Promise<BuiltExport> {
  if (!(await ctx.tuf.initialized())) {
    throw new PatchwardenError('E_CONFLICT', 'the catalog has no root yet: there is nothing to export', {
      hint: 'a central server imports its root first (`patchwarden catalog import-metadata`); a local server syncs first (`patchwarden catalog sync`)',
    });
  }
  const days = opts.days ?? DEFAULT_EXPORT_DAYS;
  let limitedBy: string | null = null;
  if (!(ctx.tuf instanceof MirrorRepository)) limitedBy = (await ctx.tuf.signForExport(days * DAY)).limitedBy;
  // metadata and the list of targets from one consistent reading; the targets' bytes are
  // immutable content, streamed afterwards without holding the database
  const { roots, files, targets, versions, expiresAt } = await ctx.db.transaction().execute(async (tx) => {
    const roots = await tx.selectFrom('tuf_files').select(['path', 'bytes', 'version']).where('role', '=', 'root').orderBy('version').execute();
    const roles = await tx.selectFrom('tuf_roles').select(['name', 'version', 'expires_at']).where('name', '!=', 'root').execute();
    const files: { path: string; bytes: Buffer }[] = [];
    const paths = roles.map((r) => metadataPath(r.name, r.version));
    for (let i = 0; i < paths.length; i += 500) files.push(...(await tx.selectFrom('tuf_files').select(['path', 'bytes']).where('path', 'in', paths.slice(i, i + 500)).execute()));
    const targets = [...new Set((await tx.selectFrom('tuf_targets').select('sha256').execute()).map((t) => t.sha256))];
    const all = await tx.selectFrom('tuf_roles').select(['name', 'version', 'expires_at']).execute();
    const v = (n: string) => all.find((r) => r.name === n)?.version ?? 0;
    return {
      roots,
      files,
      targets,
      versions: { root: v('root'), timestamp: v('timestamp'), snapshot: v('snapshot'), roles: roles.length },
      expiresAt: Math.min(...all.map((r) => Number(r.expires_at))),
    };
  });
  const currentRoot = roots.find((r) => r.version === versions.root);
  // the cached vendor package files the catalog's patches install: an air-gapped site has no
  // other way to get them (each is checked there against the signed manifest that names it)
  const payloads: string[] = [];
  {
    const refs = new Set<string>();
    for (const m of (await ctx.compliance.catalog()).manifests.values()) {
      for (const a of [...(m.install ?? []), ...(m.undo ?? [])]) if (a.type === 'package' && a.fetch) refs.add(a.fetch.sha256);
    }
    const list = [...refs];
    for (let i = 0; i < list.length; i += 500) {
      for (const r of await ctx.db.selectFrom('content').select('sha256').where('sha256', 'in', list.slice(i, i + 500)).execute()) payloads.push(r.sha256);
    }
  }
  const coverage = (await ctx.compliance.catalog()).coverage;
  const index: ExportIndex = {
    format: EXPORT_FORMAT,
    formatVersion: 1,
    createdAt: new Date(ctx.now()).toISOString(),
    expires: new Date(expiresAt).toISOString(),
    root: { version: versions.root, sha256: currentRoot ? sha256Hex(currentRoot.bytes) : '' },
    timestamp: versions.timestamp,
    snapshot: versions.snapshot,
    roles: versions.roles,
    targets: targets.length,
    payloads: payloads.length,
  };
  const db = ctx.db;
  async function* parts(): AsyncGenerator<Buffer> {
    yield* tarEntry('patchwarden-export.json', canonicalJson(index));
    yield* tarEntry('coverage.json', canonicalJson({ coverage }));
    for (const r of roots) yield* tarEntry(r.path, r.bytes);
    for (const f of files) yield* tarEntry(f.path, f.bytes);
    for (let i = 0; i < targets.length; i += 200) {
      const rows = await db.selectFrom('content').select(['sha256', 'bytes']).where('sha256', 'in', targets.slice(i, i + 200)).execute();
      if (rows.length !== Math.min(200, targets.length - i)) throw new PatchwardenError('E_INTERNAL', 'a listed target is missing from the content store');
      for (const r of rows) yield* tarEntry(`targets/${r.sha256}`, r.bytes);
    }
    for (let i = 0; i < payloads.length; i += 50) {
      const rows = await db.selectFrom('content').select(['sha256', 'bytes']).where('sha256', 'in', payloads.slice(i, i + 50)).execute();
      for (const r of rows) yield* tarEntry(`payloads/${r.sha256}`, r.bytes);
    }
    yield Buffer.alloc(BLOCK * 2);
  }
  return { index, limitedBy, stream: Readable.from(parts(), { objectMode: false }) };
}

// ─── Reading ─────────────────────────────────────────────────────────────────

const NAME = /^(patchwarden-export\.json|coverage\.json|metadata\/(timestamp|[1-9]\d{0,9}\.[A-Za-z0-9._%-]{1,200})\.json|(targets|payloads)\/[0-9a-f]{64})$/;

function limitOf(name: string): number {
  if (name === 'patchwarden-export.json') return LIMITS.index;
  if (name === 'coverage.json') return LIMITS.coverage;
  return name.startsWith('metadata/') ? LIMITS.metadata : LIMITS.target;
}

/** An export file, indexed and checked; a RemoteRepository for mirrorCatalog and fetchTarget. */
export class ExportFile implements RemoteRepository {
  readonly counters = { requests: 0, bytes: 0 };

  private constructor(
    private readonly fh: FileHandle,
    private readonly entries: Map<string, { offset: number; size: number }>,
    readonly index: ExportIndex,
    private readonly statedCoverage: Platform[],
    readonly describe: string,
  ) {}

  async coverage(): Promise<Platform[]> {
    return this.statedCoverage;
  }

  static async open(path: string, describe = path): Promise<ExportFile> {
    let fh: FileHandle;
    try {
      fh = await open(path, 'r');
    } catch (err) {
      throw new PatchwardenError('E_NOT_FOUND', `cannot read the export file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    try {
      const entries = await scan(fh);
      const read = async (name: string) => {
        const e = entries.get(name);
        if (!e) throw bad(`${name} is missing`);
        return readAt(fh, e.offset, e.size);
      };
      const index = parseJson(await read('patchwarden-export.json'), 'patchwarden-export.json', (j) => ExportIndex.parse(j));
      const coverage = parseJson(await read('coverage.json'), 'coverage.json', (j) => z.strictObject({ coverage: z.array(Platform).max(10_000) }).parse(j).coverage);
      return new ExportFile(fh, entries, index, coverage, describe);
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  async get(path: string, maxBytes: number): Promise<Uint8Array | null> {
    let name = path;
    // targets/{dirname}/{sha256}.{basename} of the layout → the entry of that content
    const t = /^targets\/[^/]+\/([0-9a-f]{64})\.[^/]+$/.exec(path);
    if (t) name = `targets/${t[1]}`;
    else if (!path.startsWith('metadata/')) return null;
    const e = this.entries.get(name);
    if (!e) return null;
    this.counters.requests++;
    // never more than the caller's limit and one byte (which it refuses)
    const bytes = await readAt(this.fh, e.offset, Math.min(e.size, maxBytes + 1));
    this.counters.bytes += bytes.length;
    return bytes;
  }

  /** A vendor payload carried in the file, by sha256; null when it has none. */
  async payload(sha256: string, maxBytes: number): Promise<Uint8Array | null> {
    const e = this.entries.get(`payloads/${sha256}`);
    if (!e) return null;
    this.counters.requests++;
    const bytes = await readAt(this.fh, e.offset, Math.min(e.size, maxBytes + 1));
    this.counters.bytes += bytes.length;
    return bytes;
  }

  /** The root entry with this sha256 (a pin given as a hash only). */
  async rootBySha256(sha: string): Promise<Uint8Array | null> {
    for (const [name, e] of this.entries) {
      if (!/^metadata\/\d+\.root\.json$/.test(name) || e.size > 512 * 1024) continue;
      const bytes = await readAt(this.fh, e.offset, e.size);
      if (sha256Hex(bytes) === sha) return bytes;
    }
    return null;
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}

function parseJson<T>(bytes: Uint8Array, name: string, check: (j: unknown) => T): T {
  try {
    return check(JSON.parse(Buffer.from(bytes).toString('utf8')));
  } catch (err) {
    throw bad(`${name} is not what it should be: ${(err as Error).message.slice(0, 300)}`);
  }
}

async function readAt(fh: FileHandle, offset: number, size: number): Promise<Uint8Array> {
  const buf = Buffer.alloc(size);
  let got = 0;
  while (got < size) {
    const { bytesRead } = await fh.read(buf, got, size - got, offset + got);
    if (bytesRead === 0) throw bad('the file is shorter than its entries say (it changed while being read?)');
    got += bytesRead;
  }
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
}

/** Walks every header; refuses anything but plain files with the names above. */
async function scan(fh: FileHandle): Promise<Map<string, { offset: number; size: number }>> {
  const { size: fileSize } = await fh.stat();
  const entries = new Map<string, { offset: number; size: number }>();
  const block = Buffer.alloc(BLOCK);
  let off = 0;
  for (;;) {
    if (off + BLOCK > fileSize) throw bad('the archive is truncated (no end-of-archive marker)');
    await fh.read(block, 0, BLOCK, off);
    if (block.every((b) => b === 0)) {
      // the end: a second zero block, then at most zero padding
      const rest = Buffer.alloc(64 * 1024);
      if (off + 2 * BLOCK > fileSize) throw bad('the archive is truncated (half an end-of-archive marker)');
      for (let p = off + BLOCK; p < fileSize; p += rest.length) {
        const n = Math.min(rest.length, fileSize - p);
        await fh.read(rest, 0, n, p);
        if (!rest.subarray(0, n).every((b) => b === 0)) throw bad('there are bytes after the end of the archive');
      }
      return entries;
    }
    let h: Header;
    try {
      h = new Header(block, 0);
    } catch (err) {
      // tar throws a plain Error for a base-256 number beyond 2^53 (size, mtime, uid …)
      throw bad(`the header at byte ${off} cannot be read: ${(err as Error).message}`);
    }
    if (!h.cksumValid) throw bad(`the header at byte ${off} has a bad checksum`);
    const name = h.path ?? '';
    if (h.type !== 'File' && h.type !== 'OldFile') throw bad(`${JSON.stringify(name.slice(0, 200))} is a ${h.type} entry; the file holds regular files only (no links, devices, directories or extension headers)`);
    if (!NAME.test(name)) throw bad(`${JSON.stringify(name.slice(0, 200))} is not an entry of an export file`);
    if (entries.has(name)) throw bad(`${name} appears twice`);
    if (entries.size >= LIMITS.entries) throw bad(`more than ${LIMITS.entries} entries`);
    const size = h.size ?? -1;
    if (!Number.isSafeInteger(size) || size < 0) throw bad(`${name} has no valid size`);
    if (size > limitOf(name)) throw bad(`${name} is ${size} bytes, more than the ${limitOf(name)} allowed`);
    const start = off + BLOCK;
    if (start + size > fileSize) throw bad(`${name} is truncated (${fileSize - start} of ${size} bytes)`);
    entries.set(name, { offset: start, size });
    off = start + Math.ceil(size / BLOCK) * BLOCK;
  }
}
