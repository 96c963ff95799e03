import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Updater, BaseFetcher } from 'tuf-js';
import { DownloadHTTPError } from 'tuf-js/dist/error.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalJson, sha256Hex, type PatchManifest } from '@patchwarden/core';
import { testDatabases } from '../../testing/databases.js';
import { makeHarness, type Harness } from '../../testing/harness.js';
import { packagePatch } from '../../testing/fixtures.js';
import { MetadataKind } from '@tufjs/models';
import { binBitsFor, patchOfTargetPath, signBinFast, signMetadata, targetPathOf } from './repo.js';
import { generateKey } from '../keys.js';

const bookworm = [{ family: 'linux', distribution: 'debian', release: 'bookworm', arch: ['amd64'] }];
const patch = (id: string, fixed: string): PatchManifest => packagePatch(id, 'zlib1g', fixed, { title: `${id} ${fixed}`, fixes: [] });

/** tuf-js fetching through the server's own routes (in process), with a token. */
class InjectFetcher extends BaseFetcher {
  urls: string[] = [];
  constructor(private h: Harness) {
    super();
  }
  async fetch(url: string): Promise<ReadableStream<Uint8Array<ArrayBuffer>>> {
    this.urls.push(url);
    const path = new URL(url).pathname;
    const res = await this.h.app.inject({ method: 'GET', url: path, headers: { authorization: `Bearer ${this.h.adminToken}` } });
    // tuf-js tells "not found" (the end of the root chain) from other failures by this class
    if (res.statusCode !== 200) throw new DownloadHTTPError(`HTTP ${res.statusCode}`, res.statusCode);
    const body = res.rawPayload;
    return new ReadableStream({
      start(c) {
        c.enqueue(new Uint8Array(body));
        c.close();
      },
    });
  }
}

