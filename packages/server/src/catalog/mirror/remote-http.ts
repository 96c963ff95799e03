/**
 * The central server seen by a local server: its signed catalog as a RemoteRepository
 * (`GET /api/v1/tuf/…`) and the site channel (`/api/v1/sites/self…`), with the site token.
 *
 * Nothing received here is trusted: mirrorCatalog and fetchTarget verify every file. This
 * layer only keeps the transfer bounded — a size limit per file (an answer longer than allowed
 * is cut at one byte over, so the client refuses it with its own message), a timeout per
 * request, a fixed number of connections kept alive.
 */
import http from 'node:http';
import https from 'node:https';
import { createHash, X509Certificate } from 'node:crypto';
import { z } from 'zod';
import { errorFromBody, PatchwardenError, Platform } from '@patchwarden/core';
import type { RemoteRepository } from '../tuf/client.js';

export interface HttpRemoteOptions {
  /** the central server, e.g. https://patch.example.org */
  baseUrl: string;
  /** the site token (`pws_…`) */
  token: string;
  /** per request: connecting and each pause in the answer (default 30 s) */
  timeoutMs?: number;
  /** connections kept open to the central server (default 16) */
  connections?: number;
  /**
   * The central server's certificate authority: a PEM certificate, or `sha256:HEX` of the one it
   * serves at /api/v1/tls/ca.crt (fetched once and compared before anything else is sent).
   * Without it, the system's certificate authorities decide.
   */
  ca?: string;
}

export interface TransferCounters {
  requests: number;
  /** bytes of answer bodies received (what the files weigh; headers not counted) */
  bytes: number;
}

/** A path of the catalog's layout as a URL path: target names are percent-encoded per segment; metadata names come encoded already. */
export function encodeCatalogPath(path: string): string {
  if (path.startsWith('metadata/')) return path;
  return path.split('/').map(encodeURIComponent).join('/');
}

const SiteSelf = z.object({ name: z.string(), mode: z.enum(['replica', 'autonomous']), coverage: z.array(Platform).max(10_000) });
export type SiteSelf = z.infer<typeof SiteSelf>;

export class HttpRemote implements RemoteRepository {
  readonly counters: TransferCounters = { requests: 0, bytes: 0 };
  readonly base: URL;
  private agent: http.Agent;
  private readonly timeoutMs: number;

