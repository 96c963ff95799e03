import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalDigest, diffInventories, type PackageFact } from '@patchwarden/core';
import { testDatabases } from '../testing/databases.js';
import { hashed, hostPackages } from '../testing/fixtures.js';
import { checkinBody, makeHarness, systemFacts, type Harness } from '../testing/harness.js';

for (const tdb of testDatabases) {
  describe.skipIf(!tdb.available)(`check-in on ${tdb.name}`, () => {
    let h: Harness;
    const base = hashed(hostPackages());

    beforeAll(async () => {
      h = await makeHarness(await tdb.open());
    });
    afterAll(async () => h?.close());

    /** Everything a check-in could touch, to prove a refused one changed nothing. */
    async function snapshot() {
      const db = h.database.db;
      const devices = await db.selectFrom('devices').selectAll().orderBy('id').execute();
      const sets = await db.selectFrom('package_sets').select(['id', 'hash']).orderBy('id').execute();
      const pk = await db.selectFrom('packages').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
      const members = await db.selectFrom('package_set_members').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
      return { devices, sets, packages: Number(pk.n), members: Number(members.n) };
    }

    async function packagesOf(deviceId: string): Promise<PackageFact[]> {
      const r = await h.admin('GET', `/api/v1/devices/${deviceId}/packages?limit=1000`);
      const all = r.json().items as PackageFact[];
      if (r.json().total > 1000) {
        const r2 = await h.admin('GET', `/api/v1/devices/${deviceId}/packages?limit=1000&offset=1000`);
        all.push(...(r2.json().items as PackageFact[]));
      }
      return all;
    }

    it('uses real packages from this machine', () => {
      expect(base.packages.length).toBeGreaterThan(100);
    });

    it('refuses an unknown enrollment secret and stores nothing', async () => {
      const before = await snapshot();
      const r = await h.app.inject({ method: 'POST', url: '/api/v1/enroll', payload: { secret: 'pwe_' + 'x'.repeat(43), system: systemFacts() } });
      expect(r.statusCode).toBe(401);
      expect(r.json().error.code).toBe('E_ENROLLMENT_SECRET_INVALID');
      expect(await snapshot()).toEqual(before);
    });

    it('stores a full inventory, then a delta, then accepts the bare hash', async () => {
      const dev = await h.enroll({ hostname: 'delta-1' });
      const sys = systemFacts('delta-1');
      let r = await h.checkin(dev.token, checkinBody(sys, { mode: 'full', ...base }), { gzip: true });
      expect(r.statusCode, r.body).toBe(200);
      expect(r.json().inventoryHash).toBe(base.hash);
      expect(await packagesOf(dev.deviceId)).toEqual(base.packages);

      // one package upgraded, one removed, one added
      const next = base.packages.map((p) => ({ ...p }));
      next[0] = { ...next[0]!, version: `${next[0]!.version}+patched1` };
      next.splice(5, 1);
      next.push({ manager: 'dpkg', name: 'zz-new-package', version: '1.0-1', arch: 'amd64', state: 'installed' });
      const after = hashed(next);
      const delta = diffInventories(base.packages, after.packages);
      expect(delta.add).toHaveLength(2);
      expect(delta.remove).toHaveLength(1);
      r = await h.checkin(dev.token, checkinBody(undefined, { mode: 'delta', base: base.hash, hash: after.hash, ...delta }, canonicalDigest(sys)));
      expect(r.statusCode, r.body).toBe(200);
      expect(await packagesOf(dev.deviceId)).toEqual(after.packages);

      const beforeSame = await snapshot();
      h.clock.now += 60_000;
      r = await h.checkin(dev.token, checkinBody(undefined, { mode: 'same', hash: after.hash }, canonicalDigest(sys)));
      expect(r.statusCode).toBe(200);
      const afterSame = await snapshot();
      expect(afterSame.sets).toEqual(beforeSame.sets);
      const d = await h.admin('GET', `/api/v1/devices/${dev.deviceId}`);
      expect(d.json().lastSeenAt).toBe(new Date(h.clock.now).toISOString());
      expect(d.json().packageCount).toBe(after.packages.length);
      expect(d.json().inventoryHash).toBe(after.hash);
      expect(d.json().inventory).toEqual({ status: 'ok' });
    });

    it('stores an identical inventory once for all devices that report it', async () => {
      const a = await h.enroll({ hostname: 'same-a' });
      const b = await h.enroll({ hostname: 'same-b' });
      const before = await snapshot();
      for (const dev of [a, b]) {
        const r = await h.checkin(dev.token, checkinBody(systemFacts(dev === a ? 'same-a' : 'same-b'), { mode: 'full', ...base }));
        expect(r.statusCode).toBe(200);
      }
      const after = await snapshot();
      expect(after.sets).toEqual(before.sets); // the set of the first test is reused
      expect(after.packages).toBe(before.packages);
    });

    it('tells the agent when the base of a delta or a bare hash is unknown, and changes nothing', async () => {
      const dev = await h.enroll({ hostname: 'lost-base' });
      const sys = systemFacts('lost-base');
      expect((await h.checkin(dev.token, checkinBody(sys, { mode: 'full', ...base }))).statusCode).toBe(200);
      const before = await snapshot();
      const unknown = 'f'.repeat(64);
      let r = await h.checkin(dev.token, checkinBody(undefined, { mode: 'same', hash: unknown }, canonicalDigest(sys)));
      expect(r.statusCode).toBe(409);
      expect(r.json().error.code).toBe('E_INVENTORY_BASE_UNKNOWN');
      r = await h.checkin(dev.token, checkinBody(undefined, { mode: 'delta', base: unknown, hash: 'e'.repeat(64), add: [], remove: [] }, canonicalDigest(sys)));
      expect(r.json().error.code).toBe('E_INVENTORY_BASE_UNKNOWN');
      // system facts the server never saw, sent as a hash only
      r = await h.checkin(dev.token, checkinBody(undefined, { mode: 'same', hash: base.hash }, 'a'.repeat(64)));
      expect(r.json().error.code).toBe('E_INVENTORY_BASE_UNKNOWN');
      expect(await snapshot()).toEqual(before);
    });

    it('refuses an inventory whose hash is not what it declares', async () => {
      const dev = await h.enroll({ hostname: 'liar' });
      const before = await snapshot();
      const r = await h.checkin(dev.token, checkinBody(systemFacts('liar'), { mode: 'full', hash: 'a'.repeat(64), packages: base.packages }));
      expect(r.statusCode).toBe(422);
      expect(r.json().error.code).toBe('E_INVENTORY_HASH_MISMATCH');
      expect(await snapshot()).toEqual(before);
    });

    describe('malformed, hostile and truncated check-ins get a 4xx with a code and change nothing', () => {
      let token: string;
      const sys = systemFacts('hostile');
      const good = () => checkinBody(sys, { mode: 'full', ...base });
      beforeAll(async () => {
        token = (await h.enroll({ hostname: 'hostile' })).token;
      });

      const pkg = (over: Record<string, unknown>) => {
        const p = { manager: 'dpkg', name: 'openssl', version: '3.0.15-1~deb12u1', arch: 'amd64', state: 'installed', ...over };
        return checkinBody(sys, { mode: 'full', hash: 'a'.repeat(64), packages: [p] });
      };
      const cases: [string, () => { body?: unknown; raw?: string | Buffer; gzip?: boolean; headers?: Record<string, string> }, number, string][] = [
        ['not JSON', () => ({ raw: '{"protocol": 1, "systemHash": ' }), 400, 'E_BAD_REQUEST'],
        ['truncated JSON', () => ({ raw: JSON.stringify(good()).slice(0, 5000) }), 400, 'E_BAD_REQUEST'],
        ['empty body', () => ({ raw: '' }), 400, 'E_BAD_REQUEST'],
        ['an array', () => ({ body: [] }), 400, 'E_VALIDATION'],
        ['wrong protocol', () => ({ body: { ...good(), protocol: 99 } }), 400, 'E_VALIDATION'],
        ['unknown field', () => ({ body: { ...good(), extra: true } }), 400, 'E_VALIDATION'],
        ['package name starting with -', () => ({ body: pkg({ name: '-rf' }) }), 400, 'E_VALIDATION'],
        ['version with a shell metacharacter', () => ({ body: pkg({ version: '1.0;rm -rf /' }) }), 400, 'E_VALIDATION'],
        ['version with an invalid epoch', () => ({ body: pkg({ version: 'x:1.0' }) }), 400, 'E_VALIDATION'],
        ['SQL in a name', () => ({ body: pkg({ name: "a'); drop table devices;--" }) }), 400, 'E_VALIDATION'],
        ['numbers where strings belong', () => ({ body: pkg({ version: 1.5 }) }), 400, 'E_VALIDATION'],
        ['unknown package state', () => ({ body: pkg({ state: 'pwned' }) }), 400, 'E_VALIDATION'],
        ['deeply nested JSON', () => ({ raw: '['.repeat(100_000) + ']'.repeat(100_000) }), 400, 'E_VALIDATION'],
        ['a __proto__ key', () => ({ raw: JSON.stringify(good()).replace('{', '{"__proto__":{"admin":true},') }), 400, 'E_VALIDATION'],
        ['a __proto__ key in a package', () => ({ raw: JSON.stringify(pkg({})).replace('{"manager"', '{"__proto__":{"x":1},"manager"') }), 400, 'E_VALIDATION'],
        ['a constructor key', () => ({ raw: JSON.stringify(good()).replace('{', '{"constructor":{"prototype":{"x":1}},') }), 400, 'E_VALIDATION'],
        ['a stored inventory with one extra field in a package', () => ({
          body: checkinBody(sys, { mode: 'full', hash: base.hash, packages: base.packages.map((x, i) => (i === 7 ? { ...x, extra: 'x' } : x)) }),
        }), 400, 'E_VALIDATION'],
        ['a stored inventory with one invalid version', () => ({
          body: checkinBody(sys, { mode: 'full', hash: base.hash, packages: base.packages.map((x, i) => (i === 7 ? { ...x, version: '1;id' } : x)) }),
        }), 400, 'E_VALIDATION'],
        ['the same package twice', () => ({ body: checkinBody(sys, { mode: 'full', hash: base.hash, packages: [...base.packages, base.packages[0]] }) }), 400, 'E_VALIDATION'],
        ['over 16 MiB', () => ({ raw: JSON.stringify({ ...good(), pad: 'x'.repeat(17 * 1024 * 1024) }) }), 413, 'E_PAYLOAD_TOO_LARGE'],
        ['a gzip bomb', () => ({ raw: gzipSync(Buffer.alloc(200 * 1024 * 1024, 32)), headers: { 'content-encoding': 'gzip' } }), 413, 'E_PAYLOAD_TOO_LARGE'],
        ['corrupt gzip', () => ({ raw: Buffer.from('1f8b0800000000000003ffffffff', 'hex'), headers: { 'content-encoding': 'gzip' } }), 400, 'E_BAD_REQUEST'],
        ['unknown encoding', () => ({ body: good(), headers: { 'content-encoding': 'br' } }), 415, 'E_UNSUPPORTED_MEDIA'],
        ['text/plain', () => ({ raw: 'hello', headers: { 'content-type': 'text/plain' } }), 400, 'E_VALIDATION'],
        ['XML', () => ({ raw: '<a/>', headers: { 'content-type': 'application/xml' } }), 415, 'E_UNSUPPORTED_MEDIA'],
      ];
      for (const [name, make, status, code] of cases) {
        it(name, async () => {
          const before = await snapshot();
          const c = make();
          const r = await h.checkin(token, c.body, { ...(c.raw !== undefined ? { raw: c.raw } : {}), ...(c.headers ? { headers: c.headers } : {}) });
          expect(r.statusCode, r.body.slice(0, 300)).toBe(status);
          expect(r.json().error.code).toBe(code);
          expect(r.json().error.message.length).toBeGreaterThan(5);
          expect(await snapshot()).toEqual(before);
        });
      }

      it('a forged or missing device token', async () => {
        const before = await snapshot();
        for (const auth of [undefined, 'Bearer pwd_forged0000000000000000000000000000000000000', `Bearer ${h.adminToken}`, 'Basic abc']) {
          const r = await h.app.inject({ method: 'POST', url: '/api/v1/agent/checkin', headers: auth ? { authorization: auth } : {}, payload: good() });
          expect(r.statusCode).toBe(401);
          expect(r.json().error.code).toBe('E_UNAUTHENTICATED');
        }
        expect(await snapshot()).toEqual(before);
      });
    });

    it('refuses a revoked device at once', async () => {
      const dev = await h.enroll({ hostname: 'to-revoke' });
      const sys = systemFacts('to-revoke');
      expect((await h.checkin(dev.token, checkinBody(sys, { mode: 'full', ...base }))).statusCode).toBe(200);
      const rv = await h.admin('POST', `/api/v1/devices/${dev.deviceId}/revoke`);
      expect(rv.json().status).toBe('revoked');
      const before = await snapshot();
      const r = await h.checkin(dev.token, checkinBody(sys, { mode: 'same', hash: base.hash }));
      expect(r.statusCode).toBe(403);
      expect(r.json().error.code).toBe('E_DEVICE_REVOKED');
      expect(await snapshot()).toEqual(before);
    });
  });
}
