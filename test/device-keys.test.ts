/**
 * Device keys end to end, tried as a new user would: a real server process and real agent
 * processes over HTTP. The agent makes its key at enrollment and signs every request; one
 * enrolled before device keys registers a key by itself; a device clock hours off still checks
 * in; a copied agent data directory is flagged; the same machine enrolled again waits for an
 * administrator, who approves it from the CLI.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, assertBuilt, cli, startServerProcess, type ServerProcess } from './support/processes.js';
import { makeRoot } from './support/sandbox.js';

interface DeviceView {
  id: string;
  status: string;
  lastSeenAt: string | null;
  identity: { signed: boolean; duplicateOf: string | null; cloneSuspectedAt: string | null };
}

describe('device keys between real processes', () => {
  let dir: string;
  let server: ServerProcess;
  let secret: string;

  beforeAll(async () => {
    assertBuilt();
    dir = mkdtempSync(join(tmpdir(), 'pw-keys-'));
    server = await startServerProcess(join(dir, 'server'));
    secret = (await api<{ secret: string }>(server, 'POST', '/api/v1/enrollment-secrets', { name: 'keys' })).body.secret;
  });
  afterAll(async () => {
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const args = (name: string, root = name) => ['--data-dir', join(dir, name), '--root', join(dir, `${root}-root`)];
  const device = async (id: string) => (await api<DeviceView>(server, 'GET', `/api/v1/devices/${id}`)).body;
  const stateOf = (name: string) => JSON.parse(readFileSync(join(dir, name, 'agent.json'), 'utf8')) as { deviceId: string; token: string; key: { publicKey: string } | null; sequence: number };

  it('enrolls with a key made on the device and signs every request; the token alone is refused', async () => {
    makeRoot(join(dir, 'signer-root'), { hostname: 'signer' });
    const e = await cli(['agent', 'enroll', '--server', server.url, '--secret', secret, ...args('signer')]);
    expect(e.status, e.stderr).toBe(0);
    expect(e.stdout).toMatch(/signs every request with its own key/);
    const state = stateOf('signer');
    expect(state.key?.publicKey).toMatch(/^[0-9a-f]{64}$/);
    const run = await cli(['agent', 'run', '--once', '--json', ...args('signer')]);
    expect(run.status, run.stderr).toBe(0);
    const d = await device(state.deviceId);
    expect(d.identity.signed).toBe(true);
    expect(d.lastSeenAt).not.toBeNull();
    expect(stateOf('signer').sequence).toBe(1);
    // the token copied out of agent.json, without the key: refused
    const stolen = await fetch(`${server.url}/api/v1/agent/jobs?wait=0&installs=false`, { headers: { authorization: `Bearer ${state.token}` } });
    expect(stolen.status).toBe(401);
    expect(((await stolen.json()) as { error: { code: string } }).error.code).toBe('E_REQUEST_SIGNATURE');
  });

  it('moves an agent enrolled before device keys to a key of its own at its next check-in', async () => {
    makeRoot(join(dir, 'old-root'), { hostname: 'old-agent' });
    const e = await cli(['agent', 'enroll', '--server', server.url, '--secret', secret, ...args('old')]);
    expect(e.status, e.stderr).toBe(0);
    // the device as an older agent left it: the server has no key for it, its state holds none
    const enrolled = await fetch(`${server.url}/api/v1/enroll`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ secret, system: { hostname: 'old-agent', os: { family: 'linux', machine: 'x86_64' }, kernel: { release: '6.1.0' }, rebootRequired: false, agentVersion: '0.0.9', collectors: [] } }),
    });
    const text = await enrolled.text();
    expect(enrolled.status, text).toBe(200);
    const legacy = JSON.parse(text) as { deviceId: string; token: string };
    const path = join(dir, 'old', 'agent.json');
    const state = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
    delete state.key;
    delete state.keyRegistered;
    delete state.sequence;
    writeFileSync(path, JSON.stringify({ ...state, deviceId: legacy.deviceId, token: legacy.token }));
    expect((await device(legacy.deviceId)).identity.signed).toBe(false);

    const run = await cli(['agent', 'run', '--once', '--json', ...args('old')]);
    expect(run.status, run.stderr).toBe(0);
    expect((await device(legacy.deviceId)).identity.signed).toBe(true);
    expect(stateOf('old').key?.publicKey).toMatch(/^[0-9a-f]{64}$/);
    const stolen = await fetch(`${server.url}/api/v1/agent/jobs?wait=0&installs=false`, { headers: { authorization: `Bearer ${legacy.token}` } });
    expect(stolen.status).toBe(401);
    // and it keeps working signed
    expect((await cli(['agent', 'run', '--once', ...args('old')])).status).toBe(0);
  });

  it('checks in from a device whose clock is hours off: the server says its time, the agent signs with it', async () => {
    makeRoot(join(dir, 'drift-root'), { hostname: 'drift' });
    expect((await cli(['agent', 'enroll', '--server', server.url, '--secret', secret, ...args('drift')])).status).toBe(0);
    const preload = join(dir, 'clock-ahead.mjs');
    writeFileSync(preload, 'const real = Date.now; Date.now = () => real() + 3 * 3600 * 1000;\n');
    const before = Date.now();
    const run = await cli(['agent', 'run', '--once', '--json', ...args('drift')], { env: { NODE_OPTIONS: `--import ${preload}` } });
    expect(run.status, run.stderr).toBe(0);
    const seen = Date.parse((await device(stateOf('drift').deviceId)).lastSeenAt!);
    // the server's own clock decided
    expect(seen).toBeGreaterThanOrEqual(before - 1000);
    expect(seen).toBeLessThan(before + 600_000);
  });

  it('flags a copied agent data directory when both copies check in', async () => {
    makeRoot(join(dir, 'vm-root'), { hostname: 'golden-image' });
    expect((await cli(['agent', 'enroll', '--server', server.url, '--secret', secret, ...args('vm')])).status).toBe(0);
    expect((await cli(['agent', 'run', '--once', ...args('vm')])).status).toBe(0);
    cpSync(join(dir, 'vm'), join(dir, 'vm-copy'), { recursive: true });
    const id = stateOf('vm').deviceId;
    expect((await cli(['agent', 'run', '--once', ...args('vm')])).status).toBe(0);
    expect((await device(id)).identity.cloneSuspectedAt).toBeNull();
    // the copy speaks with the same key, so it is not refused, but its count goes back
    expect((await cli(['agent', 'run', '--once', ...args('vm-copy', 'vm')])).status).toBe(0);
    expect((await device(id)).identity.cloneSuspectedAt).not.toBeNull();
    const list = await cli(['devices', 'list', '--server', server.url, '--token', server.adminToken]);
    expect(list.stdout).toMatch(/active, clone\?/);
  });

  it('holds the same machine enrolled again for approval; the CLI approves it and the older record stops working', async () => {
    makeRoot(join(dir, 'reinstall-root'), { hostname: 'reinstalled' });
    writeFileSync(join(dir, 'reinstall-root', 'etc', 'machine-id'), `${randomBytes(16).toString('hex')}\n`);
    expect((await cli(['agent', 'enroll', '--server', server.url, '--secret', secret, ...args('first', 'reinstall')])).status).toBe(0);
    const again = await cli(['agent', 'enroll', '--server', server.url, '--secret', secret, ...args('second', 'reinstall')]);
    expect(again.status, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/waits for an administrator/);
    const waiting = await cli(['agent', 'run', '--once', ...args('second', 'reinstall')]);
    expect(waiting.status).not.toBe(0);
    expect(waiting.stderr).toMatch(/E_DEVICE_PENDING/);

    const second = stateOf('second').deviceId;
    const first = stateOf('first').deviceId;
    const shown = await cli(['devices', 'show', second, '--server', server.url, '--token', server.adminToken]);
    expect(shown.stdout).toMatch(new RegExp(`waits for approval: the machine's active record is ${first}`));
    const ok = await cli(['devices', 'approve', second, '--server', server.url, '--token', server.adminToken]);
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stdout).toContain(`the older record ${first} is revoked`);
    expect((await cli(['agent', 'run', '--once', ...args('second', 'reinstall')])).status).toBe(0);
    const old = await cli(['agent', 'run', '--once', ...args('first', 'reinstall')]);
    expect(old.stderr).toMatch(/E_DEVICE_REVOKED/);
    expect((await device(first)).status).toBe('revoked');
  });
});
