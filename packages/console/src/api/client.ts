/**
 * The API client: a signed-in session (an HttpOnly cookie the browser keeps, plus the CSRF token
 * every change repeats) or an API token (kept in sessionStorage for this tab only), and typed
 * requests that turn every failure into an ApiRequestError carrying the server's code, message
 * and hint.
 */
import type { ApiError } from './types';

const TOKEN_KEY = 'patchwarden.adminToken';
const API_BASE = '/api/v1';

export class ApiRequestError extends Error {
  readonly status: number;
  readonly code: string;
  readonly hint: string | undefined;

  constructor(status: number, code: string, message: string, hint?: string) {
    super(message);
    this.name = 'ApiRequestError';
    this.status = status;
    this.code = code;
    this.hint = hint;
  }
}

export function isUnauthorized(err: unknown): boolean {
  return err instanceof ApiRequestError && err.status === 401;
}

// --- the token -------------------------------------------------------------------------------

export type SessionNotice = { tone: 'info' | 'error'; message: string };
/** `token`: signed in with an API token; `csrf`: signed in with a password (the cookie session). */
export type Session = { token: string | null; csrf: string | null; reason: SessionNotice | null };

let memoryToken: string | null = null;
let session: Session = { token: readStoredToken(), csrf: null, reason: null };

/** What identifies this sign-in (null: signed out); a new value starts a fresh shell. */
export function sessionKey(s: Session): string | null {
  return s.token ?? (s.csrf ? `session:${s.csrf}` : null);
}
const listeners = new Set<() => void>();

function readStoredToken(): string | null {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return memoryToken;
  }
}

function writeStoredToken(token: string | null): void {
  memoryToken = token;
  try {
    if (token === null) sessionStorage.removeItem(TOKEN_KEY);
    else sessionStorage.setItem(TOKEN_KEY, token);
  } catch {
    // Storage disabled: the token lives in memory for this page only.
  }
}

function setSession(next: Session): void {
  session = next;
  for (const l of listeners) l();
}

export function subscribeSession(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** The current session: the token, or why the user was signed out. */
export function getSession(): Session {
  return session;
}

export function signIn(token: string): void {
  writeStoredToken(token);
  setSession({ token, csrf: null, reason: null });
}

/** Signs in with a name and password: the server sets the session cookie and answers the CSRF token. */
export async function signInWithPassword(name: string, password: string): Promise<void> {
  const r = await apiRequest<{ csrf: string }>('POST', '/auth/login', { json: { name, password } }, { token: null });
  writeStoredToken(null);
  setSession({ token: null, csrf: r.csrf, reason: null });
}

/** A session cookie from before a reload still signs this tab in (the server answers its CSRF token). */
export async function resumeSession(): Promise<void> {
  if (session.token) return;
  try {
    const res = await fetch(`${API_BASE}/auth/session`, { headers: { Accept: 'application/json' }, cache: 'no-store' });
    if (!res.ok) return;
    const s = (await res.json()) as { signedIn: boolean; csrf?: string };
    if (s.signedIn && s.csrf) setSession({ token: null, csrf: s.csrf, reason: null });
  } catch {
    // the sign-in page says what is wrong once the user tries
  }
}

/** Forgets the token or ends the session; `reason` is shown on the sign-in page (e.g. the server's 401 message). */
export function signOut(reason: SessionNotice | null = null): void {
  writeStoredToken(null);
  if (session.csrf !== null) void fetch(`${API_BASE}/auth/logout`, { method: 'POST', cache: 'no-store' }).catch(() => undefined);
  // Several queries may fail with 401 at once: the first one's reason is the one shown.
  if (sessionKey(session) !== null) setSession({ token: null, csrf: null, reason });
}

/**
 * Takes `token=<value>` out of the URL fragment (`#token=…`, `#/devices?token=…`), keeps it as
 * the session's token and rewrites the URL without it so it stays out of history and bookmarks.
 */
export function captureTokenFromFragment(): void {
  const raw = window.location.hash.replace(/^#/, '');
  const qi = raw.indexOf('?');
  const isPath = raw.startsWith('/');
  const path = isPath ? (qi >= 0 ? raw.slice(0, qi) : raw) : '';
  const query = isPath ? (qi >= 0 ? raw.slice(qi + 1) : '') : raw.replace(/^\?/, '');
  const parts = query.split('&').filter((p) => p !== '');
  const tokenPart = parts.find((p) => p.startsWith('token='));
  if (tokenPart === undefined) return;
  let token = '';
  try {
    token = decodeURIComponent(tokenPart.slice('token='.length)).trim();
  } catch {
    token = '';
  }
  const kept = parts.filter((p) => !p.startsWith('token='));
  const rest = path + (kept.length ? `?${kept.join('&')}` : '');
  const url = window.location.pathname + window.location.search + (rest ? `#${rest}` : '');
  window.history.replaceState(window.history.state, '', url);
  if (token) signIn(token);
}

// --- requests --------------------------------------------------------------------------------

function isApiError(body: unknown): body is ApiError {
  if (typeof body !== 'object' || body === null || !('error' in body)) return false;
  const e = (body as { error: unknown }).error;
  return typeof e === 'object' && e !== null && typeof (e as { code?: unknown }).code === 'string'
    && typeof (e as { message?: unknown }).message === 'string';
}

export type QueryParams = Record<string, string | number | undefined>;

export function withQuery(path: string, params: QueryParams): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

type GetOptions = { signal?: AbortSignal; token?: string | null };

/** GET `/api/v1<path>` as JSON. Throws ApiRequestError; never resolves with an error body. */
export async function apiGet<T>(path: string, opts: GetOptions = {}): Promise<T> {
  return apiRequest<T>('GET', path, undefined, opts);
}

type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';
type SendBody = { json: unknown } | { binary: Blob | ArrayBuffer; type?: string } | undefined;

/** POST / PUT / DELETE with a JSON body (`{ json }`) or a file (`{ binary }`). */
export async function apiSend<T>(method: Exclude<Method, 'GET'>, path: string, body?: SendBody, opts: GetOptions = {}): Promise<T> {
  return apiRequest<T>(method, path, body, opts);
}

const networkError = () => new ApiRequestError(0, 'network_error', 'The server could not be reached.',
  'Check that the Patchwarden server is running and reachable from this browser.');

function authHeaders(token: string | null | undefined, change = false): Record<string, string> {
  const t = token !== undefined ? token : session.token;
  if (t) return { Authorization: `Bearer ${t}` };
  // the cookie goes by itself; a change repeats the session's CSRF token
  return change && token === undefined && session.csrf ? { 'X-CSRF-Token': session.csrf } : {};
}

async function apiRequest<T>(method: Method, path: string, send: SendBody, opts: GetOptions): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json', ...authHeaders(opts.token, method !== 'GET') };
  let body: BodyInit | undefined;
  if (send && 'json' in send) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(send.json);
  } else if (send && 'binary' in send) {
    headers['Content-Type'] = send.type ?? 'application/octet-stream';
    body = send.binary;
  }
  let res: Response;
  try {
    res = await fetch(API_BASE + path, { method, headers, body, signal: opts.signal, cache: 'no-store' });
  } catch (err) {
    if (err instanceof DOMException && err.name === 'AbortError') throw err;
    throw networkError();
  }
  const text = await res.text();
  return readAnswer<T>(res, text, method !== 'GET');
}

