/** Site credentials through the CLI, tried as a new administrator would. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, cli, startServerProcess, type ServerProcess } from './support/processes.js';

describe('patchwarden sites', () => {
  assertBuilt();
  let dir: string;
  let server: ServerProcess;
  const at = (...a: string[]) => [...a, '--server', server.url, '--token', server.adminToken];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pw-sites-'));
    server = await startServerProcess(join(dir, 'server'));
  });
  afterAll(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates a site whose token reads the catalog, lists it, and revokes it', async () => {
    let r = await cli(at('sites', 'list'));
    expect(r.stdout).toMatch(/No sites yet/);
    r = await cli(at('sites', 'create', 'lyon', '--mode', 'autonomous', '--json'));
    expect(r.status, r.stderr).toBe(0);
    const site = JSON.parse(r.stdout) as { token: string; mode: string };
    expect(site.token).toMatch(/^pws_/);
    expect(site.mode).toBe('autonomous');
    const read = () => fetch(`${server.url}/api/v1/tuf/metadata/timestamp.json`, { headers: { authorization: `Bearer ${site.token}` } });
    expect((await read()).status).toBe(200);

    r = await cli(at('sites', 'list'));
    expect(r.stdout).toMatch(/lyon\s+autonomous\s+never\s+-\s+never synced/);
    expect((await cli(at('sites', 'create', 'x', '--mode', 'sideways'))).status).toBe(2);

    r = await cli(at('sites', 'revoke', 'lyon'));
    expect(r.status, r.stderr).toBe(0);
    expect((await read()).status).toBe(403);
    r = await cli(at('sites', 'list', '--json'));
    expect(JSON.parse(r.stdout)[0].revokedAt).not.toBeNull();
  });
});
