/**
 * The agent's view of the signed catalog: the root it pinned at enrollment, and patch objects
 * fetched and verified with tuf-js from that root (every metadata file, expiry, rollback,
 * thresholds, the delegation to the role that may sign the patch, hash and length). Nothing the
 * server says about a patch counts until it verifies here.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BaseFetcher, Updater } from 'tuf-js';
import { DownloadHTTPError } from 'tuf-js/dist/error.js';
import { PatchwardenError } from '@patchwarden/core';
import { requestBytes } from './transport.js';
import { loadState, type AgentState } from './state.js';
import { ruleFilesOf } from './jobs/verify.js';

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

interface TrustedSetView {
  root: { signed: { version: number; roles: Record<string, { keyIDs: string[] } | undefined> } };
  snapshot?: { signed: { version: number } };
}
interface TargetsView {
  signed: {
    targets: Record<string, { length: number; hashes: Record<string, string>; custom?: Record<string, unknown> }>;
    delegations?: { roles?: Record<string, { name: string }>; succinctRoles?: { getRoles(): Iterable<string> } };
  };
}
/** tuf-js's updater, with the parts of it this module steps into (tuf-js 5). */
interface UpdaterInside {
  trustedSet: TrustedSetView;
  loadRoot(): Promise<void>;
  loadTargets(role: string, parent: string): Promise<TargetsView | undefined>;
}

const onlineKeyIds = (t: TrustedSetView) => JSON.stringify(['timestamp', 'snapshot'].map((r) => [...(t.root.signed.roles[r]?.keyIDs ?? [])].sort()));

function updaterFor(dataDir: string, state: Pick<AgentState, 'server' | 'token'>): Updater {
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
  // TUF client workflow 5.3.11, which tuf-js leaves out: when a new root names other
  // timestamp or snapshot keys (an online key was replaced after a compromise), the timestamp
  // and snapshot trusted so far are dropped. Otherwise one signed with the old key and a
  // version far ahead ("fast-forwarded" by whoever stole it) would make every genuine one
  // look like a rollback, and the agent could never recover.
  const inside = updater as unknown as UpdaterInside;
  const loadRoot = inside.loadRoot.bind(updater);
  inside.loadRoot = async () => {
    const before = onlineKeyIds(inside.trustedSet);
    await loadRoot();
    if (onlineKeyIds(inside.trustedSet) !== before) {
      for (const f of ['timestamp.json', 'snapshot.json']) rmSync(join(meta, f), { force: true });
    }
  };
  return updater;
}

/**
 * tuf-js's refusals as the project's coded errors: expired metadata, a version that goes back,
 * a signature that does not verify, bytes that do not match their hash.
 */
export function catalogError(err: unknown, what: string): PatchwardenError {
  if (err instanceof PatchwardenError) return err;
  const message = (err as Error).message ?? String(err);
  const hint = { hint: 'the server may be compromised or misconfigured; nothing from it was used' };
  if (/expired/i.test(message)) return new PatchwardenError('E_METADATA_EXPIRED', `${what}: the signed catalog has expired metadata (${message})`, hint);
  if (/less than current version/i.test(message)) return new PatchwardenError('E_METADATA_ROLLBACK', `${what}: the signed catalog went back to an older version (${message})`, hint);
  if (/Expected (length|hash)/.test(message)) return new PatchwardenError('E_DIGEST_MISMATCH', `${what} does not match the signed catalog: ${message}`, hint);
  return new PatchwardenError('E_SIGNATURE_INVALID', `the catalog does not verify: ${message}`, hint);
}

/** Fetches one target (`debian/NAME.json`, `custom/NAME.bundle`) and verifies it. */
export async function fetchVerifiedTarget(dataDir: string, state: Pick<AgentState, 'server' | 'token'>, targetPath: string): Promise<Buffer> {
  const updater = updaterFor(dataDir, state);
  let info;
  try {
    await updater.refresh();
    info = await updater.getTargetInfo(targetPath);
  } catch (err) {
    throw catalogError(err, targetPath);
  }
  if (!info) throw new PatchwardenError('E_NOT_FOUND', `the signed catalog has no ${targetPath}`);
  return download(updater, dataDir, targetPath, info);
}

async function download(updater: Updater, dataDir: string, targetPath: string, info: NonNullable<Awaited<ReturnType<Updater['getTargetInfo']>>>): Promise<Buffer> {
  const file = join(tufDir(dataDir).targets, `${createHash('sha256').update(targetPath).digest('hex')}`);
  try {
    await updater.downloadTarget(info, file);
  } catch (err) {
    throw new PatchwardenError('E_DIGEST_MISMATCH', `${targetPath} does not match the signed catalog: ${(err as Error).message}`);
  }
  return readFileSync(file);
}

// ───────────────────────── the files rules name ─────────────────────────

const VOUCH_FILE = 'rule-files.json';
const MAX_ROLES = 20_000;

