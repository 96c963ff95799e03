/**
 * The agent's view of the signed catalog: the root it pinned at enrollment, and patch objects
 * fetched and verified with tuf-js from that root (every metadata file, expiry, rollback,
 * thresholds, the delegation to the role that may sign the patch, hash and length). Nothing the
 * server says about a patch counts until it verifies here.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BaseFetcher, Updater } from 'tuf-js';
import { DownloadHTTPError } from 'tuf-js/dist/error.js';
import { PatchwardenError } from '@patchwarden/core';
import { requestBytes } from './transport.js';
import type { AgentState } from './state.js';

const ROOT_MAX = 512 * 1024;

function tufDir(dataDir: string) {
  return { meta: join(dataDir, 'tuf', 'metadata'), targets: join(dataDir, 'tuf', 'targets') };
}

export function pinnedRootSha256(dataDir: string): string | null {
  const file = join(tufDir(dataDir).meta, 'root.json');
  return existsSync(file) ? createHash('sha256').update(readFileSync(file)).digest('hex') : null;
}

/** The server's current root, checked against a fingerprint given out of band when there is one. */
export async function fetchRoot(server: string, expectSha256?: string): Promise<{ bytes: Buffer; sha256: string; version: number } | null> {
  const bytes = await requestBytes(server, '/api/v1/tuf-root', { maxBytes: ROOT_MAX });
  if (!bytes) {
    if (expectSha256) throw new PatchwardenError('E_NOT_FOUND', 'the server has no catalog root, but one was expected', { hint: 'import the root on the server first' });
    return null;
  }
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  if (expectSha256 && sha256 !== expectSha256.toLowerCase()) {
    throw new PatchwardenError('E_SIGNATURE_INVALID', `the server's catalog root has sha256 ${sha256}, not the ${expectSha256} this agent was told to trust`, {
      hint: 'do not enroll against this server; check the root fingerprint with its administrator',
    });
  }
  let version: number;
  try {
    const doc = JSON.parse(bytes.toString('utf8')) as { signed?: { _type?: string; version?: number } };
    if (doc.signed?._type !== 'root' || typeof doc.signed.version !== 'number') throw new Error('not root metadata');
    version = doc.signed.version;
  } catch (err) {
    throw new PatchwardenError('E_METADATA_INVALID', `the server's catalog root is not root metadata: ${(err as Error).message}`);
  }
  return { bytes, sha256, version };
}

/**
 * Pins the catalog's root: every later verification starts from it. Without a fingerprint the
 * first root seen is trusted, and its sha256 is shown so an administrator can compare.
 */
export function pinRoot(dataDir: string, root: { bytes: Buffer }): void {
  const { meta, targets } = tufDir(dataDir);
  mkdirSync(meta, { recursive: true, mode: 0o700 });
  mkdirSync(targets, { recursive: true, mode: 0o700 });
  writeFileSync(join(meta, 'root.json'), root.bytes, { mode: 0o600 });
}

/** tuf-js's downloads, through the agent's one transport, with its token. */
class TransportFetcher extends BaseFetcher {
  constructor(private readonly state: Pick<AgentState, 'server' | 'token'>) {
    super();
  }
  override async fetch(url: string): Promise<ReadableStream<Uint8Array<ArrayBuffer>>> {
    const path = new URL(url).pathname;
    const bytes = await requestBytes(this.state.server, path, { token: this.state.token, maxBytes: 1024 ** 3 });
    if (!bytes) {
      // tuf-js ends the root chain (and reports missing files) on this error's 404
      throw new DownloadHTTPError(`${path}: not found`, 404);
    }
    return new ReadableStream({
      start(c) {
        c.enqueue(new Uint8Array(bytes));
        c.close();
      },
    });
  }
}

/** Fetches one target (`debian/NAME.json`, `custom/NAME.bundle`) and verifies it. */
export async function fetchVerifiedTarget(dataDir: string, state: Pick<AgentState, 'server' | 'token'>, targetPath: string): Promise<Buffer> {
  const { meta, targets } = tufDir(dataDir);
  if (!existsSync(join(meta, 'root.json'))) {
    throw new PatchwardenError('E_NOT_ENROLLED', 'this agent has pinned no catalog root', { hint: 'run `patchwarden agent pin-root` (or enroll again)' });
  }
  const updater = new Updater({
    metadataDir: meta,
    metadataBaseUrl: `${state.server}/api/v1/tuf/metadata`,
    targetDir: targets,
    targetBaseUrl: `${state.server}/api/v1/tuf/targets`,
    fetcher: new TransportFetcher(state),
  });
  let info;
  try {
    await updater.refresh();
    info = await updater.getTargetInfo(targetPath);
  } catch (err) {
    if (err instanceof PatchwardenError) throw err;
    throw new PatchwardenError('E_SIGNATURE_INVALID', `the catalog does not verify: ${(err as Error).message}`, { hint: 'the server may be compromised or misconfigured; nothing from it was used' });
  }
  if (!info) throw new PatchwardenError('E_NOT_FOUND', `the signed catalog has no ${targetPath}`);
  const file = join(targets, `${createHash('sha256').update(targetPath).digest('hex')}`);
  try {
    await updater.downloadTarget(info, file);
  } catch (err) {
    throw new PatchwardenError('E_DIGEST_MISMATCH', `${targetPath} does not match the signed catalog: ${(err as Error).message}`);
  }
  return readFileSync(file);
}
