import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentJob, JobReportInput, PackageFact, PatchManifest } from '@patchwarden/core';
import { testDatabases } from '../testing/databases.js';
import { hashed, hostPackages, packagePatch } from '../testing/fixtures.js';
import { checkinBody, makeHarness, systemFacts, type Harness } from '../testing/harness.js';
import { applyApprovalRules, exploitedNeededPatches } from './rules.js';

const bookworm = [{ family: 'linux', distribution: 'debian', release: 'bookworm', arch: ['amd64'] }];
const MIN = 60_000;
const DAY = 24 * 60 * MIN;

interface Dev {
  deviceId: string;
  token: string;
}

for (const tdb of testDatabases) {
  describe.skipIf(!tdb.available)(`approval rules, exploited CVEs and the test ring on ${tdb.name}`, () => {
    let h: Harness;
    const inv = hashed(hostPackages());
    const pk = (i: number) => inv.packages[i]!;
    const devs: Record<string, Dev> = {};
    // released 2026-11-01 (25 days before the test clock), critical, vendor acme
    const CRIT = 'acme/crit-1';
    const LOW = 'test/low-1';
    // released the day before the clock
    const FRESH = 'test/fresh-1';
    // no release date: its import time counts; fixes CVE-2026-1111
    const EXPL = 'test/expl-1';
    const DECLINED = 'test/declined-1';
    const MANUAL = 'test/manual-1';
    const T_OK = 'test/ring-ok';
    const T_FAIL = 'test/ring-fail';
    const T_NEVER = 'test/ring-never';
    const UNNEEDED = 'test/unneeded-1';

    const patch = (id: string, i: number, extra: Partial<PatchManifest>) => packagePatch(id, pk(i).name, `${pk(i).version}+fix1`, extra);

    async function device(hostname: string, group: string) {
      const d = await h.enroll({ hostname, group });
      const r = await h.checkin(d.token, checkinBody(systemFacts(hostname), { mode: 'full', ...hashed(inv.packages as PackageFact[]) }));
      expect(r.statusCode, r.body).toBe(200);
      devs[hostname] = d;
    }
    const agent = (d: Dev, method: string, url: string, payload?: unknown) =>
      h.app.inject({ method: method as 'GET', url, headers: { authorization: `Bearer ${d.token}` }, ...(payload === undefined ? {} : { payload: payload as object }) });
    const report = (jobId: string, state: JobReportInput['state']): JobReportInput => ({ jobId, state, events: [{ at: new Date(h.clock.now).toISOString(), state: 'installing' }] });
    async function rule(body: object) {
      const r = await h.admin('POST', '/api/v1/approval-rules', body);
      expect(r.statusCode, r.body).toBe(201);
      return r.json().id as string;
    }
    async function apply(): Promise<[string, string][]> {
      const r = await h.admin('POST', '/api/v1/approval-rules/apply');
      expect(r.statusCode, r.body).toBe(200);
      return r.json().approved.map((a: { patch: string; group: string }) => [a.patch, a.group]);
    }
    async function approvals(group: string) {
      const r = await h.admin('GET', `/api/v1/approvals?group=${group}&limit=1000`);
      return Object.fromEntries(r.json().items.map((a: { patch: string; decision: string; source: string }) => [a.patch, `${a.decision}:${a.source}`]));
    }

    beforeAll(async () => {
      h = await makeHarness(await tdb.open());
      const up = await h.admin('POST', '/api/v1/catalog/patches', {
        patches: [
          patch(CRIT, 10, { severity: 'critical', vendor: 'ACME', releaseDate: '2026-11-01' }),
          patch(LOW, 11, { severity: 'low', releaseDate: '2026-11-01' }),
          patch(FRESH, 12, { severity: 'high', releaseDate: '2026-11-25' }),
          patch(EXPL, 13, { severity: 'medium', cves: ['CVE-2026-1111', 'CVE-2026-2222'] }),
          patch(DECLINED, 14, { severity: 'critical', releaseDate: '2026-11-01' }),
          patch(MANUAL, 15, { severity: 'critical', releaseDate: '2026-11-01' }),
          patch(T_OK, 16, { severity: 'high' }),
          patch(T_FAIL, 17, { severity: 'high' }),
          patch(T_NEVER, 18, { severity: 'high' }),
          packagePatch(UNNEEDED, 'zzz-not-installed', '1.0-1', { severity: 'critical', cves: ['CVE-2026-1111'] }),
        ],
        coverage: bookworm,
        source: { kind: 'test' },
      });
      expect(up.statusCode, up.body).toBe(200);
      for (const name of ['sev', 'vendor', 'cool', 'expl', 'canary', 'prodsrv', 'later']) expect((await h.admin('POST', '/api/v1/groups', { name })).statusCode).toBe(201);
      expect((await h.admin('PATCH', '/api/v1/groups/canary', { testRing: true })).statusCode).toBe(200);
      expect((await h.admin('PATCH', '/api/v1/groups/prodsrv', { requireTestPass: true })).statusCode).toBe(200);
      await device('can-1', 'canary');
      await device('prod-1', 'prodsrv');
    });
    afterAll(async () => h?.close());

    it('approves by minimum severity, never replacing a manual approve or decline', async () => {
      await h.admin('POST', '/api/v1/approvals', { patch: DECLINED, group: 'sev', decision: 'decline' });
      await h.admin('POST', '/api/v1/approvals', { patch: MANUAL, group: 'sev', decision: 'approve' });
      const id = await rule({ group: 'sev', minSeverity: 'high' });
      const approved = await apply();
      expect(approved.filter(([, g]) => g === 'sev').map(([p]) => p).sort()).toEqual([CRIT, FRESH, T_FAIL, T_NEVER, T_OK].sort());
      expect(await approvals('sev')).toMatchObject({ [DECLINED]: 'decline:manual', [MANUAL]: 'approve:manual', [CRIT]: 'approve:rule' });
      expect(await approvals('sev')).not.toHaveProperty(LOW);
      // a patch no device needs is left alone
      expect(await approvals('sev')).not.toHaveProperty(UNNEEDED);
      const listed = (await h.admin('GET', '/api/v1/approvals?group=sev&patch=acme%2Fcrit-1')).json().items[0];
      expect(listed).toMatchObject({ source: 'rule', ruleId: id });
      // applying again approves nothing new
      expect((await apply()).filter(([, g]) => g === 'sev')).toEqual([]);
      // approval never changes compliance
      const states = (await h.admin('GET', '/api/v1/devices/can-1/patches')).json();
      expect(states.items.find((i: { patch: string }) => i.patch === CRIT).state).toBe('needed');
    });

    it('approves by vendor (any case; the id namespace when the manifest names none)', async () => {
      await rule({ group: 'vendor', vendors: ['acme'] });
      expect((await apply()).filter(([, g]) => g === 'vendor')).toEqual([[CRIT, 'vendor']]);
    });

    it('waits out a cool-down from the release date, or from the import time without one', async () => {
      await rule({ group: 'cool', minAgeDays: 7, minSeverity: 'medium' });
      expect((await apply()).filter(([, g]) => g === 'cool').map(([p]) => p)).toEqual([CRIT, DECLINED, MANUAL]);
      // released 2026-11-25: 7 days later it is old enough; EXPL was imported 2026-11-26T10:00Z
      h.clock.now = Date.parse('2026-12-02T00:00:00Z');
      expect((await apply()).filter(([, g]) => g === 'cool').map(([p]) => p)).toEqual([FRESH]);
      h.clock.now = Date.parse('2026-11-26T10:00:00Z') + 7 * DAY;
      expect((await apply()).filter(([, g]) => g === 'cool').map(([p]) => p).sort()).toEqual([EXPL, T_FAIL, T_NEVER, T_OK].sort());
    });

    it('approves only patches that fix an exploited CVE; lists exploited needed patches', async () => {
      await rule({ group: 'expl', exploitedOnly: true });
      expect((await apply()).filter(([, g]) => g === 'expl')).toEqual([]);
      expect(await exploitedNeededPatches(h.database.db)).toEqual([]);
      const flag = await h.admin('POST', '/api/v1/cves/CVE-2026-1111/exploited', { exploited: true });
      expect(flag.json()).toMatchObject({ cve: 'CVE-2026-1111', exploited: true });
      expect((await h.admin('GET', '/api/v1/cves/exploited')).json()).toMatchObject({ total: 1, items: [{ cve: 'CVE-2026-1111' }] });
      expect(await exploitedNeededPatches(h.database.db)).toEqual([{ patch: EXPL, title: expect.any(String), severity: 'medium', cves: ['CVE-2026-1111'], devices: 2 }]);
      expect((await h.admin('GET', '/api/v1/cves/exploited/needed')).json()).toMatchObject({ total: 1, items: [{ patch: EXPL }] });
      expect(await applyApprovalRules(h.database.db, h.clock.now)).toEqual([{ patch: EXPL, group: 'expl', ruleId: expect.any(String) }]);
      expect((await h.admin('POST', '/api/v1/cves/CVE-2026-1111/exploited', { exploited: false })).json()).toMatchObject({ exploited: false, markedAt: null });
      expect(await exploitedNeededPatches(h.database.db)).toEqual([]);
    });

    it('lists and deletes rules; the approvals a deleted rule made stay', async () => {
      const list = (await h.admin('GET', '/api/v1/approval-rules')).json();
      expect(list.total).toBe(4);
      expect(list.items.find((r: { group: string }) => r.group === 'cool')).toMatchObject({ minAgeDays: 7, minSeverity: 'medium', vendors: null, exploitedOnly: false, requireTestPass: false });
      const id = list.items.find((r: { group: string }) => r.group === 'vendor').id;
      expect((await h.admin('DELETE', `/api/v1/approval-rules/${id}`)).statusCode).toBe(204);
      expect((await h.admin('DELETE', `/api/v1/approval-rules/${id}`)).json().error.code).toBe('E_NOT_FOUND');
      expect(await approvals('vendor')).toEqual({ [CRIT]: 'approve:rule' });
      const bad: [object, number][] = [
        [{ group: 'nope' }, 404],
        [{ group: 'sev', minSeverity: 'extreme' }, 400],
        [{ group: 'sev', vendors: [] }, 400],
        [{ group: 'sev', minAgeDays: -1 }, 400],
        [{ group: 'sev', when: 'always' }, 400],
      ];
      for (const [body, status] of bad) expect((await h.admin('POST', '/api/v1/approval-rules', body)).statusCode).toBe(status);
      expect((await h.admin('POST', '/api/v1/cves/not-a-cve/exploited', { exploited: true })).statusCode).toBe(400);
    });

    it('refuses a manual approval for a group that requires a test-ring pass until the patch passed', async () => {
      const refused = await h.admin('POST', '/api/v1/approvals', { patch: T_OK, group: 'prodsrv', decision: 'approve' });
      expect(refused.statusCode).toBe(409);
      expect(refused.json().error.code).toBe('E_CONFLICT');
      expect(refused.json().error.message).toBe(`group 'prodsrv' requires a test-ring pass: patch ${T_OK} has not passed the test ring; use test ring 'canary'`);
      // a decline is always accepted
      expect((await h.admin('POST', '/api/v1/approvals', { patch: T_NEVER, group: 'prodsrv', decision: 'decline' })).statusCode).toBe(200);

      for (const p of [T_OK, T_FAIL]) expect((await h.admin('POST', '/api/v1/approvals', { patch: p, group: 'canary', decision: 'approve' })).statusCode).toBe(200);
      const d = await h.admin('POST', '/api/v1/deployments', {
        patches: [T_OK, T_FAIL],
        groups: ['canary'],
        start: new Date(h.clock.now).toISOString(),
        rings: [{ name: 'canary', percent: 100, bakeMinutes: 60, failureThreshold: 1 }],
      });
      expect(d.statusCode, d.body).toBe(201);
      expect(d.json().target.testRings).toEqual(['canary']);
      const got: AgentJob[] = (await agent(devs['can-1']!, 'GET', '/api/v1/agent/jobs')).json().jobs;
      expect(got).toHaveLength(2);
      for (const j of got) {
        const r = await agent(devs['can-1']!, 'POST', `/api/v1/agent/jobs/${j.id}/report`, report(j.id, j.patch.id === T_OK ? 'done' : 'failed'));
        expect(r.statusCode, r.body).toBe(200);
      }
      // done, but the ring still bakes
      expect((await h.admin('POST', '/api/v1/approvals', { patch: T_OK, group: 'prodsrv', decision: 'approve' })).statusCode).toBe(409);
      const laterRule = await rule({ group: 'later', requireTestPass: true, minSeverity: 'high' });
      expect((await apply()).filter(([, g]) => g === 'later')).toEqual([]);

      h.clock.now += 61 * MIN;
      const ok = await h.admin('POST', '/api/v1/approvals', { patch: T_OK, group: 'prodsrv', decision: 'approve' });
      expect(ok.statusCode, ok.body).toBe(200);
      // the failed patch never passes
      const failed = await h.admin('POST', '/api/v1/approvals', { patch: T_FAIL, group: 'prodsrv', decision: 'approve' });
      expect(failed.statusCode).toBe(409);
      expect(failed.json().error.message).toContain('has not passed the test ring');
      // rules wait for the pass as well: only the passed patch, and among high ones only it
      const byRule = (await apply()).filter(([, g]) => g === 'later').map(([p]) => p);
      expect(byRule).toEqual([T_OK]);
      const sevRule = (await h.admin('GET', '/api/v1/approval-rules')).json().items.find((r: { id: string }) => r.id === laterRule);
      expect(sevRule).toMatchObject({ requireTestPass: true });
      // a group's own requirement holds for rules too: the rule for prodsrv approves nothing new unpassed
      await rule({ group: 'prodsrv', minSeverity: 'low' });
      const forProd = (await apply()).filter(([, g]) => g === 'prodsrv').map(([p]) => p);
      expect(forProd).toEqual([]);
    });
  });
}
