/**
 * Real faults for the fault suite (test/faults): a private PostgreSQL cluster that a test stops
 * and starts, a TCP proxy that cuts a package download after a number of bytes, an HTTP proxy
 * that records what the server answered to each job report, and a size-limited tmpfs.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { buildDeb } from '../../packages/agent/src/installers/testing.js';

// ───────────────────────── a private PostgreSQL cluster ─────────────────────────

/** The newest PostgreSQL server binaries on this machine (Debian keeps them out of PATH). */
export function findPostgresBin(): string | null {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return null;
  const versions = readdirSync(base)
    .filter((v) => existsSync(join(base, v, 'bin/initdb')) && existsSync(join(base, v, 'bin/pg_ctl')))
    .sort((a, b) => Number(b) - Number(a));
  return versions.length ? join(base, versions[0]!, 'bin') : null;
}

export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export interface PrivatePostgres {
  /** postgres://postgres@127.0.0.1:PORT/postgres */
  url: string;
  port: number;
  dir: string;
  /** pg_ctl stop: `fast` ends every session first, `immediate` drops them as a crash would */
  stop(mode?: 'fast' | 'immediate'): void;
  /** the same without blocking this process, so its requests keep running while PostgreSQL dies */
  stopWhileBusy(mode?: 'fast' | 'immediate'): Promise<void>;
  start(): void;
  /** stops the cluster (if running) and removes its files */
  destroy(): void;
  log(): string;
}

/**
 * A cluster of its own: initdb in a temporary directory, listening on 127.0.0.1 at a free port,
 * trusting local connections. initdb refuses to run as root, so as root the cluster belongs to
 * the `postgres` user and its commands run through runuser.
 */
export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const bin = findPostgresBin();
  if (!bin) throw new Error('no PostgreSQL server binaries under /usr/lib/postgresql/*/bin (apt-get install postgresql)');
  const asRoot = userInfo().uid === 0;
  const dir = mkdtempSync(join(tmpdir(), 'pw-pgcluster-'));
  const data = join(dir, 'data');
  const logFile = join(dir, 'postgres.log');
  let owner: { uid: number; gid: number } | null = null;
  if (asRoot) {
    const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
    owner = { uid: id('-u'), gid: id('-g') };
    chownSync(dir, owner.uid, owner.gid);
  }
  const command = (cmd: string, args: string[]): [string, string[]] => (asRoot ? ['runuser', ['-u', 'postgres', '--', join(bin, cmd), ...args]] : [join(bin, cmd), args]);
  const run = (cmd: string, args: string[]) => {
    const [file, argv] = command(cmd, args);
    const r = spawnSync(file, argv, { encoding: 'utf8', cwd: dir });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}${r.stdout}`);
    return r.stdout;
  };
  run('initdb', ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-sync']);
  const port = await freePort();
  const opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60`;
  let running = false;
  const pg: PrivatePostgres = {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    dir,
    start() {
      run('pg_ctl', ['-D', data, '-l', logFile, '-o', opts, '-w', '-t', '60', 'start']);
      running = true;
    },
    stop(mode = 'fast') {
      run('pg_ctl', ['-D', data, '-m', mode, '-w', '-t', '60', 'stop']);
      running = false;
    },
    stopWhileBusy(mode = 'fast') {
      const [file, argv] = command('pg_ctl', ['-D', data, '-m', mode, '-w', '-t', '60', 'stop']);
      return new Promise<void>((resolve, reject) => {
        const child = spawn(file, argv, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
        let err = '';
        child.stderr.on('data', (d: Buffer) => (err += d.toString()));
        child.on('error', reject);
        child.on('close', (code) => {
          if (code !== 0) return reject(new Error(`pg_ctl stop failed (${code}): ${err}`));
          running = false;
          resolve();
        });
      });
    },
    destroy() {
      if (running) {
        try {
          pg.stop('immediate');
        } catch {
          // removed below all the same
        }
      }
      rmSync(dir, { recursive: true, force: true });
    },
    log: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''),
  };
  pg.start();
  return pg;
}

// ───────────────────────── a network that cuts downloads ─────────────────────────

/**
 * A TCP proxy in front of the server. Armed with `cutDownloads(bytes, times)`, it cuts the next
 * `times` package downloads (`GET /api/v1/content/…`) after `bytes` bytes of the answer have
 * passed: both sides of the connection are destroyed, as when a cable is pulled. It can also
 * flip a byte of the next download, as a faulty network or cache would. Everything else passes
 * untouched. It counts the download requests and the byte ranges they asked for.
 */
