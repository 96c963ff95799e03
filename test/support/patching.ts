/**
 * Helpers for the deploy tests: an author key trusted by a server, custom patches published
 * through the CLI, sandbox devices with a real dpkg database and busybox, agents started as
 * process-group leaders so a test can kill the agent and its package manager together, and an
 * HTTP proxy that counts the job reports reaching the server.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { expect } from 'vitest';
import { makeSandboxRoot } from '../../packages/agent/src/installers/testing.js';
import { api, cli, CLI, type ServerProcess } from './processes.js';

export const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

export async function trustAuthor(dir: string, server: ServerProcess): Promise<string> {
  const keys = join(dir, 'keys');
  let r = await cli(['keys', 'create', 'author', '--role', 'author', '--out', keys]);
  expect(r.status, r.stderr).toBe(0);
  r = await cli(['keys', 'trust', join(keys, 'author.pub'), '--server', server.url, '--token', server.adminToken]);
  expect(r.status, r.stderr).toBe(0);
  return join(keys, 'author.key');
}

/** Builds, signs and publishes a custom patch; `payload` maps payload paths to files or contents. */
export async function publishPatch(dir: string, server: ServerProcess, key: string, manifest: Record<string, unknown>, payload: Record<string, { file: string } | { text: string }>): Promise<string> {
  const name = String(manifest.id).replace(/\//g, '_');
  const work = join(dir, `work-${name}-r${String(manifest.revision)}`);
  mkdirSync(join(work, 'payload'), { recursive: true });
  writeFileSync(join(work, 'manifest.json'), JSON.stringify(manifest, null, 2));
  for (const [p, src] of Object.entries(payload)) {
    if ('file' in src) copyFileSync(src.file, join(work, 'payload', p));
    else writeFileSync(join(work, 'payload', p), src.text);
  }
  const bundle = join(dir, `${name}.r${String(manifest.revision)}.bundle`);
  for (const args of [
    ['patch', 'build', work, '--out', bundle],
    ['patch', 'sign', bundle, '--key', key],
    ['patch', 'publish', bundle, '--key', key, '--server', server.url, '--token', server.adminToken],
  ]) {
    const r = await cli(args);
    expect(r.status, `${args.slice(0, 2).join(' ')}: ${r.stderr}`).toBe(0);
  }
  return bundle;
}

/** A sandbox device: busybox as /bin/sh, an empty dpkg database, Debian 12's os-release. */
export function makeDevice(parent: string, hostname: string, debs: string[] = []): string {
  mkdirSync(parent, { recursive: true });
  const root = makeSandboxRoot(parent);
  mkdirSync(join(root, 'etc'), { recursive: true });
  writeFileSync(join(root, 'etc/os-release'), 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\nID=debian\n');
  writeFileSync(join(root, 'etc/hostname'), `${hostname}\n`);
  writeFileSync(join(root, 'etc/timezone'), 'UTC\n');
  if (debs.length) dpkg(root, ['-i', ...debs]);
  return root;
}

export function dpkg(root: string, args: string[]): string {
  return execFileSync('dpkg', [`--root=${root}`, `--admindir=${join(root, 'var/lib/dpkg')}`, '--force-not-root', `--log=${join(root, 'var/log/dpkg.log')}`, ...args], {
    encoding: 'utf8',
    env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` },
  });
}

/** "name version status" of the given packages, as dpkg-query says ("absent" when unknown). */
export function packageStates(root: string, names: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const n of names) {
    try {
      out[n] = execFileSync('dpkg-query', [`--admindir=${join(root, 'var/lib/dpkg')}`, '-W', '-f=${Version} ${db:Status-Abbrev}', n], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      out[n] = 'absent';
    }
    if (out[n]!.endsWith(' pn')) out[n] = 'absent';
  }
  return out;
}

export function audit(root: string): string {
  return dpkg(root, ['--audit']).trim();
}

export interface AgentRun {
  child: ChildProcess;
  /** what it printed so far */
  output: () => string;
  done: Promise<{ status: number | null; stdout: string; stderr: string }>;
}

/** The CLI's agent as the leader of its own process group (kill(-pid) reaches dpkg and its scripts too). */
export function spawnAgent(args: string[], env: Record<string, string> = {}): AgentRun {
  const child = spawn(process.execPath, [CLI, 'agent', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => child.on('close', (status) => resolve({ status, stdout, stderr })));
  return { child, done, output: () => stdout + stderr };
}

export async function waitForFile(file: string, ms = 60_000, what = file): Promise<void> {
  const until = Date.now() + ms;
  while (!existsSync(file)) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export function killGroup(run: AgentRun): Promise<unknown> {
  try {
    process.kill(-run.child.pid!, 'SIGKILL');
  } catch {
    // the group is gone already
  }
  return run.done;
}

/** Forwards to the server and counts `POST …/report` requests per job id. */
export async function reportCounter(target: string) {
  const reports = new Map<string, number>();
  const upstream = new URL(target);
  const server = http.createServer((req, res) => {
    const m = /^\/api\/v1\/agent\/jobs\/([^/]+)\/report$/.exec(req.url ?? '');
    if (m && req.method === 'POST') reports.set(m[1]!, (reports.get(m[1]!) ?? 0) + 1);
    const fwd = http.request({ host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    fwd.on('error', () => res.destroy());
    req.pipe(fwd);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    reports,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

export async function deviceId(server: ServerProcess, hostname: string): Promise<string> {
  const r = await api<{ items: { id: string; hostname: string }[] }>(server, 'GET', `/api/v1/devices?search=${encodeURIComponent(hostname)}`);
  const d = r.body.items.find((x) => x.hostname === hostname);
  if (!d) throw new Error(`no device ${hostname}`);
  return d.id;
}

export const readJson = <T>(file: string): T => JSON.parse(readFileSync(file, 'utf8')) as T;
