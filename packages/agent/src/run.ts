/** Enrollment, one check-in, and the check-in loop with jitter and backoff. */
import {
  canonicalDigest,
  diffInventories,
  EnrollResponse,
  inventoryHash,
  PatchwardenError,
  PROTOCOL_VERSION,
  type CheckinRequest,
  type CheckinResponse,
  type InventoryUpdate,
  type PackageFact,
  type SystemFacts,
} from '@patchwarden/core';
import { collectFacts, type CollectOptions } from './collectors/index.js';
import { loadAckedInventory, loadState, newDeviceKey, saveAckedInventory, saveState, stateExists, type AgentState } from './state.js';
import { fetchRoot, pinRoot } from './catalog.js';
import { fetchPinnedCa, normalizeServerUrl, request, trustServerCa, useDeviceKey } from './transport.js';

export const AGENT_VERSION = '0.1.0';

export interface AgentOptions {
  dataDir: string;
  collect: CollectOptions;
}

async function collect(opts: AgentOptions, files?: readonly string[]) {
  const facts = await collectFacts({ ...opts.collect, ...(files?.length ? { files } : {}) });
  const system: SystemFacts = { ...facts.system, agentVersion: AGENT_VERSION };
  return { system, packages: facts.packages };
}

export async function enrollAgent(
  opts: AgentOptions & { server: string; secret: string; force?: boolean; installs?: boolean; rootSha256?: string; caSha256?: string },
): Promise<AgentState & { status: 'active' | 'pending'; catalogRoot: { sha256: string; version: number } | null }> {
  if (stateExists(opts.dataDir) && !opts.force) {
    const s = loadState(opts.dataDir);
    throw new PatchwardenError('E_CONFLICT', `this agent is enrolled already as device ${s.deviceId} with ${s.server}`, {
      hint: 'pass --force to enroll again as a new device, or use another --data-dir',
    });
  }
  const server = normalizeServerUrl(opts.server).origin;
  // with a CA fingerprint the connection is verified against that CA from the first request on
  const caPem = opts.caSha256 ? await fetchPinnedCa(server, opts.caSha256) : null;
  if (caPem) trustServerCa(server, caPem);
  // with a fingerprint, the catalog root is checked before the secret is sent anywhere
  const rootFirst = opts.rootSha256 ? await fetchRoot(server, opts.rootSha256) : null;
  const { system } = await collect(opts);
  // the device's own key: the private half never leaves this data directory
  const key = newDeviceKey();
  const res = await request<unknown>(server, 'POST', '/api/v1/enroll', { body: { secret: opts.secret, system, publicKey: key.publicKey } });
  const parsed = EnrollResponse.safeParse(res.body);
  if (!parsed.success) throw new PatchwardenError('E_INTERNAL', 'the server answered enrollment with an unexpected body');
  const state: AgentState = {
    server,
    deviceId: parsed.data.deviceId,
    token: parsed.data.token,
    enrolledAt: new Date().toISOString(),
    checkinIntervalSeconds: parsed.data.checkinIntervalSeconds,
    installs: opts.installs ?? false,
    acked: null,
    collect: null,
    caPem,
    key,
    keyRegistered: true,
    sequence: 0,
  };
  useDeviceKey(state.token, key);
  // the catalog root is pinned now, before anything from the catalog is used
  const root = rootFirst ?? (await fetchRoot(server));
  if (root) pinRoot(opts.dataDir, root);
  saveState(opts.dataDir, state);
  return { ...state, status: parsed.data.status, catalogRoot: root ? { sha256: root.sha256, version: root.version } : null };
}

/**
 * A device enrolled before device keys makes its key pair and registers the public half, once;
 * the pair is saved first, so a crash in between registers the same key on the next try.
 */
export async function ensureDeviceKey(dataDir: string, state: AgentState): Promise<AgentState> {
  if (state.key && state.keyRegistered) return state;
  let next = state;
  if (!next.key) {
    next = { ...next, key: newDeviceKey(), keyRegistered: false };
    saveState(dataDir, next);
    useDeviceKey(next.token, next.key!);
  }
  await request(next.server, 'POST', '/api/v1/agent/key', { token: next.token, body: { publicKey: next.key!.publicKey } });
  next = { ...next, keyRegistered: true };
  saveState(dataDir, next);
  return next;
}

export interface CheckinResult {
  mode: InventoryUpdate['mode'];
  sentSystem: boolean;
  bytesSent: number;
  packages: number;
  /** The server had lost the base and the agent sent everything again. */
  resent: boolean;
  response: CheckinResponse;
}

function buildRequest(
  state: AgentState,
  system: SystemFacts,
  systemHash: string,
  packages: PackageFact[],
  hash: string,
  dataDir: string,
  forceFull: boolean,
): CheckinRequest {
  const acked = forceFull ? null : state.acked;
  let inventory: InventoryUpdate;
  if (acked && acked.inventoryHash === hash) {
    inventory = { mode: 'same', hash };
  } else {
    const base = acked ? loadAckedInventory(dataDir) : null;
    const delta = base && base.hash === acked?.inventoryHash ? diffInventories(base.packages, packages) : null;
    // a delta larger than a third of the inventory saves little and costs the server more
    if (delta && base && delta.add.length + delta.remove.length <= Math.max(50, packages.length / 3)) {
      inventory = { mode: 'delta', base: base.hash, hash, add: delta.add, remove: delta.remove };
    } else {
      inventory = { mode: 'full', hash, packages };
    }
  }
  const req: CheckinRequest = { protocol: PROTOCOL_VERSION, systemHash, inventory };
  if (state.collect) req.catalog = state.collect.generation;
  if (!acked || acked.systemHash !== systemHash) req.system = system;
  return req;
}

