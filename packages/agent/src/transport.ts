/**
 * The agent's one way to reach the server. Everything on the wire goes through here. Over
 * HTTPS a server whose certificate authority the agent pinned at enrollment is trusted by that
 * CA alone (not the system's); others by the system's CAs. Bodies over 4 KiB travel gzip-compressed.
 */
import http from 'node:http';
import https from 'node:https';
import { gzipSync } from 'node:zlib';
import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { DEVICE_SIGNATURE_HEADERS, deviceSigner, EMPTY_BODY_SHA256, errorFromBody, PatchwardenError, type DeviceKeyPair, type SignedRequestParts } from '@patchwarden/core';

export interface Response<T> {
  status: number;
  body: T;
  /** Bytes of the request as sent: request line, headers and (compressed) body. */
  bytesSent: number;
}

const GZIP_OVER = 4096;
const agents = { http: new http.Agent({ keepAlive: true, maxSockets: 4 }), https: new https.Agent({ keepAlive: true, maxSockets: 4 }) };
/** origin → an agent that trusts only the CA pinned for that server */
const pinned = new Map<string, https.Agent>();

/** From now on, `origin` is trusted by this CA certificate only. */
export function trustServerCa(origin: string, caPem: string): void {
  pinned.set(new URL(origin).origin, new https.Agent({ keepAlive: true, maxSockets: 4, ca: caPem }));
}

function connection(url: URL): { mod: typeof http | typeof https; agent: http.Agent } {
  if (url.protocol !== 'https:') return { mod: http, agent: agents.http };
  return { mod: https, agent: pinned.get(url.origin) ?? agents.https };
}

/** token → the signer of the device that holds it: every request made with the token is signed */
const signers = new Map<string, (p: SignedRequestParts) => string>();
/** token → how far the server's clock is ahead of this machine's, learned from a refusal */
const clockOffsets = new Map<string, number>();

/** From now on, every request made with `token` is signed with the device's key. */
export function useDeviceKey(token: string, pair: DeviceKeyPair): void {
  signers.set(token, deviceSigner(pair));
}

/** The credential headers of a request: the bearer token, and the device's signature when it has a key. */
function credentialHeaders(token: string | undefined, method: string, url: URL, payload: Buffer | undefined): Record<string, string> {
  if (!token) return {};
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  const sign = signers.get(token);
  if (sign) {
    const date = Date.now() + (clockOffsets.get(token) ?? 0);
    const nonce = randomBytes(18).toString('base64url');
    const bodySha256 = payload && payload.length > 0 ? createHash('sha256').update(payload).digest('hex') : EMPTY_BODY_SHA256;
    headers[DEVICE_SIGNATURE_HEADERS.date] = String(date);
    headers[DEVICE_SIGNATURE_HEADERS.nonce] = nonce;
    headers[DEVICE_SIGNATURE_HEADERS.signature] = sign({ method, path: url.pathname + url.search, date, nonce, bodySha256 });
  }
  return headers;
}

/**
 * True when the server refused the request for this machine's clock; the server's time is
 * remembered, so the next signature carries a date the server accepts.
 */
function learnedClock(token: string | undefined, err: unknown): boolean {
  if (!token || !(err instanceof PatchwardenError) || err.code !== 'E_CLOCK_SKEW') return false;
  const serverTime = (err.details as { serverTime?: unknown } | undefined)?.serverTime;
  if (typeof serverTime !== 'number' || !Number.isFinite(serverTime)) return false;
  clockOffsets.set(token, serverTime - Date.now());
  return true;
}

/** Runs a request; refused for the clock, once more with the server's time. */
async function withClockRetry<T>(token: string | undefined, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (learnedClock(token, err)) return run();
    throw err;
  }
}

/** SHA-256 of a PEM certificate's DER, lower-case hex. */
export function certificateSha256(pem: string): string {
  return createHash('sha256').update(new X509Certificate(pem).raw).digest('hex');
}

/**
 * The server's CA certificate, checked against the fingerprint from the enrollment string. This
 * one request cannot verify the server yet (it is how the agent learns what to verify with); the
 * fingerprint makes a substitute certificate useless. From then on the CA is pinned.
 */