for (const tdb of testDatabases) {
  describe.skipIf(!tdb.available)(`signed catalog on ${tdb.name}`, () => {
    let h: Harness;
    let dir: string;
    beforeAll(async () => {
      h = await makeHarness(await tdb.open());
      dir = mkdtempSync(join(tmpdir(), 'pw-tuf-'));
    });
    afterAll(async () => {
      await h?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    async function updater(name: string) {
      const meta = join(dir, name, 'meta');
      const targets = join(dir, name, 'targets');
      for (const d of [meta, targets]) rmSync(d, { recursive: true, force: true });
      const { mkdirSync } = await import('node:fs');
      mkdirSync(meta, { recursive: true });
      mkdirSync(targets, { recursive: true });
      // the agent pins the root it is given at enrollment
      writeFileSync(join(meta, 'root.json'), await h.app.catalogContext.tuf.currentRoot());
      const fetcher = new InjectFetcher(h);
      const u = new Updater({
        metadataDir: meta,
        metadataBaseUrl: 'http://server/api/v1/tuf/metadata',
        targetDir: targets,
        targetBaseUrl: 'http://server/api/v1/tuf/targets',
        fetcher,
      });
      return { u, fetcher, targets };
    }

    it('lists uploaded vendor patches in hashed bins that tuf-js verifies', async () => {
      const patches = Array.from({ length: 40 }, (_, i) => patch(`debian/zlib-${i}`, `1:1.2.13.dfsg-1+pw${i}`));
      const res = await h.admin('POST', '/api/v1/catalog/patches', { patches, coverage: bookworm, source: { kind: 'apt' } });
      expect(res.statusCode, res.body).toBe(200);
      // 40 patches: 2^binBitsFor(40) bins, all signed on the vendor's first import
      expect(res.json().signedBins).toBe(2 ** binBitsFor(40));

      const { u, targets } = await updater('a');
      await u.refresh();
      const path = targetPathOf('debian/zlib-7', 'json');
      const info = await u.getTargetInfo(path);
      expect(info, 'target resolved through targets → vendors → debian → bin').toBeDefined();
      const file = await u.downloadTarget(info!, join(targets, 'x.json'));
      const { readFileSync } = await import('node:fs');
      const bytes = readFileSync(file);
      expect(bytes.equals(canonicalJson(patches[7]))).toBe(true);
      expect(info!.hashes.sha256).toBe(sha256Hex(bytes));
      // a custom/* path is never answered by the vendor roles: before an author has signed a
      // custom listing, the lookup stops at the (unpublished) custom role
      await expect(u.getTargetInfo('custom/zlib-7.json')).rejects.toThrow();
      expect(await u.getTargetInfo('debian/not-there.json')).toBeUndefined();
    });

    it('a change re-signs only the bin that holds it, and clients see the new revision', async () => {
      const before = await h.database.db.selectFrom('tuf_roles').select(['name', 'version']).execute();
      const changed = { ...patch('debian/zlib-7', '1:1.2.13.dfsg-1+pw7'), title: 'zlib 7, retitled' };
      const res = await h.admin('POST', '/api/v1/catalog/patches', { patches: [changed], coverage: [], source: { kind: 'apt' } });
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json().updated).toBe(1);
      expect(res.json().signedBins).toBe(1);
      const after = await h.database.db.selectFrom('tuf_roles').select(['name', 'version']).execute();
      const moved = after.filter((a) => before.find((b) => b.name === a.name)?.version !== a.version).map((r) => r.name).sort();
      expect(moved).toHaveLength(3);
      expect(moved).toContain('snapshot');
      expect(moved).toContain('timestamp');
      expect(moved.find((n) => n.startsWith('debian-bin-'))).toBeDefined();

      const { u } = await updater('b');
      await u.refresh();
      // the feed's patch moved to revision 2 (the server numbers feed patches), under the same
      // name, in the same bin
      const info = await u.getTargetInfo(targetPathOf('debian/zlib-7', 'json'));
      expect(info?.custom).toEqual({ patch: 'debian/zlib-7', revision: 2 });
    });

    it('signs bins by hand into exactly the bytes the models would produce', () => {
      const key = generateKey('k', 'online');
      const signed = {
        _type: 'targets',
        spec_version: '1.0.31',
        version: 3,
        expires: '2027-01-01T00:00:00Z',
        targets: { 'debian/b.r1.json': { length: 3, hashes: { sha256: 'a'.repeat(64) }, custom: { patch: 'debian/b', revision: 1 } }, 'debian/a.r2.json': { length: 1, hashes: { sha256: 'b'.repeat(64) } } },
      };
      expect(signBinFast(signed, key).equals(signMetadata(MetadataKind.Targets, signed, [key]))).toBe(true);
    });

    it('names targets reversibly with two URL-safe segments, and refuses namespaces that are role names', async () => {
      for (const id of ['debian/openssl-3.0.15-1~deb12u1', 'osv/debian/bookworm/openssl-3.0.15', 'custom/a.s.b']) {
        const path = targetPathOf(id, 'json');
        expect(path.split('/')).toHaveLength(2);
        expect(encodeURIComponent(path.split('/')[1]!)).toBe(path.split('/')[1]);
        expect(patchOfTargetPath(path)).toEqual({ id, kind: 'json' });
      }
      for (const ns of ['vendors', 'snapshot', 'debian-bin-0a']) {
        const res = await h.admin('POST', '/api/v1/catalog/patches', { patches: [patch(`${ns}/x`, '1.0')], coverage: [], source: { kind: 'apt' } });
        expect(res.statusCode, ns).toBe(400);
        expect(res.json().error.message).toMatch(/reserved|hash bin/);
      }
    });

    it('refuses custom patches through the vendor route', async () => {
      const res = await h.admin('POST', '/api/v1/catalog/patches', { patches: [patch('custom/evil', '1.0')], coverage: [], source: { kind: 'apt' } });
      expect(res.statusCode).toBe(403);
      expect(res.json().error.message).toMatch(/signed by their authors/);
      const listed = await h.database.db.selectFrom('patches').select('id').where('id', '=', 'custom/evil').executeTakeFirst();
      expect(listed).toBeUndefined();
    });

    it('refuses vendor patches whose actions need an author (scripts, files, bundled packages)', async () => {
      const script = {
        ...patch('debian/evil-script', '1.0'),
        payload: [{ path: 'x.sh', size: 1, sha256: sha256Hex('x') }],
        install: [{ type: 'script', interpreter: 'sh', source: 'x.sh', timeoutSeconds: 10, expectExit: [0] }],
      };
      const res = await h.admin('POST', '/api/v1/catalog/patches', { patches: [script], coverage: [], source: { kind: 'apt' } });
      expect(res.statusCode, res.body).toBe(403);
      expect(res.json().error.message).toMatch(/need an author's signature/);
      const ok = { ...patch('debian/plain-apt', '1.0'), install: [{ type: 'package', manager: 'apt', op: 'install', name: 'zlib1g', version: '1:1.2.13.dfsg-1' }] };
      expect((await h.admin('POST', '/api/v1/catalog/patches', { patches: [ok], coverage: [], source: { kind: 'apt' } })).statusCode).toBe(200);
    });

    it('re-signs online roles at half their life; offline roles are only reported', async () => {
      const tuf = h.app.catalogContext.tuf;
      const ts0 = (await tuf.role('timestamp')).version;
      expect((await tuf.refreshExpiring()).resigned).toEqual([]);
      h.clock.now += 13 * 3600_000; // past half of the timestamp's day
      const r = await tuf.refreshExpiring();
      expect(r.resigned).toEqual(['snapshot', 'timestamp']);
      expect((await tuf.role('timestamp')).version).toBe(ts0 + 1);
      h.clock.now += 340 * 24 * 3600_000; // root and targets now expire within 30 days
      const r2 = await tuf.refreshExpiring();
      expect(r2.offlineExpiring.map((o) => o.role).sort()).toEqual(['root', 'targets']);
      expect(r2.resigned).toContain('vendors');
      const { u } = await updater('c');
      await expect(u.refresh()).resolves.toBeUndefined();
      h.clock.now -= (340 * 24 + 13) * 3600_000;
    });

    it('serves nothing outside the repository, and only to a token holder', async () => {
      for (const url of ['/api/v1/tuf/metadata/../../etc/passwd', '/api/v1/tuf/metadata/1.nosuchrole.json', `/api/v1/tuf/targets/debian/${'0'.repeat(64)}.x.json`]) {
        const res = await h.admin('GET', url);
        expect(res.statusCode, url).toBe(404);
      }
      const anon = await h.app.inject({ method: 'GET', url: '/api/v1/tuf/metadata/timestamp.json' });
      expect(anon.statusCode).toBe(401);
    });

    it('rotates root (v1 → v2 → v3) so a client pinned at v1 walks to v3, and replaces a compromised online key', async () => {
      const { u: pinned } = await updater('d');
      const tuf = h.app.catalogContext.tuf;
      const k2 = generateKey('root-2', 'root');
      const k3 = generateKey('root-3', 'root');
      const v2 = await tuf.rotateRoot({ root: [k2], threshold: 1 });
      const newOnline = generateKey('online-2', 'online');
      const v3 = await tuf.rotateRoot({ root: [k3], threshold: 1, oldRoot: [k2], online: newOnline });
      expect([v2, v3]).toEqual([2, 3]);
      await pinned.refresh();
      expect(await pinned.getTargetInfo(targetPathOf('debian/zlib-3', 'json'))).toBeDefined();
      const root = JSON.parse((await tuf.currentRoot()).toString());
      expect(root.signed.version).toBe(3);
      expect(root.signed.roles.timestamp.keyids).toEqual([newOnline.keyid]);
    });
  });
}
