/**
 * Imports suites straight from a mirror: `dists/<suite>/InRelease` (or Release + Release.gpg),
 * then each Packages index it lists for the wanted components and architectures, each download
 * checked against the size and SHA256 the signed Release file gives.
 */
import { readBounded } from '../../http/read-bounded.js';
import { PatchwardenError } from '@patchwarden/core';
import { MAX_INDEX_BYTES } from './decompress.js';
import { defaultKeyrings } from './gpgv.js';
import { AptCatalogBuilder } from './patches.js';
import { Problems } from './problems.js';
import { describeRelease, indexOrigin, loadRelease, readIndex, type AptImportOptions, type AptRelease, type Signed } from './read.js';
import { finishImport, type AptImport } from './result.js';

export interface MirrorOptions extends AptImportOptions {
  fetch?: typeof globalThis.fetch;
  /** per request */
  timeoutMs?: number;
}

const ARCHES: Record<string, string> = { x64: 'amd64', arm64: 'arm64', ia32: 'i386', arm: 'armhf', ppc64: 'ppc64el', s390x: 's390x', riscv64: 'riscv64', loong64: 'loong64' };

/** Debian's name for this machine's architecture. */
export function hostArchitecture(): string {
  return ARCHES[process.arch] ?? process.arch;
}

const SUITE_RE = /^[A-Za-z0-9][A-Za-z0-9._+~-]*(?:\/[A-Za-z0-9][A-Za-z0-9._+~-]*)*$/;
const MAX_RELEASE_DOWNLOAD = 16 * 1024 * 1024;
/** the cheapest to fetch and read first */
const SUFFIXES = ['.gz', '.xz', '', '.lz4'];

class Fetcher {
  constructor(
    private readonly fetchFn: typeof globalThis.fetch,
    private readonly timeoutMs: number,
  ) {}

  /** null when the server has no such file (404/410) */
  async get(url: string, maxBytes: number): Promise<Buffer | null> {
    let res: Response;
    try {
      res = await this.fetchFn(url, { signal: AbortSignal.timeout(this.timeoutMs), redirect: 'follow' });
    } catch (err) {
      throw new PatchwardenError('E_SERVER_UNREACHABLE', `cannot fetch ${url}: ${(err as Error).cause ?? (err as Error).message}`, { hint: 'check the mirror URL and the network' });
    }
    if (res.status === 404 || res.status === 410) {
      await res.body?.cancel();
      return null;
    }
    if (!res.ok) {
      await res.body?.cancel();
      throw new PatchwardenError('E_SERVER_UNREACHABLE', `${url}: HTTP ${res.status}`);
    }
    return readBounded(
      res,
      maxBytes,
      () => new PatchwardenError('E_VALIDATION', `${url} is larger than the ${maxBytes} bytes expected`, { hint: 'the mirror serves another file than its Release file lists: try another mirror' }),
    );
  }
}

async function fetchRelease(f: Fetcher, base: string): Promise<{ signed: Signed; where: string } | null> {
  const inRelease = await f.get(`${base}/InRelease`, MAX_RELEASE_DOWNLOAD);
  if (inRelease) return { signed: { kind: 'inrelease', data: inRelease }, where: `${base}/InRelease` };
  const release = await f.get(`${base}/Release`, MAX_RELEASE_DOWNLOAD);
  if (!release) return null;
  const signature = await f.get(`${base}/Release.gpg`, 1024 * 1024);
  return { signed: { kind: 'release', data: release, signature }, where: `${base}/Release` };
}

export async function importAptMirror(url: string, suites: string[], opts: MirrorOptions = {}): Promise<AptImport> {
  let root: URL;
  try {
    root = new URL(url);
  } catch {
    throw new PatchwardenError('E_VALIDATION', `not a URL: ${url}`, { hint: 'e.g. --mirror https://deb.debian.org/debian --suite bookworm' });
  }
  if (root.protocol !== 'http:' && root.protocol !== 'https:') throw new PatchwardenError('E_VALIDATION', `${url}: only http and https mirrors are supported`);
  if (suites.length === 0) throw new PatchwardenError('E_VALIDATION', 'name at least one suite', { hint: '--suite bookworm --suite bookworm-updates' });
  for (const s of suites) {
    if (!SUITE_RE.test(s) || s.split('/').includes('..')) throw new PatchwardenError('E_VALIDATION', `invalid suite name ${JSON.stringify(s)}`);
  }
  const base = root.href.replace(/\/+$/, '');
  const f = new Fetcher(opts.fetch ?? globalThis.fetch, opts.timeoutMs ?? 120_000);
  const problems = new Problems();
  const keyrings = opts.keyrings ?? defaultKeyrings();
  const archs = opts.architectures ?? [hostArchitecture()];
  const builder = new AptCatalogBuilder(problems);
  const releases: AptRelease[] = [];
  let records = 0;
  for (const suite of suites) {
    const dists = `${base}/dists/${suite}`;
    opts.onFile?.(`${dists}/InRelease`);
    const got = await fetchRelease(f, dists);
    if (!got) throw new PatchwardenError('E_NOT_FOUND', `${dists} has neither InRelease nor Release`, { hint: 'check the suite name and the mirror URL (it ends before dists/)' });
    // the user named these suites: one that cannot be verified is an error, not a skip
    const loaded = (await loadRelease(got.signed, got.where, keyrings, problems, true))!;
    const rel = describeRelease(loaded, got.where, problems, opts.now ?? new Date());
    const origin = indexOrigin(rel, root.href.replace(/\/+$/, ''));
    // Components may say updates/main while the indexes are under main/ (Debian security)
    const components = opts.components ?? [...new Set(rel.components.map((c) => c.split('/').pop()!))];
    for (const component of components) {
      for (const arch of archs) {
        const stem = `${component}/binary-${arch}/Packages`;
        const candidates = SUFFIXES.map((s) => stem + s).filter((p) => loaded.file.files.has(p));
        if (candidates.length === 0) {
          problems.warn(got.where, `lists no ${stem} index`);
          continue;
        }
        let done = false;
        for (const path of candidates) {
          const where = `${dists}/${path}`;
          opts.onFile?.(where);
          const raw = await f.get(where, Math.min(loaded.file.files.get(path)!.size, opts.maxIndexBytes ?? MAX_INDEX_BYTES));
          if (!raw) continue;
          const read = await readIndex(raw, path, where, loaded, arch, problems, opts.maxIndexBytes, true);
          if (read) {
            builder.addIndex(origin, arch, read.records);
            records += read.records.length;
            rel.indexes.push({ path, location: where, records: read.records.length, checked: read.checked });
          }
          done = true;
          break;
        }
        if (!done) throw new PatchwardenError('E_NOT_FOUND', `${dists}: none of ${candidates.join(', ')} could be fetched`, { hint: 'the mirror may be syncing: try again later or another mirror' });
      }
    }
    releases.push(rel);
  }
  return finishImport(builder, releases, problems, records);
}