interface RuleFiles {
  /** the snapshot version the catalog was last searched at */
  snapshot: number | null;
  /** per target path examined: its sha256 and the files its verified rules name */
  examined: Record<string, { sha256: string; files: string[] }>;
}

function loadRuleFiles(dataDir: string): RuleFiles {
  try {
    const r = JSON.parse(readFileSync(join(tufDir(dataDir).meta, '..', VOUCH_FILE), 'utf8')) as RuleFiles;
    if (r && typeof r.examined === 'object') return r;
  } catch {
    // none yet, or damaged: search again
  }
  return { snapshot: null, examined: {} };
}

function saveRuleFiles(dataDir: string, r: RuleFiles): void {
  const file = join(tufDir(dataDir).meta, '..', VOUCH_FILE);
  writeFileSync(`${file}.tmp`, JSON.stringify(r), { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
}

/**
 * Of the files the server asks this agent to report, those that a rule of a verified catalog
 * patch names; the server's word alone is not enough (DESIGN.md: agents collect only facts that
 * verified catalog rules name). The signed catalog is searched when a path is asked for that no
 * examined rule names, at most once per snapshot: custom patches are read whole (their authors
 * signed them; each once, by hash), vendor patches only where their signed entry lists the path.
 * `manifestOf` turns a verified target's bytes into its manifest (verify.ts).
 */
export async function vouchedFiles(
  dataDir: string,
  state: Pick<AgentState, 'server' | 'token'>,
  paths: readonly string[],
  manifestOf: (targetPath: string, bytes: Buffer) => { files: string[] },
): Promise<string[]> {
  if (!paths.length) return [];
  const r = loadRuleFiles(dataDir);
  const named = () => new Set(Object.values(r.examined).flatMap((e) => e.files));
  let known = named();
  const missing = paths.filter((p) => !known.has(p));
  if (missing.length && existsSync(join(tufDir(dataDir).meta, 'root.json'))) {
    try {
      const updater = updaterFor(dataDir, state);
      await updater.refresh();
      const inside = updater as unknown as UpdaterInside;
      const snapshot = inside.trustedSet.snapshot?.signed.version ?? null;
      if (snapshot !== r.snapshot) {
        await searchCatalog(updater, dataDir, r, new Set(missing), manifestOf);
        r.snapshot = snapshot;
        saveRuleFiles(dataDir, r);
        known = named();
      }
    } catch {
      // a catalog that does not verify vouches for nothing new; what was vouched before stays
    }
  }
  return paths.filter((p) => known.has(p));
}

async function searchCatalog(
  updater: Updater,
  dataDir: string,
  r: RuleFiles,
  wanted: Set<string>,
  manifestOf: (targetPath: string, bytes: Buffer) => { files: string[] },
): Promise<void> {
  const inside = updater as unknown as UpdaterInside;
  const listed = new Map<string, { sha256: string; fetch: boolean }>();
  const stack: { role: string; parent: string }[] = [{ role: 'targets', parent: 'root' }];
  const visited = new Set<string>();
  while (stack.length && visited.size < MAX_ROLES) {
    const { role, parent } = stack.pop()!;
    if (visited.has(role)) continue;
    visited.add(role);
    const md = await inside.loadTargets(role, parent);
    if (!md) continue;
    for (const [path, t] of Object.entries(md.signed.targets)) {
      const sha256 = t.hashes.sha256 ?? '';
      // an author-signed listing is read whole; an online-signed entry says which files its rules read
      const hint = (t as { unrecognizedFields?: { custom?: { files?: unknown } } }).unrecognizedFields?.custom?.files;
      const fetch = role === 'custom' || (Array.isArray(hint) && hint.some((f) => typeof f === 'string' && wanted.has(f)));
      if (!listed.has(path)) listed.set(path, { sha256, fetch });
    }
    const d = md.signed.delegations;
    for (const child of Object.values(d?.roles ?? {})) stack.push({ role: child.name, parent: role });
    for (const bin of d?.succinctRoles?.getRoles() ?? []) stack.push({ role: bin, parent: role });
  }
  for (const path of Object.keys(r.examined)) if (listed.get(path)?.sha256 !== r.examined[path]!.sha256) delete r.examined[path];
  for (const [path, l] of listed) {
    if (!l.fetch || r.examined[path]) continue;
    let files: string[] = [];
    try {
      // resolved the way a job resolves it, so only the role that may sign this path counts
      const info = await updater.getTargetInfo(path);
      if (info && info.hashes.sha256 === l.sha256) files = manifestOf(path, await download(updater, dataDir, path, info)).files;
    } catch {
      // a target that does not verify names nothing
    }
    r.examined[path] = { sha256: l.sha256, files };
  }
}

/** The collectors' `vouch` for the agent enrolled in `dataDir`. */
export function fileVoucher(dataDir: string): (paths: readonly string[]) => Promise<string[]> {
  return (paths) => vouchedFiles(dataDir, loadState(dataDir), paths, (target, bytes) => ruleFilesOf(dataDir, target, bytes));
}
