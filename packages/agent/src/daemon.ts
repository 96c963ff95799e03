/**
 * The running agent: the check-in loop, the job loop and continuous monitoring side by side.
 * A change of the package database (or of a file the catalog's rules watch) wakes an early
 * check-in, so a patch removed by hand shows up as needed again within seconds; a finished job
 * does the same, so the server sees the new inventory at once.
 */
import { watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import { PatchwardenError } from '@patchwarden/core';
import { processJobs, type JobOptions, type JobPass } from './jobs/loop.js';
import { runLoop, Waker, type CheckinResult, type LoopOptions } from './run.js';
import { loadState } from './state.js';

export interface DaemonOptions extends LoopOptions, JobOptions {
  /** Seconds the server may hold a job request open (long poll). Default 30. */
  jobWaitSeconds?: number;
  /** Watch the package database and watched files. Default true. */
  monitor?: boolean;
  onPass?: (p: JobPass) => void;
  onJobError?: (err: unknown, retryInSeconds: number) => void;
}

const FATAL = new Set(['E_DEVICE_REVOKED', 'E_NOT_ENROLLED', 'E_UNAUTHENTICATED', 'E_CONFIG_INVALID']);

/** Watches `<root>/var/lib/dpkg/status` and the watched files' directories; calls `onChange` debounced. */
export function watchDevice(root: string, files: readonly string[], onChange: (what: string) => void, debounceMs = 2000): () => void {
  const watchers: FSWatcher[] = [];
  let timer: NodeJS.Timeout | undefined;
  let what = '';
  const fire = (w: string) => {
    what = w;
    clearTimeout(timer);
    timer = setTimeout(() => onChange(what), debounceMs);
  };
  const dirs = new Map<string, Set<string>>();
  const add = (file: string) => {
    const d = path.dirname(file);
    if (!dirs.has(d)) dirs.set(d, new Set());
    dirs.get(d)!.add(path.basename(file));
  };
  add(path.join(root, 'var/lib/dpkg/status'));
  for (const f of files.slice(0, 64)) if (f.startsWith('/')) add(path.join(root, f));
  for (const [dir, names] of dirs) {
    try {
      // dpkg replaces its status file by rename, so the directory is watched, not the file
      const w = watch(dir, { persistent: false }, (_event, name) => {
        if (name && names.has(String(name))) fire(path.join(dir, String(name)));
      });
      w.on('error', () => w.close());
      watchers.push(w);
    } catch {
      // a directory that does not exist (yet) is checked at the next interval check-in
    }
  }
  return () => {
    clearTimeout(timer);
    for (const w of watchers) w.close();
  };
}

/**
 * The job side's failures in a row and its pause between tries. Hearing from the server (a
 * check-in that got through) ends a pause running now and starts the count again: after an
 * outage the check-in loop gets through first, and jobs (a report still to send, an install
 * waiting to be handed out) should not sit out a backoff that grew while the server was away,
 * nor start the next outage from where the last one left the count.
 */
class Backoff {
  private failures = 0;
  private current: AbortController | null = null;
  /** one more failure: the seconds to wait before the next try */
  failed(): number {
    this.failures++;
    return retryDelay(this.failures);
  }
  succeeded(): void {
    this.failures = 0;
  }
  async pause(seconds: number, signal?: AbortSignal): Promise<void> {
    const c = new AbortController();
    this.current = c;
    const stop = () => c.abort();
    signal?.addEventListener('abort', stop, { once: true });
    try {
      await new Waker().sleep(seconds * 1000, c.signal);
    } finally {
      signal?.removeEventListener('abort', stop);
      if (this.current === c) this.current = null;
    }
  }
  /** the server answered a check-in */
  serverBack(): void {
    this.failures = 0;
    this.current?.abort();
  }
}

/** Seconds before the n-th retry in a row: 2^n, at most 5 minutes, ±50 % so a fleet spreads out. */
export function retryDelay(failures: number, random: () => number = Math.random): number {
  return Math.min(300, 2 ** Math.min(failures, 9)) * (0.5 + random());
}

async function jobLoop(opts: DaemonOptions, waker: Waker, backoff: Backoff): Promise<void> {
  const pause = (s: number) => new Waker().sleep(s * 1000, opts.signal);
  while (!opts.signal?.aborted) {
    try {
      const pass = await processJobs(opts, opts.jobWaitSeconds ?? 30);
      opts.onPass?.(pass);
      if (pass.ran.length || pass.scanRequested) waker.wake();
      if (pass.retrying?.length) {
        // a job stopped by the network or the server's trouble (nothing on the device changed):
        // tried again with the same growing waits as any other failure
        const wait = backoff.failed();
        opts.onJobError?.(new PatchwardenError('E_SERVER_UNREACHABLE', pass.retrying.map((r) => `job ${r.id}: ${r.reason}`).join('; ')), wait);
        await backoff.pause(wait, opts.signal);
        continue;
      }
      backoff.succeeded();
      if (pass.installs && pass.waiting.length) await pause(30);
    } catch (err) {
      const code = err instanceof PatchwardenError ? err.code : undefined;
      if (code && FATAL.has(code)) throw err;
      const wait = backoff.failed();
      opts.onJobError?.(err, wait);
      await backoff.pause(wait, opts.signal);
    }
  }
}

/** Runs until `signal` aborts; a fatal error (revoked, not enrolled) ends it by throwing. */
export async function runAgent(opts: DaemonOptions): Promise<void> {
  const waker = opts.waker ?? new Waker();
  const state = loadState(opts.dataDir);
  // only the files a verified rule names are watched, as only they are read
  const asked = state.collect?.files ?? [];
  const watched = asked.length && opts.collect.vouch ? await opts.collect.vouch(asked).catch(() => []) : asked;
  const stop = opts.monitor === false ? () => {} : watchDevice(opts.collect.root, watched, () => waker.wake());
  // one loop ending with a fatal error stops the other
  const inner = new AbortController();
  opts.signal?.addEventListener('abort', () => inner.abort(), { once: true });
  const stopBoth = (err: unknown) => {
    inner.abort();
    throw err;
  };
  const backoff = new Backoff();
  const o = {
    ...opts,
    signal: inner.signal,
    waker,
    onResult: (r: CheckinResult) => {
      backoff.serverBack();
      opts.onResult?.(r);
    },
  };
  try {
    await Promise.all([runLoop(o).catch(stopBoth), jobLoop(o, waker, backoff).catch(stopBoth)]);
  } finally {
    inner.abort();
    stop();
  }
}
