/**
 * Tried as a new user would: a real server process, two real agent processes on loopback,
 * each reading its own sandbox root. Sizes are counted on the wire by a TCP proxy.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, assertBuilt, cli, CLI, countingProxy, deviceFetch, startServerProcess, type ServerProcess } from './support/processes.js';
import { bumpPackage, makeRoot } from './support/sandbox.js';

type Device = { id: string; hostname: string; packageCount: number; status: string; lastSeenAt: string | null; group: { name: string } | null };

describe('server and agents as separate processes', () => {
  let dir: string;
  let server: ServerProcess;
  let proxy: Awaited<ReturnType<typeof countingProxy>>;
  let secret: string;
  const sizes: Record<string, { up: number; down: number }> = {};

  beforeAll(async () => {
    assertBuilt();
    dir = mkdtempSync(join(tmpdir(), 'pw-int-'));
    server = await startServerProcess(join(dir, 'server'));
    proxy = await countingProxy(server.url);
    expect((await api(server, 'POST', '/api/v1/groups', { name: 'lab' })).status).toBe(201);
    const s = await api<{ secret: string }>(server, 'POST', '/api/v1/enrollment-secrets', { name: 'lab machines', group: 'lab' });
    secret = s.body.secret;
  });

  afterAll(async () => {
    await server?.stop();
    await proxy?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
    console.log(`wire sizes (bytes, request/response): ${JSON.stringify(sizes)}`);
  });

  const agentArgs = (name: string) => ['--data-dir', join(dir, name), '--root', join(dir, `${name}-root`)];

  async function runOnce(name: string) {
    const mark = proxy.mark();
    const r = await cli(['agent', 'run', '--once', '--json', ...agentArgs(name)]);
    const wire = proxy.since(mark);
    return { ...r, wire, result: r.status === 0 ? JSON.parse(r.stdout) : null };
  }

  it('enrolls two agents into the group their secret names', async () => {
    makeRoot(join(dir, 'alpha-root'), { hostname: 'alpha' });
    makeRoot(join(dir, 'beta-root'), { hostname: 'beta' });
    for (const name of ['alpha', 'beta']) {
      const r = await cli(['agent', 'enroll', '--server', proxy.url, '--secret', secret, ...agentArgs(name)]);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/enrolled as device/);
    }
    const devices = (await api<{ items: Device[] }>(server, 'GET', '/api/v1/devices')).body.items;
    expect(devices.map((d) => d.hostname).sort()).toEqual(['alpha', 'beta']);
    expect(devices.every((d) => d.group?.name === 'lab')).toBe(true);
    // the secret is stored hashed, the device token only as its SHA-256
    const state = JSON.parse(readFileSync(join(dir, 'alpha', 'agent.json'), 'utf8'));
    expect(state.token).toMatch(/^pwd_/);
  });

  it('sends full facts first, then only the hash, then a small delta', async () => {
    const first = await runOnce('alpha');
    expect(first.status, first.stderr).toBe(0);
    expect(first.result).toMatchObject({ mode: 'full', sentSystem: true });
    expect(first.result.packages).toBeGreaterThan(100);
    sizes.full = { up: first.wire.up, down: first.wire.down };

    const same = await runOnce('alpha');
    expect(same.result).toMatchObject({ mode: 'same', sentSystem: false });
    expect(same.wire.connections).toBe(1);
    sizes.unchanged = { up: same.wire.up, down: same.wire.down };
    // request and answer with all headers; about 200 bytes of it are the device's signature
    // (its clock, a nonce and the Ed25519 signature), which every device request carries
    expect(same.wire.up + same.wire.down).toBeLessThan(1280);

    const alpha = (await api<Device>(server, 'GET', '/api/v1/devices/alpha')).body;
    const pk = await api<{ items: { name: string; version: string }[] }>(server, 'GET', `/api/v1/devices/${alpha.id}/packages?limit=1`);
    const victim = pk.body.items[0]!;
    bumpPackage(join(dir, 'alpha-root'), victim.name, `${victim.version}+pw1`);
    const delta = await runOnce('alpha');
    expect(delta.result).toMatchObject({ mode: 'delta' });
    sizes.onePackageChange = { up: delta.wire.up, down: delta.wire.down };
    expect(delta.wire.up + delta.wire.down).toBeLessThan(2048);

    const after = await api<{ items: { name: string; version: string }[] }>(server, 'GET', `/api/v1/devices/${alpha.id}/packages?search=${victim.name}`);
    expect(after.body.items.find((p) => p.name === victim.name)?.version).toBe(`${victim.version}+pw1`);
  });

  it('resends in full when the server does not know the base', async () => {
    // the agent believes the server acknowledged an inventory the server never stored
    const stateFile = join(dir, 'alpha', 'agent.json');
    const state = JSON.parse(readFileSync(stateFile, 'utf8'));
    const invFile = join(dir, 'alpha', 'acked-inventory.json');
    const inv = JSON.parse(readFileSync(invFile, 'utf8'));
    const bogus = 'b'.repeat(64);
    writeFileSync(stateFile, JSON.stringify({ ...state, acked: { ...state.acked, inventoryHash: bogus } }));
    writeFileSync(invFile, JSON.stringify({ ...inv, hash: bogus, packages: inv.packages.slice(1) }));
    // and the device changed since, so the server cannot answer from a set it already has
    const p = inv.packages[2];
    bumpPackage(join(dir, 'alpha-root'), p.name, `${p.version}+pw2`);
    const r = await runOnce('alpha');
    expect(r.status, r.stderr).toBe(0);
    expect(r.result).toMatchObject({ resent: true, mode: 'full' });
    expect(r.wire.connections).toBe(1);
    expect((await runOnce('alpha')).result.mode).toBe('same');
  });

  it('checks in on an interval with jitter', async () => {
    const child = spawn(process.execPath, [CLI, 'agent', 'run', '--interval', '1', ...agentArgs('beta')], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await new Promise((r) => setTimeout(r, 3500));
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    const lines = out.trim().split('\n').filter((l) => l.includes('checked in'));
    expect(lines.length).toBeGreaterThanOrEqual(3);
    expect(lines[0]).toMatch(/sent full/);
    expect(lines[1]).toMatch(/sent same/);
    const times = lines.map((l) => Date.parse(l.split(' ')[0]!));
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    for (const g of gaps) {
      expect(g).toBeGreaterThanOrEqual(850);
      expect(g).toBeLessThan(1600);
    }
  });

  it('answers a malformed check-in over HTTP with a code, and keeps what was stored', async () => {
    const before = (await api<Device>(server, 'GET', '/api/v1/devices/beta')).body;
    for (const [body, code] of [
      ['{"protocol":1,', 'E_BAD_REQUEST'],
      ['{"protocol":1,"systemHash":"x","inventory":{"mode":"same","hash":"y"}}', 'E_VALIDATION'],
    ] as const) {
      // signed by the device itself: the body is what is wrong
      const res = await deviceFetch(join(dir, 'beta'), `${server.url}/api/v1/agent/checkin`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe(code);
    }
    const after = (await api<Device>(server, 'GET', '/api/v1/devices/beta')).body;
    expect(after).toEqual(before);
  });

  it('lists and shows devices from the CLI, as a table and as JSON', async () => {
    const env = { PATCHWARDEN_SERVER: server.url, PATCHWARDEN_TOKEN: server.adminToken };
    const table = await cli(['devices', 'list'], { env });
    expect(table.status, table.stderr).toBe(0);
    expect(table.stdout).toMatch(/HOSTNAME\s+OS/);
    expect(table.stdout).toMatch(/alpha\s+Debian GNU\/Linux 12 \(bookworm\)\s+lab/);
    const json = JSON.parse((await cli(['devices', 'list', '--json'], { env })).stdout);
    expect(json.total).toBe(2);

    const show = JSON.parse((await cli(['devices', 'show', 'beta', '--json'], { env })).stdout);
    expect(show.packages.total).toBe(show.packageCount);
    expect(show.timezone).toBe('Europe/Berlin');
    const missing = await cli(['devices', 'show', 'nope'], { env });
    expect(missing.status).toBe(4);
    expect(missing.stderr).toMatch(/error E_NOT_FOUND: no device 'nope'/);
  });

  it('reports an RPM-based device as not supported yet, never as an empty inventory', async () => {
    makeRoot(join(dir, 'rhel-root'), { hostname: 'rhel', rpm: true });
    expect((await cli(['agent', 'enroll', '--server', server.url, '--secret', secret, ...agentArgs('rhel')])).status).toBe(0);
    const r = await cli(['agent', 'run', '--once', '--json', ...agentArgs('rhel')]);
    expect(r.status, r.stderr).toBe(0);
    const d = (await api<Device & { inventory: { status: string; message?: string } }>(server, 'GET', '/api/v1/devices/rhel')).body;
    expect(d.inventory.status).toBe('unsupported');
    expect(d.inventory.message).toMatch(/RPM/);
    const env = { PATCHWARDEN_SERVER: server.url, PATCHWARDEN_TOKEN: server.adminToken };
    expect((await cli(['devices', 'list', '--search', 'rhel'], { env })).stdout).toMatch(/rhel .* unsupported/);
  });

  it('refuses a revoked device, and the agent says so', async () => {
    const beta = (await api<Device>(server, 'GET', '/api/v1/devices/beta')).body;
    expect((await api(server, 'POST', `/api/v1/devices/${beta.id}/revoke`)).status).toBe(200);
    const r = await runOnce('beta');
    expect(r.status).toBe(3);
    expect(r.stderr).toMatch(/E_DEVICE_REVOKED/);
    const after = (await api<Device>(server, 'GET', '/api/v1/devices/beta')).body;
    expect(after.status).toBe('revoked');
    expect(after.lastSeenAt).toBe(beta.lastSeenAt);
  });
});
