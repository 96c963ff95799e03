/**
 * Recovery from a compromised online key, step by step as docs/key-recovery.md tells an
 * administrator, with the real CLI and server: a catalog whose root keys stay offline (2 of 2),
 * an agent pinned at root version 1, an attacker who copied the server's online key and used it
 * to freeze the agent with a timestamp far ahead. After the rotation the agent walks to the new
 * root by itself, works again, and refuses whatever the old key signs.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MetadataKind } from '@tufjs/models';
import { readPrivateKey } from '../packages/server/src/catalog/keys.js';
import { signMetadata } from '../packages/server/src/catalog/tuf/repo.js';
import { api, assertBuilt, cli, ROOT, startServerProcess, type ServerProcess } from './support/processes.js';
import { makeRoot } from './support/sandbox.js';

const linux = [{ family: 'linux' }];
const patch = (id: string) => ({
  id,
  revision: 1,
  title: id,
  severity: 'high',
  platforms: linux,
  applicability: { package: { manager: 'dpkg', name: 'zlib1g', installed: true } },
  installed: { package: { manager: 'dpkg', name: 'zlib1g', version: { ge: '1:1.2.13.dfsg-1' } } },
});

/** Between the agent and the server: passes everything on, unless the attacker serves a file. */
async function front() {
  const ctl = { upstream: new URL('http://127.0.0.1:1'), files: new Map<string, Buffer>() };
  const server = http.createServer((req, res) => {
    const f = ctl.files.get((req.url ?? '').split('?')[0]!);
    if (f) {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': f.length });
      return res.end(f);
    }
    const fwd = http.request({ host: ctl.upstream.hostname, port: ctl.upstream.port, path: req.url, method: req.method, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    fwd.on('error', () => res.destroy());
    req.pipe(fwd);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, ctl, close: () => new Promise<void>((r) => server.close(() => r())) };
}

describe('recovery from a compromised online key', () => {
  assertBuilt();
  let dir: string;
  let offline: string;
  let data: string;
  let server: ServerProcess;
  let proxy: Awaited<ReturnType<typeof front>>;
  let agent: string;
  /** the attacker's copy of the online key, taken before the rotation */
  let stolenKey: Awaited<ReturnType<typeof readPrivateKey>>;
  const at = (...a: string[]) => [...a, '--server', server.url, '--token', server.adminToken];
  const k = (name: string) => join(offline, name);
  const fetchPatch = () => cli(['agent', 'fetch-patch', 'debian/pw-one.json', '--data-dir', agent]);
  const pinnedRoot = () => JSON.parse(readFileSync(join(agent, 'tuf/metadata/root.json'), 'utf8')) as { signed: { version: number; roles: Record<string, { keyids: string[]; threshold: number }> } };

  /** A timestamp the attacker signs with the stolen key, naming the server's current snapshot. */
  async function forgedTimestamp(version: number): Promise<Buffer> {
    const res = await fetch(`${server.url}/api/v1/tuf/metadata/timestamp.json`, { headers: { authorization: `Bearer ${server.adminToken}` } });
    const ts = (await res.json()) as { signed: Record<string, unknown> };
    return signMetadata(MetadataKind.Timestamp, { ...ts.signed, version }, [stolenKey]);
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pw-key-recovery-'));
    offline = join(dir, 'offline-machine');
    data = join(dir, 'server');
    mkdirSync(data);
    writeFileSync(join(data, 'server.json'), JSON.stringify({ localRoot: false }));
    server = await startServerProcess(data);
    for (const n of ['root-1', 'root-2']) expect((await cli(['keys', 'create', n, '--role', 'root', '--out', offline])).status).toBe(0);
    let r = await cli(['keys', 'root-init', '--key', k('root-1.key'), '--key', k('root-2.key'), '--threshold', '2', '--online', join(data, 'keys/online.pub'), '--out', offline]);
    expect(r.status, r.stderr).toBe(0);
    r = await cli(at('catalog', 'import-metadata', k('1.root.json'), k('1.targets.json')));
    expect(r.status, r.stderr).toBe(0);
    const up = await api(server, 'POST', '/api/v1/catalog/patches', { patches: [patch('debian/pw-one')], coverage: [], source: { kind: 'apt' } });
    expect(up.status).toBe(200);

    proxy = await front();
    proxy.ctl.upstream = new URL(server.url);
    agent = join(dir, 'agent');
    makeRoot(join(dir, 'device'), { hostname: 'device' });
    const secret = (await api<{ secret: string }>(server, 'POST', '/api/v1/enrollment-secrets', { name: 'device' })).body.secret;
    const sha = createHash('sha256').update(readFileSync(k('1.root.json'))).digest('hex');
    r = await cli(['agent', 'enroll', '--server', proxy.url, '--secret', secret, '--root-sha256', sha, '--data-dir', agent, '--root', join(dir, 'device')]);
    expect(r.status, r.stderr).toBe(0);
    r = await fetchPatch();
    expect(r.status, r.stderr).toBe(0);
    stolenKey = await readPrivateKey(join(data, 'keys/online.key'));
  }, 120_000);

  afterAll(async () => {
    await proxy?.close();
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('shows the harm first: a timestamp signed far ahead with the stolen key freezes the agent', async () => {
    proxy.ctl.files.set('/api/v1/tuf/metadata/timestamp.json', await forgedTimestamp(1_000_000));
    let r = await fetchPatch();
    // valid under the root the agent trusts today, so it is taken (and kept)
    expect(r.status, r.stderr).toBe(0);
    proxy.ctl.files.clear();
    r = await fetchPatch();
    expect(r.status).toBe(10);
    expect(r.stderr).toMatch(/E_METADATA_ROLLBACK: .*New timestamp version \d+ is less than current version 1000000/);
  });

  it('rotates the online key as docs/key-recovery.md says; the agent walks to the new root and works again', async () => {
    const doc = readFileSync(join(ROOT, 'docs/key-recovery.md'), 'utf8');
    for (const step of ['keys create online-2 --role online', 'keys rotate-root', 'keys sign-targets', 'keys rotate-online']) expect(doc).toContain(step);

    // 1. a new online key pair, on the server's machine
    const fresh = join(dir, 'new-online');
    let r = await cli(['keys', 'create', 'online-2', '--role', 'online', '--out', fresh]);
    expect(r.status, r.stderr).toBe(0);
    // 2. on the administrator's offline machine: the next root and top-level targets, naming it
    r = await cli(at('keys', 'rotate-root', '--key', k('root-1.key'), '--key', k('root-2.key'), '--online', join(fresh, 'online-2.pub'), '--out', k('2.root.json')));
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/wrote .*2\.root\.json: root version 2, timestamp and snapshot on online key/);
    r = await cli(at('keys', 'sign-targets', '--key', k('root-1.key'), '--key', k('root-2.key'), '--online', join(fresh, 'online-2.pub'), '--out', k('2.targets.json')));
    expect(r.status, r.stderr).toBe(0);
    // one root key alone is not enough for the server to take them (threshold 2)
    r = await cli(at('keys', 'rotate-root', '--key', k('root-1.key'), '--online', join(fresh, 'online-2.pub'), '--out', k('weak.root.json')));
    expect(r.status, r.stderr).toBe(0);

    // 3. with the server stopped
    await server.stop();
    r = await cli(['keys', 'rotate-online', '--data-dir', data, '--new-key', join(fresh, 'online-2.key'), k('weak.root.json'), k('2.targets.json')]);
    expect(r.status).toBe(10);
    expect(r.stderr).toMatch(/E_SIGNATURE_INVALID: the new root is not signed by a threshold of the current root keys/);
    r = await cli(['keys', 'rotate-online', '--data-dir', data, '--new-key', join(fresh, 'online-2.key'), k('2.root.json'), k('2.targets.json')]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/online key is now .* root version 2, targets version 2, online roles re-signed/);
    const newKey = await readPrivateKey(join(fresh, 'online-2.key'));
    expect((await readPrivateKey(join(data, 'keys/online.key'))).keyid).toBe(newKey.keyid);

    // 4. start the server again
    server = await startServerProcess(data);
    proxy.ctl.upstream = new URL(server.url);

    // the agent, still pinned at root 1 and frozen by the forged timestamp, needs nobody's help
    expect(pinnedRoot().signed.version).toBe(1);
    r = await fetchPatch();
    expect(r.status, r.stderr).toBe(0);
    const root = pinnedRoot().signed;
    expect(root.version).toBe(2);
    expect(root.roles.timestamp!.keyids).toEqual([newKey.keyid]);
    expect(root.roles.root!.threshold).toBe(2);
    // and keeps working as the catalog changes
    const up = await api(server, 'POST', '/api/v1/catalog/patches', { patches: [patch('debian/pw-two')], coverage: [], source: { kind: 'apt' } });
    expect(up.status).toBe(200);
    r = await cli(['agent', 'fetch-patch', 'debian/pw-two.json', '--data-dir', agent]);
    expect(r.status, r.stderr).toBe(0);
  });

  it('refuses what the old key signs once the agent has the new root', async () => {
    proxy.ctl.files.set('/api/v1/tuf/metadata/timestamp.json', await forgedTimestamp(2_000_000));
    try {
      const r = await fetchPatch();
      expect(r.status).toBe(10);
      expect(r.stderr).toMatch(/E_SIGNATURE_INVALID: the catalog does not verify: .*timestamp was signed by 0\/1 keys/);
    } finally {
      proxy.ctl.files.clear();
    }
    const r = await fetchPatch();
    expect(r.status, r.stderr).toBe(0);
  });

  it('enrolls new devices against the new root fingerprint', async () => {
    const secret = (await api<{ secret: string }>(server, 'POST', '/api/v1/enrollment-secrets', { name: 'later' })).body.secret;
    const sha = createHash('sha256').update(readFileSync(k('2.root.json'))).digest('hex');
    const r = await cli(['agent', 'enroll', '--server', server.url, '--secret', secret, '--root-sha256', sha, '--data-dir', join(dir, 'agent-later'), '--root', join(dir, 'device')]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(`sha256 ${sha} (as expected)`);
  });
});
