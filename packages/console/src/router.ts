/**
 * A tiny hash router: `#/` (dashboard), `#/devices`, `#/devices/<id>`, `#/patches[/<id>]`,
 * `#/deployments[/new|/<id>]`, `#/reports`, `#/settings`, each with optional `?key=value` state
 * (search, sort, page) so that reloads, links and the back button keep a page as it was.
 */
import { useMemo, useSyncExternalStore } from 'react';

export type Route =
  | { name: 'dashboard'; params: URLSearchParams }
  | { name: 'devices'; params: URLSearchParams }
  | { name: 'device'; id: string; params: URLSearchParams }
  | { name: 'patches'; params: URLSearchParams }
  | { name: 'patch'; id: string; params: URLSearchParams }
  | { name: 'deployments'; params: URLSearchParams }
  | { name: 'newDeployment'; params: URLSearchParams }
  | { name: 'deployment'; id: string; params: URLSearchParams }
  | { name: 'reports'; params: URLSearchParams }
  | { name: 'settings'; params: URLSearchParams }
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
  if (path === '' || path === '/' || path === '/dashboard') return { name: 'dashboard', params };
  const simple: Record<string, Route['name']> = {
    '/devices': 'devices', '/patches': 'patches', '/deployments': 'deployments', '/deployments/new': 'newDeployment',
    '/reports': 'reports', '/settings': 'settings',
  };
  const named = simple[path];
  if (named) return { name: named, params } as Route;
  const m = /^\/(devices|patches|deployments)\/([^/]+)$/.exec(path);
  if (m?.[1] && m[2]) {
    let id: string;
    try {
      id = decodeURIComponent(m[2]);
    } catch {
      return { name: 'notFound', path, params };
    }
    const name = m[1] === 'devices' ? 'device' : m[1] === 'patches' ? 'patch' : 'deployment';
    return { name, id, params };
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

export const dashboardPath = '/';
export const devicesPath = '/devices';
export const devicePath = (id: string): string => `/devices/${encodeURIComponent(id)}`;
export const patchesPath = '/patches';
export const patchPath = (id: string): string => `/patches/${encodeURIComponent(id)}`;
export const deploymentsPath = '/deployments';
export const newDeploymentPath = '/deployments/new';
export const deploymentPath = (id: string): string => `/deployments/${encodeURIComponent(id)}`;
export const reportsPath = '/reports';
export const settingsPath = '/settings';

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
