/**
 * A central server listening on loopback and local servers syncing from it over HTTP with a
 * site token, on each database: byte-for-byte mirroring, incremental syncs, resuming, the
 * read-only catalog, and the hostile cases (tampered bytes, a wrong pin, an expired timestamp,
 * a revoked site), each refused with nothing switched.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Kysely } from 'kysely';
import { sha256Hex } from '@patchwarden/core';
import type { DB } from '../../db/schema.js';
import { testDatabases } from '../../testing/databases.js';
import { hashed, hostPackages } from '../../testing/fixtures.js';
import { checkinBody, makeHarness, systemFacts, type Harness } from '../../testing/harness.js';
import { HttpRemote } from './remote-http.js';
import { openIsolated, startLocal, zlibPatch, type Local } from './testing.js';
import type { MirrorConfig, UpstreamSource } from './service.js';
const bookworm = [{ family: 'linux', distribution: 'debian', release: 'bookworm', arch: ['amd64'] }];

/** Wraps the real remote: counts and may fail or alter what comes back. */
class Tap implements UpstreamSource {
  fetchedTargets = 0;
  constructor(
    readonly inner: HttpRemote,
    private readonly alter: (path: string, bytes: Uint8Array, tap: Tap) => Uint8Array = (_p, b) => b,
  ) {}
  get describe() {
    return this.inner.describe;
  }
  get counters() {
    return this.inner.counters;
  }
  async get(path: string, max: number) {
    const bytes = await this.inner.get(path, max);
    if (bytes && path.startsWith('targets/')) this.fetchedTargets++;
    return bytes && this.alter(path, bytes, this);
  }
  rootBySha256 = () => this.inner.rootBySha256();
  payload = (sha: string, max: number) => this.inner.payload(sha, max);
  coverage = () => this.inner.coverage();
  self = () => this.inner.self();
  json = <T>(m: 'GET' | 'POST', p: string, b?: unknown) => this.inner.json<T>(m, p, b);
  close = () => this.inner.close();
}

async function servedRoles(db: Kysely<DB>) {
  return Object.fromEntries((await db.selectFrom('tuf_roles').select(['name', 'version']).execute()).map((r) => [r.name, r.version]));
}