export async function cuttingProxy(target: string) {
  const t = new URL(target);
  const ctl = { cutAfter: 0, remaining: 0, corrupt: false };
  const downloads: { path: string; range: string | null; cutAt: number | null }[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(t.port), t.hostname);
    sockets.add(client);
    sockets.add(upstream);
    client.on('close', () => sockets.delete(client));
    upstream.on('close', () => sockets.delete(upstream));
    // the download this connection is answering now (keep-alive: one request at a time);
    // `limit` null: pass it all; `cut`: the connection was cut, nothing more passes
    let current: { sent: number; limit: number | null; corruptAt: number | null; record: (typeof downloads)[number] } | null = null;
    let cut = false;
    client.on('data', (d: Buffer) => {
      const head = d.toString('latin1');
      const m = /^GET (\/api\/v1\/content\/[0-9a-f]{64}) HTTP/.exec(head);
      if (m) {
        const range = /\r\nrange:\s*([^\r\n]+)/i.exec(head)?.[1] ?? null;
        const record = { path: m[1]!, range, cutAt: null as number | null };
        downloads.push(record);
        const armed = ctl.remaining > 0;
        if (armed) ctl.remaining--;
        // past the header block: a byte of the file itself
        const corruptAt = ctl.corrupt ? 4096 : null;
        ctl.corrupt = false;
        current = { sent: 0, limit: armed ? ctl.cutAfter : null, corruptAt, record };
      } else if (/^[A-Z]+ \//.test(head)) {
        current = null;
      }
      upstream.write(d);
    });
    upstream.on('data', (d: Buffer) => {
      if (cut) return;
      if (current && current.corruptAt !== null && current.corruptAt < current.sent + d.length) {
        d = Buffer.from(d);
        const at = current.corruptAt - current.sent;
        d[at] = d[at]! ^ 0xff;
        current.corruptAt = null;
      }
      if (current && current.limit !== null) {
        const room = current.limit - current.sent;
        if (d.length >= room) {
          cut = true;
          current.record.cutAt = current.limit;
          client.write(d.subarray(0, room), () => {
            client.destroy();
            upstream.destroy();
          });
          return;
        }
      }
      if (current) current.sent += d.length;
      client.write(d);
    });
    upstream.on('end', () => client.end());
    client.on('end', () => upstream.end());
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    downloads,
    /** flip one byte of the file in the next package download (after its first 4 KiB) */
    corruptNextDownload() {
      ctl.corrupt = true;
    },
    /** cut the next `times` package downloads after `bytes` bytes of their answer (headers included) */
    cutDownloads(bytes: number, times = 1) {
      ctl.cutAfter = bytes;
      ctl.remaining = times;
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

// ───────────────────────── what the server answered to each report ─────────────────────────

export interface ReportAnswer {
  status: number;
  /** the server's `duplicate` flag: true when it had this job's report already */
  duplicate: boolean | null;
  code: string | null;
  /** false: the answer was held back and the agent's connection cut instead (see `cutNextAnswer`) */
  delivered: boolean;
}

/**
 * An HTTP proxy in front of the server that records, per job, every report the agent sent and
 * what came back (or that nothing came back: status 0, the server was away). "Stored once" is
 * one answer with `duplicate: false`.
 */
export async function reportLedger(target: string) {
  const upstream = new URL(target);
  const answers = new Map<string, ReportAnswer[]>();
  let interceptor: ((jobId: string) => Promise<void>) | null = null;
  const keep = new http.Agent({ keepAlive: false });
  const server = http.createServer((req, res) => {
    const m = /^\/api\/v1\/agent\/jobs\/([^/]+)\/report$/.exec(req.url ?? '');
    const record = (a: ReportAnswer) => {
      if (!m || req.method !== 'POST') return;
      answers.set(m[1]!, [...(answers.get(m[1]!) ?? []), a]);
    };
    const fwd = http.request({ host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers: req.headers, agent: keep }, (r) => {
      const chunks: Buffer[] = [];
      r.on('data', (c: Buffer) => chunks.push(c));
      r.on('end', () => {
        const body = Buffer.concat(chunks);
        let json: { duplicate?: boolean; error?: { code?: string } } | undefined;
        try {
          json = JSON.parse(body.toString('utf8')) as typeof json;
        } catch {
          json = undefined;
        }
        const answer = { status: r.statusCode ?? 0, duplicate: typeof json?.duplicate === 'boolean' ? json.duplicate : null, code: json?.error?.code ?? null, delivered: true };
        const hold = m && req.method === 'POST' ? interceptor : null;
        if (hold) {
          interceptor = null;
          record({ ...answer, delivered: false });
          void hold(m![1]!).finally(() => res.destroy());
          return;
        }
        record(answer);
        res.writeHead(r.statusCode ?? 502, r.headers);
        res.end(body);
      });
      r.on('error', () => res.destroy());
    });
    fwd.on('error', () => {
      record({ status: 0, duplicate: null, code: null, delivered: false });
      res.destroy();
    });
    req.pipe(fwd);
  });
  // idle keep-alive connections stay open longer than the agents' check-in interval, as the
  // server's own do (72 s): a connection closed under a request would be a fault of the proxy
  server.keepAliveTimeout = 120_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    answers,
    /**
     * The server's answer to the next report is held back: `fn` runs (a test kills the server
     * there, after it stored the report), then the agent's connection is cut without an answer.
     */
    cutNextAnswer(fn: (jobId: string) => Promise<void>) {
      interceptor = fn;
    },
    /** reports of this job the server took as new (the first one stored) */
    stored: (jobId: string) => (answers.get(jobId) ?? []).filter((a) => a.status >= 200 && a.status < 300 && a.duplicate === false).length,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

// ───────────────────────── a small disk ─────────────────────────

export type SmallDisk = { mounted: true; dir: string; unmount(): void } | { mounted: false; why: string };

/** Mounts a tmpfs of `size` (e.g. "3m") on a new directory under `parent`; says why when it cannot. */
export function mountSmallDisk(parent: string, size: string): SmallDisk {
  const dir = join(parent, 'small-disk');
  mkdirSync(dir, { recursive: true });
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    const why = r.error ? r.error.message : `mount exited ${r.status}: ${(r.stderr || r.stdout).trim()}`;
    return { mounted: false, why: `cannot mount a size-limited tmpfs here (${why}); the test needs root (or CAP_SYS_ADMIN) and mount(8)` };
  }
  let gone = false;
  return {
    mounted: true,
    dir,
    unmount() {
      if (gone) return;
      gone = true;
      const u = spawnSync('umount', [dir], { encoding: 'utf8' });
      // a busy mount (a process still in it) goes lazily rather than staying behind
      if (u.status !== 0) spawnSync('umount', ['-l', dir]);
    },
  };
}

// ───────────────────────── a vendor patch with a large package file ─────────────────────────

export interface VendorPatch {
  id: string;
  /** the installed version's package file (devices start with it) */
  oldDeb: string;
  /** the patch's package file, as the server's content store serves it */
  size: number;
  sha256: string;
  contentPath: string;
  close(): Promise<void>;
}

/**
 * A vendor patch (`debian/NAME-1.0-2`, signed by the server's online key) whose install fetches
 * a large package file: built with dpkg-deb around `payloadBytes` of random data, served by a
 * small vendor repository, cached into the server's content store through the API, and so
 * downloaded by agents from `/api/v1/content/SHA256`. Its postinst counts its runs in
 * /var/lib/NAME.runs, so a test can tell the patch was installed exactly once.
 */
export async function publishVendorPatch(
  server: { url: string; adminToken: string },
  dir: string,
  name: string,
  payloadBytes: number,
): Promise<VendorPatch> {
  const out = join(dir, `${name}-debs`);
  mkdirSync(out, { recursive: true });
  const oldDeb = buildDeb(out, { name, version: '1.0-1', files: { [`usr/share/${name}/v`]: '1\n' } });
  const newDeb = buildDeb(out, {
    name,
    version: '1.0-2',
    // base64 of random bytes: xz cannot shrink it much, so the package stays large
    files: { [`usr/share/${name}/v`]: '2\n', [`usr/share/${name}/data`]: randomBytes(Math.ceil((payloadBytes * 3) / 4)).toString('base64') },
    postinst: `#!/bin/sh\nset -e\necho configured >> /var/lib/${name}.runs\n`,
  });
  const bytes = readFileSync(newDeb);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const poolPath = `pool/main/p/${name}/${name}_1.0-2_all.deb`;
  const repo = http.createServer((req, res) => {
    if (req.url !== `/debian/${poolPath}`) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-length': bytes.length }).end(bytes);
  });
  await new Promise<void>((r) => repo.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(repo.address() as net.AddressInfo).port}/debian`;
  const id = `debian/${name}-1.0-2`;
  const call = async (method: string, path: string, body: unknown) => {
    const res = await fetch(server.url + path, { method, headers: { authorization: `Bearer ${server.adminToken}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return JSON.parse(text) as Record<string, unknown>;
  };
  const manifest = {
    id,
    revision: 1,
    title: `${name} 1.0-2`,
    severity: 'high',
    platforms: [{ family: 'linux' }],
    applicability: { package: { manager: 'dpkg', name, installed: true } },
    installed: { package: { manager: 'dpkg', name, version: { ge: '1.0-2' } } },
    fixes: [{ manager: 'dpkg', name, version: '1.0-2' }],
    install: [{ type: 'package', manager: 'apt', op: 'upgrade', name, version: '1.0-2', fetch: { repository: base, path: poolPath, size: bytes.length, sha256 } }],
  };
  await call('POST', '/api/v1/catalog/patches', { patches: [manifest], coverage: [{ family: 'linux', distribution: 'debian', release: '12' }], source: { kind: 'test' } });
  const cached = await call('POST', '/api/v1/catalog/payloads/cache', { patches: [id] });
  if (cached.fetched !== 1 && cached.cached !== 1) throw new Error(`the package file was not cached: ${JSON.stringify(cached)}`);
  return {
    id,
    oldDeb,
    size: bytes.length,
    sha256,
    contentPath: `/api/v1/content/${sha256}`,
    close: () => new Promise<void>((r) => repo.close(() => r())),
  };
}

/** Polls `f` until it gives a value (not undefined or false), or fails after `ms` with `show()`'s output. */
export async function until<T>(what: string, f: () => Promise<T | undefined | false> | T | undefined | false, ms: number, show: () => string = () => ''): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}\n${show()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
