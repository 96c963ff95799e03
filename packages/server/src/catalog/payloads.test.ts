import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex, type PatchManifest } from '@patchwarden/core';
import { testDatabases } from '../testing/databases.js';
import { checkinBody, makeHarness, systemFacts, type Harness } from '../testing/harness.js';
import { hashed, packagePatch } from '../testing/fixtures.js';

/** A real .deb, built by dpkg-deb as a vendor would. */
function buildDeb(dir: string, name: string, version: string): Buffer {
  const root = join(dir, `${name}-${version}`);
  mkdirSync(join(root, 'DEBIAN'), { recursive: true });
  mkdirSync(join(root, 'usr/share/doc', name), { recursive: true });
  writeFileSync(join(root, 'DEBIAN/control'), `Package: ${name}\nVersion: ${version}\nArchitecture: all\nMaintainer: Patchwarden tests <tests@example.org>\nDescription: a test package\n`);
  writeFileSync(join(root, 'usr/share/doc', name, 'README'), `${name} ${version}\n`);
  const out = join(dir, `${name}_${version}_all.deb`);
  execFileSync('dpkg-deb', ['--root-owner-group', '-b', root, out], { stdio: 'ignore' });
  return readFileSync(out);
}

for (const tdb of testDatabases) {
  describe.skipIf(!tdb.available)(`vendor payload cache on ${tdb.name}`, () => {
    let h: Harness;
    let dir: string;
    let repo: Server;
    let base: string;
    const served = new Map<string, Buffer>();
    let deb: Buffer;

    beforeAll(async () => {
      h = await makeHarness(await tdb.open());
      dir = mkdtempSync(join(tmpdir(), 'pw-payloads-'));
      deb = buildDeb(dir, 'pw-test-tool', '1.0-2');
      served.set('/debian/pool/main/p/pw-test-tool/pw-test-tool_1.0-2_all.deb', deb);
      repo = createServer((req, res) => {
        const b = served.get(req.url ?? '');
        if (!b) return res.writeHead(404).end();
        res.writeHead(200, { 'content-length': b.length }).end(b);
      });
      await new Promise<void>((r) => repo.listen(0, '127.0.0.1', r));
      const a = repo.address();
      base = `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}/debian`;
    });
    afterAll(async () => {
      await h?.close();
      await new Promise((r) => repo?.close(r));
      rmSync(dir, { recursive: true, force: true });
    });

    function patch(id: string, file: { path: string; size: number; sha256: string }): PatchManifest {
      return packagePatch(id, 'pw-test-tool', '1.0-2', {
        title: id,
        install: [{ type: 'package', manager: 'apt', op: 'upgrade', name: 'pw-test-tool', version: '1.0-2', fetch: { repository: base, ...file } }],
      });
    }

    it('fetches the package files of needed patches once, checked against the signed hash, and serves them after the mirror drops them', async () => {
      const good = patch('debian/pw-test-tool-1.0-2', { path: 'pool/main/p/pw-test-tool/pw-test-tool_1.0-2_all.deb', size: deb.length, sha256: sha256Hex(deb) });
      const up = await h.admin('POST', '/api/v1/catalog/patches', { patches: [good], coverage: good.platforms, source: { kind: 'apt' } });
      expect(up.statusCode, up.body).toBe(200);
      // a device that has the old version: the patch is needed, so its file is cached by default
      const { token } = await h.enroll({ hostname: 'needs-it' });
      const inv = hashed([{ manager: 'dpkg', name: 'pw-test-tool', version: '1.0-1', arch: 'all', state: 'installed' }] as never);
      const ci = await h.checkin(token, checkinBody(systemFacts('needs-it'), { mode: 'full', ...inv }));
      expect(ci.statusCode, ci.body).toBe(200);

      let res = await h.admin('POST', '/api/v1/catalog/payloads/cache', {});
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json()).toMatchObject({ referenced: 1, fetched: 1, bytes: deb.length, cached: 0, failed: [] });
      res = await h.admin('POST', '/api/v1/catalog/payloads/cache', {});
      expect(res.json()).toMatchObject({ referenced: 1, fetched: 0, cached: 1 });

      served.clear(); // the mirror drops the version
      const got = await h.admin('GET', `/api/v1/content/${sha256Hex(deb)}`);
      expect(got.statusCode).toBe(200);
      expect(got.rawPayload.equals(deb)).toBe(true);
    });

    it('refuses a file that differs from the signed hash or size, storing nothing', async () => {
      const other = buildDeb(dir, 'pw-test-tool', '1.0-3');
      served.set('/debian/pool/main/p/pw-test-tool/pw-test-tool_1.0-3_all.deb', other);
      const wrongHash = patch('debian/pw-test-tool-1.0-3', { path: 'pool/main/p/pw-test-tool/pw-test-tool_1.0-3_all.deb', size: other.length, sha256: sha256Hex(Buffer.from('something else')) });
      const lying = patch('debian/pw-test-tool-1.0-3b', { path: 'pool/main/p/pw-test-tool/pw-test-tool_1.0-3_all.deb', size: 100, sha256: 'c'.repeat(64) });
      const gone = patch('debian/pw-test-tool-1.0-4', { path: 'pool/main/p/pw-test-tool/missing.deb', size: 10, sha256: 'd'.repeat(64) });
      await h.admin('POST', '/api/v1/catalog/patches', { patches: [wrongHash, lying, gone], coverage: [], source: { kind: 'apt' } });
      const res = await h.admin('POST', '/api/v1/catalog/payloads/cache', { patches: [wrongHash.id, lying.id, gone.id] });
      expect(res.statusCode, res.body).toBe(200);
      const r = res.json();
      expect(r.fetched).toBe(0);
      expect(r.failed.map((f: { reason: string }) => f.reason)).toEqual([
        expect.stringMatching(/does not match the sha256 of its signed index/),
        expect.stringMatching(/larger than the 100 bytes/),
        expect.stringMatching(/HTTP 404/),
      ]);
      for (const sha of [sha256Hex(other), 'c'.repeat(64), 'd'.repeat(64)]) {
        expect((await h.admin('GET', `/api/v1/content/${sha}`)).statusCode).toBe(404);
      }
      expect((await h.admin('POST', '/api/v1/catalog/payloads/cache', { patches: ['debian/nope'] })).statusCode).toBe(404);
      expect((await h.admin('GET', '/api/v1/content/not-a-hash')).statusCode).toBe(400);
    });
  });
}
