/**
 * The CLI's client of the admin API: where the server is, which token to use, and which
 * certificate authority to trust over HTTPS (--ca, $PATCHWARDEN_CA, or the data directory's own
 * tls/ca.crt when the CLI runs beside the server).
 */
import { existsSync, readFileSync } from 'node:fs';
import { Agent, fetch as undiciFetch, type RequestInit as UndiciRequestInit } from 'undici';
import type { Command } from 'commander';
import { join } from 'node:path';
import { ADMIN_TOKEN_FILE, DEFAULT_DATA_DIR, DEFAULT_HOST, DEFAULT_PORT, errorFromBody, PatchwardenError } from '@patchwarden/core';

export interface ClientOptions {
  server?: string;
  token?: string;
  dataDir?: string;
  ca?: string;
}

let dispatcher: { file: string; agent: Agent } | null = null;

/** fetch, trusting the server's own CA when one is known (the system's CAs otherwise). */
export async function cliFetch(url: string, init: RequestInit, opts: ClientOptions = {}): Promise<Response> {
  const file = opts.ca ?? process.env.PATCHWARDEN_CA ?? join(opts.dataDir ?? process.env.PATCHWARDEN_DATA_DIR ?? DEFAULT_DATA_DIR, 'tls', 'ca.crt');
  if (url.startsWith('https:') && existsSync(file)) {
    if (dispatcher?.file !== file) dispatcher = { file, agent: new Agent({ connect: { ca: readFileSync(file, 'utf8') } }) };
    return (await undiciFetch(url, { ...(init as UndiciRequestInit), dispatcher: dispatcher.agent })) as unknown as Response;
  }
  if (opts.ca && !existsSync(opts.ca)) throw new PatchwardenError('E_CONFIG_INVALID', `no CA certificate at ${opts.ca}`);
  return fetch(url, init);
}

export class ApiClient {
  constructor(
    readonly server: string,
    private readonly token: string,
    private readonly opts: ClientOptions = {},
  ) {}

  static from(opts: ClientOptions): ApiClient {
    const server = opts.server ?? process.env.PATCHWARDEN_SERVER ?? `http://${DEFAULT_HOST}:${DEFAULT_PORT}`;
    let token = opts.token ?? process.env.PATCHWARDEN_TOKEN;
    if (!token) {
      const file = join(opts.dataDir ?? process.env.PATCHWARDEN_DATA_DIR ?? DEFAULT_DATA_DIR, ADMIN_TOKEN_FILE);
      if (existsSync(file)) token = readFileSync(file, 'utf8').trim();
    }
    if (!token) {
      throw new PatchwardenError('E_UNAUTHENTICATED', 'no admin token', {
        hint: `pass --token, set PATCHWARDEN_TOKEN, or run from the directory holding ${DEFAULT_DATA_DIR}/${ADMIN_TOKEN_FILE}`,
      });
    }
    return new ApiClient(server.replace(/\/+$/, ''), token, opts);
  }

  async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    let res: globalThis.Response;
    try {
      res = await cliFetch(this.server + path, {
        method,
        headers: {
          authorization: `Bearer ${this.token}`,
          // bytes (a bundle) go as they are; everything else as JSON
          ...(body === undefined ? {} : { 'content-type': body instanceof Uint8Array ? 'application/octet-stream' : 'application/json' }),
        },
        ...(body === undefined ? {} : { body: body instanceof Uint8Array ? body : JSON.stringify(body) }),
      }, this.opts);
    } catch (err) {
      throw new PatchwardenError('E_SERVER_UNREACHABLE', `cannot reach ${this.server}: ${(err as Error).cause ?? (err as Error).message}`, {
        hint: 'is the server running? Start it with `npm start` or `patchwarden server`, or pass --server URL',
      });
    }
    const text = await res.text();
    const parsed: unknown = text ? JSON.parse(text) : undefined;
    if (!res.ok) throw errorFromBody(res.status, parsed);
    return parsed as T;
  }
}

/** The options every command that talks to the admin API takes. */
export function withClient(cmd: Command): Command {
  return cmd
    .option('--server <url>', 'server URL (default $PATCHWARDEN_SERVER or http://127.0.0.1:8060)')
    .option('--token <token>', 'admin token (default $PATCHWARDEN_TOKEN or <data-dir>/admin-token)')
    .option('--data-dir <dir>', "the server's data directory, to find its admin-token file and tls/ca.crt")
    .option('--ca <file>', "the server's CA certificate, for https (default $PATCHWARDEN_CA or <data-dir>/tls/ca.crt)")
    .option('--json', 'print JSON instead of a table');
}
