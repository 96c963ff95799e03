import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDatabases } from '../testing/databases.js';
import { hashed, hostPackages, packagePatch } from '../testing/fixtures.js';
import { checkinBody, makeHarness, systemFacts, type Harness } from '../testing/harness.js';

for (const tdb of testDatabases) {
  describe.skipIf(!tdb.available)(`admin API on ${tdb.name}`, () => {
    let h: Harness;
    const inv = hashed(hostPackages());

    beforeAll(async () => {
      h = await makeHarness(await tdb.open());
    });
    afterAll(async () => h?.close());

    it('answers every route but health, docs, console, enrollment and the catalog root with 401 without a token', async () => {
      // the routes as the server itself registered them, so a new route cannot be forgotten here
      const routes = h.app.declaredRoutes;
      const api = routes.filter((r) => r.url.startsWith('/api/v1') && r.method !== 'HEAD');
      expect(api.length).toBeGreaterThanOrEqual(12);
      // the catalog root is public: it holds public keys only, and a device checks its
      // fingerprint before it sends its enrollment secret
      const open = new Set(['POST /api/v1/enroll', 'GET /api/v1/tuf-root', 'POST /api/v1/auth/login', 'POST /api/v1/auth/logout', 'GET /api/v1/auth/session', 'GET /api/v1/tls/ca.crt']);
      for (const r of api) {
        if (open.has(`${r.method} ${r.url}`)) continue;
        const url = r.url.replace(/:(\w+)/g, 'x');
        const res = await h.app.inject({ method: r.method as 'GET', url, ...(r.method === 'GET' ? {} : { payload: {} }) });
        expect(res.statusCode, `${r.method} ${url}`).toBe(401);
        expect(res.json().error.code).toBe('E_UNAUTHENTICATED');
      }
      const health = await h.app.inject({ method: 'GET', url: '/api/health' });
      expect(health.statusCode).toBe(200);
      // nosniff on every answer; the console's pages get a strict policy that allows only the server's own scripts
      expect(health.headers['x-content-type-options']).toBe('nosniff');
      expect((await h.app.inject({ method: 'GET', url: '/api/v1/devices' })).headers['x-content-type-options']).toBe('nosniff');
      const page = await h.app.inject({ method: 'GET', url: '/' });
      expect(page.headers).toMatchObject({ 'x-content-type-options': 'nosniff', 'x-frame-options': 'DENY', 'referrer-policy': 'no-referrer' });
      expect(String(page.headers['content-security-policy'])).toMatch(/script-src 'self';.*frame-ancestors 'none'/);
      const docs = await h.app.inject({ method: 'GET', url: '/api/docs/json' });
      expect(docs.json().paths['/api/v1/devices']).toBeDefined();
    });

    it('refuses a device token on admin routes', async () => {
      const dev = await h.enroll({ hostname: 'sneaky' });
      const r = await h.app.inject({ method: 'GET', url: '/api/v1/devices', headers: { authorization: `Bearer ${dev.token}` } });
      expect(r.statusCode).toBe(401);
    });

    it('enrolls into the group a secret names, and lists, filters, sorts and pages devices', async () => {
      expect((await h.admin('POST', '/api/v1/groups', { name: 'web servers', description: 'nginx' })).statusCode).toBe(201);
      expect((await h.admin('POST', '/api/v1/groups', { name: 'web servers' })).json().error.code).toBe('E_CONFLICT');
      const names = ['web-03', 'web-01', 'db-01', 'web-02'];
      const ids: Record<string, string> = {};
      for (const n of names) {
        const d = await h.enroll({ hostname: n, group: n.startsWith('web') ? 'web servers' : null });
        ids[n] = d.deviceId;
        const pk = n === 'db-01' ? hashed(inv.packages.slice(0, 10)) : inv;
        h.clock.now += 1000;
        expect((await h.checkin(d.token, checkinBody(systemFacts(n), { mode: 'full', ...pk }))).statusCode).toBe(200);
      }
      let r = await h.admin('GET', '/api/v1/devices?group=web%20servers&sort=hostname');
      expect(r.json().items.map((d: { hostname: string }) => d.hostname)).toEqual(['web-01', 'web-02', 'web-03']);
      expect(r.json().items[0].group.name).toBe('web servers');

      r = await h.admin('GET', '/api/v1/devices?search=WEB-0&sort=lastSeen&order=desc&limit=2');
      expect(r.json().total).toBe(3);
      expect(r.json().items.map((d: { hostname: string }) => d.hostname)).toEqual(['web-02', 'web-01']);
      r = await h.admin('GET', '/api/v1/devices?search=WEB-0&sort=lastSeen&order=desc&limit=2&offset=2');
      expect(r.json().items.map((d: { hostname: string }) => d.hostname)).toEqual(['web-03']);

      r = await h.admin('GET', '/api/v1/devices?search=db&sort=packages');
      expect(r.json().items[0].packageCount).toBe(10);

      // labels
      r = await h.admin('POST', `/api/v1/devices/${ids['web-01']}/labels`, { add: ['env=prod', 'pci'] });
      expect(r.json().labels).toEqual(['env=prod', 'pci']);
      r = await h.admin('POST', `/api/v1/devices/web-01/labels`, { remove: ['pci'] });
      expect(r.json().labels).toEqual(['env=prod']);
      r = await h.admin('GET', '/api/v1/devices?search=PROD');
      expect(r.json().items.map((d: { id: string }) => d.id)).toEqual([ids['web-01']]);
      r = await h.admin('GET', '/api/v1/devices?search=servers');
      expect(r.json().total).toBe(3);
      r = await h.admin('GET', '/api/v1/devices?label=env%3Dprod');
      expect(r.json().items.map((d: { id: string }) => d.id)).toEqual([ids['web-01']]);
      r = await h.admin('POST', `/api/v1/devices/web-01/labels`, { add: ['<script>'] });
      expect(r.statusCode).toBe(400);

      // static group by hand, and out again
      r = await h.admin('PUT', `/api/v1/devices/db-01/group`, { group: 'web servers' });
      expect(r.json().group.name).toBe('web servers');
      r = await h.admin('PUT', `/api/v1/devices/db-01/group`, { group: null });
      expect(r.json().group).toBeNull();
      r = await h.admin('PUT', `/api/v1/devices/db-01/group`, { group: 'nope' });
      expect(r.json().error.code).toBe('E_NOT_FOUND');

      const groups = (await h.admin('GET', '/api/v1/groups')).json().items;
      expect(groups).toEqual([expect.objectContaining({ name: 'web servers', deviceCount: 3 })]);

      // needed patches per device, sortable; the OS filter
      const p = (id: string, i: number) => packagePatch(id, inv.packages[i]!.name, `${inv.packages[i]!.version}+fix1`);
      // db-01 has only the first 10 packages: it needs the first patch, the web servers need both
      const up = await h.admin('POST', '/api/v1/catalog/patches', { patches: [p('test/a', 2), p('test/b', 40)], coverage: [{ family: 'linux', distribution: 'debian', release: 'bookworm', arch: ['amd64'] }], source: { kind: 'test' } });
      expect(up.statusCode, up.body).toBe(200);
      r = await h.admin('GET', '/api/v1/devices?sort=needed&order=asc&search=-0');
      const rows = r.json().items.map((d: { hostname: string; needed: number }) => [d.hostname, d.needed]);
      // ties keep the id order, so only the first place is fixed
      expect(rows[0]).toEqual(['db-01', 1]);
      expect(rows.slice(1).sort()).toEqual([['web-01', 2], ['web-02', 2], ['web-03', 2]]);
      r = await h.admin('GET', '/api/v1/devices?os=debian%20gnu%2Flinux%2012');
      expect(r.json().total).toBe(r.json().items.length);
      expect(r.json().items.map((d: { hostname: string }) => d.hostname)).toEqual(expect.arrayContaining(['db-01', 'web-01']));
      r = await h.admin('GET', '/api/v1/devices?os=windows');
      expect(r.json().total).toBe(0);
    });

    it('treats hostile search, sort and filter parameters as data', async () => {
      const total = (await h.admin('GET', '/api/v1/devices?limit=1000')).json().total;
      for (const s of ["' or 1=1 --", '%', '_', '!', "'; drop table devices; --", '\\']) {
        const r = await h.admin('GET', `/api/v1/devices?search=${encodeURIComponent(s)}`);
        expect(r.statusCode).toBe(200);
        expect(r.json().total).toBe(0);
      }
      for (const q of ['sort=id;drop', 'order=sideways', 'limit=-1', 'limit=100000', 'offset=abc', 'unknown=1']) {
        const r = await h.admin('GET', `/api/v1/devices?${q}`);
        expect(r.statusCode, q).toBe(400);
        expect(r.json().error.code).toBe('E_VALIDATION');
      }
      expect((await h.admin('GET', '/api/v1/devices?limit=1000')).json().total).toBe(total);
    });

    it('shows one device by id or hostname, with its packages', async () => {
      const d = await h.admin('GET', '/api/v1/devices/web-02');
      expect(d.statusCode).toBe(200);
      expect(d.json()).toMatchObject({ hostname: 'web-02', timezone: 'Europe/Berlin', kernel: '6.1.0-28-amd64', packageCount: inv.packages.length });
      const pk = await h.admin('GET', `/api/v1/devices/${d.json().id}/packages?search=${inv.packages[3]!.name}`);
      expect(pk.json().items.map((p: { name: string }) => p.name)).toContain(inv.packages[3]!.name);
      expect((await h.admin('GET', '/api/v1/devices/no-such-device')).json().error.code).toBe('E_NOT_FOUND');
    });

    it('rotates and revokes enrollment secrets; values are never listed', async () => {
      const created = (await h.admin('POST', '/api/v1/enrollment-secrets', { name: 'laptops' })).json();
      const enrollWith = (secret: string) =>
        h.app.inject({ method: 'POST', url: '/api/v1/enroll', payload: { secret, system: systemFacts('laptop') } });
      expect((await enrollWith(created.secret)).statusCode).toBe(200);
      const rotated = (await h.admin('POST', `/api/v1/enrollment-secrets/${created.id}/rotate`)).json();
      expect(rotated.secret).not.toBe(created.secret);
      expect((await enrollWith(created.secret)).json().error.code).toBe('E_ENROLLMENT_SECRET_INVALID');
      expect((await enrollWith(rotated.secret)).statusCode).toBe(200);
      await h.admin('POST', `/api/v1/enrollment-secrets/${created.id}/revoke`);
      expect((await enrollWith(rotated.secret)).json().error.code).toBe('E_ENROLLMENT_SECRET_INVALID');
      const list = await h.admin('GET', '/api/v1/enrollment-secrets');
      expect(list.body).not.toContain(created.secret);
      expect(list.body).not.toContain(rotated.secret);
      const row = list.json().items.find((s: { id: string }) => s.id === created.id);
      expect(row).toMatchObject({ uses: 2, name: 'laptops' });
      expect(row.revokedAt).not.toBeNull();
      // stored hashed: the clear value is nowhere in the database
      const stored = await h.database.db.selectFrom('enrollment_secrets').select('secret_hash').execute();
      expect(stored.map((s) => s.secret_hash)).not.toContain(rotated.secret);
    });
  });
}
