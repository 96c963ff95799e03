import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PackageFact, SystemFacts } from '@patchwarden/core';
import { testDatabases } from '../testing/databases.js';
import { hashed, hostPackages } from '../testing/fixtures.js';
import { checkinBody, makeHarness, systemFacts, type Harness } from '../testing/harness.js';

for (const tdb of testDatabases) {
  describe.skipIf(!tdb.available)(`dynamic groups on ${tdb.name}`, () => {
    let h: Harness;
    const inv = hashed(hostPackages());
    const a = inv.packages[10]!;
    const ids: Record<string, string> = {};

    async function device(hostname: string, opts: { group?: string; labels?: string[]; system?: SystemFacts; packages?: PackageFact[] } = {}) {
      const d = await h.enroll({ hostname, group: opts.group ?? null });
      const r = await h.checkin(d.token, checkinBody(opts.system ?? systemFacts(hostname), { mode: 'full', ...hashed((opts.packages ?? inv.packages) as PackageFact[]) }));
      expect(r.statusCode, r.body).toBe(200);
      if (opts.labels) expect((await h.admin('POST', `/api/v1/devices/${d.deviceId}/labels`, { add: opts.labels })).statusCode).toBe(200);
      ids[hostname] = d.deviceId;
    }
    async function create(name: string, query: unknown) {
      const r = await h.admin('POST', '/api/v1/groups', { name, query });
      expect(r.statusCode, r.body).toBe(201);
      return r.json();
    }
    async function members(name: string, q = ''): Promise<string[]> {
      const r = await h.admin('GET', `/api/v1/groups/${encodeURIComponent(name)}/members${q}`);
      expect(r.statusCode, r.body).toBe(200);
      return r.json().items.map((i: { hostname: string }) => i.hostname);
    }

    beforeAll(async () => {
      h = await makeHarness(await tdb.open());
      for (const g of ['web', 'db']) expect((await h.admin('POST', '/api/v1/groups', { name: g })).statusCode).toBe(201);
      await device('web-1', { group: 'web', labels: ['env=prod'] });
      await device('web-2', { group: 'web', labels: ['env=staging'] });
      await device('db-1', { group: 'db', labels: ['env=prod', 'pci'] });
      const noble = systemFacts('ub-1');
      noble.os = { ...noble.os, distribution: 'ubuntu', version: '24.04', versionCodename: 'noble', prettyName: 'Ubuntu 24.04 LTS', packageArch: 'arm64', machine: 'aarch64' };
      await device('ub-1', { system: noble });
      await device('lone-1', { packages: inv.packages.filter((p) => p.name !== a.name) as PackageFact[] });
    });
    afterAll(async () => h?.close());

    it('computes members of dynamic groups by OS, architecture, label, hostname, package version, static group and not', async () => {
      const bookworm = await create('bookworm', { os: { id: 'debian', codename: 'bookworm' } });
      expect(bookworm).toMatchObject({ name: 'bookworm', kind: 'dynamic', deviceCount: 4, testRing: false, requireTestPass: false });
      expect(await members('bookworm')).toEqual(['db-1', 'lone-1', 'web-1', 'web-2']);
      await create('arm', { arch: 'arm64' });
      expect(await members('arm')).toEqual(['ub-1']);
      await create('prod', { label: 'env=prod' });
      expect(await members('prod')).toEqual(['db-1', 'web-1']);
      await create('envs', { label: 'env=' });
      expect(await members('envs')).toEqual(['db-1', 'web-1', 'web-2']);
      await create('old-a', { package: { name: a.name, version: { lt: `${a.version}+fix1` } } });
      expect(await members('old-a')).toEqual(['db-1', 'ub-1', 'web-1', 'web-2']);
      await create('new-a', { package: { name: a.name, version: { ge: `${a.version}+fix1` } } });
      expect(await members('new-a')).toEqual([]);
      await create('not-web', { all: [{ not: { group: 'web' } }, { hostname: '*-1' }] });
      expect(await members('not-web')).toEqual(['db-1', 'lone-1', 'ub-1']);
      await create('in-db', { group: 'db' });
      expect(await members('in-db')).toEqual(['db-1']);
    });

    it('lists members of static and dynamic groups, paged, with their facts', async () => {
      const r = await h.admin('GET', '/api/v1/groups/bookworm/members?limit=2&offset=1');
      expect(r.json()).toMatchObject({ group: 'bookworm', kind: 'dynamic', total: 4, items: [{ hostname: 'lone-1', staticGroup: null }, { hostname: 'web-1', staticGroup: 'web', labels: ['env=prod'] }] });
      expect(r.json().items[1].os).toBe('debian 12 (bookworm)');
      const s = await h.admin('GET', '/api/v1/groups/web/members?limit=1');
      expect(s.json()).toMatchObject({ group: 'web', kind: 'static', total: 2, items: [{ hostname: 'web-1', id: ids['web-1'] }] });
      expect((await h.admin('GET', '/api/v1/groups/nope/members')).json().error.code).toBe('E_NOT_FOUND');
      const list = (await h.admin('GET', '/api/v1/groups')).json().items;
      expect(list.find((g: { name: string }) => g.name === 'web')).toMatchObject({ kind: 'static', deviceCount: 2, query: null });
      expect(list.find((g: { name: string }) => g.name === 'prod')).toMatchObject({ kind: 'dynamic', deviceCount: 2, query: { label: 'env=prod' } });
    });

    it('follows changes of facts at once: a new label makes a member', async () => {
      expect((await h.admin('POST', `/api/v1/devices/${ids['web-2']}/labels`, { add: ['env=prod'] })).statusCode).toBe(200);
      expect(await members('prod')).toEqual(['db-1', 'web-1', 'web-2']);
    });

    it('sets test-ring and require-test-pass, and changes a query; a static group takes no query', async () => {
      const r = await h.admin('PATCH', '/api/v1/groups/web', { testRing: true });
      expect(r.json()).toMatchObject({ name: 'web', testRing: true, requireTestPass: false });
      const d = await h.admin('PATCH', '/api/v1/groups/prod', { requireTestPass: true, query: { label: 'pci' } });
      expect(d.json()).toMatchObject({ name: 'prod', requireTestPass: true, query: { label: 'pci' }, deviceCount: 1 });
      const bad = await h.admin('PATCH', '/api/v1/groups/db', { query: { label: 'pci' } });
      expect(bad.statusCode).toBe(409);
      expect(bad.json().error.message).toContain("group 'db' is static");
    });

    it('refuses hostile and wrong queries with the exact place, creating nothing', async () => {
      const before = (await h.admin('GET', '/api/v1/groups')).json().items.length;
      let deep: unknown = { label: 'x' };
      for (let i = 0; i < 40; i++) deep = { not: deep };
      const cases: [unknown, RegExp][] = [
        [deep, /nests deeper than 8 levels/],
        [{ kernel: '6.1' }, /query: unknown test 'kernel'/],
        [{ all: [{ os: { id: 'debian', flavour: 'x' } }] }, /query\.all\[0\]\.os: .*flavour/],
        [{ any: Array.from({ length: 1000 }, () => ({ label: 'x' })) }, /query\.any: a list of 1 to 64 queries/],
        [{ any: Array.from({ length: 64 }, () => ({ hostname: 'h'.repeat(255) })) }, /bytes, at most 16384/],
        [{ package: { name: 'openssl', version: { lt: '!!' } } }, /query\.package\.version: invalid deb version/],
        [{ group: 'bookworm' }, /'bookworm' is not a static group/],
        [{ group: 'nope' }, /'nope' is not a static group/],
        ['label=x', /query: a query is an object/],
      ];
      for (const [query, message] of cases) {
        const r = await h.admin('POST', '/api/v1/groups', { name: 'bad', query });
        expect(r.statusCode, r.body.slice(0, 300)).toBe(400);
        expect(r.json().error.code).toBe('E_VALIDATION');
        expect(r.json().error.message).toMatch(message);
      }
      const huge = await h.admin('POST', '/api/v1/groups', { name: 'bad', query: { hostname: 'x'.repeat(3_000_000) } });
      expect(huge.statusCode).toBeGreaterThanOrEqual(400);
      expect(huge.statusCode).toBeLessThan(500);
      expect((await h.admin('GET', '/api/v1/groups')).json().items.length).toBe(before);
    });
  });
}
