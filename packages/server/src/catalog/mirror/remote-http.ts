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
  private readonly agent: http.Agent;
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
    this.agent = base.protocol === 'https:' ? new https.Agent({ keepAlive: true, maxSockets: connections }) : new http.Agent({ keepAlive: true, maxSockets: connections });
    this.timeoutMs = opts.timeoutMs ?? 30_000;
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

  private request(method: string, path: string, maxBytes: number, body?: Buffer): Promise<{ status: number; body: Uint8Array; path: string }> {
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
  return new PatchwardenError('E_SERVER_UNREACHABLE', `${base}/${path}: ${(err as NodeJS.ErrnoException).code ?? err.message}`, {
    hint: 'is the central server reachable from here? The sync resumes where it stopped next time',
  });
}
