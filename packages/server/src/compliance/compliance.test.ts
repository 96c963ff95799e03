import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalDigest, diffInventories, type PackageFact, type PatchManifest } from '@patchwarden/core';
import { testDatabases } from '../testing/databases.js';
import { hashed, hostPackages, packagePatch } from '../testing/fixtures.js';
import { checkinBody, makeHarness, systemFacts, type Harness } from '../testing/harness.js';

const bookworm = [{ family: 'linux', distribution: 'debian', release: 'bookworm', arch: ['amd64'] }];

const patch = packagePatch;

for (const tdb of testDatabases) {
  describe.skipIf(!tdb.available)(`compliance on ${tdb.name}`, () => {
    let h: Harness;
    const inv = hashed(hostPackages());
    const [a, b, c] = [inv.packages[10]!, inv.packages[20]!, inv.packages[30]!];
    const ids = {
      aOld: 'test/a-old',
      aNew: 'test/a-new',
      aNewer: 'test/a-newer',
      b: 'test/b-current',
      osOnly: 'test/os-only',
      absent: 'test/needs-absent',
    };

    async function upload(patches: PatchManifest[], coverage = bookworm) {
      const r = await h.admin('POST', '/api/v1/catalog/patches', { patches, coverage, source: { kind: 'test' } });
      expect(r.statusCode, r.body).toBe(200);
      return r.json();
    }
    async function states(device: string): Promise<Record<string, string>> {
      const r = await h.admin('GET', `/api/v1/devices/${device}/patches`);
      expect(r.statusCode, r.body).toBe(200);
      return { assessed: r.json().assessed, ...Object.fromEntries(r.json().items.map((i: { patch: string; state: string }) => [i.patch, i.state])) };
    }
    async function report(device: { token: string }, hostname: string, packages: PackageFact[]) {
      const r = await h.checkin(device.token, checkinBody(systemFacts(hostname), { mode: 'full', ...hashed(packages) }));
      expect(r.statusCode, r.body).toBe(200);
    }

    beforeAll(async () => {
      h = await makeHarness(await tdb.open());
      await upload([
        patch(ids.aOld, a.name, a.version),
        patch(ids.aNew, a.name, `${a.version}+fix1`, { supersedes: [ids.aOld] }),
        patch(ids.aNewer, a.name, `${a.version}+fix2`, { supersedes: [ids.aNew], severity: 'critical' }),
        patch(ids.b, b.name, b.version),
        patch(ids.osOnly, 'unused', '1', { applicability: { os: { codename: 'bookworm' } }, installed: { os: { version: '13' } } }),
        patch(ids.absent, 'unused', '1', { applicability: { package: { manager: 'dpkg', name: 'telnetd', absent: true } }, installed: { package: { manager: 'dpkg', name: c.name, absent: true } } }),
      ]);
    });
    afterAll(async () => h?.close());

    it('assesses devices whose identical new inventory arrives at the same moment, every check-in answered', async () => {
      // a fresh inventory (one package changed), reported by 12 devices at once: they all fill one new context
      const fresh = inv.packages.map((p, i) => (i === 5 ? { ...p, version: `${p.version}+same-moment` } : p));
      const devices = [];
      for (let i = 0; i < 12; i++) devices.push(await h.enroll({ hostname: `burst-${i}` }));
      const answers = await Promise.all(devices.map((d, i) => h.checkin(d.token, checkinBody(systemFacts(`burst-${i}`), { mode: 'full', ...hashed(fresh) }))));
      expect(answers.map((r) => (r.statusCode === 200 ? 200 : r.body))).toEqual(devices.map(() => 200));
      const all = await Promise.all(devices.map((_, i) => states(`burst-${i}`)));
      expect(new Set(all.map((x) => JSON.stringify(x))).size).toBe(1);
      expect(all[0]!.assessed).toBe('assessed');
    });

    it('decides every state of a device from its reported facts', async () => {
      const dev = await h.enroll({ hostname: 'web-1' });
      await report(dev, 'web-1', inv.packages);
      expect(await states('web-1')).toEqual({
        assessed: 'assessed',
        [ids.aOld]: 'installed',
        [ids.aNew]: 'superseded',
        [ids.aNewer]: 'needed',
        [ids.b]: 'installed',
        [ids.osOnly]: 'needed',
        [ids.absent]: 'needed',
      });
    });

    it('explains why, with the leaves that decided and the versions compared', async () => {
      const r = await h.admin('GET', `/api/v1/devices/web-1/explain?patch=${encodeURIComponent(ids.aNewer)}`);
      expect(r.statusCode, r.body).toBe(200);
      expect(r.json()).toMatchObject({ state: 'needed', applicability: { result: 'true' }, installed: { result: 'false' } });
      expect(r.json().installed.detail).toBe(`${a.name} ${a.version} (${a.arch}) not >= ${a.version}+fix2`);
      const sup = await h.admin('GET', `/api/v1/devices/web-1/explain?patch=${encodeURIComponent(ids.aNew)}`);
      expect(sup.json()).toMatchObject({ state: 'superseded', by: ids.aNewer });
      expect((await h.admin('GET', '/api/v1/devices/web-1/explain?patch=test/nope')).json().error.code).toBe('E_NOT_FOUND');
    });

    it('shares one evaluation between identical devices', async () => {
      const before = h.app.compliance.counter.rules;
      const twin = await h.enroll({ hostname: 'web-1' });
      await report(twin, 'web-1', inv.packages);
      expect(h.app.compliance.counter.rules).toBe(before);
      const ctx = await h.database.db.selectFrom('devices').select('context_id').where('hostname', '=', 'web-1').execute();
      expect(new Set(ctx.map((r) => r.context_id)).size).toBe(1);
    });

    it('gives a device that leaves a shared context an overlay holding only what differs', async () => {
      const twins = [await h.enroll({ hostname: 'twin-a' }), await h.enroll({ hostname: 'twin-b' })];
      for (const [i, t] of twins.entries()) await report(t, `twin-${'ab'[i]}`, inv.packages);
      const shared = await states('twin-a');
      // twin-b drops package a: the patches on a stop applying there, nothing else changes
      const without = inv.packages.filter((p) => p.name !== a.name);
      const sys = systemFacts('twin-b');
      const next = hashed(without);
      const before = h.app.compliance.counter.rules;
      const r = await h.checkin(twins[1]!.token, checkinBody(undefined, { mode: 'delta', base: inv.hash, hash: next.hash, ...diffInventories(inv.packages, next.packages) }, canonicalDigest(sys)));
      expect(r.statusCode, r.body).toBe(200);
      expect(h.app.compliance.counter.rules - before).toBeLessThanOrEqual(8);
      const b2 = await states('twin-b');
      expect(b2[ids.aOld]).toBeUndefined();
      expect(b2[ids.aNewer]).toBeUndefined();
      expect(b2[ids.b]).toBe('installed');
      expect(await states('twin-a')).toEqual(shared);
      const ctx = await h.database.db
        .selectFrom('devices as d')
        .innerJoin('eval_contexts as c', 'c.id', 'd.context_id')
        .select(['c.parent_id'])
        .where('d.hostname', '=', 'twin-b')
        .executeTakeFirstOrThrow();
      expect(ctx.parent_id).not.toBeNull();
      const own = await h.database.db.selectFrom('context_states').select((eb) => eb.fn.countAll<number>().as('n')).innerJoin('devices as d', 'd.context_id', 'context_states.context_id').where('d.hostname', '=', 'twin-b').executeTakeFirstOrThrow();
      expect(Number(own.n)).toBeLessThanOrEqual(4);
      // a full recompute flattens it and agrees
      await h.admin('POST', '/api/v1/compliance/recompute');
      expect(await states('twin-b')).toEqual(b2);
    });

    it('re-evaluates only the patches a one-package change touches, OS-only rules included', async () => {
      const dev = await h.enroll({ hostname: 'web-2' });
      await report(dev, 'web-2', inv.packages);
      const sys = systemFacts('web-2');
      const next = inv.packages.map((p) => (p.name === c.name ? { ...p, version: `${p.version}+local1` } : p));
      const after = hashed(next);
      const before = h.app.compliance.counter.rules;
      const r = await h.checkin(dev.token, checkinBody(undefined, { mode: 'delta', base: inv.hash, hash: after.hash, ...diffInventories(inv.packages, after.packages) }, canonicalDigest(sys)));
      expect(r.statusCode, r.body).toBe(200);
      // the `absent` patch reads package c; the OS-only patch is always re-evaluated: two rules each
      expect(h.app.compliance.counter.rules - before).toBe(4);

      // the same change with c removed: the `absent` patch's installed rule flips
      const without = hashed(inv.packages.filter((p) => p.name !== c.name));
      await h.checkin(dev.token, checkinBody(undefined, { mode: 'delta', base: after.hash, hash: without.hash, ...diffInventories(after.packages, without.packages) }, canonicalDigest(sys)));
      expect((await states('web-2'))[ids.absent]).toBe('installed');
    });

    it('evaluates only a new patch when the catalog grows, and records it for every device', async () => {
      const before = h.app.compliance.counter.rules;
      const res = await upload([patch('test/b-next', b.name, `${b.version}+fix1`, { severity: 'medium' })]);
      expect(res).toMatchObject({ created: 1, unchanged: 0 });
      const contexts = res.contextsEvaluated as number;
      expect(contexts).toBeGreaterThanOrEqual(2);
      expect(h.app.compliance.counter.rules - before).toBe(contexts * 2);
      expect((await states('web-2'))['test/b-next']).toBe('needed');
    });

    it('lists catalog patches with a literal search', async () => {
      const r = (await h.admin('GET', '/api/v1/catalog/patches?search=A-NEW')).json();
      expect(r.items.map((p: { id: string }) => p.id)).toEqual([ids.aNew, ids.aNewer]);
      expect((await h.admin('GET', '/api/v1/catalog/patches?search=%25')).json().total).toBe(0);
      expect((await h.admin('GET', `/api/v1/catalog/patches?search=${encodeURIComponent("' or 1=1 --")}`)).json().total).toBe(0);
    });

    it('reports needed patches per device and per patch', async () => {
      const byDevice = (await h.admin('GET', '/api/v1/reports/needed?by=device')).json();
      const web1 = byDevice.items.find((i: { device: { hostname: string } }) => i.device.hostname === 'web-1');
      expect(web1.needed[0]).toMatchObject({ patch: ids.aNewer, severity: 'critical' });
      const byPatch = (await h.admin('GET', '/api/v1/reports/needed?by=patch')).json();
      expect(byPatch.items[0].patch.id).toBe(ids.aNewer);
      expect(byPatch.items[0].devices.length).toBeGreaterThanOrEqual(3);
    });

    it('never calls a device without a covering feed fully patched', async () => {
      const dev = await h.enroll({ hostname: 'trixie-1' });
      const sys = { ...systemFacts('trixie-1'), os: { ...systemFacts().os, version: '13', versionCodename: 'trixie', prettyName: 'Debian 13' } };
      const r = await h.checkin(dev.token, checkinBody(sys, { mode: 'full', ...inv }));
      expect(r.statusCode).toBe(200);
      expect(await states('trixie-1')).toEqual({ assessed: 'not_assessed' });
      const rep = (await h.admin('GET', '/api/v1/reports/needed')).json();
      expect(rep.notAssessed.map((d: { hostname: string }) => d.hostname)).toContain('trixie-1');
    });

    it('asks agents for the files rules name, and decides with what they report', async () => {
      const marker = '/etc/patchwarden-test/marker.conf';
      await upload([
        patch('test/file-rule', 'unused', '1', {
          applicability: { os: { family: 'linux' } },
          installed: { file: { path: marker, exists: true } },
        }),
      ]);
      const dev = await h.enroll({ hostname: 'files-1' });
      const sys = systemFacts('files-1');
      let r = await h.checkin(dev.token, checkinBody(sys, { mode: 'full', ...inv }));
      expect(r.json().collect.files).toEqual([marker]);
      const gen = r.json().catalogGeneration;
      expect((await states('files-1'))['test/file-rule']).toBe('unknown');
      const withFile = { ...sys, files: { [marker]: { exists: true, size: 3, sha256: 'a'.repeat(64), mtime: '2026-11-26T10:00:00.000Z' } } };
      r = await h.checkin(dev.token, { ...checkinBody(withFile, { mode: 'same', hash: inv.hash }), catalog: gen });
      expect(r.statusCode, r.body).toBe(200);
      expect(r.json().collect).toBeUndefined(); // the agent follows the current directive already
      expect((await states('files-1'))['test/file-rule']).toBe('installed');
    });

    it('heals a device whose context lags its inventory (a state write lost in a crash)', async () => {
      const dev = await h.enroll({ hostname: 'healed-1' });
      await report(dev, 'healed-1', inv.packages);
      const good = await states('healed-1');
      const other = await h.database.db.selectFrom('devices').select('context_id').where('hostname', '=', 'web-2').executeTakeFirstOrThrow();
      await h.database.db.updateTable('devices').set({ context_id: other.context_id }).where('hostname', '=', 'healed-1').execute();
      expect(await states('healed-1')).not.toEqual(good);
      const r = await h.checkin(dev.token, checkinBody(undefined, { mode: 'same', hash: inv.hash }, canonicalDigest(systemFacts('healed-1'))));
      expect(r.statusCode, r.body).toBe(200);
      expect(await states('healed-1')).toEqual(good);
    });

    it('keeps a daily history by state and severity, with unassessed devices apart', async () => {
      const snap = await h.admin('POST', '/api/v1/compliance/history/snapshot');
      expect(snap.statusCode, snap.body).toBe(200);
      const hist = (await h.admin('GET', '/api/v1/reports/history?days=7')).json();
      expect(hist.days).toHaveLength(1);
      const today = hist.days[0];
      expect(today.day).toBe(new Date(h.clock.now).toISOString().slice(0, 10));
      expect(today.patches.needed.critical).toBeGreaterThanOrEqual(3);
      expect(today.devices.notAssessed).toBe(1);
      expect(today.devices.needing).toBeGreaterThanOrEqual(3);
      // a second snapshot the same day replaces the first
      await h.admin('POST', '/api/v1/compliance/history/snapshot');
      expect((await h.admin('GET', '/api/v1/reports/history?days=7')).json().days[0]).toEqual(today);
    });

    it('keeps (id, revision) immutable and recomputes to the same states', async () => {
      const changed = patch(ids.b, b.name, `${b.version}+other`);
      const r = await h.admin('POST', '/api/v1/catalog/patches', { patches: [changed], coverage: [], source: { kind: 'test' } });
      expect(r.statusCode).toBe(409);
      expect(r.json().error.code).toBe('E_CONFLICT');
      const bad = await h.admin('POST', '/api/v1/catalog/patches', { patches: [{ ...changed, id: '../etc/passwd' }], source: { kind: 'test' } });
      expect(bad.json().error.code).toBe('E_VALIDATION');
      const hostile = await h.admin('POST', '/api/v1/catalog/patches', {
        patches: [{ ...changed, revision: 2, installed: { package: { manager: 'dpkg', name: b.name, version: { ge: '1;reboot' } } } }],
        source: { kind: 'test' },
      });
      expect(hostile.json().error.code).toBe('E_VALIDATION');
      // a feed's patch that changed with the archive becomes the next revision
      const feed = patch('test/feed-1', b.name, b.version);
      await h.admin('POST', '/api/v1/catalog/patches', { patches: [feed], source: { kind: 'apt' } });
      const again = await h.admin('POST', '/api/v1/catalog/patches', { patches: [{ ...feed, title: 'republished' }], source: { kind: 'apt' } });
      expect(again.json()).toMatchObject({ updated: 1 });
      const stored = (await h.admin('GET', '/api/v1/catalog/patch?id=test/feed-1')).json().manifest;
      expect(stored).toMatchObject({ revision: 2, title: 'republished' });
      const same = await h.admin('POST', '/api/v1/catalog/patches', { patches: [{ ...feed, title: 'republished' }], source: { kind: 'apt' } });
      expect(same.json()).toMatchObject({ unchanged: 1, updated: 0 });

      const before = await states('web-2');
      const re = await h.admin('POST', '/api/v1/compliance/recompute');
      expect(re.statusCode).toBe(200);
      expect(await states('web-2')).toEqual(before);
    });
  });
}