  constructor(private readonly opts: HttpRemoteOptions) {
    let base: URL;
    try {
      base = new URL(opts.baseUrl.replace(/\/+$/, '') + '/');
    } catch {
      throw new PatchwardenError('E_CONFIG_INVALID', `the upstream ${JSON.stringify(opts.baseUrl)} is not a URL`, { hint: 'e.g. --upstream https://patch.example.org' });
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new PatchwardenError('E_CONFIG_INVALID', `the upstream must be an http or https URL, not ${base.protocol}`);
    this.base = base;
    const connections = opts.connections ?? 16;
    if (opts.ca && base.protocol !== 'https:') throw new PatchwardenError('E_CONFIG_INVALID', '--upstream-ca needs an https:// upstream', { hint: `use https://${base.host}` });
    const pem = opts.ca && !opts.ca.startsWith('sha256:') ? opts.ca : undefined;
    this.agent = base.protocol === 'https:' ? new https.Agent({ keepAlive: true, maxSockets: connections, ...(pem ? { ca: pem } : {}) }) : new http.Agent({ keepAlive: true, maxSockets: connections });
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    if (opts.ca?.startsWith('sha256:')) this.pinning = this.pinCa(opts.ca.slice(7).toLowerCase().replace(/:/g, ''), connections);
  }

  /** With a fingerprint: the CA the central server serves, compared, then the only one trusted. */
  private pinning: Promise<void> | null = null;

  private async pinCa(sha256: string, connections: number): Promise<void> {
    if (!/^[0-9a-f]{64}$/.test(sha256)) throw new PatchwardenError('E_CONFIG_INVALID', '--upstream-ca sha256:… needs 64 hex digits');
    const url = new URL('api/v1/tls/ca.crt', this.base);
    // the one answer read before the certificate can be checked: only its fingerprint counts
    const pem = await new Promise<string>((resolve, reject) => {
      const req = https.request(url, { method: 'GET', rejectUnauthorized: false, timeout: this.timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        let n = 0;
        res.on('data', (c: Buffer) => {
          n += c.length;
          if (n > 64 * 1024) req.destroy(new Error('the CA certificate is larger than 64 KiB'));
          else chunks.push(c);
        });
        res.on('end', () => (res.statusCode === 200 ? resolve(Buffer.concat(chunks).toString('utf8')) : reject(new PatchwardenError('E_SERVER_UNREACHABLE', `${this.describe}/api/v1/tls/ca.crt: HTTP ${res.statusCode}`, { hint: 'is --upstream a Patchwarden server with TLS?' }))));
        res.on('error', (err) => reject(unreachable(this.describe, 'api/v1/tls/ca.crt', err)));
      });
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.timeoutMs} ms`)));
      req.on('error', (err) => reject(err instanceof PatchwardenError ? err : unreachable(this.describe, 'api/v1/tls/ca.crt', err)));
      req.end();
    });
    let got: string;
    try {
      got = createHash('sha256').update(new X509Certificate(pem).raw).digest('hex');
    } catch {
      throw new PatchwardenError('E_SIGNATURE_INVALID', `${this.describe} sent no readable CA certificate`);
    }
    if (got !== sha256) {
      throw new PatchwardenError('E_DIGEST_MISMATCH', `the central server's certificate authority has fingerprint ${got}, not the ${sha256} of --upstream-ca`, {
        hint: 'this is not the central server you meant (or the fingerprint is old): nothing was sent; ask its administrator (`patchwarden server` prints it)',
      });
    }
    this.agent.destroy();
    this.agent = new https.Agent({ keepAlive: true, maxSockets: connections, ca: pem });
  }

  get describe(): string {
    return this.base.origin + this.base.pathname.replace(/\/$/, '');
  }

  async get(path: string, maxBytes: number): Promise<Uint8Array | null> {
    const res = await this.request('GET', `api/v1/tuf/${encodeCatalogPath(path)}`, maxBytes);
    if (res.status === 404) return null;
    if (res.status !== 200) throw this.failure(res);
    return res.body;
  }

  /** A cached vendor payload of the central server's content store, by its sha256; null when it has none. */
  async payload(sha256: string, maxBytes: number): Promise<Uint8Array | null> {
    const res = await this.request('GET', `api/v1/content/${sha256}`, maxBytes);
    if (res.status === 404) return null;
    if (res.status !== 200) throw this.failure(res);
    return res.body;
  }

  /** The newest root the central server serves (for a pin given as a sha256 only). */
  async currentRoot(maxBytes: number): Promise<Uint8Array> {
    const res = await this.request('GET', 'api/v1/tuf-root', maxBytes);
    if (res.status !== 200) throw this.failure(res);
    return res.body;
  }

  async rootBySha256(): Promise<Uint8Array> {
    // the central server serves one current root; the sync compares its hash with the pin
    return this.currentRoot(512 * 1024);
  }

  private site: Promise<SiteSelf> | null = null;

  /** This site as the central server knows it (asked once per sync). */
  self(): Promise<SiteSelf> {
    this.site ??= this.json<unknown>('GET', 'api/v1/sites/self').then((j) => {
      const r = SiteSelf.safeParse(j);
      if (!r.success) throw new PatchwardenError('E_SERVER_UNREACHABLE', `${this.describe}/api/v1/sites/self: an unexpected answer (${r.error.issues[0]!.message})`, { hint: 'is --upstream a Patchwarden server of the same version?' });
      return r.data;
    });
    return this.site;
  }

  async coverage(): Promise<Platform[]> {
    return (await this.self()).coverage;
  }

  /** A JSON call on the site channel. */
  async json<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    const res = await this.request(method, path.replace(/^\//, ''), 4 * 1024 * 1024, body === undefined ? undefined : Buffer.from(JSON.stringify(body)));
    if (res.status < 200 || res.status >= 300) throw this.failure(res);
    try {
      return JSON.parse(Buffer.from(res.body).toString('utf8')) as T;
    } catch {
      throw new PatchwardenError('E_SERVER_UNREACHABLE', `${this.describe}/${path}: the answer is not JSON`);
    }
  }

  close(): void {
    this.agent.destroy();
  }

  private failure(res: { status: number; body: Uint8Array; path: string }): PatchwardenError {
    let parsed: unknown;
    try {
      parsed = JSON.parse(Buffer.from(res.body).toString('utf8'));
    } catch {
      parsed = undefined;
    }
    const err = errorFromBody(res.status, parsed);
    if (err.code === 'E_INTERNAL' && parsed === undefined) {
      return new PatchwardenError('E_SERVER_UNREACHABLE', `${this.describe}/${res.path}: HTTP ${res.status}`, { hint: 'is --upstream the central Patchwarden server?' });
    }
    return new PatchwardenError(err.code, `the central server answered: ${err.message}`, err.hint === undefined ? {} : { hint: err.hint });
  }

  private async request(method: string, path: string, maxBytes: number, body?: Buffer): Promise<{ status: number; body: Uint8Array; path: string }> {
    // the site token goes nowhere before the pinned CA has been checked
    if (this.pinning) await this.pinning;
    return this.send(method, path, maxBytes, body);
  }

  private send(method: string, path: string, maxBytes: number, body?: Buffer): Promise<{ status: number; body: Uint8Array; path: string }> {
    const url = new URL(path, this.base);
    const mod = url.protocol === 'https:' ? https : http;
    this.counters.requests++;
    return new Promise((resolve, reject) => {
      const req = mod.request(
        url,
        {
          method,
          agent: this.agent,
          timeout: this.timeoutMs,
          headers: {
            authorization: `Bearer ${this.opts.token}`,
            accept: '*/*',
            ...(body ? { 'content-type': 'application/json', 'content-length': String(body.length) } : {}),
          },
        },
        (res) => {
          const status = res.statusCode ?? 0;
          // error bodies are small; a file may be up to its limit and one byte more
          const limit = status === 200 ? maxBytes + 1 : 64 * 1024;
          const chunks: Buffer[] = [];
          let got = 0;
          let done = false;
          const finish = () => {
            if (done) return;
            done = true;
            this.counters.bytes += got;
            const all = Buffer.concat(chunks, got);
            resolve({ status, body: new Uint8Array(all.buffer, all.byteOffset, all.length), path });
          };
          res.on('data', (chunk: Buffer) => {
            if (done) return;
            const room = limit - got;
            if (chunk.length >= room) {
              chunks.push(chunk.subarray(0, room));
              got += room;
              finish();
              res.destroy();
              return;
            }
            chunks.push(chunk);
            got += chunk.length;
          });
          res.on('end', finish);
          res.on('error', (err) => {
            if (!done) reject(unreachable(this.describe, path, err));
          });
          res.on('close', () => {
            if (!done && !res.complete) reject(unreachable(this.describe, path, new Error('the connection closed in the middle of the answer')));
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.timeoutMs} ms`)));
      req.on('error', (err) => reject(unreachable(this.describe, path, err)));
      req.end(body);
    });
  }
}

function unreachable(base: string, path: string, err: Error): PatchwardenError {
  const code = (err as NodeJS.ErrnoException).code ?? '';
  const certificate = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER/.test(code);
  return new PatchwardenError('E_SERVER_UNREACHABLE', `${base}/${path}: ${code || err.message}`, {
    hint: certificate
      ? "the central server's certificate is not one this server trusts: start it with --upstream-ca sha256:HEX (the fingerprint `patchwarden server` prints on the central server) or --upstream-ca FILE.pem"
      : 'is the central server reachable from here? The sync resumes where it stopped next time',
  });
}
