/**
 * Local patch servers and air-gapped sites, tried as an administrator would: a central server
 * and a local server as separate processes, the local one syncing through a byte-counting proxy
 * with its site token and the central root pinned; a real agent enrolled at the local server;
 * an interrupted sync resumed after the local server was killed; hostile networks and pins
 * refused with nothing switched; and an export file carried to a third, air-gapped server.
 */
import { createHash, randomBytes } from 'node:crypto';
import { DEVICE_SIGNATURE_HEADERS, deviceSigner, EMPTY_BODY_SHA256, type DeviceKeyPair } from '@patchwarden/core';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BaseFetcher, Updater } from 'tuf-js';
import { DownloadHTTPError } from 'tuf-js/dist/error.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, assertBuilt, cli, countingProxy, startServerProcess, type ServerProcess } from './support/processes.js';
import { makeRoot } from './support/sandbox.js';

const bookworm = [{ family: 'linux', distribution: 'debian', release: 'bookworm', arch: ['amd64'] }];
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

function patch(id: string, fixed: string, revision = 1, pkg = 'zlib1g') {
  return {
    id,
    revision,
    title: `${id} ${fixed}`,
    severity: 'high',
    platforms: bookworm,
    applicability: { package: { manager: 'dpkg', name: pkg, installed: true } },
    installed: { package: { manager: 'dpkg', name: pkg, version: { ge: fixed } } },
    restart: { reboot: 'never', kernel: false },
  };
}

interface Report {
  changed: boolean;
  snapshot: number;
  expires: string;
  targets: { listed: number; fetched: number; alreadyHeld: number };
  patches: { created: number; updated: number; removed: number };
  transfer: { requests: number; bytes: number };
}

/** tuf-js, as a device's client, fetching from a server with a device's token, each request signed with its key. */
class TokenFetcher extends BaseFetcher {
  private readonly sign: ReturnType<typeof deviceSigner>;
  constructor(
    private readonly token: string,
    key: DeviceKeyPair,
  ) {
    super();
    this.sign = deviceSigner(key);
  }
  async fetch(url: string): Promise<ReadableStream<Uint8Array<ArrayBuffer>>> {
    const u = new URL(url);
    const date = Date.now();
    const nonce = randomBytes(18).toString('base64url');
    const signature = this.sign({ method: 'GET', path: u.pathname + u.search, date, nonce, bodySha256: EMPTY_BODY_SHA256 });
    const headers = { authorization: `Bearer ${this.token}`, [DEVICE_SIGNATURE_HEADERS.date]: String(date), [DEVICE_SIGNATURE_HEADERS.nonce]: nonce, [DEVICE_SIGNATURE_HEADERS.signature]: signature };
    const res = await fetch(url, { headers });
    if (res.status !== 200) throw new DownloadHTTPError(`HTTP ${res.status}`, res.status);
    return res.body as ReadableStream<Uint8Array<ArrayBuffer>>;
  }
}

