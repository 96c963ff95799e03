/**
 * One sync of a local server from its central server (over HTTP) or from an export file: the
 * same verifying client either way (tuf/client.ts), then the targets, then one switch.
 *
 * 1. mirrorCatalog verifies every metadata file that changed since the trusted state (all of
 *    them the first time), from the pinned central root on.
 * 2. Every target listed with a hash this server does not hold yet is fetched, checked against
 *    its signed length and sha256 (fetchTarget) and written to the content store as it arrives,
 *    a few at a time. An interrupted sync keeps what it had fetched: the next one fetches only
 *    the rest. A target already in the content store (by sha256) is never fetched again.
 * 3. One transaction switches the served catalog (apply.ts): agents see the old catalog or the
 *    new one, never half of each. Anything that fails before it switches nothing.
 */
import { PatchwardenError, sha256Hex, type Platform } from '@patchwarden/core';
import type { AppContext } from '../../http/context.js';
import { fetchTarget, mirrorCatalog, type MirrorLimits, type MirroredTarget, type RemoteRepository } from '../tuf/client.js';
import { applySync, type ApplyResult } from './apply.js';
import { loadMirrorState, type PinnedRoot } from './state.js';

export interface SyncSource extends RemoteRepository {
  /** for messages and the mirror state: the URL, or `file:NAME` */
  readonly describe: string;
  readonly counters: { requests: number; bytes: number };
  /** the root whose sha256 is pinned, when the pin is a hash only */
  rootBySha256(sha256: string): Promise<Uint8Array | null>;
  /** the platforms the catalog covers, as the source states them (unsigned); null: unknown */
  coverage(): Promise<Platform[] | null>;
  /** a cached vendor payload (.deb …) by sha256, checked here against the signed manifest; null: not there */
  payload?(sha256: string, maxBytes: number): Promise<Uint8Array | null>;
}

export interface SyncProgress {
  phase: 'metadata' | 'targets' | 'switch' | 'done';
  targets: { total: number; done: number };
  /** bytes received so far (file bodies) */
  bytes: number;
}

export interface SyncReport extends ApplyResult {
  source: string;
  metadata: { changedRoles: number; newRoots: number; files: number; bytes: number };
  targets: { listed: number; fetched: number; bytes: number; alreadyHeld: number };
  /** vendor package files the changed patches install, from the source's content store */
  payloads: PayloadReport;
  /** listings the delegation rules did not give to the role that made them */
  refused: number;
  /** requests and body bytes of the whole sync (metadata and targets) */
  transfer: { requests: number; bytes: number };
  seconds: number;
}

export interface SyncOptions {
  pin: PinnedRoot;
  onProgress?: (p: SyncProgress) => void;
  /** targets fetched at once (default 16) */
  concurrency?: number;
  limits?: Partial<MirrorLimits>;
}

type Ctx = Pick<AppContext, 'db' | 'compliance' | 'now'>;

/** Writes are grouped: this many targets or bytes, whichever comes first. */
const FLUSH_TARGETS = 256;
const FLUSH_BYTES = 8 * 1024 * 1024;

async function pinnedRootBytes(source: SyncSource, pin: PinnedRoot): Promise<Uint8Array> {
  const bytes = pin.bytes ?? (await source.rootBySha256(pin.sha256));
  if (!bytes) throw new PatchwardenError('E_NOT_FOUND', `${source.describe} has no root with sha256 ${pin.sha256}`, { hint: 'check the pinned hash against the central server\'s GET /api/v1/tuf-root' });
  const got = sha256Hex(bytes);
  if (got !== pin.sha256) {
    throw new PatchwardenError('E_DIGEST_MISMATCH', `the central root has sha256 ${got}, but this server is pinned to ${pin.sha256} (${pin.from})`, {
      hint: 'compare the hash out of band with the central server\'s administrator; never pin a root you have not checked',
    });
  }
  return bytes;
}

export async function syncCatalog(ctx: Ctx, source: SyncSource, opts: SyncOptions): Promise<SyncReport> {
  const started = performance.now();
  const progress: SyncProgress = { phase: 'metadata', targets: { total: 0, done: 0 }, bytes: 0 };
  const tell = () => opts.onProgress?.({ ...progress, targets: { ...progress.targets }, bytes: source.counters.bytes });
  tell();

  const saved = await loadMirrorState(ctx.db);
  const firstRoot = saved ? null : await pinnedRootBytes(source, opts.pin);
  const state = saved ?? { root: firstRoot!, roles: new Map() };
  // metadata requests in flight: more than the client's default, since a first sync fetches thousands of bins
  const result = await mirrorCatalog({ remote: source, state, now: new Date(ctx.now()), limits: { concurrency: 16, ...opts.limits } });

  // targets this server does not serve yet, or serves with other content
  const served = new Map((await ctx.db.selectFrom('tuf_targets').select(['path', 'sha256']).execute()).map((t) => [t.path, t.sha256]));
  const wanted: [string, MirroredTarget][] = [];
  for (const [path, t] of result.targets) if (served.get(path) !== t.sha256) wanted.push([path, t]);
  const held = new Set<string>();
  const shas = [...new Set(wanted.map(([, t]) => t.sha256))];
  for (let i = 0; i < shas.length; i += 500) {
    for (const r of await ctx.db.selectFrom('content').select('sha256').where('sha256', 'in', shas.slice(i, i + 500)).execute()) held.add(r.sha256);
  }
  const toFetch = new Map<string, [string, MirroredTarget]>();
  for (const [path, t] of wanted) if (!held.has(t.sha256) && !toFetch.has(t.sha256)) toFetch.set(t.sha256, [path, t]);

  progress.phase = 'targets';
  progress.targets.total = toFetch.size;
  tell();
  const before = source.counters.bytes;
  await fetchAll(ctx, source, [...toFetch.values()], opts.concurrency ?? 16, () => {
    progress.targets.done++;
    if (progress.targets.done % 64 === 0 || progress.targets.done === progress.targets.total) tell();
  });
  const targetBytes = source.counters.bytes - before;

  progress.phase = 'switch';
  tell();
  const coverage = await source.coverage();
  const applied = await applySync(ctx, { result, firstRoot, pin: opts.pin, source: source.describe, coverage, changedTargets: wanted, served });
  // after the switch: a cache, so a payload that fails only stays uncached (the next sync, or
  // `catalog cache-payloads`, tries again)
  const payloads = await mirrorPayloads(ctx, source, wanted);
  progress.phase = 'done';
  tell();
  return {
    source: source.describe,
    ...applied,
    metadata: { changedRoles: result.changedRoles.length, newRoots: result.newRoots.length, files: result.fetched.files, bytes: result.fetched.bytes },
    targets: { listed: result.targets.size, fetched: toFetch.size, bytes: targetBytes, alreadyHeld: wanted.length - toFetch.size },
    payloads,
    refused: result.refused.length,
    transfer: { requests: source.counters.requests, bytes: source.counters.bytes },
    seconds: Number(((performance.now() - started) / 1000).toFixed(2)),
  };
}