export async function fetchPinnedCa(server: string, sha256: string): Promise<string> {
  const url = new URL('/api/v1/tls/ca.crt', normalizeServerUrl(server));
  if (url.protocol !== 'https:') throw new PatchwardenError('E_VALIDATION', 'the enrollment string pins a certificate, but the server URL is not https://', { hint: `use https://${url.host}` });
  const pem = await new Promise<string>((resolve, reject) => {
    const req = https.request(url, { method: 'GET', rejectUnauthorized: false, timeout: 30_000, headers: { 'user-agent': 'patchwarden-agent' } }, (res) => {
      const chunks: Buffer[] = [];
      let n = 0;
      res.on('data', (c: Buffer) => {
        n += c.length;
        if (n > 64 * 1024) req.destroy(new PatchwardenError('E_PAYLOAD_TOO_LARGE', 'the CA certificate is larger than 64 KiB'));
        else chunks.push(c);
      });
      res.on('end', () => (res.statusCode === 200 ? resolve(Buffer.concat(chunks).toString('utf8')) : reject(new PatchwardenError('E_SERVER_UNREACHABLE', `the server answered ${res.statusCode} for its CA certificate`, { hint: 'is this a Patchwarden server with TLS?' }))));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new PatchwardenError('E_SERVER_UNREACHABLE', `no answer from ${url.origin} within 30 s`)));
    req.on('error', (err) => reject(err instanceof PatchwardenError ? err : new PatchwardenError('E_SERVER_UNREACHABLE', `cannot reach ${url.origin}: ${err.message}`)));
    req.end();
  });
  let got: string;
  try {
    got = certificateSha256(pem);
  } catch {
    throw new PatchwardenError('E_SIGNATURE_INVALID', 'the server sent no readable CA certificate');
  }
  if (got !== sha256.toLowerCase()) {
    throw new PatchwardenError('E_DIGEST_MISMATCH', `the server's certificate authority has fingerprint ${got}, not the ${sha256.toLowerCase()} in the enrollment string`, {
      hint: 'this is not the server the administrator meant (or the string is old): nothing was sent; ask the administrator',
    });
  }
  return pem;
}

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
  opts: { token?: string; body?: unknown; timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<Response<T>> {
  const base = normalizeServerUrl(server);
  const url = new URL(path, base);
  const headers: Record<string, string> = { accept: 'application/json', 'user-agent': 'patchwarden-agent' };
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
  return withClockRetry(opts.token, () => send<T>(url, method, { ...headers, ...credentialHeaders(opts.token, method, url, payload) }, payload, opts));
}

function send<T>(url: URL, method: string, headers: Record<string, string>, payload: Buffer | undefined, opts: { timeoutMs?: number; signal?: AbortSignal }): Promise<Response<T>> {
  const { mod, agent } = connection(url);
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
    // a long poll is given up when the agent stops
    const onAbort = () => req.destroy(new Error('the agent is stopping'));
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    req.on('close', () => opts.signal?.removeEventListener('abort', onAbort));
    req.on('error', (err) => {
      reject(
        new PatchwardenError('E_SERVER_UNREACHABLE', `cannot reach the server at ${url.origin}: ${err.message}`, {
          hint: certificateHint(err) ?? 'check the server URL and that the server is running; the agent retries on its own',
          cause: err,
        }),
      );
    });
    req.end(payload);
  });
}

/** What to do about a certificate the agent refused (null: not a certificate problem). */
function certificateHint(err: Error): string | null {
  const code = (err as { code?: string }).code ?? '';
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return "the server's certificate does not name the host in the URL: use a name it covers, or have the administrator add it (server --tls-names)";
  if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER/.test(code)) {
    return "the server's certificate is not one this agent trusts: enroll with the administrator's enrollment string (it pins the server's certificate authority), or `patchwarden agent trust`";
  }
  return null;
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
  return withClockRetry(opts.token, () => fetchBytes(url, opts));
}

