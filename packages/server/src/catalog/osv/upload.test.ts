/**
 * OSV and tracker patches on a real server (both databases): uploaded through the catalog API,
 * decided for an enrolled device from its check-in, and re-decided when a binary of the source
 * changes in a delta check-in.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalDigest, diffInventories, type PackageFact } from '@patchwarden/core';
import { importDebianTracker } from '../debian-tracker/index.js';
import { testDatabases } from '../../testing/databases.js';
import { hashed, hostPackages } from '../../testing/fixtures.js';
import { checkinBody, makeHarness, systemFacts, type Harness } from '../../testing/harness.js';
import { importOsv, type FeedImport } from './index.js';

const DEBIAN = fileURLToPath(new URL('./testdata/debian', import.meta.url));
const TRACKER = fileURLToPath(new URL('../debian-tracker/testdata/tracker.json', import.meta.url));
const SOURCES = new Set(['openssl', 'util-linux', 'libssh2', 'tar', 'curl', 'glibc']);

function pkg(name: string, version: string, source?: string, sourceVersion?: string): PackageFact {
  return { manager: 'dpkg', name, version, arch: 'amd64', state: 'installed', ...(source ? { source } : {}), ...(sourceVersion ? { sourceVersion } : {}) };
}

/** This machine's packages, with the binaries of the sources the records name set to known versions. */
function inventory(openssl: string): PackageFact[] {
  const host = hostPackages().filter((p) => !SOURCES.has(p.source ?? p.name));
  return [
    ...host,
    pkg('libssl3', openssl, 'openssl'),
    pkg('openssl', '3.0.13-1~deb12u1'),
    pkg('bsdutils', '1:2.38.1-5', 'util-linux', '2.38.1-5'),
    pkg('libuuid1', '2.38.1-5', 'util-linux'),
    pkg('libssh2-1', '1.10.0-3+b1', 'libssh2', '1.10.0-3'),
    pkg('libcurl4', '7.88.1-10+deb12u5', 'curl'),
    pkg('libc6', '2.36-9+deb12u3', 'glibc'),
  ];
}

for (const tdb of testDatabases) {
  describe.skipIf(!tdb.available)(`OSV and tracker patches on a server (${tdb.name})`, () => {
    let h: Harness;
    let osv: FeedImport;
    let tracker: FeedImport;

    async function upload(r: FeedImport) {
      const res = await h.admin('POST', '/api/v1/catalog/patches', { patches: r.patches, coverage: r.coverage, source: { kind: r.kind, inputs: r.inputs.map((i) => i.location) } });
      expect(res.statusCode, res.body).toBe(200);
      return res.json() as { created: number; updated: number; unchanged: number };
    }
    async function states(device: string): Promise<Record<string, string>> {
      const r = await h.admin('GET', `/api/v1/devices/${device}/patches`);
      expect(r.statusCode, r.body).toBe(200);
      return { assessed: r.json().assessed, ...Object.fromEntries(r.json().items.map((i: { patch: string; state: string }) => [i.patch, i.state])) };
    }

    beforeAll(async () => {
      h = await makeHarness(await tdb.open());
      osv = await importOsv([DEBIAN]);
      tracker = await importDebianTracker(TRACKER);
    });
    afterAll(async () => h?.close());

    it('uploads both feeds side by side; a second upload changes nothing', async () => {
      expect(await upload(osv)).toMatchObject({ created: osv.patches.length, updated: 0, unchanged: 0 });
      expect(await upload(tracker)).toMatchObject({ created: tracker.patches.length, updated: 0, unchanged: 0 });
      expect(await upload(osv)).toMatchObject({ created: 0, updated: 0, unchanged: osv.patches.length });
      const listed = (await h.admin('GET', '/api/v1/catalog/patches?search=osv/debian/bookworm/openssl&limit=10')).json();
      expect(listed.items.map((i: { id: string; source: string }) => `${i.id} ${i.source}`)).toEqual([
        'osv/debian/bookworm/openssl-3.0.11-1~deb12u2 osv',
        'osv/debian/bookworm/openssl-3.0.13-1~deb12u1 osv',
        'osv/debian/bookworm/openssl-3.0.14-1~deb12u2 osv',
      ]);
    });

    it('decides a device from its check-in: by the source version of each binary', async () => {
      const dev = await h.enroll({ hostname: 'osv-1' });
      const inv = hashed(inventory('3.0.11-1~deb12u1'));
      const r = await h.checkin(dev.token, checkinBody(systemFacts('osv-1'), { mode: 'full', ...inv }));
      expect(r.statusCode, r.body).toBe(200);
      expect(await states('osv-1')).toEqual({
        assessed: 'assessed',
        'osv/debian/bookworm/curl-7.88.1-10+deb12u5': 'installed',
        'osv/debian/bookworm/glibc-2.36-9+deb12u3': 'installed',
        'osv/debian/bookworm/openssl-3.0.11-1~deb12u2': 'superseded',
        'osv/debian/bookworm/openssl-3.0.13-1~deb12u1': 'superseded',
        'osv/debian/bookworm/openssl-3.0.14-1~deb12u2': 'needed',
        'osv/debian/bookworm/util-linux-2.38.1-5+deb12u1': 'needed',
        'debian-tracker/debian/bookworm/curl-7.88.1-10+deb12u5': 'installed',
        'debian-tracker/debian/bookworm/openssl-3.0.11-1~deb12u2': 'superseded',
        'debian-tracker/debian/bookworm/openssl-3.0.14-1~deb12u2': 'needed',
        'debian-tracker/debian/bookworm/util-linux-2.38.1-5+deb12u1': 'needed',
      });

      // libssl3 moves to the fix: only a binary of openssl changed, and the openssl patches follow
      const next = hashed(inventory('3.0.14-1~deb12u2'));
      const sys = systemFacts('osv-1');
      const d = await h.checkin(dev.token, checkinBody(undefined, { mode: 'delta', base: inv.hash, hash: next.hash, ...diffInventories(inv.packages, next.packages) }, canonicalDigest(sys)));
      expect(d.statusCode, d.body).toBe(200);
      const after = await states('osv-1');
      expect(after['osv/debian/bookworm/openssl-3.0.14-1~deb12u2']).toBe('needed'); // the openssl binary is still at 3.0.13
      expect(after['osv/debian/bookworm/openssl-3.0.13-1~deb12u1']).toBe('installed');
      expect(after['osv/debian/bookworm/openssl-3.0.11-1~deb12u2']).toBe('installed');
      expect(after['debian-tracker/debian/bookworm/openssl-3.0.11-1~deb12u2']).toBe('installed');
      expect(after['osv/debian/bookworm/util-linux-2.38.1-5+deb12u1']).toBe('needed');
    });

    it('explains a decision with the source versions it compared', async () => {
      const r = await h.admin('GET', `/api/v1/devices/osv-1/explain?patch=${encodeURIComponent('osv/debian/bookworm/util-linux-2.38.1-5+deb12u1')}`);
      expect(r.statusCode, r.body).toBe(200);
      expect(r.json()).toMatchObject({ state: 'needed', applicability: { result: 'true' }, installed: { result: 'false' } });
      expect(JSON.stringify(r.json().installed)).toContain('bsdutils 1:2.38.1-5 (amd64, source util-linux 2.38.1-5) < 2.38.1-5+deb12u1');
    });
  });
}