export async function checkinOnce(opts: AgentOptions): Promise<CheckinResult> {
  let state = await ensureDeviceKey(opts.dataDir, loadState(opts.dataDir));
  const { system, packages } = await collect(opts, state.collect?.files);
  const systemHash = canonicalDigest(system);
  const hash = inventoryHash(packages);
  const post = (body: CheckinRequest) => {
    // every attempt gets the next number, saved before it leaves: a retry never repeats one
    state = { ...state, sequence: state.sequence + 1 };
    saveState(opts.dataDir, state);
    return request<CheckinResponse>(state.server, 'POST', '/api/v1/agent/checkin', { token: state.token, body: { ...body, sequence: state.sequence } });
  };
  let resent = false;
  let first = buildRequest(state, system, systemHash, packages, hash, opts.dataDir, false);
  let res;
  try {
    res = await post(first);
  } catch (err) {
    const code = err instanceof PatchwardenError ? err.code : undefined;
    if (code !== 'E_INVENTORY_BASE_UNKNOWN' && code !== 'E_INVENTORY_HASH_MISMATCH') throw err;
    resent = true;
    first = buildRequest(state, system, systemHash, packages, hash, opts.dataDir, true);
    res = await post(first);
  }
  if (first.inventory.mode !== 'same') saveAckedInventory(opts.dataDir, hash, packages);
  const { collect: directive, catalogGeneration } = res.body;
  saveState(opts.dataDir, {
    ...state,
    acked: { systemHash, inventoryHash: hash },
    checkinIntervalSeconds: res.body.nextCheckinSeconds,
    // the files asked for are collected from the next check-in on
    ...(directive && catalogGeneration !== undefined ? { collect: { generation: catalogGeneration, ...directive } } : {}),
  });
  return {
    mode: first.inventory.mode,
    sentSystem: first.system !== undefined,
    bytesSent: res.bytesSent,
    packages: packages.length,
    resent,
    response: res.body,
  };
}

export interface LoopOptions extends AgentOptions {
  /** Overrides the server's interval (seconds). */
  intervalSeconds?: number;
  signal?: AbortSignal;
  onResult?: (r: CheckinResult) => void;
  onError?: (err: unknown, retryInSeconds: number) => void;
  random?: () => number;
  /** wakes the loop for an early check-in (device change, finished job) */
  waker?: Waker;
}

/** ±10 % jitter, so a fleet that started together does not check in together. */
export function jittered(seconds: number, random: () => number = Math.random): number {
  return seconds * (0.9 + 0.2 * random());
}

/** Lets a sleeping loop wake early: a change on the device, or a job that just finished. */
export class Waker {
  private pending = false;
  private wakeup: (() => void) | undefined;
  wake(): void {
    this.pending = true;
    this.wakeup?.();
  }
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (this.pending) {
      this.pending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        signal?.removeEventListener('abort', done);
        this.wakeup = undefined;
        this.pending = false;
        resolve();
      };
      const t = setTimeout(done, ms);
      this.wakeup = done;
      if (signal?.aborted) done();
      else signal?.addEventListener('abort', done, { once: true });
    });
  }
}

function sleep(ms: number, signal?: AbortSignal, waker?: Waker): Promise<void> {
  if (waker) return waker.sleep(ms, signal);
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const onAbort = () => {
      clearTimeout(t);
      resolve();
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Checks in until aborted. Fatal errors (revoked, not enrolled) end the loop by throwing. */
export async function runLoop(opts: LoopOptions): Promise<void> {
  const random = opts.random ?? Math.random;
  let failures = 0;
  while (!opts.signal?.aborted) {
    let waitSeconds: number;
    try {
      const r = await checkinOnce(opts);
      failures = 0;
      opts.onResult?.(r);
      waitSeconds = jittered(opts.intervalSeconds ?? r.response.nextCheckinSeconds, random);
    } catch (err) {
      const code = err instanceof PatchwardenError ? err.code : undefined;
      if (code === 'E_DEVICE_REVOKED' || code === 'E_NOT_ENROLLED' || code === 'E_UNAUTHENTICATED' || code === 'E_CONFIG_INVALID') throw err;
      failures++;
      const interval = opts.intervalSeconds ?? loadStateSafe(opts.dataDir)?.checkinIntervalSeconds ?? 300;
      waitSeconds = Math.min(interval, 2 ** Math.min(failures, 10)) * (0.5 + random());
      opts.onError?.(err, waitSeconds);
    }
    await sleep(waitSeconds * 1000, opts.signal, opts.waker);
  }
}

function loadStateSafe(dataDir: string): AgentState | null {
  try {
    return loadState(dataDir);
  } catch {
    return null;
  }
}
