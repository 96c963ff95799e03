import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentJob, PackageFact } from '@patchwarden/core';
import { testDatabases } from '../testing/databases.js';
import { hashed, hostPackages, packagePatch } from '../testing/fixtures.js';
import { checkinBody, makeHarness, systemFacts, type Harness } from '../testing/harness.js';
import { hashToken, newId } from '../auth/tokens.js';
import { createDeployment, jobsForDevice } from './service.js';

const bookworm = [{ family: 'linux', distribution: 'debian', release: 'bookworm', arch: ['amd64'] }];
const MIN = 60_000;

interface Dev {
  deviceId: string;
  token: string;
  hostname: string;
}

for (const tdb of testDatabases) {
  describe.skipIf(!tdb.available)(`deployment targets, approvals of several groups and windows on ${tdb.name}`, () => {
    let h: Harness;
    const inv = hashed(hostPackages());
    const pk = (i: number) => inv.packages[i]!;
    const P = ['test/t1', 'test/t2', 'test/t3', 'test/t4', 'test/t5', 'test/t6'];
    const devs: Record<string, Dev> = {};

    async function device(hostname: string, group: string | null, labels: string[] = []) {
      const d = await h.enroll({ hostname, group });
      const r = await h.checkin(d.token, checkinBody(systemFacts(hostname), { mode: 'full', ...hashed(inv.packages as PackageFact[]) }));
      expect(r.statusCode, r.body).toBe(200);
      if (labels.length) expect((await h.admin('POST', `/api/v1/devices/${d.deviceId}/labels`, { add: labels })).statusCode).toBe(200);
      devs[hostname] = { deviceId: d.deviceId, token: d.token, hostname };
    }
    async function jobs(hostname: string): Promise<AgentJob[]> {
      const r = await h.app.inject({ method: 'GET', url: '/api/v1/agent/jobs', headers: { authorization: `Bearer ${devs[hostname]!.token}` } });
      expect(r.statusCode, r.body).toBe(200);
      return r.json().jobs;
    }
    async function decide(patch: string, group: string, decision: 'approve' | 'decline') {
      const r = await h.admin('POST', '/api/v1/approvals', { patch, group, decision });
      expect(r.statusCode, r.body).toBe(200);
    }
    const now = () => new Date(h.clock.now).toISOString();
    const deploy = (body: object) => h.admin('POST', '/api/v1/deployments', { start: now(), ...body });
    async function jobHosts(deploymentId: string): Promise<string[]> {
      const rows = await h.database.db.selectFrom('jobs as j').innerJoin('devices as d', 'd.id', 'j.device_id').select('d.hostname').where('j.deployment_id', '=', deploymentId).execute();
      return rows.map((r) => r.hostname).sort();
    }

    beforeAll(async () => {
      h = await makeHarness(await tdb.open());
      const up = await h.admin('POST', '/api/v1/catalog/patches', {
        patches: P.map((id, i) => packagePatch(id, pk(10 + i).name, `${pk(10 + i).version}+fix1`)),
        coverage: bookworm,
        source: { kind: 'test' },
      });
      expect(up.statusCode, up.body).toBe(200);
      for (const g of ['web', 'db']) expect((await h.admin('POST', '/api/v1/groups', { name: g })).statusCode).toBe(201);
      await device('web-1', 'web', ['env=prod']);
      await device('web-2', 'web', ['env=staging']);
      await device('db-1', 'db', ['env=prod', 'pci']);
      await device('lone-1', null);
      for (const [name, query] of [
        ['prod', { label: 'env=prod' }],
        ['debian', { os: { id: 'debian' } }],
      ] as const) {
        expect((await h.admin('POST', '/api/v1/groups', { name, query })).statusCode).toBe(201);
      }
    });
    afterAll(async () => h?.close());

    it('lets a dynamic group approve for devices without a static group', async () => {
      const refused = await deploy({ patches: [P[0]], devices: ['lone-1'] });
      expect(refused.statusCode).toBe(409);
      expect(refused.json().error.message).toBe(`not approved: ${P[0]} for group debian (1 device: lone-1)`);
      await decide(P[0]!, 'debian', 'approve');
      const r = await deploy({ patches: [P[0]], devices: ['lone-1'] });
      expect(r.statusCode, r.body).toBe(201);
      expect(await jobHosts(r.json().id)).toEqual(['lone-1']);
    });

    it('refuses when any group of a device declines, even if another approves: the decline wins, and says so', async () => {
      await decide(P[1]!, 'web', 'approve');
      await decide(P[1]!, 'prod', 'decline');
      const r = await deploy({ patches: [P[1]], groups: ['web'] });
      expect(r.statusCode).toBe(409);
      expect(r.json().error.code).toBe('E_CONFLICT');
      expect(r.json().error.message).toContain(`declined (a decline by any of a device's groups wins over approvals by its other groups): ${P[1]} declined for group prod (1 device: web-1)`);
      expect(r.json().error.details).toMatchObject({ declined: [`${P[1]} declined for group prod`] });
      // the declined device excluded: the others go
      const ok = await deploy({ patches: [P[1]], groups: ['web'], exclude: { devices: ['web-1'] } });
      expect(ok.statusCode, ok.body).toBe(201);
      expect(await jobHosts(ok.json().id)).toEqual(['web-2']);
      // the approval never changed compliance
      const states = (await h.admin('GET', '/api/v1/devices/web-1/patches')).json();
      expect(states.items.find((i: { patch: string }) => i.patch === P[1]).state).toBe('needed');
    });

    it('targets groups, labels and devices as a union, less excluded devices, groups and labels; stores all of it', async () => {
      for (const g of ['web', 'db', 'debian']) await decide(P[2]!, g, 'approve');
      const r = await deploy({
        patches: [P[2]],
        groups: ['db'],
        labels: ['env=staging'],
        devices: ['lone-1', 'web-1'],
        exclude: { labels: ['pci'], groups: ['prod'] },
      });
      expect(r.statusCode, r.body).toBe(201);
      // db-1 excluded by label pci (and by group prod), web-1 by group prod
      expect(await jobHosts(r.json().id)).toEqual(['lone-1', 'web-2']);
      expect(r.json().target).toEqual({
        groups: ['db'],
        labels: ['env=staging'],
        devices: [devs['lone-1']!.deviceId, devs['web-1']!.deviceId].sort(),
        exclude: { groups: ['prod'], labels: ['pci'], devices: [] },
        testRings: [],
      });
      const byLabel = await deploy({ patches: [P[2]], labels: ['env=prod'], exclude: { devices: ['db-1'] } });
      expect(byLabel.statusCode, byLabel.body).toBe(201);
      expect(await jobHosts(byLabel.json().id)).toEqual(['web-1']);
      // everything excluded: a deployment without jobs
      const none = await deploy({ patches: [P[2]], groups: ['web'], exclude: { groups: ['web'] } });
      expect(none.json()).toMatchObject({ rings: [{ counts: { total: 0 } }] });
    });

    it('names every unknown group, label and device, creating nothing', async () => {
      const before = (await h.admin('GET', '/api/v1/deployments')).json().total;
      const r = await deploy({ patches: [P[2]], groups: ['web', 'nope'], labels: ['env=none'], devices: ['ghost-1'], exclude: { groups: ['nope-2'], devices: ['ghost-2'] } });
      expect(r.statusCode).toBe(404);
      expect(r.json().error.code).toBe('E_NOT_FOUND');
      expect(r.json().error.message).toBe("no group 'nope'; no active device with label 'env=none'; no active device 'ghost-1'; no group 'nope-2'; no active device 'ghost-2'");
      expect((await h.admin('GET', '/api/v1/deployments')).json().total).toBe(before);
    });

    it("installs in any window of any of the device's groups, and a freeze of any group blocks", async () => {
      // web-1: static web (Sunday 03:00), dynamic prod (Wednesday 03:00), dynamic debian (no window)
      const win = (day: string) => ({ windows: [{ kind: 'weekly', days: [day], start: '03:00', durationMinutes: 60 }] });
      expect((await h.admin('PUT', '/api/v1/groups/web/windows', win('sun'))).statusCode).toBe(200);
      expect((await h.admin('PUT', '/api/v1/groups/prod/windows', win('wed'))).statusCode).toBe(200);
      await decide(P[3]!, 'web', 'approve');
      const r = await deploy({ patches: [P[3]], devices: ['web-1', 'web-2'] });
      expect(r.statusCode, r.body).toBe(201);
      const id = r.json().id as string;
      const mine = async (host: string) => (await jobs(host)).filter((j) => j.deploymentId === id);
      // Thursday 11:00 in Berlin: no window open
      expect(await mine('web-1')).toEqual([]);
      // Wednesday 03:10 in Berlin (CET): prod's window; web-1 is in prod, web-2 is not
      h.clock.now = Date.parse('2026-12-02T02:10:00Z');
      expect(await mine('web-1')).toHaveLength(1);
      expect(await mine('web-2')).toEqual([]);
      // Sunday 03:10: web's window, for both
      h.clock.now = Date.parse('2026-12-06T02:10:00Z');
      expect(await mine('web-2')).toHaveLength(1);
      // a freeze of the dynamic group debian (which has no window) blocks web-2 inside web's window
      const freeze = { kind: 'absolute', start: h.clock.now - MIN, end: h.clock.now + 10 * MIN, reason: 'release day' };
      expect((await h.admin('PUT', '/api/v1/groups/debian/windows', { windows: [], freezes: [freeze] })).statusCode).toBe(200);
      expect(await mine('web-2')).toEqual([]);
      h.clock.now += 11 * MIN;
      expect(await mine('web-2')).toHaveLength(1);
      expect((await h.admin('PUT', '/api/v1/groups/debian/windows', { windows: [] })).statusCode).toBe(200);
      expect((await h.admin('PUT', '/api/v1/groups/web/windows', { windows: [] })).statusCode).toBe(200);
      expect((await h.admin('PUT', '/api/v1/groups/prod/windows', { windows: [] })).statusCode).toBe(200);
    });

    it('creates jobs for 10,000 devices of a dynamic group and hands them out, with set-based queries', async () => {
      expect((await h.admin('POST', '/api/v1/groups', { name: 'bulk' })).statusCode).toBe(201);
      expect((await h.admin('POST', '/api/v1/groups', { name: 'tier-a', query: { all: [{ label: 'tier=a' }, { os: { codename: 'bookworm' } }] } })).statusCode).toBe(201);
      const db = h.database.db;
      const template = await db.selectFrom('devices').selectAll().where('id', '=', devs['lone-1']!.deviceId).executeTakeFirstOrThrow();
      const bulk = (await db.selectFrom('groups').select('id').where('name', '=', 'bulk').executeTakeFirstOrThrow()).id;
      const rows = Array.from({ length: 10_000 }, (_, i) => ({
        ...template,
        id: newId(),
        hostname: `bulk-${String(i).padStart(5, '0')}`,
        token_hash: hashToken(`bulk-token-${i}-${newId()}`),
        group_id: bulk,
      }));
      for (let i = 0; i < rows.length; i += 500) await db.insertInto('devices').values(rows.slice(i, i + 500)).execute();
      const labels = rows.filter((_, i) => i % 2 === 0).map((d) => ({ device_id: d.id, label: 'tier=a' }));
      for (let i = 0; i < labels.length; i += 1000) await db.insertInto('device_labels').values(labels.slice(i, i + 1000)).execute();
      await decide(P[4]!, 'bulk', 'approve');
      await decide(P[5]!, 'tier-a', 'approve');

      const t0 = Date.now();
      const d = await createDeployment(db, h.clock.now, {
        patches: [P[4]!, P[5]!],
        groups: ['tier-a'],
        exclude: { devices: [rows[0]!.hostname] },
        start: now(),
        rings: [
          { name: 'first', percent: 10, bakeMinutes: 0, failureThreshold: 0, maxNotReporting: 0 },
          { name: 'rest', percent: 100, bakeMinutes: 0, failureThreshold: 0, maxNotReporting: 0 },
        ],
      });
      const created = Date.now() - t0;
      // counts are jobs: two patches per device, 500 devices in the first ring (10 % of 4,999, rounded up)
      expect(d.rings.map((r) => r.counts.total)).toEqual([1000, 8998]);
      expect(d.jobs.install).toEqual({ queued: 2 * 4999 });
      const t1 = Date.now();
      let handed = 0;
      for (const r of rows.slice(0, 200)) handed += (await jobsForDevice(db, h.clock.now, r.id)).length;
      const polled = Date.now() - t1;
      // 200 polls of a 4,999-device deployment: ring 1's devices get both patches, the rest nothing yet
      const ring1 = await db.selectFrom('jobs').select('device_id').where('deployment_id', '=', d.id).where('ring', '=', 0).execute();
      const firstRing = new Set(ring1.map((j) => j.device_id));
      expect(handed).toBe(2 * rows.slice(0, 200).filter((r) => firstRing.has(r.id)).length);
      // generous bounds: a query per device would take far longer on either database
      expect(created).toBeLessThan(30_000);
      expect(polled).toBeLessThan(15_000);
    }, 120_000);
  });
}
