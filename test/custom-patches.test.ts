/**
 * Custom patches, tried as a new user would: an author creates a key, an administrator trusts
 * it, the author scaffolds, builds, signs, verifies and publishes a bundle through the CLI to a
 * real server process; hostile bundles are refused with nothing stored.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, assertBuilt, cli, startServerProcess, type ServerProcess } from './support/processes.js';

describe('custom patches through the CLI', () => {
  assertBuilt();
  let dir: string;
  let server: ServerProcess;
  const at = (...a: string[]) => [...a, '--server', server.url, '--token', server.adminToken];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pw-custom-'));
    server = await startServerProcess(join(dir, 'server'));
  });
  afterAll(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const run = (args: string[]) => cli(args, { env: { PWD: dir } });

  it('goes from a new key to a listed patch', async () => {
    const keys = join(dir, 'keys');
    let r = await run(['keys', 'create', 'alice', '--role', 'author', '--out', keys]);
    expect(r.status, r.stderr).toBe(0);
    expect((await import('node:fs')).statSync(join(keys, 'alice.key')).mode & 0o777).toBe(0o600);
    r = await run(['keys', 'create', 'mallory', '--role', 'author', '--out', keys]);
    expect(r.status, r.stderr).toBe(0);
    // a key file is never overwritten
    r = await run(['keys', 'create', 'alice', '--out', keys]);
    expect(r.status).toBe(5);
    expect(r.stderr).toMatch(/E_CONFLICT: a key named alice already exists/);

    // before any author is trusted, the catalog takes no custom patch
    const work = join(dir, 'work');
    r = await run(['patch', 'init', 'custom/acme-hotfix-12', '--dir', work]);
    expect(r.status, r.stderr).toBe(0);
    const bundle = join(dir, 'acme.bundle');
    r = await run(['patch', 'build', work, '--out', bundle, '--json']);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).payload.map((p: { path: string }) => p.path)).toEqual(['install.sh', 'undo.sh']);
    r = await run(['patch', 'sign', bundle, '--key', join(keys, 'alice.key')]);
    expect(r.status, r.stderr).toBe(0);
    r = await run(at('patch', 'publish', bundle, '--key', join(keys, 'alice.key')));
    expect(r.status).toBe(3);
    expect(r.stderr).toMatch(/trusts no author keys yet[\s\S]*keys trust/);

    r = await run(at('keys', 'trust', join(keys, 'alice.pub')));
    expect(r.status, r.stderr).toBe(0);
    r = await run(['patch', 'verify', bundle, '--key', join(keys, 'alice.pub'), '--json']);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).verifiedSigners).toHaveLength(1);
    r = await run(['patch', 'verify', bundle, '--key', join(keys, 'mallory.pub')]);
    expect(r.status).toBe(10);
    expect(r.stderr).toMatch(/E_SIGNATURE_INVALID/);

    r = await run(at('patch', 'publish', bundle, '--key', join(keys, 'alice.key')));
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/published custom\/acme-hotfix-12 r1.*custom listing is now version 1 with 1 patch/);
    r = await run(at('patch', 'list', '--custom', '--json'));
    expect(JSON.parse(r.stdout)).toMatchObject([{ id: 'custom/acme-hotfix-12', revision: 1, status: 'listed' }]);
    r = await run(at('patch', 'show', 'custom/acme-hotfix-12', '--json'));
    expect(JSON.parse(r.stdout).manifest.install[0]).toMatchObject({ type: 'script', source: 'install.sh' });
    // the signed catalog serves the bundle byte for byte under its hash
    const sha = (await import('node:crypto')).createHash('sha256').update(readFileSync(bundle)).digest('hex');
    const res = await fetch(`${server.url}/api/v1/tuf/targets/custom/${sha}.acme-hotfix-12.bundle`, { headers: { authorization: `Bearer ${server.adminToken}` } });
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer()).equals(readFileSync(bundle))).toBe(true);
  });

  it('refuses what must be refused, storing nothing', async () => {
    const keys = join(dir, 'keys');
    const work = join(dir, 'work');
    const before = (await api<{ items: unknown[] }>(server, 'GET', '/api/v1/catalog/bundles')).body.items.length;
    // signed only by a key the catalog does not trust
    const bad = join(dir, 'mallory.bundle');
    expect((await run(['patch', 'build', work, '--out', bad])).status).toBe(0);
    expect((await run(['patch', 'sign', bad, '--key', join(keys, 'mallory.key')])).status).toBe(0);
    let r = await run(at('patch', 'publish', bad, '--key', join(keys, 'mallory.key')));
    expect(r.status).toBe(10);
    expect(r.stderr).toMatch(/E_SIGNATURE_INVALID[\s\S]*unknown key/);

    // the same (id, revision) with other content
    const manifest = JSON.parse(readFileSync(join(work, 'manifest.json'), 'utf8'));
    writeFileSync(join(work, 'manifest.json'), JSON.stringify({ ...manifest, title: 'changed under the same revision' }));
    const changed = join(dir, 'changed.bundle');
    expect((await run(['patch', 'build', work, '--out', changed])).status).toBe(0);
    expect((await run(['patch', 'sign', changed, '--key', join(keys, 'alice.key')])).status).toBe(0);
    r = await run(at('patch', 'publish', changed, '--key', join(keys, 'alice.key')));
    expect(r.status).toBe(5);
    expect(r.stderr).toMatch(/E_CONFLICT: custom\/acme-hotfix-12 revision 1 exists with other content/);

    // a truncated bundle and a tampered payload byte never reach the server's store
    const good = readFileSync(join(dir, 'acme.bundle'));
    const truncated = join(dir, 'truncated.bundle');
    writeFileSync(truncated, good.subarray(0, good.length - 700));
    r = await run(at('patch', 'publish', truncated, '--key', join(keys, 'alice.key')));
    expect(r.status).toBe(10);
    expect(r.stderr).toMatch(/E_BUNDLE_INVALID/);
    const tampered = Buffer.from(good);
    tampered[tampered.indexOf('touch /opt/example/fixed')] = 'T'.charCodeAt(0);
    const raw = await fetch(`${server.url}/api/v1/catalog/bundles`, {
      method: 'POST',
      headers: { authorization: `Bearer ${server.adminToken}`, 'content-type': 'application/octet-stream' },
      body: tampered,
    });
    expect(raw.status).toBe(422);
    expect(((await raw.json()) as { error: { code: string } }).error.code).toBe('E_DIGEST_MISMATCH');
    expect((await api<{ items: unknown[] }>(server, 'GET', '/api/v1/catalog/bundles')).body.items.length).toBe(before);

    // a package name that starts with '-' never validates
    writeFileSync(join(work, 'manifest.json'), JSON.stringify({ ...manifest, revision: 2, install: [{ type: 'package', manager: 'apt', op: 'install', name: '-oAPT::Update::Pre-Invoke::=sh' }] }));
    r = await run(['patch', 'build', work, '--out', join(dir, 'dash.bundle')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/starts with '-'|start with '-'/);
    writeFileSync(join(work, 'manifest.json'), JSON.stringify(manifest, null, 2));
  });

  it("refuses a bundle signed only by the server's online key, and a requirement cycle", async () => {
    const keys = join(dir, 'keys');
    const work = join(dir, 'work');
    const manifest = JSON.parse(readFileSync(join(work, 'manifest.json'), 'utf8'));
    // the online key signs vendor metadata; it is no author, so a script it signed never runs
    const online = join(dir, 'online.bundle');
    expect((await run(['patch', 'build', work, '--out', online])).status).toBe(0);
    expect((await run(['patch', 'sign', online, '--key', join(dir, 'server', 'keys', 'online.key')])).status).toBe(0);
    let r = await run(at('patch', 'publish', online, '--key', join(keys, 'alice.key')));
    expect(r.status).toBe(10);
    expect(r.stderr).toMatch(/E_SIGNATURE_INVALID[\s\S]*unknown key/);

    // custom/cycle-a requires custom/cycle-b, which requires custom/cycle-a
    const mk = async (name: string, requires: string) => {
      writeFileSync(join(work, 'manifest.json'), JSON.stringify({ ...manifest, id: `custom/${name}`, requires: [requires] }));
      const out = join(dir, `${name}.bundle`);
      expect((await run(['patch', 'build', work, '--out', out])).status).toBe(0);
      expect((await run(['patch', 'sign', out, '--key', join(keys, 'alice.key')])).status).toBe(0);
      return out;
    };
    r = await run(at('patch', 'publish', await mk('cycle-a', 'custom/cycle-b'), '--key', join(keys, 'alice.key')));
    expect(r.status, r.stderr).toBe(0);
    r = await run(at('patch', 'publish', await mk('cycle-b', 'custom/cycle-a'), '--key', join(keys, 'alice.key')));
    expect(r.status).toBe(5);
    expect(r.stderr).toMatch(/E_DEPENDENCY_CYCLE: .*custom\/cycle-(a|b) → custom\/cycle-(a|b) → custom\/cycle-(a|b)/);
    r = await run(at('patch', 'retract', 'custom/cycle-a', '--key', join(keys, 'alice.key')));
    expect(r.status, r.stderr).toBe(0);
    writeFileSync(join(work, 'manifest.json'), JSON.stringify(manifest, null, 2));
  });

  it('publishes a new revision, which replaces the old one, and retracts it', async () => {
    const keys = join(dir, 'keys');
    const work = join(dir, 'work');
    const manifest = JSON.parse(readFileSync(join(work, 'manifest.json'), 'utf8'));
    writeFileSync(join(work, 'manifest.json'), JSON.stringify({ ...manifest, revision: 2, title: 'Acme hotfix 12, second revision' }));
    const r2 = join(dir, 'acme-r2.bundle');
    expect((await run(['patch', 'build', work, '--out', r2])).status).toBe(0);
    expect((await run(['patch', 'sign', r2, '--key', join(keys, 'alice.key')])).status).toBe(0);
    let r = await run(at('patch', 'publish', r2, '--key', join(keys, 'alice.key')));
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/version \d+ with 1 patch[\s\S]*replaced: custom\/acme-hotfix-12 r1/);
    r = await run(at('patch', 'retract', 'custom/acme-hotfix-12', '--key', join(keys, 'alice.key')));
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/retracted custom\/acme-hotfix-12 r2; the custom listing is now version \d+/);
    const show = await run(at('patch', 'show', 'custom/acme-hotfix-12'));
    expect(show.status).toBe(4);
    r = await run(at('patch', 'list', '--custom', '--json'));
    expect(JSON.parse(r.stdout).filter((b: { id: string }) => b.id === 'custom/acme-hotfix-12').map((b: { revision: number; status: string }) => `${b.revision}:${b.status}`)).toEqual(['1:retracted', '2:retracted']);
  });
});
