/**
 * Live updates: one `GET /api/v1/events/stream` per signed-in shell, read as Server-Sent Events
 * over fetch (the admin token is a header). `checkin`, `job` and `deployment` events invalidate
 * the queries they make stale, batched so a burst of check-ins costs one refetch per query.
 * Reconnects with exponential backoff (1 s … 30 s, with jitter); stops when the shell unmounts
 * (sign-out, another token).
 */
import { useQueryClient, type QueryKey } from '@tanstack/react-query';
import { useEffect, useSyncExternalStore } from 'react';
import { streamRequest } from '../api/client';
import type { LiveEvent } from '../api/types';
import { readSse } from './sse';

export type LiveState = 'connecting' | 'live' | 'reconnecting' | 'unavailable';
type Status = { state: LiveState; lastEventAt: number | null };

let status: Status = { state: 'connecting', lastEventAt: null };
const listeners = new Set<() => void>();

function setStatus(next: Partial<Status>): void {
  status = { ...status, ...next };
  for (const l of listeners) l();
}

function subscribe(l: () => void): () => void {
  listeners.add(l);
  return () => listeners.delete(l);
}

export function useLiveStatus(): Status {
  return useSyncExternalStore(subscribe, () => status);
}

/** The queries an event makes stale. */
export function keysFor(e: LiveEvent): QueryKey[] {
  switch (e.type) {
    case 'checkin':
      return [['dashboard'], ['devices'], ['device'], ['device-patches'], ['catalog'], ['patch-devices'], ['reports']];
    case 'job':
      return [['dashboard'], ['deployments'], ['deployment', e.data.deploymentId], ['deployment-jobs', e.data.deploymentId],
        ['job', e.data.jobId], ['device-jobs'], ['device-patches']];
    case 'deployment':
      return [['dashboard'], ['deployments'], ['deployment', e.data.id], ['deployment-jobs', e.data.id]];
  }
}

const BATCH_MS = 750;
const MAX_BACKOFF_MS = 30_000;
const UNAVAILABLE_RETRY_MS = 60_000;

export function useLiveEvents(): void {
  const queryClient = useQueryClient();
  useEffect(() => {
    const ctrl = new AbortController();
    let attempt = 0;
    let connectedBefore = false;
    let retryTimer: ReturnType<typeof setTimeout> | undefined;
    let flushTimer: ReturnType<typeof setTimeout> | undefined;
    const pending = new Map<string, QueryKey>();

    const flush = () => {
      flushTimer = undefined;
      for (const key of pending.values()) void queryClient.invalidateQueries({ queryKey: key });
      pending.clear();
    };

    const onMessage = (event: string, data: string) => {
      if (event !== 'checkin' && event !== 'job' && event !== 'deployment') return;
      let parsed: unknown;
      try {
        parsed = JSON.parse(data);
      } catch {
        return;
      }
      if (typeof parsed !== 'object' || parsed === null) return;
      setStatus({ lastEventAt: Date.now() });
      for (const key of keysFor({ type: event, data: parsed } as LiveEvent)) pending.set(JSON.stringify(key), key);
      flushTimer ??= setTimeout(flush, BATCH_MS);
    };

    const retry = (ms: number) => {
      if (ctrl.signal.aborted) return;
      retryTimer = setTimeout(() => void connect(), ms);
    };

    async function connect(): Promise<void> {
      const { url, headers } = streamRequest('/events/stream');
      try {
        const res = await fetch(url, { headers, signal: ctrl.signal, cache: 'no-store' });
        if (res.status === 404 || res.status === 501) {
          // this server has no event stream: pages still refresh on their own timers
          setStatus({ state: 'unavailable' });
          retry(UNAVAILABLE_RETRY_MS);
          return;
        }
        if (res.status === 401) {
          // the queries see the same 401 and sign out with the server's reason
          setStatus({ state: 'reconnecting' });
          retry(MAX_BACKOFF_MS);
          return;
        }
        if (!res.ok || !res.body) throw new Error(`event stream: ${res.status}`);
        setStatus({ state: 'live' });
        attempt = 0;
        // events missed while disconnected: refetch what is on screen
        if (connectedBefore) void queryClient.invalidateQueries();
        connectedBefore = true;
        await readSse(res.body, (m) => onMessage(m.event, m.data), ctrl.signal);
      } catch {
        // network error or a dropped stream: reconnect below
      }
      if (ctrl.signal.aborted) return;
      setStatus({ state: 'reconnecting' });
      const delay = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** attempt) * (0.75 + Math.random() * 0.5);
      attempt += 1;
      retry(delay);
    }

    setStatus({ state: 'connecting' });
    void connect();
    return () => {
      ctrl.abort();
      if (retryTimer) clearTimeout(retryTimer);
      if (flushTimer) clearTimeout(flushTimer);
    };
  }, [queryClient]);
}
