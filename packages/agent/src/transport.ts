/**
 * The agent's one way to reach the server. Everything on the wire goes through here, so TLS
 * and request signing can arrive in one place later. Bodies over 4 KiB travel gzip-compressed.
 */
import http from 'node:http';
import https from 'node:https';
import { gzipSync } from 'node:zlib';
import { errorFromBody, PatchwardenError } from '@patchwarden/core';

export interface Response<T> {
  status: number;
  body: T;
  /** Bytes of the request as sent: request line, headers and (compressed) body. */
  bytesSent: number;
}

const GZIP_OVER = 4096;
const agents = { http: new http.Agent({ keepAlive: true, maxSockets: 4 }), https: new https.Agent({ keepAlive: true, maxSockets: 4 }) };

export function normalizeServerUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new PatchwardenError('E_VALIDATION', `'${raw}' is not a URL`, { hint: 'pass the server as http://HOST:PORT' });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new PatchwardenError('E_VALIDATION', `unsupported server URL scheme '${url.protocol}'`, { hint: 'use http:// or https://' });
  }
  return url;
}

export async function request<T>(
  server: string,
  method: 'GET' | 'POST',
  path: string,
  opts: { token?: string; body?: unknown; timeoutMs?: number } = {},
): Promise<Response<T>> {
  const base = normalizeServerUrl(server);
  const url = new URL(path, base);
  const headers: Record<string, string> = { accept: 'application/json', 'user-agent': 'patchwarden-agent' };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  let payload: Buffer | undefined;
  if (opts.body !== undefined) {
    payload = Buffer.from(JSON.stringify(opts.body), 'utf8');
    headers['content-type'] = 'application/json';
    if (payload.length > GZIP_OVER) {
      payload = gzipSync(payload, { level: 6 });
      headers['content-encoding'] = 'gzip';
    }
    headers['content-length'] = String(payload.length);
  }
  const mod = url.protocol === 'https:' ? https : http;
  const agent = url.protocol === 'https:' ? agents.https : agents.http;
  return new Promise((resolve, reject) => {
    const req = mod.request(url, { method, headers, agent, timeout: opts.timeoutMs ?? 60_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown = undefined;
        if (text) {
          try {
            body = JSON.parse(text);
          } catch {
            body = undefined;
          }
        }
        const bytesSent = bytesOf(req, payload);
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) resolve({ status, body: body as T, bytesSent });
        else reject(Object.assign(errorFromBody(status, body), { status }));
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url.origin} within ${opts.timeoutMs ?? 60_000} ms`)));
    req.on('error', (err) => {
      reject(
        new PatchwardenError('E_SERVER_UNREACHABLE', `cannot reach the server at ${url.origin}: ${err.message}`, {
          hint: 'check the server URL and that the server is running; the agent retries on its own',
          cause: err,
        }),
      );
    });
    req.end(payload);
  });
}

function bytesOf(req: http.ClientRequest, payload: Buffer | undefined): number {
  // the header block as Node wrote it, plus the body
  const head = (req as unknown as { _header?: string })._header ?? '';
  return Buffer.byteLength(head, 'latin1') + (payload?.length ?? 0);
}

/**
 * A file as bytes (signed catalog metadata and targets): null when the server has none (404),
 * refused when longer than `maxBytes`, so a hostile server cannot fill the agent's memory.
 */
export async function requestBytes(server: string, path: string, opts: { token?: string; maxBytes: number; timeoutMs?: number }): Promise<Buffer | null> {
  const base = normalizeServerUrl(server);
  const url = new URL(path, base);
  const mod = url.protocol === 'https:' ? https : http;
  const agent = url.protocol === 'https:' ? agents.https : agents.http;
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { 'user-agent': 'patchwarden-agent', ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}) };
    const req = mod.request(url, { method: 'GET', headers, agent, timeout: opts.timeoutMs ?? 60_000 }, (res) => {
      const status = res.statusCode ?? 0;
      if (status === 404) {
        res.resume();
        return resolve(null);
      }
      const chunks: Buffer[] = [];
      let n = 0;
      res.on('data', (c: Buffer) => {
        n += c.length;
        if (n > opts.maxBytes) {
          req.destroy(new PatchwardenError('E_PAYLOAD_TOO_LARGE', `${url.pathname} is longer than the ${opts.maxBytes} bytes allowed`));
          return;
        }
        chunks.push(c);
      });
      res.on('error', reject);
      res.on('end', () => {
        const bytes = Buffer.concat(chunks);
        if (status >= 200 && status < 300) return resolve(bytes);
        let body: unknown;
        try {
          body = JSON.parse(bytes.toString('utf8'));
        } catch {
          body = undefined;
        }
        reject(Object.assign(errorFromBody(status, body), { status }));
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url.origin} within ${opts.timeoutMs ?? 60_000} ms`)));
    req.on('error', (err) =>
      reject(err instanceof PatchwardenError ? err : new PatchwardenError('E_SERVER_UNREACHABLE', `cannot reach the server at ${url.origin}: ${err.message}`, { cause: err })),
    );
    req.end();
  });
}