/** Reads an answer's text: the value on success, an ApiRequestError otherwise (204: null). */
function readAnswer<T>(res: Response, text: string, emptyOk = false): T {
  let body: unknown = null;
  if (text) {
    try {
      body = JSON.parse(text);
    } catch {
      body = null;
    }
  }
  if (!res.ok) {
    if (isApiError(body)) {
      throw new ApiRequestError(res.status, body.error.code, body.error.message, body.error.hint);
    }
    throw new ApiRequestError(res.status, `http_${res.status}`,
      `The server answered ${res.status} ${res.statusText}`.trim() + '.');
  }
  if (body === null) {
    if (res.status === 204 || (emptyOk && text === '')) return null as T;
    throw new ApiRequestError(res.status, 'bad_response', 'The server sent a response that is not JSON.');
  }
  return body as T;
}

/**
 * Downloads `/api/v1<path>` as a file named `filename`: the token is a header, so a plain link
 * cannot carry it; fetch the bytes, wrap them in an object URL and click a temporary link.
 */
export async function apiDownload(path: string, filename: string): Promise<void> {
  let res: Response;
  try {
    res = await fetch(API_BASE + path, { headers: authHeaders(undefined), cache: 'no-store' });
  } catch {
    throw networkError();
  }
  if (!res.ok) readAnswer<never>(res, await res.text());
  const blob = await res.blob();
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  a.rel = 'noopener';
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** The base URL and headers for a streaming request (the live events hook). */
export function streamRequest(path: string): { url: string; headers: Record<string, string> } {
  return { url: API_BASE + path, headers: { Accept: 'text/event-stream', ...authHeaders(undefined) } };
}

export function isNotFound(err: unknown): boolean {
  return err instanceof ApiRequestError && err.status === 404;
}

/** A 404 for the route itself (this server does not have that API), not for a missing thing. */
export function isMissingRoute(err: unknown): boolean {
  return err instanceof ApiRequestError && err.status === 404 && (err.code === 'http_404' || err.message.startsWith('no route '));
}
