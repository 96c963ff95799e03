/**
 * TLS, the server's default, tried as a new user would: the server makes its own certificate
 * authority, the enrollment string carries its fingerprint (and the catalog root's), agents pin
 * both before the secret leaves the device, and the CLI trusts the data directory's CA. An agent
 * enrolled while the server spoke plain HTTP moves to TLS without enrolling again.
 */
import { request as httpRequest } from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate, createHash } from 'node:crypto';
import { Agent, fetch as undiciFetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, cli, startServerProcess, type ServerProcess } from './support/processes.js';

/** The banner's lines after "API docs" may still be on their way when the server is up. */
async function bannerLine(server: ServerProcess, re: RegExp): Promise<RegExpExecArray> {
  for (let i = 0; i < 100; i++) {
    const m = re.exec(server.output());
    if (m) return m;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no ${re} in:\n${server.output()}`);
}

describe('TLS by default, enrollment strings and pinned certificate authorities', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pw-tls-'));
  const data = join(dir, 'server');
  let server: ServerProcess;
  let ca: string;
  let tlsFetch: (path: string, init?: { method?: string; body?: string }) => Promise<{ status: number; json: () => Promise<unknown> }>;

  beforeAll(async () => {
    assertBuilt();
    server = await startServerProcess(data, [], { tls: true });
    ca = readFileSync(join(data, 'tls', 'ca.crt'), 'utf8');
    const dispatcher = new Agent({ connect: { ca } });
    tlsFetch = (path, init = {}) =>
      undiciFetch(server.url + path, {
        method: init.method ?? 'GET',
        dispatcher,
        headers: { authorization: `Bearer ${server.adminToken}`, ...(init.body ? { 'content-type': 'application/json' } : {}) },
        ...(init.body ? { body: init.body } : {}),
      });
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const secretsUses = async (id: string) => ((await (await tlsFetch('/api/v1/enrollment-secrets')).json()) as { items: { id: string; uses: number }[] }).items.find((s) => s.id === id)!.uses;

  it('serves HTTPS with a certificate from its own CA that covers this machine, and refuses plain HTTP', async () => {
    expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const caSha = createHash('sha256').update(new X509Certificate(ca).raw).digest('hex');
    expect((await bannerLine(server, /TLS:\s+certificate authority sha256 ([0-9a-f]{64})/))[1]).toBe(caSha);
    expect(new X509Certificate(ca).ca).toBe(true);
    const r = await tlsFetch('/api/health');
    expect(r.status).toBe(200);
    // the same port does not answer plain HTTP
    const port = Number(new URL(server.url).port);
    const plain = await new Promise<string>((resolve) => {
      const req = httpRequest({ host: '127.0.0.1', port, path: '/api/health' }, (res) => resolve(`status ${res.statusCode}`));
      req.on('error', (e) => resolve(`error ${(e as NodeJS.ErrnoException).code ?? e.message}`));
      req.end();
    });
    expect(plain).not.toBe('status 200');
    // without the CA, a client refuses the server (nothing trusts it by accident)
    await expect(fetch(`${server.url}/api/health`)).rejects.toThrow();
    // the CA is served for devices to check against their pin
    expect(await (await undiciFetch(`${server.url}/api/v1/tls/ca.crt`, { dispatcher: new Agent({ connect: { ca } }) })).text()).toBe(ca);
  });

  it('enrolls with an enrollment string: the CA and root are pinned before the secret is sent; a wrong fingerprint sends nothing', async () => {
    const made = await cli(['secrets', 'create', 'lab', '--max-uses', '2', '--server', server.url, '--data-dir', data, '--json']);
    expect(made.status, made.stderr).toBe(0);
    const secret = JSON.parse(made.stdout) as { id: string; enrollmentString: string; maxUses: number };
    expect(secret.maxUses).toBe(2);
    const [, , caPart, rootPart] = secret.enrollmentString.split('.');
    expect(caPart).toBe(createHash('sha256').update(new X509Certificate(ca).raw).digest('hex'));
    expect(rootPart).toMatch(/^[0-9a-f]{64}$/);
    // a forged CA fingerprint: refused before the secret is sent (the secret was not used)
    const forged = secret.enrollmentString.replace(caPart!, 'f'.repeat(64));
    const bad = await cli(['agent', 'enroll', '--server', server.url, '--enrollment-string', forged, '--data-dir', join(dir, 'agent-bad'), '--root', '/']);
    expect(bad.status).toBe(10);
    expect(bad.stderr).toMatch(/E_DIGEST_MISMATCH: the server's certificate authority has fingerprint [0-9a-f]{64}, not the f{64}/);
    expect(await secretsUses(secret.id)).toBe(0);
    // without any pin, the agent does not trust the server's own CA
    const unpinned = await cli(['agent', 'enroll', '--server', server.url, '--secret', secret.enrollmentString.split('.')[1]!, '--data-dir', join(dir, 'agent-unpinned'), '--root', '/']);
    expect(unpinned.status).toBe(7);
    expect(unpinned.stderr).toMatch(/certificate.*enrollment string/s);
    expect(await secretsUses(secret.id)).toBe(0);
    // the real string: enrolled, both pinned, and the agent checks in over TLS
    const ok = await cli(['agent', 'enroll', '--server', server.url, '--enrollment-string', secret.enrollmentString, '--data-dir', join(dir, 'agent-1'), '--root', '/']);
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/its certificate authority pinned[\s\S]*catalog root pinned: version 1, sha256 [0-9a-f]{64} \(as expected\)/);
    const run = await cli(['agent', 'run', '--once', '--data-dir', join(dir, 'agent-1'), '--root', '/']);
    expect(run.status, run.stderr).toBe(0);
    const state = JSON.parse(readFileSync(join(dir, 'agent-1', 'agent.json'), 'utf8')) as { caPem: string; server: string };
    expect(state.caPem).toBe(ca);
    // the second use is the last one
    expect((await cli(['agent', 'enroll', '--server', server.url, '--enrollment-string', secret.enrollmentString, '--data-dir', join(dir, 'agent-2'), '--root', '/'])).status).toBe(0);
    const third = await cli(['agent', 'enroll', '--server', server.url, '--enrollment-string', secret.enrollmentString, '--data-dir', join(dir, 'agent-3'), '--root', '/']);
    expect(third.status).toBe(3);
    expect(third.stderr).toMatch(/has enrolled its 2 device\(s\)/);
    expect(await secretsUses(secret.id)).toBe(2);
    // a malformed string is refused with a code before any connection
    const mangled = await cli(['agent', 'enroll', '--server', server.url, '--enrollment-string', 'pw1.nope', '--data-dir', join(dir, 'agent-4')]);
    expect(mangled.status).toBe(2);
    expect(mangled.stderr).toMatch(/E_VALIDATION: not an enrollment string/);
  }, 120_000);

  it('moves an agent enrolled over plain HTTP to TLS with `agent trust`: same device, no new enrollment', async () => {
    const data2 = join(dir, 'server-2');
    const plain = await startServerProcess(data2);
    expect(plain.url).toMatch(/^http:\/\//);
    await bannerLine(plain, /TLS:\s+off \(--insecure-http\)/);
    const s = JSON.parse((await cli(['secrets', 'create', 'old', '--server', plain.url, '--data-dir', data2, '--json'])).stdout) as { secret: string; enrollmentString: string };
    expect(s.enrollmentString.split('.')[2]).toBe('-');
    const agentDir = join(dir, 'agent-old');
    expect((await cli(['agent', 'enroll', '--server', plain.url, '--secret', s.secret, '--data-dir', agentDir, '--root', '/'])).status).toBe(0);
    const deviceId = (JSON.parse(readFileSync(join(agentDir, 'agent.json'), 'utf8')) as { deviceId: string }).deviceId;
    await plain.stop();
    const secure = await startServerProcess(data2, [], { tls: true });
    try {
      const caSha = (await bannerLine(secure, /certificate authority sha256 ([0-9a-f]{64})/))[1]!;
      // the old address no longer answers; a wrong fingerprint is refused; the right one moves the agent
      expect((await cli(['agent', 'trust', '--server', secure.url, '--ca-sha256', '0'.repeat(64), '--data-dir', agentDir])).status).toBe(10);
      const moved = await cli(['agent', 'trust', '--server', secure.url, '--ca-sha256', caSha, '--data-dir', agentDir]);
      expect(moved.status, moved.stderr).toBe(0);
      expect(moved.stdout).toContain(`device ${deviceId} now reaches ${secure.url}`);
      const run = await cli(['agent', 'run', '--once', '--data-dir', agentDir, '--root', '/']);
      expect(run.status, run.stderr).toBe(0);
      // the CLI beside the server trusts the data directory's CA by itself
      const list = await cli(['devices', 'list', '--server', secure.url, '--data-dir', data2, '--json']);
      expect(list.status, list.stderr).toBe(0);
      const items = (JSON.parse(list.stdout) as { items: { id: string; lastSeen: string | null }[] }).items;
      expect(items.map((d) => d.id)).toEqual([deviceId]);
    } finally {
      await secure.stop();
    }
  }, 120_000);

  it('lets a local server mirror this TLS central server by its CA fingerprint (--upstream-ca), and refuses a wrong one before the site token leaves', async () => {
    const site = (await (await tlsFetch('/api/v1/sites', { method: 'POST', body: JSON.stringify({ name: 'branch-tls', mode: 'autonomous' }) })).json()) as { token: string };
    const root = await undiciFetch(`${server.url}/api/v1/tuf-root`, { dispatcher: new Agent({ connect: { ca } }), headers: { authorization: `Bearer ${server.adminToken}` } });
    const rootSha = createHash('sha256').update(Buffer.from(await root.arrayBuffer())).digest('hex');
    const caSha = createHash('sha256').update(new X509Certificate(ca).raw).digest('hex');
    const upstream = ['--upstream', server.url, '--upstream-token', site.token, '--upstream-root', `sha256:${rootSha}`, '--upstream-sync-minutes', '0'];
    const sync = (local: ServerProcess) => cli(['catalog', 'sync', '--json', '--server', local.url, '--token', local.adminToken]);

    const unpinned = await startServerProcess(join(dir, 'local-unpinned'), upstream);
    const wrong = await startServerProcess(join(dir, 'local-wrong'), [...upstream, '--upstream-ca', `sha256:${'0'.repeat(64)}`]);
    const pinned = await startServerProcess(join(dir, 'local-pinned'), [...upstream, '--upstream-ca', `sha256:${caSha}`]);
    const byFile = await startServerProcess(join(dir, 'local-file'), [...upstream, '--upstream-ca', join(data, 'tls', 'ca.crt')]);
    try {
      const u = await sync(unpinned);
      expect(u.status).not.toBe(0);
      expect(u.stderr).toMatch(/--upstream-ca/);
      const w = await sync(wrong);
      expect(w.status).not.toBe(0);
      expect(w.stderr).toMatch(/E_DIGEST_MISMATCH/);
      for (const local of [pinned, byFile]) {
        const ok = await sync(local);
        expect(ok.status, ok.stderr).toBe(0);
        expect((JSON.parse(ok.stdout) as { changed: boolean }).changed).toBe(true);
      }
      // the central server saw the pinned sites only
      const sites = (await (await tlsFetch('/api/v1/sites')).json()) as { items: { name: string; lastSeenAt: string | null }[] };
      expect(sites.items.find((x) => x.name === 'branch-tls')?.lastSeenAt).not.toBeNull();
      // a flag that makes no sense is refused at start
      const bad = await cli(['server', '--data-dir', join(dir, 'local-bad'), '--insecure-http', '--port', '0', ...upstream, '--upstream-ca', 'sha256:xyz']);
      expect(bad.status).not.toBe(0);
      expect(bad.stderr).toMatch(/E_CONFIG_INVALID/);
    } finally {
      for (const s of [unpinned, wrong, pinned, byFile]) await s.stop();
    }
  }, 120_000);
});