describe('a local patch server syncing from a central one, and an air-gapped site', () => {
  let dir: string;
  let central: ServerProcess;
  let local: ServerProcess;
  let proxy: Awaited<ReturnType<typeof countingProxy>>;
  let siteToken: string;
  let rootFile: string;
  let rootBytes: Buffer;
  const wire: Record<string, number> = {};
  const others: ServerProcess[] = [];

  const localArgs = () => ['--upstream', proxy.url, '--upstream-token', siteToken, '--upstream-root', rootFile, '--upstream-sync-minutes', '0'];
  const on = (s: ServerProcess, ...args: string[]) => [...args, '--server', s.url, '--token', s.adminToken];
  const publish = async (patches: unknown[]) => {
    const r = await api(central, 'POST', '/api/v1/catalog/patches', { patches, coverage: bookworm, source: { kind: 'bench' } });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
  };
  const servedTimestamp = async (s: ServerProcess) => (await fetch(`${s.url}/api/v1/tuf/metadata/timestamp.json`, { headers: { authorization: `Bearer ${s.adminToken}` } })).text();
  async function syncLocal(): Promise<{ status: number | null; report: Report | null; stderr: string; bytes: number }> {
    const mark = proxy.mark();
    const r = await cli(on(local, 'catalog', 'sync', '--json'));
    return { status: r.status, report: r.status === 0 ? (JSON.parse(r.stdout) as Report) : null, stderr: r.stderr, bytes: proxy.since(mark).down };
  }

  beforeAll(async () => {
    assertBuilt();
    dir = mkdtempSync(join(tmpdir(), 'pw-local-'));
    central = await startServerProcess(join(dir, 'central'));
    const many = Array.from({ length: 400 }, (_, i) => patch(`debian/zlib-${i}`, `1:1.2.13.dfsg-1+pw${i}`));
    // the one a bookworm machine with this host's zlib1g needs
    many.push(patch('debian/zlib-needed', '1:99'));
    await publish(many);
    const site = await api<{ token: string }>(central, 'POST', '/api/v1/sites', { name: 'branch', mode: 'replica' });
    expect(site.status).toBe(201);
    siteToken = site.body.token;
    // the central root, saved and (in real life) compared out of band
    rootBytes = Buffer.from(await (await fetch(`${central.url}/api/v1/tuf-root`, { headers: { authorization: `Bearer ${central.adminToken}` } })).arrayBuffer());
    rootFile = join(dir, 'central-root.json');
    writeFileSync(rootFile, rootBytes);
    proxy = await countingProxy(central.url);
    local = await startServerProcess(join(dir, 'local'), localArgs());
  });

  afterAll(async () => {
    for (const s of [local, central, ...others]) await s?.stop();
    await proxy?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
    console.log(`sync wire bytes (central → local): ${JSON.stringify(wire)}`);
  });

  it('mirrors the central catalog on the first sync, serving the central root', async () => {
    const r = await syncLocal();
    expect(r.status, r.stderr).toBe(0);
    expect(r.report).toMatchObject({ changed: true, targets: { listed: 401, fetched: 401 }, patches: { created: 401 } });
    wire.first = r.bytes;
    const localRoot = Buffer.from(await (await fetch(`${local.url}/api/v1/tuf-root`, { headers: { authorization: `Bearer ${local.adminToken}` } })).arrayBuffer());
    expect(localRoot.equals(rootBytes)).toBe(true);
    expect(await servedTimestamp(local)).toBe(await servedTimestamp(central));
    // refuses to take patches of its own
    const own = await api<{ error: { code: string } }>(local, 'POST', '/api/v1/catalog/patches', { patches: [patch('debian/local', '1')], coverage: [], source: { kind: 'apt' } });
    expect(own.status).toBe(403);
    const sites = await api<{ items: { name: string; behind: boolean; report: { targets: number } }[] }>(central, 'GET', '/api/v1/sites');
    expect(sites.body.items[0]).toMatchObject({ name: 'branch', behind: false, report: { targets: 401 } });
  });

  it('serves its own agent, whose device is assessed there and who verifies from the central root', async () => {
    const secret = (await api<{ secret: string }>(local, 'POST', '/api/v1/enrollment-secrets', { name: 'branch machines' })).body.secret;
    const root = makeRoot(join(dir, 'agent-root'), { hostname: 'branch-pc' });
    const agentDir = join(dir, 'agent');
    const help = await cli(['agent', 'enroll', '--help']);
    // where the agent pins a root at enrollment, it is told the central root's fingerprint
    const pin = help.stdout.includes('--root-sha256') ? ['--root-sha256', sha256(rootBytes)] : [];
    let r = await cli(['agent', 'enroll', '--server', local.url, '--secret', secret, '--data-dir', agentDir, '--root', root, ...pin]);
    expect(r.status, r.stderr).toBe(0);
    r = await cli(['agent', 'run', '--once', '--json', '--data-dir', agentDir, '--root', root]);
    expect(r.status, r.stderr).toBe(0);
    const states = await api<{ assessed: string; items: { patch: string; state: string }[] }>(local, 'GET', '/api/v1/devices/branch-pc/patches');
    expect(states.body.assessed).toBe('assessed');
    expect(states.body.items).toContainEqual(expect.objectContaining({ patch: 'debian/zlib-needed', state: 'needed' }));

    // a TUF client pinned to the central root verifies what the local server serves
    const agentState = JSON.parse(readFileSync(join(agentDir, 'agent.json'), 'utf8')) as { token: string; key: DeviceKeyPair };
    const meta = join(dir, 'tuf-client', 'meta');
    const targets = join(dir, 'tuf-client', 'targets');
    mkdirSync(meta, { recursive: true });
    mkdirSync(targets, { recursive: true });
    writeFileSync(join(meta, 'root.json'), rootBytes);
    const u = new Updater({ metadataDir: meta, metadataBaseUrl: `${local.url}/api/v1/tuf/metadata`, targetDir: targets, targetBaseUrl: `${local.url}/api/v1/tuf/targets`, fetcher: new TokenFetcher(agentState.token, agentState.key) });
    await u.refresh();
    const info = await u.getTargetInfo('debian/zlib-needed.json');
    expect(info).toBeDefined();
    const file = await u.downloadTarget(info!, join(targets, 'p.json'));
    expect(JSON.parse(readFileSync(file, 'utf8')).id).toBe('debian/zlib-needed');
  });

  it('transfers only what changed on the next sync', async () => {
    await publish(Array.from({ length: 4 }, (_, i) => patch(`debian/zlib-${i * 50}`, `1:1.2.13.dfsg-1+pw${i * 50}`, 2)));
    const r = await syncLocal();
    expect(r.status, r.stderr).toBe(0);
    expect(r.report).toMatchObject({ targets: { fetched: 4 }, patches: { updated: 4, created: 0 } });
    wire.fourChanged = r.bytes;
    expect(r.bytes).toBeLessThan(wire.first! * 0.15);
    const same = await syncLocal();
    expect(same.report).toMatchObject({ changed: false, targets: { fetched: 0 } });
    wire.nothingChanged = same.bytes;
    expect(same.bytes).toBeLessThan(8 * 1024);
  });

  it('resumes a sync interrupted by killing the local server, fetching only the rest', async () => {
    await publish(Array.from({ length: 900 }, (_, i) => patch(`debian/more-${i}`, `2.${i}`)));
    const before = await servedTimestamp(local);
    proxy.delay(15);
    const start = await api(local, 'POST', '/api/v1/mirror/sync?wait=false');
    expect(start.status).toBe(202);
    // kill it once it has fetched (and stored) a good part of the targets
    for (let i = 0; i < 400; i++) {
      const s = await api<{ running: { progress: { phase: string; targets: { done: number } } | null } | null }>(local, 'GET', '/api/v1/mirror/status');
      if ((s.body.running?.progress?.targets.done ?? 0) >= 600) break;
      await new Promise((res) => setTimeout(res, 20));
    }
    local.child.kill('SIGKILL');
    await new Promise((res) => local.child.once('exit', res));
    proxy.delay(0);
    local = await startServerProcess(join(dir, 'local'), localArgs());
    // nothing was switched: the local server still serves the catalog it had
    expect(await servedTimestamp(local)).toBe(before);
    const r = await syncLocal();
    expect(r.status, r.stderr).toBe(0);
    expect(r.report!.targets.alreadyHeld).toBeGreaterThanOrEqual(256);
    expect(r.report!.targets.fetched + r.report!.targets.alreadyHeld).toBe(900);
    expect(r.report!.patches.created).toBe(900);
  });

  it('refuses a byte tampered with on the way, switching nothing', async () => {
    await publish([patch('debian/tampered-1', '3.0')]);
    const before = await servedTimestamp(local);
    proxy.tamper((chunk) => {
      const at = chunk.indexOf('"title":"debian/tampered-1');
      if (at < 0) return chunk;
      const copy = Buffer.from(chunk);
      copy[at + 9] = 'D'.charCodeAt(0);
      return copy;
    });
    const r = await syncLocal();
    proxy.tamper(null);
    expect(r.status).toBe(10);
    expect(r.stderr).toMatch(/E_DIGEST_MISMATCH: targets\/debian\/[0-9a-f]{64}\.tampered-1\.json: SHA-256/);
    expect(await servedTimestamp(local)).toBe(before);
    const ok = await syncLocal();
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.report!.patches.created).toBe(1);
  });

  it('refuses a wrong pinned root', async () => {
    // a root.json with one byte changed no longer signs itself
    const forged = Buffer.from(rootBytes);
    const at = forged.indexOf('"expires":"') + 12;
    forged[at] = forged[at]! === 0x31 ? 0x32 : 0x31;
    writeFileSync(join(dir, 'forged-root.json'), forged);
    for (const [name, pin, code] of [
      ['forged', join(dir, 'forged-root.json'), 'E_SIGNATURE_INVALID'],
      ['hash', `sha256:${'0'.repeat(64)}`, 'E_DIGEST_MISMATCH'],
    ] as const) {
      const s = await startServerProcess(join(dir, `wrong-${name}`), ['--upstream', central.url, '--upstream-token', siteToken, '--upstream-root', pin, '--upstream-sync-minutes', '0']);
      others.push(s);
      const r = await cli(on(s, 'catalog', 'sync'));
      expect(r.status, r.stderr).toBe(10);
      expect(r.stderr).toContain(code);
      expect((await fetch(`${s.url}/api/v1/tuf/metadata/timestamp.json`, { headers: { authorization: `Bearer ${s.adminToken}` } })).status).toBe(404);
    }
  });

  it('stops when the central server revokes the site', async () => {
    const before = await servedTimestamp(local);
    expect((await api(central, 'POST', '/api/v1/sites/branch/revoke')).status).toBe(200);
    const r = await syncLocal();
    expect(r.status).toBe(3);
    expect(r.stderr).toMatch(/E_FORBIDDEN: .*site 'branch' has been revoked/);
    expect(await servedTimestamp(local)).toBe(before);
  });

  it('carries the catalog to an air-gapped server in one export file, refusing a tampered one', async () => {
    const file = join(dir, 'catalog.tar');
    let r = await cli(on(central, 'catalog', 'export', '--out', file, '--expires-days', '40'));
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/valid until .* \(in 40 days\)/);
    const airgap = await startServerProcess(join(dir, 'airgap'), ['--upstream-root', `sha256:${sha256(rootBytes)}`]);
    others.push(airgap);
    // one byte of a patch object changed: refused, nothing switched
    const bytes = readFileSync(file);
    const tampered = Buffer.from(bytes);
    const at = tampered.indexOf('"title":"debian/zlib-needed');
    tampered[at + 9] = 'D'.charCodeAt(0);
    writeFileSync(join(dir, 'tampered.tar'), tampered);
    r = await cli(on(airgap, 'catalog', 'import', join(dir, 'tampered.tar')));
    expect(r.status).toBe(10);
    expect(r.stderr).toMatch(/E_DIGEST_MISMATCH/);
    expect((await fetch(`${airgap.url}/api/v1/tuf/metadata/timestamp.json`, { headers: { authorization: `Bearer ${airgap.adminToken}` } })).status).toBe(404);

    r = await cli(on(airgap, 'catalog', 'import', file, '--json'));
    expect(r.status, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout) as Report;
    expect(rep.targets.listed).toBe(1302);
    expect(Math.round((Date.parse(rep.expires) - Date.now()) / 86_400_000)).toBe(40);
    const human = await cli(on(airgap, 'catalog', 'import', file));
    expect(human.stdout).toMatch(/imported from file:catalog\.tar: nothing new[\s\S]*valid until .* \(in 40 days\)/);
    const root = Buffer.from(await (await fetch(`${airgap.url}/api/v1/tuf-root`, { headers: { authorization: `Bearer ${airgap.adminToken}` } })).arrayBuffer());
    expect(root.equals(rootBytes)).toBe(true);
    const p = await api<{ manifest: { id: string } }>(airgap, 'GET', '/api/v1/catalog/patch?id=debian%2Fzlib-needed');
    expect(p.body.manifest.id).toBe('debian/zlib-needed');
  });
});
