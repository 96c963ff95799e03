/**
 * A tiny hash router: `#/devices`, `#/devices/<id>`, each with optional `?key=value` state
 * (search, sort, page) so that reloads, links and the back button keep a page as it was.
 */
import { useMemo, useSyncExternalStore } from 'react';

export type Route =
  | { name: 'devices'; params: URLSearchParams }
  | { name: 'device'; id: string; params: URLSearchParams }
  | { name: 'notFound'; path: string; params: URLSearchParams };

const listeners = new Set<() => void>();

function notify(): void {
  for (const l of listeners) l();
}

function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  if (listeners.size === 1) {
    window.addEventListener('hashchange', notify);
    window.addEventListener('popstate', notify);
  }
  return () => {
    listeners.delete(listener);
    if (listeners.size === 0) {
      window.removeEventListener('hashchange', notify);
      window.removeEventListener('popstate', notify);
    }
  };
}

const getHash = (): string => window.location.hash;

export function parseHash(hash: string): Route {
  const raw = hash.replace(/^#/, '');
  const qi = raw.indexOf('?');
  const path = (qi >= 0 ? raw.slice(0, qi) : raw).replace(/\/+$/, '');
  const params = new URLSearchParams(qi >= 0 ? raw.slice(qi + 1) : '');
  if (path === '' || path === '/devices') return { name: 'devices', params };
  const m = /^\/devices\/([^/]+)$/.exec(path);
  if (m?.[1]) {
    let id: string;
    try {
      id = decodeURIComponent(m[1]);
    } catch {
      return { name: 'notFound', path, params };
    }
    return { name: 'device', id, params };
  }
  return { name: 'notFound', path, params };
}

export function useRoute(): Route {
  const hash = useSyncExternalStore(subscribe, getHash);
  return useMemo(() => parseHash(hash), [hash]);
}

export type ParamValues = Record<string, string | number | null | undefined>;

/** `#<path>?<params>`, dropping empty values. */
export function href(path: string, params: ParamValues = {}): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== null && v !== undefined && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return `#${path}${s ? `?${s}` : ''}`;
}

export const devicesPath = '/devices';
export const devicePath = (id: string): string => `/devices/${encodeURIComponent(id)}`;

/**
 * Goes to `target` (a `#…` string). `replace` rewrites the current history entry instead of
 * adding one: used for typing in a search box, so Back leaves the page rather than each keystroke.
 */
export function navigate(target: string, { replace = false }: { replace?: boolean } = {}): void {
  if (target === window.location.hash) return;
  if (replace) {
    const url = window.location.pathname + window.location.search + target;
    window.history.replaceState(window.history.state, '', url);
    notify();
  } else {
    window.location.hash = target;
  }
}

/** Merges `changes` into the current route's params and navigates there. */
export function updateParams(path: string, current: URLSearchParams, changes: ParamValues, replace = false): void {
  const next: ParamValues = Object.fromEntries(current.entries());
  Object.assign(next, changes);
  navigate(href(path, next), { replace });
}