export interface PayloadReport {
  referenced: number;
  fetched: number;
  bytes: number;
  /** not in the source's content store (not cached there), or refused */
  unavailable: number;
}

/**
 * The vendor package files that the changed patch objects install (`fetch` on package actions),
 * copied from the source's content store, so undo and air-gapped sites work after the vendor's
 * mirror drops a version. Each is checked against the size and sha256 of the signed manifest
 * that names it; anything else is not stored.
 */
async function mirrorPayloads(ctx: Ctx, source: SyncSource, changed: [string, MirroredTarget][]): Promise<PayloadReport> {
  const report: PayloadReport = { referenced: 0, fetched: 0, bytes: 0, unavailable: 0 };
  if (!source.payload) return report;
  const refs = new Map<string, number>();
  const json = changed.filter(([path]) => path.endsWith('.json')).map(([, t]) => t.sha256);
  for (let i = 0; i < json.length; i += 200) {
    for (const r of await ctx.db.selectFrom('content').select('bytes').where('sha256', 'in', json.slice(i, i + 200)).execute()) {
      let m: { install?: unknown[]; undo?: unknown[] };
      try {
        m = JSON.parse(Buffer.from(r.bytes).toString('utf8')) as typeof m;
      } catch {
        continue; // verified but unreadable: the switch already left it out of compliance
      }
      for (const a of [...(m.install ?? []), ...(m.undo ?? [])] as { type?: string; fetch?: { sha256?: unknown; size?: unknown } }[]) {
        const f = a?.type === 'package' ? a.fetch : undefined;
        if (f && typeof f.sha256 === 'string' && /^[0-9a-f]{64}$/.test(f.sha256) && typeof f.size === 'number') refs.set(f.sha256, f.size);
      }
    }
  }
  report.referenced = refs.size;
  const shas = [...refs.keys()];
  const held = new Set<string>();
  for (let i = 0; i < shas.length; i += 500) {
    for (const r of await ctx.db.selectFrom('content').select('sha256').where('sha256', 'in', shas.slice(i, i + 500)).execute()) held.add(r.sha256);
  }
  for (const [sha, size] of refs) {
    if (held.has(sha)) continue;
    const bytes = await source.payload(sha, size);
    if (!bytes || bytes.length !== size || sha256Hex(bytes) !== sha) {
      report.unavailable++;
      continue;
    }
    await ctx.db.insertInto('content').values({ sha256: sha, length: size, bytes: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length), created_at: ctx.now() }).onConflict((oc) => oc.column('sha256').doNothing()).execute();
    report.fetched++;
    report.bytes += size;
  }
  return report;
}

/**
 * Fetches and checks targets with a few requests in flight, writing them to the content store in
 * groups as they arrive. On the first failure no new request starts; what was verified is written
 * before the error is passed on, so a later sync does not fetch it again.
 */
async function fetchAll(ctx: Ctx, remote: RemoteRepository, items: [string, MirroredTarget][], concurrency: number, onOne: () => void): Promise<void> {
  let next = 0;
  let failed: unknown = null;
  let pending: { sha256: string; bytes: Uint8Array }[] = [];
  let pendingBytes = 0;
  let writing: Promise<void> = Promise.resolve();
  const flush = () => {
    if (!pending.length) return writing;
    const batch = pending;
    pending = [];
    pendingBytes = 0;
    const now = ctx.now();
    writing = writing.then(async () => {
      await ctx.db
        .insertInto('content')
        .values(batch.map((b) => ({ sha256: b.sha256, length: b.bytes.length, bytes: Buffer.from(b.bytes.buffer, b.bytes.byteOffset, b.bytes.length), created_at: now })))
        .onConflict((oc) => oc.column('sha256').doNothing())
        .execute();
    });
    return writing;
  };
  const worker = async () => {
    while (failed === null && next < items.length) {
      const [path, t] = items[next++]!;
      try {
        const bytes = await fetchTarget(remote, t, path);
        pending.push({ sha256: t.sha256, bytes });
        pendingBytes += bytes.length;
        onOne();
        if (pending.length >= FLUSH_TARGETS || pendingBytes >= FLUSH_BYTES) await flush();
      } catch (err) {
        failed ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, worker));
  await flush();
  if (failed !== null) throw failed;
}