for (const tdb of testDatabases) {
  describe.skipIf(!tdb.available)(`local patch server on ${tdb.name}`, () => {
    let central: Harness;
    let url: string;
    let token: string;
    let work: string;
    let local: Local;
    let tap: Tap | null = null;
    let alter: ((path: string, bytes: Uint8Array, tap: Tap) => Uint8Array) | undefined;
    const now = () => central.clock.now;
    const rootPin = async () => {
      const bytes = await central.app.catalogContext.tuf.currentRoot();
      return { sha256: sha256Hex(bytes), bytes: new Uint8Array(bytes), from: 'test' };
    };
    const config = async (over: Partial<MirrorConfig> = {}): Promise<MirrorConfig> => ({
      upstream: url,
      token,
      pin: await rootPin(),
      workDir: join(work, 'spool'),
      connect: (c) => (tap = new Tap(new HttpRemote({ baseUrl: c.upstream!, token: c.token! }), alter)),
      ...over,
    });
    const sync = (l: Local = local) => l.app.mirror!.sync();

    beforeAll(async () => {
      central = await makeHarness(await openIsolated(tdb));
      await central.app.listen({ port: 0, host: '127.0.0.1' });
      url = `http://127.0.0.1:${(central.app.server.address() as { port: number }).port}`;
      work = mkdtempSync(join(tmpdir(), 'pw-mirror-'));
      const patches = Array.from({ length: 60 }, (_, i) => zlibPatch(`debian/zlib-${i}`, `1:1.2.13.dfsg-1+pw${i}`));
      // one patch a bookworm device with this machine's zlib1g needs
      patches.push(zlibPatch('debian/zlib-needed', '1:99', 1));
      const r = await central.admin('POST', '/api/v1/catalog/patches', { patches, coverage: bookworm, source: { kind: 'bench' } });
      expect(r.statusCode, r.body).toBe(200);
      const s = await central.admin('POST', '/api/v1/sites', { name: 'branch office', mode: 'replica' });
      expect(s.statusCode, s.body).toBe(201);
      token = s.json().token;
      expect(token).toMatch(/^pws_/);
      local = await startLocal(await openIsolated(tdb), await config(), now);
    });
    afterAll(async () => {
      await local?.close();
      await central?.close();
      if (work) rmSync(work, { recursive: true, force: true });
    });

    it('mirrors the catalog byte for byte on the first sync, and its agents are assessed', async () => {
      // before the first sync a local server serves no catalog and signs none of its own
      expect((await local.admin('GET', '/api/v1/tuf-root')).statusCode).toBe(404);
      const r = await sync();
      expect(r.changed).toBe(true);
      expect(r.patches.created).toBe(61);
      expect(r.targets).toMatchObject({ listed: 61, fetched: 61, alreadyHeld: 0 });
      expect(r.coverage).toBe(1);
      // every metadata file the central server serves now, byte for byte, at the same path
      const cdb = central.database.db;
      const roles = await cdb.selectFrom('tuf_roles').select(['name', 'version']).execute();
      expect(await servedRoles(local.db)).toEqual(Object.fromEntries(roles.map((x) => [x.name, x.version])));
      const centralTuf = central.app.catalogContext.tuf;
      const localTuf = local.app.catalogContext.tuf;
      for (const role of roles) {
        const path = role.name === 'timestamp' ? 'metadata/timestamp.json' : `metadata/${role.version}.${role.name}.json`;
        expect((await localTuf.file(path))?.equals((await centralTuf.file(path))!), path).toBe(true);
      }
      const res = await local.admin('GET', '/api/v1/tuf-root');
      expect(res.rawPayload.equals(await centralTuf.currentRoot())).toBe(true);
      const t = await cdb.selectFrom('tuf_targets').select(['path', 'sha256']).where('patch_id', '=', 'debian/zlib-7').executeTakeFirstOrThrow();
      const file = `targets/${t.path.split('/')[0]}/${t.sha256}.${t.path.split('/')[1]}`;
      expect((await localTuf.file(file))?.equals((await centralTuf.file(file))!)).toBe(true);
      const p = await local.db.selectFrom('patches').select(['revision', 'source_kind']).where('id', '=', 'debian/zlib-7').executeTakeFirstOrThrow();
      expect(p).toEqual({ revision: 1, source_kind: 'mirror' });

      // a device enrolled at the local server is assessed against the mirrored catalog
      const { token: dev } = await enrollAt(local);
      const inv = hashed(hostPackages());
      const ci = await local.app.inject({
        method: 'POST',
        url: '/api/v1/agent/checkin',
        headers: { authorization: `Bearer ${dev}`, 'content-type': 'application/json' },
        payload: JSON.stringify(checkinBody(systemFacts('branch-1'), { mode: 'full', ...inv })),
      });
      expect(ci.statusCode, ci.body).toBe(200);
      const states = (await local.admin('GET', '/api/v1/devices/branch-1/patches')).json();
      expect(states.assessed).toBe('assessed');
      if (inv.packages.some((x) => x.name === 'zlib1g')) expect(states.items).toContainEqual(expect.objectContaining({ patch: 'debian/zlib-needed', state: 'needed' }));

      // the central server sees what the site serves
      const sites = (await central.admin('GET', '/api/v1/sites')).json().items;
      expect(sites[0]).toMatchObject({ name: 'branch office', mode: 'replica', behind: false, report: { snapshot: r.snapshot, targets: 61, error: null } });
      const status = (await local.admin('GET', '/api/v1/mirror/status')).json();
      expect(status).toMatchObject({ site: { name: 'branch office', mode: 'replica' }, serving: { snapshot: r.snapshot, targets: 61 }, approvals: { items: 0 } });
      expect(status.approvals.note).toMatch(/replica/);
    });

    it('transfers only what changed, and nothing but the timestamp when nothing did', async () => {
      const before = await servedRoles(local.db);
      const changed = [zlibPatch('debian/zlib-3', '1:1.2.13.dfsg-1+pw3', 2), zlibPatch('debian/zlib-40', '1:1.2.13.dfsg-1+pw40', 2)];
      expect((await central.admin('POST', '/api/v1/catalog/patches', { patches: changed, coverage: [], source: { kind: 'bench' } })).statusCode).toBe(200);
      expect((await central.admin('GET', '/api/v1/sites')).json().items[0].behind).toBe(true);
      const r = await sync();
      expect(r.targets).toMatchObject({ fetched: 2, listed: 61 });
      expect(r.patches).toMatchObject({ updated: 2, created: 0, removed: 0 });
      const after = await servedRoles(local.db);
      const moved = Object.keys(after).filter((k) => after[k] !== before[k]).sort();
      // timestamp, snapshot, and the bins the old and new revisions live in
      expect(moved.filter((m) => !['snapshot', 'timestamp'].includes(m)).every((m) => m.startsWith('debian-bin-'))).toBe(true);
      expect(r.metadata.files).toBe(2 + moved.length - 2);
      expect(tap!.fetchedTargets).toBe(2);
      expect((await local.db.selectFrom('patches').select('revision').where('id', '=', 'debian/zlib-3').executeTakeFirstOrThrow()).revision).toBe(2);

      const again = await sync();
      expect(again.changed).toBe(false);
      expect(again.metadata.files).toBe(1);
      expect(again.targets.fetched).toBe(0);
      expect((await central.admin('GET', '/api/v1/sites')).json().items[0].behind).toBe(false);
    });

    it("copies the vendor package files the new patches install from the central server's content store, checked against the signed manifest", async () => {
      const deb = Buffer.from('!<arch>\nthe package file a patch installs\n');
      const lying = Buffer.from('what the central store holds under another hash');
      const withFile = (id: string, sha: string, size: number) => ({
        ...zlibPatch(id, '1:1.2.13.dfsg-1+deb'),
        install: [{ type: 'package', manager: 'apt', op: 'upgrade', name: 'zlib1g', version: '1:1.2.13.dfsg-1+deb', fetch: { repository: 'http://deb.example.org/debian', path: `pool/${id.slice(7)}.deb`, size, sha256: sha } }],
      });
      const wrongSha = sha256Hex(Buffer.from('the manifest names this'));
      const patches = [withFile('debian/zlib-with-deb', sha256Hex(deb), deb.length), withFile('debian/zlib-lying', wrongSha, lying.length)];
      expect((await central.admin('POST', '/api/v1/catalog/patches', { patches, coverage: [], source: { kind: 'bench' } })).statusCode).toBe(200);
      await central.database.db.insertInto('content').values({ sha256: sha256Hex(deb), length: deb.length, bytes: deb, created_at: now() }).execute();
      // a central store that answers with other bytes under the named hash is not believed
      alter = (path, bytes) => bytes;
      const inner = tap!.inner;
      const realPayload = inner.payload.bind(inner);
      inner.payload = async (sha, max) => (sha === wrongSha ? new Uint8Array(lying) : realPayload(sha, max));
      try {
        const r = await sync();
        expect(r.payloads).toEqual({ referenced: 2, fetched: 1, bytes: deb.length, unavailable: 1 });
      } finally {
        alter = undefined;
      }
      const got = await local.admin('GET', `/api/v1/content/${sha256Hex(deb)}`);
      expect(got.statusCode).toBe(200);
      expect(got.rawPayload.equals(deb)).toBe(true);
      expect((await local.admin('GET', `/api/v1/content/${wrongSha}`)).statusCode).toBe(404);
    });

    it('continues incrementally after a restart, from the state in the database', async () => {
      const restarted = await startLocal({ db: local.db, dialect: tdb.name, location: '', close: async () => {} }, await config(), now);
      const r = await sync(restarted);
      expect(r.metadata.files).toBe(1);
      expect(r.targets.fetched).toBe(0);
      await restarted.app.close();
    });

    it('refuses to take patches, bundles or authors: the central server takes them', async () => {
      const r = await local.admin('POST', '/api/v1/catalog/patches', { patches: [zlibPatch('debian/local-only', '1')], coverage: [], source: { kind: 'apt' } });
      expect(r.statusCode).toBe(403);
      expect(r.json().error).toMatchObject({ code: 'E_FORBIDDEN', hint: expect.stringMatching(/central server/) });
      const b = await local.app.inject({ method: 'POST', url: '/api/v1/catalog/bundles', headers: { authorization: `Bearer ${local.adminToken}`, 'content-type': 'application/octet-stream' }, payload: Buffer.from('x') });
      expect(b.statusCode).toBe(403);
      expect(await local.db.selectFrom('patches').select('id').where('id', '=', 'debian/local-only').executeTakeFirst()).toBeUndefined();
      expect(await local.db.selectFrom('bundles').select('patch_id').executeTakeFirst()).toBeUndefined();
      // and it never signs: the online roles are not re-signed here even when due
      expect(await local.app.catalogContext.tuf.refreshExpiring()).toEqual({ resigned: [], offlineExpiring: [] });
    });

    it('keeps the targets an interrupted sync fetched, and the next one fetches only the rest', async () => {
      const more = Array.from({ length: 30 }, (_, i) => zlibPatch(`debian/more-${i}`, `1.${i}`));
      expect((await central.admin('POST', '/api/v1/catalog/patches', { patches: more, coverage: [], source: { kind: 'bench' } })).statusCode).toBe(200);
      const before = await servedRoles(local.db);
      alter = (path, bytes, t) => {
        if (path.startsWith('targets/') && t.fetchedTargets > 12) throw new Error('connection reset (test)');
        return bytes;
      };
      await expect(sync()).rejects.toThrow(/connection reset/);
      alter = undefined;
      // nothing switched: agents still see the previous catalog
      expect(await servedRoles(local.db)).toEqual(before);
      expect(await local.db.selectFrom('patches').select('id').where('id', 'like', 'debian/more-%').execute()).toEqual([]);
      const status = (await local.admin('GET', '/api/v1/mirror/status')).json();
      expect(status.lastError.message).toMatch(/connection reset/);
      const kept = await local.db.selectFrom('content').select('sha256').execute();
      const r = await sync();
      expect(r.targets.alreadyHeld).toBeGreaterThanOrEqual(1);
      expect(r.targets.fetched + r.targets.alreadyHeld).toBe(30);
      expect(tap!.fetchedTargets).toBe(r.targets.fetched);
      expect((await local.db.selectFrom('content').select('sha256').execute()).length).toBe(kept.length + r.targets.fetched);
      expect(r.patches.created).toBe(30);
    });

    it('refuses a tampered byte in a mirrored file, switching nothing', async () => {
      expect((await central.admin('POST', '/api/v1/catalog/patches', { patches: [zlibPatch('debian/zlib-5', '1:1.2.13.dfsg-1+pw5', 2)], coverage: [], source: { kind: 'bench' } })).statusCode).toBe(200);
      const before = await servedRoles(local.db);
      const flip = (pattern: RegExp) => (path: string, bytes: Uint8Array) => {
        if (!pattern.test(path)) return bytes;
        const copy = Buffer.from(bytes);
        const at = copy.indexOf('"title":"') >= 0 ? copy.indexOf('"title":"') + 9 : copy.indexOf('"expires":"') + 11;
        copy[at] = copy[at] === 0x31 ? 0x32 : 0x31;
        return new Uint8Array(copy);
      };
      alter = flip(/^metadata\/\d+\.debian-bin-/);
      await expect(sync()).rejects.toMatchObject({ code: 'E_SIGNATURE_INVALID' });
      expect(await servedRoles(local.db)).toEqual(before);
      alter = flip(/^targets\//);
      await expect(sync()).rejects.toMatchObject({ code: 'E_DIGEST_MISMATCH' });
      expect(await servedRoles(local.db)).toEqual(before);
      alter = undefined;
      const r = await sync();
      expect(r.patches.updated).toBe(1);
    });

    it('refuses an expired timestamp', async () => {
      const before = await servedRoles(local.db);
      const saved = central.clock.now;
      // a new timestamp, signed now; a day and a bit later it has expired (the central server's
      // re-signing job does not run in tests, so nothing replaces it)
      expect((await central.admin('POST', '/api/v1/catalog/patches', { patches: [zlibPatch('debian/late', '1.0')], coverage: [], source: { kind: 'bench' } })).statusCode).toBe(200);
      central.clock.now += 25 * 3600_000;
      try {
        await expect(sync()).rejects.toMatchObject({ code: 'E_METADATA_EXPIRED', message: expect.stringMatching(/^metadata\/timestamp\.json: expired/) });
        expect(await servedRoles(local.db)).toEqual(before);
      } finally {
        central.clock.now = saved;
      }
    });

    it('refuses a wrong pinned root', async () => {
      const other = await makeHarness(await openIsolated(tdb));
      const foreign = await other.app.catalogContext.tuf.currentRoot();
      await other.close();
      const wrong = await startLocal(await openIsolated(tdb), await config({ pin: { sha256: sha256Hex(foreign), bytes: new Uint8Array(foreign), from: 'foreign.json' } }), now);
      try {
        await expect(sync(wrong)).rejects.toMatchObject({ code: 'E_SIGNATURE_INVALID' });
        expect(await servedRoles(wrong.db)).toEqual({});
        expect(await wrong.db.selectFrom('mirror_state').selectAll().execute()).toEqual([]);
        // pinned by hash: the fetched root must have it
        const byHash = await startLocal(await openIsolated(tdb), await config({ pin: { sha256: 'ab'.repeat(32), from: 'sha256:abab…' } }), now);
        await expect(sync(byHash)).rejects.toMatchObject({ code: 'E_DIGEST_MISMATCH' });
        await byHash.close();
      } finally {
        await wrong.close();
      }
    });

    it('pinned by the root hash alone, fetches the root and checks it', async () => {
      const pin = await rootPin();
      const l = await startLocal(await openIsolated(tdb), await config({ pin: { sha256: pin.sha256, from: `sha256:${pin.sha256}` } }), now);
      try {
        const r = await sync(l);
        expect(r.patches.created).toBeGreaterThan(60);
      } finally {
        await l.close();
      }
    });

    it('stops syncing when the site credential is revoked', async () => {
      const before = await servedRoles(local.db);
      expect((await central.admin('POST', '/api/v1/sites/branch office/revoke')).statusCode).toBe(200);
      await expect(sync()).rejects.toMatchObject({ code: 'E_FORBIDDEN', message: expect.stringMatching(/revoked/) });
      expect(await servedRoles(local.db)).toEqual(before);
      // nor can it read the catalog files any more
      const f = await central.app.inject({ method: 'GET', url: '/api/v1/tuf/metadata/timestamp.json', headers: { authorization: `Bearer ${token}` } });
      expect(f.statusCode).toBe(403);
    });

    it('tells a local server apart from a central one', async () => {
      const r = await central.admin('POST', '/api/v1/mirror/sync');
      expect(r.statusCode).toBe(409);
      expect(r.json().error.hint).toMatch(/--upstream-root/);
      const a = await central.app.inject({ method: 'GET', url: '/api/v1/sites/self/approvals', headers: { authorization: `Bearer ${central.adminToken}` } });
      expect(a.statusCode).toBe(401);
    });
  });
}

async function enrollAt(l: Local): Promise<{ token: string }> {
  const s = await l.admin('POST', '/api/v1/enrollment-secrets', { name: 'branch', group: null });
  const r = await l.app.inject({ method: 'POST', url: '/api/v1/enroll', payload: { secret: s.json().secret, system: systemFacts('branch-1') } });
  if (r.statusCode !== 200) throw new Error(r.body);
  return { token: r.json().token };
}