function fetchBytes(url: URL, opts: { token?: string; maxBytes: number; timeoutMs?: number }): Promise<Buffer | null> {
  const { mod, agent } = connection(url);
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { 'user-agent': 'patchwarden-agent', ...credentialHeaders(opts.token, 'GET', url, undefined) };
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

/**
 * Downloads `path` into `dest`, resuming a partial `dest.part` with an HTTP Range request, and
 * checks length and sha256 before the file gets its final name. A server that ignores the range
 * (answers 200) restarts the file; one that sends more than `size` bytes is cut off.
 */
export async function downloadToFile(
  server: string,
  path: string,
  dest: string,
  expect: { size: number; sha256: string },
  opts: { token?: string; timeoutMs?: number } = {},
): Promise<{ resumedFrom: number }> {
  if (existsSync(dest)) {
    if (sha256OfFile(dest) === expect.sha256) return { resumedFrom: expect.size };
    unlinkSync(dest);
  }
  const part = `${dest}.part`;
  let have = existsSync(part) ? statSync(part).size : 0;
  if (have > expect.size) {
    unlinkSync(part);
    have = 0;
  }
  const base = normalizeServerUrl(server);
  const url = new URL(path, base);
  const { mod, agent } = connection(url);
  const resumedFrom = have < expect.size ? have : 0;
  // a full disk ends the download with a coded error and takes the partial file away, so the
  // space comes back and nothing half-written is left to be taken for the package
  const diskError = (err: unknown): PatchwardenError | null => {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOSPC' && code !== 'EDQUOT') return null;
    try {
      unlinkSync(part);
    } catch {
      // it was never created
    }
    return new PatchwardenError('E_DISK_FULL', `no space left on the device for ${url.pathname} (${expect.size} bytes) at ${part}; the partial file was removed`, {
      hint: 'free space in the agent\'s data directory, then deploy again',
      cause: err,
    });
  };
  if (have < expect.size) {
    await new Promise<void>((resolve, reject) => {
      const headers: Record<string, string> = { 'user-agent': 'patchwarden-agent', ...credentialHeaders(opts.token, 'GET', url, undefined) };
      if (have > 0) headers.range = `bytes=${have}-`;
      const req = mod.request(url, { method: 'GET', headers, agent, timeout: opts.timeoutMs ?? 60_000 }, (res) => {
        const status = res.statusCode ?? 0;
        if (status !== 200 && status !== 206) {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.length < 64 && chunks.push(c));
          res.on('end', () => {
            let body: unknown;
            try {
              body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
            } catch {
              body = undefined;
            }
            const err = Object.assign(errorFromBody(status, body), { status });
            // the next try signs with the server's time
            learnedClock(opts.token, err);
            reject(err);
          });
          return;
        }
        let n = status === 206 ? have : 0;
        let fd: number;
        try {
          fd = openSync(part, status === 206 ? 'a' : 'w', 0o600);
        } catch (err) {
          req.destroy();
          return reject(diskError(err) ?? err);
        }
        let closed = false;
        // end, aborted and error can each arrive (and more than one): the file is closed once
        const done = (err?: Error) => {
          if (closed) return;
          closed = true;
          try {
            fsyncSync(fd);
          } catch {
            // the size and hash checks below decide
          }
          closeSync(fd);
          if (err) reject(err);
          else resolve();
        };
        res.on('data', (c: Buffer) => {
          if (closed) return;
          n += c.length;
          if (n > expect.size) {
            req.destroy(new PatchwardenError('E_DIGEST_MISMATCH', `${url.pathname} is longer than the ${expect.size} bytes the signed manifest states`));
            return;
          }
          try {
            // a write may take part of the chunk (a disk filling up): the rest follows, or fails
            for (let off = 0; off < c.length; ) off += writeSync(fd, c, off, c.length - off);
          } catch (err) {
            // thrown here it would end the whole agent: the download stops instead
            closed = true;
            closeSync(fd);
            reject(diskError(err) ?? new PatchwardenError('E_INTERNAL', `cannot write ${part}: ${(err as Error).message}`, { cause: err }));
            req.destroy();
          }
        });
        res.on('error', (e) =>
          done(e instanceof PatchwardenError ? e : new PatchwardenError('E_SERVER_UNREACHABLE', `the download of ${url.pathname} was cut off at ${n} bytes (${e.message}); it resumes from there`, { cause: e })),
        );
        res.on('aborted', () => done(new PatchwardenError('E_SERVER_UNREACHABLE', `the download of ${url.pathname} was cut off at ${n} bytes; it resumes from there`)));
        res.on('end', () => done());
      });
      req.on('timeout', () => req.destroy(new Error(`no answer from ${url.origin} within ${opts.timeoutMs ?? 60_000} ms`)));
      req.on('error', (err) =>
        reject(err instanceof PatchwardenError ? err : new PatchwardenError('E_SERVER_UNREACHABLE', `cannot download ${url.pathname}: ${err.message}; it resumes from where it stopped`, { cause: err })),
      );
      req.end();
    });
  }
  const size = statSync(part).size;
  if (size !== expect.size) throw new PatchwardenError('E_SERVER_UNREACHABLE', `${url.pathname}: ${size} of ${expect.size} bytes arrived; the download resumes next time`);
  const sha = sha256OfFile(part);
  if (sha !== expect.sha256) {
    unlinkSync(part);
    throw new PatchwardenError('E_DIGEST_MISMATCH', `${url.pathname} has sha256 ${sha}, not the ${expect.sha256} the signed manifest states; the file was discarded`);
  }
  renameSync(part, dest);
  return { resumedFrom };
}

function sha256OfFile(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}
