/**
 * A catalog whose root stays offline, tried as a new administrator would: root keys made on
 * "another machine" (a folder the server never sees), root and targets signed there and
 * imported, an author trusted and dropped, root rotated; a client pinned at root v1 follows
 * every step, and forged or replayed metadata is refused.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mirrorCatalog, type MirrorState, type RemoteRepository } from '../packages/server/src/catalog/tuf/client.js';
import { api, assertBuilt, cli, startServerProcess, type ServerProcess } from './support/processes.js';

const bookworm = [{ family: 'linux', distribution: 'debian', release: 'bookworm', arch: ['amd64'] }];
const patch = (id: string) => ({
  id,
  revision: 1,
  title: id,
  severity: 'high',
  platforms: bookworm,
  applicability: { package: { manager: 'dpkg', name: 'zlib1g', installed: true } },
  installed: { package: { manager: 'dpkg', name: 'zlib1g', version: { ge: '1:1.2.13.dfsg-1' } } },
});

describe('an offline root', () => {
  assertBuilt();
  let dir: string;
  let offline: string;
  let server: ServerProcess;
  const at = (...a: string[]) => [...a, '--server', server.url, '--token', server.adminToken];
  const k = (name: string) => join(offline, name);

  /** the verifying client of local servers, over HTTP, pinned at the first root */
  const remote = (): RemoteRepository => ({
    async get(path, maxBytes) {
      const res = await fetch(`${server.url}/api/v1/tuf/${path.split('/').map(encodeURIComponent).join('/')}`, { headers: { authorization: `Bearer ${server.adminToken}` } });
      if (res.status === 404) return null;
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const b = new Uint8Array(await res.arrayBuffer());
      if (b.length > maxBytes) throw new Error('too large');
      return b;
    },
  });
  let state: MirrorState;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pw-offline-'));
    offline = join(dir, 'offline-machine');
    mkdirSync(offline);
    const data = join(dir, 'server');
    mkdirSync(data);
    writeFileSync(join(data, 'server.json'), JSON.stringify({ localRoot: false }));
    server = await startServerProcess(data);
  });
  afterAll(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('has no catalog until a root made offline is imported', async () => {
    for (const n of ['root-1', 'root-2', 'root-3', 'root-4']) expect((await cli(['keys', 'create', n, '--role', 'root', '--out', offline])).status).toBe(0);
    expect((await cli(['keys', 'create', 'alice', '--role', 'author', '--out', offline])).status).toBe(0);
    const early = await api<{ error: { code: string; hint: string } }>(server, 'POST', '/api/v1/catalog/patches', { patches: [patch('debian/early')], coverage: [], source: { kind: 'apt' } });
    expect(early.status).toBe(409);
    expect(early.body.error.hint).toMatch(/keys root-init/);

    const online = join(dir, 'server', 'keys', 'online.pub');
    let r = await cli(['keys', 'root-init', '--key', k('root-1.key'), '--pub', k('root-2.pub'), '--threshold', '2', '--online', online, '--out', offline]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--threshold 2 needs at least 2 --key files/);
    r = await cli(['keys', 'root-init', '--key', k('root-1.key'), '--key', k('root-2.key'), '--pub', k('root-3.pub'), '--threshold', '2', '--online', online, '--author', k('alice.pub'), '--out', offline]);
    expect(r.status, r.stderr).toBe(0);
    const root = readFileSync(k('1.root.json'));
    expect(r.stdout).toContain(createHash('sha256').update(root).digest('hex'));

    // a root whose threshold was lowered after signing is refused, and nothing is stored
    const forged = JSON.parse(root.toString());
    forged.signed.roles.root.threshold = 1;
    writeFileSync(k('forged.root.json'), JSON.stringify(forged));
    r = await cli(at('catalog', 'import-metadata', k('forged.root.json'), k('1.targets.json')));
    expect(r.status).toBe(10);
    expect(r.stderr).toMatch(/E_SIGNATURE_INVALID/);
    expect((await api(server, 'GET', '/api/v1/tuf-root')).status).toBe(404);

    r = await cli(at('catalog', 'import-metadata', k('1.root.json'), k('1.targets.json')));
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/imported root version 1 targets version 1/);
    const served = await fetch(`${server.url}/api/v1/tuf-root`, { headers: { authorization: `Bearer ${server.adminToken}` } });
    expect(Buffer.from(await served.arrayBuffer()).equals(root)).toBe(true);

    const up = await api(server, 'POST', '/api/v1/catalog/patches', { patches: [patch('debian/zlib-a'), patch('debian/zlib-b')], coverage: bookworm, source: { kind: 'apt' } });
    expect(up.status).toBe(200);
    const m = await mirrorCatalog({ remote: remote(), state: { root: new Uint8Array(root), roles: new Map() }, now: new Date() });
    expect([...m.targets.keys()].sort()).toEqual(['debian/zlib-a.json', 'debian/zlib-b.json']);
    state = m.state;
  });

  it('trusts and drops authors through targets signed offline; the online key cannot sign targets', async () => {
    let r = await cli(at('keys', 'authors', '--json'));
    expect(JSON.parse(r.stdout).items).toHaveLength(1);
    expect(JSON.parse(r.stdout).holdsTargetsKeys).toBe(false);
    // the server cannot change its authors itself: it holds no targets key
    r = await cli(at('keys', 'trust', k('root-4.pub')));
    expect(r.status).not.toBe(0);

    const aliceId = JSON.parse(readFileSync(k('alice.pub'), 'utf8')).keyid;
    r = await cli(at('keys', 'sign-targets', '--key', k('root-1.key'), '--key', k('root-2.key'), '--remove-author', aliceId));
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/targets is now version 2, 0 author/);
    // signed by the server's own online key: not a targets key
    r = await cli(at('keys', 'sign-targets', '--key', join(dir, 'server', 'keys', 'online.key'), '--add-author', k('alice.pub')));
    expect(r.status).toBe(10);
    expect(r.stderr).toMatch(/E_SIGNATURE_INVALID/);
    // one of two targets keys is not enough
    r = await cli(at('keys', 'sign-targets', '--key', k('root-1.key'), '--add-author', k('alice.pub')));
    expect(r.status).toBe(10);
    r = await cli(at('keys', 'sign-targets', '--key', k('root-1.key'), '--key', k('root-2.key'), '--add-author', k('alice.pub'), '--out', k('3.targets.json')));
    expect(r.status, r.stderr).toBe(0);
    r = await cli(at('catalog', 'import-metadata', k('3.targets.json')));
    expect(r.status, r.stderr).toBe(0);
    // the same document again is a replay
    r = await cli(at('catalog', 'import-metadata', k('3.targets.json')));
    expect(r.status).toBe(10);
    expect(r.stderr).toMatch(/E_METADATA_ROLLBACK/);
  });

  it('rotates root to new keys; a client pinned at v1 walks to v2, and the old root cannot come back', async () => {
    let r = await cli(at('keys', 'rotate-root', '--key', k('root-1.key'), '--new-key', k('root-4.key'), '--threshold', '1'));
    expect(r.status).toBe(10); // one of two current root keys
    r = await cli(at('keys', 'rotate-root', '--key', k('root-1.key'), '--key', k('root-2.key'), '--new-key', k('root-4.key'), '--threshold', '1'));
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/root is now version 2/);
    const m = await mirrorCatalog({ remote: remote(), state, now: new Date() });
    expect(m.newRoots).toHaveLength(1);
    expect(JSON.parse(Buffer.from(m.state.root).toString()).signed.version).toBe(2);
    r = await cli(at('catalog', 'import-metadata', k('1.root.json')));
    expect(r.status).toBe(10);
    expect(r.stderr).toMatch(/E_METADATA_ROLLBACK/);
    // the new root keys alone now sign the next root
    r = await cli(at('keys', 'rotate-root', '--key', k('root-4.key'), '--threshold', '1'));
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/root is now version 3/);
  });
});
