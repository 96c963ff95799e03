/**
 * An agent and the signed catalog, tried as a new user would: the agent pins the catalog root
 * when it enrolls (checked against a fingerprint when it is given one, before the secret is
 * sent), and fetches patch objects that verify from that root — also as the single-file agent.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, assertBuilt, cli, ROOT, startServerProcess, type ServerProcess } from './support/processes.js';

const bookworm = [{ family: 'linux', distribution: 'debian', release: 'bookworm', arch: ['amd64'] }];

describe('the agent and the signed catalog', () => {
  assertBuilt();
  let dir: string;
  let server: ServerProcess;
  let rootSha: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pw-agent-catalog-'));
    server = await startServerProcess(join(dir, 'server'));
    const up = await api(server, 'POST', '/api/v1/catalog/patches', {
      patches: [
        {
          id: 'debian/zlib-test',
          revision: 1,
          title: 'zlib test',
          severity: 'high',
          platforms: bookworm,
          applicability: { package: { manager: 'dpkg', name: 'zlib1g', installed: true } },
          installed: { package: { manager: 'dpkg', name: 'zlib1g', version: { ge: '1:1.2.13.dfsg-1' } } },
        },
      ],
      coverage: bookworm,
      source: { kind: 'apt' },
    });
    expect(up.status).toBe(200);
    const res = await fetch(`${server.url}/api/v1/tuf-root`);
    rootSha = createHash('sha256').update(Buffer.from(await res.arrayBuffer())).digest('hex');
  });
  afterAll(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const secret = async () => (await api<{ secret: string }>(server, 'POST', '/api/v1/enrollment-secrets', { name: `s-${Math.random()}` })).body.secret;

  it('refuses a server whose root does not match the fingerprint, before sending the secret', async () => {
    const s = await secret();
    const r = await cli(['agent', 'enroll', '--server', server.url, '--secret', s, '--data-dir', join(dir, 'wrong'), '--root-sha256', 'a'.repeat(64)]);
    expect(r.status).toBe(10);
    expect(r.stderr).toMatch(/E_SIGNATURE_INVALID: the server's catalog root has sha256/);
    // the secret was not used: it still enrolls a device
    const ok = await cli(['agent', 'enroll', '--server', server.url, '--secret', s, '--data-dir', join(dir, 'right'), '--root-sha256', rootSha]);
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stdout).toContain(`sha256 ${rootSha} (as expected)`);
  });

  it('fetches a patch object that verifies from the pinned root', async () => {
    const data = join(dir, 'right');
    const r = await cli(['agent', 'fetch-patch', 'debian/zlib-test.json', '--data-dir', data, '--json']);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ id: 'debian/zlib-test', revision: 1 });
    const missing = await cli(['agent', 'fetch-patch', 'debian/nothing.json', '--data-dir', data]);
    expect(missing.status).toBe(4);
    expect(missing.stderr).toMatch(/E_NOT_FOUND: the signed catalog has no debian\/nothing.json/);
    const status = await cli(['agent', 'status', '--data-dir', data, '--json']);
    expect(JSON.parse(status.stdout).catalogRootSha256).toBe(rootSha);
  });

  it('trusts nothing from a server with another root than the pinned one', async () => {
    const other = await startServerProcess(join(dir, 'other-server'));
    try {
      // the same device identity pointed at a server with another catalog root: its metadata
      // does not chain to the pinned root, so nothing is used
      const data = join(dir, 'right');
      const state = JSON.parse(readFileSync(join(data, 'agent.json'), 'utf8'));
      const moved = join(dir, 'moved');
      const { cpSync, writeFileSync } = await import('node:fs');
      cpSync(data, moved, { recursive: true });
      writeFileSync(join(moved, 'agent.json'), JSON.stringify({ ...state, server: other.url, token: other.adminToken }));
      const r = await cli(['agent', 'fetch-patch', 'debian/zlib-test.json', '--data-dir', moved]);
      expect(r.status).toBe(10);
      expect(r.stderr).toMatch(/E_SIGNATURE_INVALID: the catalog does not verify/);
    } finally {
      await other.stop();
    }
  });

  it('works the same from the single-file agent', () => {
    const r = spawnSync(process.execPath, [join(ROOT, 'packages/agent/dist/patchwarden-agent.mjs'), 'fetch-patch', 'debian/zlib-test.json', '--data-dir', join(dir, 'right')], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).id).toBe('debian/zlib-test');
  });
});
