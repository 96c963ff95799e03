/** Real processes for integration tests: the built CLI, a server, agents, a byte-counting proxy. */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash, randomBytes } from 'node:crypto';
import { DEVICE_SIGNATURE_HEADERS, deviceSigner, EMPTY_BODY_SHA256, type DeviceKeyPair } from '@patchwarden/core';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const CLI = join(ROOT, 'packages/cli/bin/patchwarden.js');

export function assertBuilt(): void {
  if (!existsSync(join(ROOT, 'packages/cli/dist/main.js'))) {
    throw new Error('the CLI is not built: run `npm run build` (npm test does it first)');
  }
}

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI without blocking this process (a proxy or server in it must keep serving). */
export function cli(args: string[], opts: { env?: Record<string, string>; input?: string } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

export interface ServerProcess {
  url: string;
  adminToken: string;
  /** the first user's ('admin') password, from the data directory */
  adminPassword: string;
  child: ChildProcess;
  output: () => string;
  stop(): Promise<void>;
}

/**
 * A server process. Plain HTTP by default, by the explicit flag (these suites test other things;
 * test/tls.test.ts tries TLS, the default, end to end); `{ tls: true }` leaves the default.
 */
export async function startServerProcess(dataDir: string, extra: string[] = [], opts: { tls?: boolean } = {}): Promise<ServerProcess> {
  const child = spawn(process.execPath, [CLI, 'server', '--port', '0', '--data-dir', dataDir, '--log-level', 'warn', ...(opts.tls ? [] : ['--insecure-http']), ...extra], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${out}`)), 30_000);
    const check = () => {
      const m = /API docs:\s+(https?:\/\/[^/\s]+)\/api\/docs/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    child.stdout!.on('data', check);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}:\n${out}`));
    });
  });
  const adminToken = readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();
  const adminPassword = readFileSync(join(dataDir, 'admin-password'), 'utf8').trim();
  return {
    url,
    adminToken,
    adminPassword,
    child,
    output: () => out,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/**
 * A TCP proxy that counts the bytes of every connection in both directions. A test may also
 * have it alter what the server sends (`tamper`: a function of each chunk, e.g. flipping a byte
 * of a known file) or slow it down (`delayMs` per chunk), to play a hostile or slow network.
 */
export async function countingProxy(target: string) {
  const t = new URL(target);
  const connections: { up: number; down: number }[] = [];
  const ctl: { tamper: ((chunk: Buffer) => Buffer) | null; delayMs: number } = { tamper: null, delayMs: 0 };
  const server = net.createServer((client) => {
    const c = { up: 0, down: 0 };
    connections.push(c);
    const upstream = net.connect(Number(t.port), t.hostname);
    client.on('data', (d) => (c.up += d.length));
    client.pipe(upstream);
    upstream.on('data', (d: Buffer) => {
      c.down += d.length;
      const out = ctl.tamper ? ctl.tamper(d) : d;
      // timers of one delay fire in order, so the stream stays in order
      if (ctl.delayMs > 0) setTimeout(() => client.writable && client.write(out), ctl.delayMs);
      else client.write(out);
    });
    upstream.on('end', () => (ctl.delayMs > 0 ? setTimeout(() => client.end(), ctl.delayMs) : client.end()));
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    /** Bytes of the connections opened since `mark`. */
    mark: () => connections.length,
    since(mark: number) {
      const cs = connections.slice(mark);
      return { connections: cs.length, up: cs.reduce((s, c) => s + c.up, 0), down: cs.reduce((s, c) => s + c.down, 0) };
    },
    /** alter what the server sends from now on (null: pass it as it is) */
    tamper(fn: ((chunk: Buffer) => Buffer) | null) {
      ctl.tamper = fn;
    },
    /** hold each chunk the server sends this long */
    delay(ms: number) {
      ctl.delayMs = ms;
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

export async function api<T = unknown>(server: ServerProcess, method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
  const res = await fetch(server.url + path, {
    method,
    headers: { authorization: `Bearer ${server.adminToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
}

/**
 * A request as the agent in `agentDir` makes it: its bearer token and its signature (method,
 * path with query, clock, a fresh nonce and the body's SHA-256), for tests that speak for a device
 * by hand (a malformed body, a job report).
 */
export function deviceFetch(agentDir: string, url: string, init: { method?: 'GET' | 'POST'; body?: string; headers?: Record<string, string> } = {}): Promise<Response> {
  const state = JSON.parse(readFileSync(join(agentDir, 'agent.json'), 'utf8')) as { token: string; key: DeviceKeyPair };
  const u = new URL(url);
  const method = init.method ?? 'GET';
  const date = Date.now();
  const nonce = randomBytes(18).toString('base64url');
  const bodySha256 = init.body === undefined ? EMPTY_BODY_SHA256 : createHash('sha256').update(init.body).digest('hex');
  const signature = deviceSigner(state.key)({ method, path: u.pathname + u.search, date, nonce, bodySha256 });
  return fetch(url, {
    method,
    headers: {
      authorization: `Bearer ${state.token}`,
      [DEVICE_SIGNATURE_HEADERS.date]: String(date),
      [DEVICE_SIGNATURE_HEADERS.nonce]: nonce,
      [DEVICE_SIGNATURE_HEADERS.signature]: signature,
      ...init.headers,
    },
    ...(init.body === undefined ? {} : { body: init.body }),
  });
}
