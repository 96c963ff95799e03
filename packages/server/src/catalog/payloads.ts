/**
 * Vendor payloads: the package files (.deb …) that imported patches install, fetched once from
 * the vendor's repository into the content store, checked against the size and sha256 the
 * signed index stated (and the signed manifest carries). Devices and local servers then get
 * them from here, so undo and air-gapped sites keep working after a mirror drops a version.
 */
import { PatchwardenError, sha256Hex, type PatchManifest, type RepositoryFile } from '@patchwarden/core';
import type { AppContext } from '../http/context.js';
import { readBounded } from '../http/read-bounded.js';

type Ctx = Pick<AppContext, 'db' | 'compliance' | 'now'>;

export interface CacheResult {
  /** package files the selected patches name */
  referenced: number;
  /** fetched now */
  fetched: number;
  bytes: number;
  /** in the store already */
  cached: number;
  failed: { url: string; reason: string }[];
}

export interface CacheOptions {
  /** only these patches; default: the patches some device needs */
  patches?: string[];
  fetchFn?: typeof fetch;
  timeoutMs?: number;
  onProgress?: (done: number, total: number) => void;
}

export function repositoryFiles(m: PatchManifest): RepositoryFile[] {
  const out: RepositoryFile[] = [];
  for (const a of [...m.install, ...m.undo]) if (a.type === 'package' && a.fetch) out.push(a.fetch);
  return out;
}

function urlOf(f: RepositoryFile): string {
  return `${f.repository.replace(/\/+$/, '')}/${f.path}`;
}

async function download(f: RepositoryFile, fetchFn: typeof fetch, timeoutMs: number): Promise<Buffer> {
  const url = urlOf(f);
  let res: Response;
  try {
    res = await fetchFn(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'follow' });
  } catch (err) {
    throw new PatchwardenError('E_SERVER_UNREACHABLE', `cannot fetch ${url}: ${(err as Error).cause ?? (err as Error).message}`);
  }
  if (!res.ok || !res.body) {
    await res.body?.cancel();
    throw new PatchwardenError('E_NOT_FOUND', `${url}: HTTP ${res.status}`);
  }
  // no more than the signed size says
  const bytes = await readBounded(res, f.size, () => new PatchwardenError('E_DIGEST_MISMATCH', `${url} is larger than the ${f.size} bytes its signed index states`));
  if (bytes.length !== f.size) throw new PatchwardenError('E_DIGEST_MISMATCH', `${url} is ${bytes.length} bytes; its signed index states ${f.size}`);
  if (sha256Hex(bytes) !== f.sha256) throw new PatchwardenError('E_DIGEST_MISMATCH', `${url} does not match the sha256 of its signed index`, { hint: 'the mirror serves another file: try again later or another mirror' });
  return bytes;
}

/** Fetches what is not cached yet; a file that fails is reported and the others go on. */
export async function cachePayloads(ctx: Ctx, opts: CacheOptions = {}): Promise<CacheResult> {
  const cat = await ctx.compliance.catalog();
  let ids = opts.patches;
  if (!ids) {
    const rows = await ctx.db.selectFrom('effective_states').innerJoin('patches', 'patches.pk', 'effective_states.patch_pk').select('patches.id').where('effective_states.state', '=', 'needed').distinct().execute();
    ids = rows.map((r) => r.id);
  }
  const files = new Map<string, RepositoryFile>();
  for (const id of ids) {
    const m = cat.manifests.get(id);
    if (!m) throw new PatchwardenError('E_NOT_FOUND', `no patch ${id}`, { hint: 'see `patchwarden patch list`' });
    for (const f of repositoryFiles(m)) files.set(f.sha256, f);
  }
  const result: CacheResult = { referenced: files.size, fetched: 0, bytes: 0, cached: 0, failed: [] };
  const all = [...files.values()];
  const have = new Set<string>();
  for (let i = 0; i < all.length; i += 500) {
    const part = all.slice(i, i + 500).map((f) => f.sha256);
    for (const r of await ctx.db.selectFrom('content').select('sha256').where('sha256', 'in', part).execute()) have.add(r.sha256);
  }
  let done = 0;
  for (const f of all) {
    if (have.has(f.sha256)) result.cached++;
    else {
      try {
        const bytes = await download(f, opts.fetchFn ?? fetch, opts.timeoutMs ?? 120_000);
        await ctx.db.insertInto('content').values({ sha256: f.sha256, length: bytes.length, bytes, created_at: ctx.now() }).onConflict((oc) => oc.column('sha256').doNothing()).execute();
        result.fetched++;
        result.bytes += bytes.length;
      } catch (err) {
        result.failed.push({ url: urlOf(f), reason: (err as Error).message });
      }
    }
    opts.onProgress?.(++done, all.length);
  }
  return result;
}
