import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentJob, JobReportInput, PackageFact, PatchManifest } from '@patchwarden/core';
import { testDatabases } from '../testing/databases.js';
import { hashed, hostPackages, packagePatch } from '../testing/fixtures.js';
import { checkinBody, makeHarness, systemFacts, type Harness } from '../testing/harness.js';

const bookworm = [{ family: 'linux', distribution: 'debian', release: 'bookworm', arch: ['amd64'] }];
const MIN = 60_000;

const patch = (id: string, name: string, fixed: string): PatchManifest => packagePatch(id, name, fixed);

interface Dev {
  deviceId: string;
  token: string;
  hostname: string;
}

for (const tdb of testDatabases) {
  describe.skipIf(!tdb.available)(`deployments on ${tdb.name}`, () => {
    let h: Harness;
    const inv = hashed(hostPackages());
    const [a, b, c] = [inv.packages[10]!, inv.packages[20]!, inv.packages[30]!];
    const P1 = 'test/p1';
    const P2 = 'test/p2';
    const P3 = 'test/p3';
    const web: Dev[] = [];
    const db: Dev[] = [];

    async function enroll(hostname: string, group: string): Promise<Dev> {
      const d = await h.enroll({ hostname, group });
      const r = await h.checkin(d.token, checkinBody(systemFacts(hostname), { mode: 'full', ...hashed(inv.packages as PackageFact[]) }));
      expect(r.statusCode, r.body).toBe(200);
      return { deviceId: d.deviceId, token: d.token, hostname };
    }
    const agent = (d: Dev, method: string, url: string, payload?: unknown) =>
      h.app.inject({ method: method as 'GET', url, headers: { authorization: `Bearer ${d.token}` }, ...(payload === undefined ? {} : { payload: payload as object }) });
    async function jobs(d: Dev): Promise<AgentJob[]> {
      const r = await agent(d, 'GET', '/api/v1/agent/jobs');
      expect(r.statusCode, r.body).toBe(200);
      return r.json().jobs;
    }
    const report = (jobId: string, state: JobReportInput['state'], extra: Partial<JobReportInput> = {}): JobReportInput => ({
      jobId,
      state,
      events: [
        { at: new Date(h.clock.now).toISOString(), state: 'downloading' },
        { at: new Date(h.clock.now).toISOString(), state: 'installing', message: 'dpkg -i' },
      ],
      ...extra,
    });
    async function approve(patchId: string, group: string) {
      const r = await h.admin('POST', '/api/v1/approvals', { patch: patchId, group, decision: 'approve' });
      expect(r.statusCode, r.body).toBe(200);
    }
    const now = () => new Date(h.clock.now).toISOString();
    async function count(table: 'deployments' | 'jobs' | 'job_events' | 'approvals') {
      const r = await h.database.db.selectFrom(table).select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
      return Number(r.n);
    }

    beforeAll(async () => {
      h = await makeHarness(await tdb.open());
      const up = await h.admin('POST', '/api/v1/catalog/patches', {
        patches: [patch(P1, a.name, `${a.version}+fix1`), patch(P2, b.name, `${b.version}+fix1`), patch(P3, c.name, `${c.version}+fix1`)],
        coverage: bookworm,
        source: { kind: 'test' },
      });
      expect(up.statusCode, up.body).toBe(200);
      for (const g of ['web', 'db']) expect((await h.admin('POST', '/api/v1/groups', { name: g })).statusCode).toBe(201);
      for (let i = 1; i <= 4; i++) web.push(await enroll(`web-${i}`, 'web'));
      for (let i = 1; i <= 2; i++) db.push(await enroll(`db-${i}`, 'db'));
    });
    afterAll(async () => h?.close());

    it('refuses a deployment of a patch the group has not approved, naming it', async () => {
      const r = await h.admin('POST', '/api/v1/deployments', { patches: [P1], groups: ['web'], start: now() });
      expect(r.statusCode, r.body).toBe(409);
      expect(r.json().error.code).toBe('E_CONFLICT');
      expect(r.json().error.message).toContain(`${P1} for group web`);
      expect(await count('deployments')).toBe(0);
      const decline = await h.admin('POST', '/api/v1/approvals', { patch: P1, group: 'web', decision: 'decline' });
      expect(decline.json()).toMatchObject({ decision: 'decline', group: 'web' });
      expect((await h.admin('POST', '/api/v1/deployments', { patches: [P1], groups: ['web'], start: now() })).statusCode).toBe(409);
    });

    let first: string;
    const installJobs = new Map<string, AgentJob>();

    it('deploys in two rings: ring 1 first, ring 2 after a healthy bake', async () => {
      await approve(P1, 'web');
      const states = await h.admin('GET', `/api/v1/devices/web-1/patches`);
      expect(states.json().items.find((i: { patch: string }) => i.patch === P1).state).toBe('needed');
      const r = await h.admin('POST', '/api/v1/deployments', {
        patches: [P1],
        groups: ['web'],
        start: now(),
        rings: [
          { name: 'canary', percent: 50, bakeMinutes: 60 },
          { name: 'rest', percent: 100 },
        ],
      });
      expect(r.statusCode, r.body).toBe(201);
      first = r.json().id;
      expect(r.json().rings.map((x: { counts: { total: number } }) => x.counts.total)).toEqual([2, 2]);
      expect(r.json()).toMatchObject({ status: 'running', currentRing: 0, jobs: { install: { queued: 4 } } });

      const handed = await Promise.all(web.map(jobs));
      const ring1 = web.filter((_, i) => handed[i]!.length === 1);
      const ring2 = web.filter((_, i) => handed[i]!.length === 0);
      expect(ring1).toHaveLength(2);
      expect(ring2).toHaveLength(2);
      for (const [i, d] of web.entries()) if (handed[i]![0]) installJobs.set(d.deviceId, handed[i]![0]);
      const job = handed.find((x) => x.length)![0]!;
      expect(job).toMatchObject({ kind: 'install', deploymentId: first, patch: { id: P1, revision: 1 }, target: 'test/p1.json', deadline: null });

      for (const d of ring1) {
        const j = installJobs.get(d.deviceId)!;
        const rep = await agent(d, 'POST', `/api/v1/agent/jobs/${j.id}/report`, report(j.id, 'done'));
        expect(rep.statusCode, rep.body).toBe(200);
        expect(rep.json()).toMatchObject({ state: 'done', duplicate: false });
      }
      const baking = (await h.admin('GET', `/api/v1/deployments/${first}`)).json();
      expect(baking.rings[0]).toMatchObject({ status: 'baking', counts: { succeeded: 2 } });
      expect(baking.currentRing).toBe(0);
      for (const d of ring2) expect(await jobs(d)).toEqual([]);

      h.clock.now += 61 * MIN;
      for (const d of ring2) {
        const got = await jobs(d);
        expect(got).toHaveLength(1);
        installJobs.set(d.deviceId, got[0]!);
        const rep = await agent(d, 'POST', `/api/v1/agent/jobs/${got[0]!.id}/report`, report(got[0]!.id, 'done'));
        expect(rep.statusCode, rep.body).toBe(200);
      }
      const done = (await h.admin('GET', `/api/v1/deployments/${first}`)).json();
      expect(done).toMatchObject({ status: 'complete', currentRing: 2, jobs: { install: { done: 4 } } });
      const list = (await h.admin('GET', '/api/v1/deployments?limit=10')).json();
      expect(list).toMatchObject({ total: 1, items: [{ id: first, status: 'complete', jobs: { total: 4, succeeded: 4 } }] });
      // approval and deployment never change compliance
      const after = await h.admin('GET', `/api/v1/devices/web-1/patches`);
      expect(after.json().items.find((i: { patch: string }) => i.patch === P1).state).toBe('needed');
    });

    it('answers a second report of a job with the stored result, storing nothing', async () => {
      const d = web[0]!;
      const j = installJobs.get(d.deviceId)!;
      const events = await count('job_events');
      const again = await agent(d, 'POST', `/api/v1/agent/jobs/${j.id}/report`, report(j.id, 'failed'));
      expect(again.statusCode, again.body).toBe(200);
      expect(again.json()).toMatchObject({ jobId: j.id, state: 'done', duplicate: true, deployment: { status: 'complete' } });
      expect(await count('job_events')).toBe(events);
    });

    it("does not let a device see or report another device's job", async () => {
      const [d1, d2] = web;
      const j = installJobs.get(d1!.deviceId)!;
      const r = await agent(d2!, 'POST', `/api/v1/agent/jobs/${j.id}/report`, report(j.id, 'failed'));
      expect(r.statusCode).toBe(404);
      expect(r.json().error.code).toBe('E_NOT_FOUND');
      const unauth = await h.app.inject({ method: 'GET', url: '/api/v1/agent/jobs' });
      expect(unauth.statusCode).toBe(401);
      const asAdmin = await h.admin('GET', '/api/v1/agent/jobs');
      expect(asAdmin.statusCode).toBeGreaterThanOrEqual(400);
    });

    it('halts when failures cross the threshold, with the reason; resume hands out the ring again', async () => {
      await approve(P2, 'web');
      const r = await h.admin('POST', '/api/v1/deployments', { patches: [P2], groups: ['web'], start: now(), rings: [{ name: 'all', percent: 100, failureThreshold: 0.2 }] });
      expect(r.statusCode, r.body).toBe(201);
      const id = r.json().id as string;
      const [d1, d2, d3] = web;
      const j1 = (await jobs(d1!))[0]!;
      expect(j1.deploymentId).toBe(id);
      const rep = await agent(d1!, 'POST', `/api/v1/agent/jobs/${j1.id}/report`, report(j1.id, 'rolled-back', { detail: { before: `${b.name} ${b.version}`, after: `${b.name} ${b.version}` } }));
      expect(rep.json()).toMatchObject({ state: 'rolled-back', deployment: { status: 'halted' } });
      expect(rep.json().deployment.reason).toContain('above the failure threshold of 20%');
      const got = (await h.admin('GET', `/api/v1/deployments/${id}`)).json();
      expect(got).toMatchObject({ status: 'halted', rings: [{ status: 'halted', counts: { failed: 1, total: 4 } }] });
      expect(await jobs(d2!)).toEqual([]);
      // an administrator's resume lets the current ring go on
      const resumed = (await h.admin('POST', `/api/v1/deployments/${id}/resume`)).json();
      // the ring's verdict still says halted: its jobs go out again, later rings would wait
      expect(resumed).toMatchObject({ status: 'running', rings: [{ status: 'halted' }] });
      expect(resumed.reason).toMatch(/^resumed; ring 1: 1 of 1 finished jobs failed/);
      expect(await jobs(d2!)).toHaveLength(1);
      expect((await h.admin('POST', `/api/v1/deployments/${id}/resume`)).statusCode).toBe(409);
      const halted = await h.admin('POST', `/api/v1/deployments/${id}/halt`, { reason: 'maintenance' });
      expect(halted.json()).toMatchObject({ status: 'halted', reason: 'maintenance' });
      expect(await jobs(d3!)).toEqual([]);
    });

    it('undo creates undo jobs for the devices whose install succeeded: one device, then the rest', async () => {
      const [d1] = web;
      // one device first: the deployment keeps its state, that device alone gets an undo job
      let r = await h.admin('POST', `/api/v1/deployments/${first}/undo`, { devices: [d1!.hostname] });
      expect(r.statusCode, r.body).toBe(200);
      expect(r.json()).toMatchObject({ status: 'complete', undoJobs: 1, jobs: { undo: { queued: 1 } } });
      expect((await jobs(d1!)).filter((j) => j.deploymentId === first)).toEqual([expect.objectContaining({ kind: 'undo', undoes: installJobs.get(d1!.deviceId)!.id })]);
      expect((await jobs(web[1]!)).filter((j) => j.deploymentId === first)).toEqual([]);
      // the same device again: nothing left to undo there
      r = await h.admin('POST', `/api/v1/deployments/${first}/undo`, { devices: [d1!.deviceId] });
      expect(r.statusCode).toBe(409);
      expect(r.json().error.message).toMatch(/nothing to undo/);
      expect((await h.admin('POST', `/api/v1/deployments/${first}/undo`, { ring: 7 })).json().error.code).toBe('E_VALIDATION');
      expect((await h.admin('POST', `/api/v1/deployments/${first}/undo`, { devices: ['no-such-host'] })).json().error.code).toBe('E_NOT_FOUND');
      // the whole deployment: undo jobs for the three others, none twice for the first
      r = await h.admin('POST', `/api/v1/deployments/${first}/undo`);
      expect(r.statusCode, r.body).toBe(200);
      expect(r.json()).toMatchObject({ status: 'undone', undoJobs: 3, jobs: { undo: { queued: 4 } } });
      for (const d of web) {
        const got = (await jobs(d)).filter((j) => j.deploymentId === first);
        expect(got).toEqual([expect.objectContaining({ kind: 'undo', undoes: installJobs.get(d.deviceId)!.id, patch: { id: P1, revision: 1 } })]);
      }
      expect((await h.admin('POST', `/api/v1/deployments/${first}/undo`)).json().error.code).toBe('E_CONFLICT');
    });

    it("hands out jobs only in the group's window, in the device's time zone, across a DST change", async () => {
      const put = await h.admin('PUT', '/api/v1/groups/db/windows', { windows: [{ kind: 'weekly', days: ['sun'], start: '03:00', durationMinutes: 60 }] });
      expect(put.statusCode, put.body).toBe(200);
      expect((await h.admin('GET', '/api/v1/groups/db/windows')).json()).toMatchObject({ group: 'db', windows: [{ start: '03:00' }], freezes: [] });
      await approve(P3, 'db');
      // Saturday before the end of summer time in Berlin (25 October 2026, 03:00 CEST → 02:00 CET)
      h.clock.now = Date.parse('2026-10-24T12:00:00Z');
      const r = await h.admin('POST', '/api/v1/deployments', { patches: [P3], groups: ['db'], start: now() });
      expect(r.statusCode, r.body).toBe(201);
      expect(await jobs(db[0]!)).toEqual([]);
      // 03:00 CEST would be 01:00Z; after the change 01:30Z is 02:30 CET, still before the window
      h.clock.now = Date.parse('2026-10-25T01:30:00Z');
      expect(await jobs(db[0]!)).toEqual([]);
      h.clock.now = Date.parse('2026-10-25T02:05:00Z');
      expect(await jobs(db[0]!)).toHaveLength(1);
      h.clock.now = Date.parse('2026-10-25T03:05:00Z');
      expect(await jobs(db[1]!)).toEqual([]);
    });

    it('deploys to devices by hostname, checking the approval of their group', async () => {
      h.clock.now = Date.parse('2026-11-29T02:10:00Z'); // a Sunday, 03:10 in Berlin: db's window is open
      const refused = await h.admin('POST', '/api/v1/deployments', { patches: [P1], devices: ['db-1'], start: now() });
      expect(refused.statusCode).toBe(409);
      expect(refused.json().error.message).toContain(`${P1} for group db`);
      const r = await h.admin('POST', '/api/v1/deployments', { patches: [P3], devices: ['db-1', db[1]!.deviceId], start: now() });
      expect(r.statusCode, r.body).toBe(201);
      expect(r.json()).toMatchObject({ target: { devices: [db[0]!.deviceId, db[1]!.deviceId].sort() }, rings: [{ counts: { total: 2 } }] });
      const missing = await h.admin('POST', '/api/v1/deployments', { patches: [P3], devices: ['db-9'], start: now() });
      expect(missing.json().error).toMatchObject({ code: 'E_NOT_FOUND', message: "no active device 'db-9'" });
      const d2 = (await jobs(db[1]!)).filter((j) => j.deploymentId === r.json().id);
      expect(d2).toHaveLength(1);
      // a freeze overrides the window: nothing goes out while it lasts
      const windows = [{ kind: 'weekly', days: ['sun'], start: '03:00', durationMinutes: 60 }];
      const freeze = { kind: 'absolute', start: h.clock.now - MIN, end: h.clock.now + 10 * MIN, reason: 'release day' };
      expect((await h.admin('PUT', '/api/v1/groups/db/windows', { windows, freezes: [freeze] })).statusCode).toBe(200);
      expect((await jobs(db[1]!)).filter((j) => j.deploymentId === r.json().id)).toEqual([]);
      h.clock.now += 11 * MIN;
      expect((await jobs(db[1]!)).filter((j) => j.deploymentId === r.json().id)).toHaveLength(1);
    });

    it('answers hostile inputs with 4xx codes and changes nothing', async () => {
      const before = await Promise.all((['deployments', 'jobs', 'job_events', 'approvals'] as const).map(count));
      const cases: [string, string, unknown, number, string][] = [
        ['POST', '/api/v1/deployments', { patches: ['test/nope'], groups: ['web'], start: now() }, 404, 'E_NOT_FOUND'],
        ['POST', '/api/v1/deployments', { patches: [P1], groups: ['nope'], start: now() }, 404, 'E_NOT_FOUND'],
        ['POST', '/api/v1/deployments', { patches: [P1], start: now() }, 400, 'E_VALIDATION'],
        ['POST', '/api/v1/deployments', { patches: [P1], groups: [], labels: [], start: now() }, 400, 'E_VALIDATION'],
        ['POST', '/api/v1/deployments', { patches: [P1], groups: ['web'], exclude: { hosts: ['web-1'] }, start: now() }, 400, 'E_VALIDATION'],
        ['POST', '/api/v1/deployments', { patches: [P1], groups: ['web'], start: 'tomorrow' }, 400, 'E_VALIDATION'],
        ['POST', '/api/v1/deployments', { patches: [P1], groups: ['web'], start: now(), deadline: '2000-01-01T00:00:00Z' }, 400, 'E_VALIDATION'],
        ['POST', '/api/v1/deployments', { patches: [P1], groups: ['web'], start: now(), rings: [{ name: 'x', percent: 0 }] }, 400, 'E_VALIDATION'],
        ['GET', '/api/v1/deployments/not-an-id', undefined, 400, 'E_VALIDATION'],
        ['GET', '/api/v1/deployments/00000000-0000-4000-8000-000000000000', undefined, 404, 'E_NOT_FOUND'],
        ['POST', '/api/v1/deployments/00000000-0000-4000-8000-000000000000/undo', undefined, 404, 'E_NOT_FOUND'],
        ['POST', '/api/v1/approvals', { patch: 'test/nope', group: 'web', decision: 'approve' }, 404, 'E_NOT_FOUND'],
        ['POST', '/api/v1/approvals', { patch: P1, group: 'web', decision: 'maybe' }, 400, 'E_VALIDATION'],
        ['PUT', '/api/v1/groups/db/windows', { windows: [{ kind: 'weekly', days: ['sun'], start: '25:00', durationMinutes: 60 }] }, 400, 'E_VALIDATION'],
        ['PUT', '/api/v1/groups/nope/windows', { windows: [] }, 404, 'E_NOT_FOUND'],
      ];
      for (const [method, url, body, status, code] of cases) {
        const r = await h.admin(method, url, body);
        expect(r.statusCode, `${method} ${url} ${r.body}`).toBe(status);
        expect(r.json().error.code).toBe(code);
      }
      const d = db[1]!;
      const jobId = (await h.database.db.selectFrom('jobs').select('id').where('device_id', '=', d.deviceId).executeTakeFirstOrThrow()).id;
      const agentCases: [string, unknown, number, string][] = [
        [`/api/v1/agent/jobs/${jobId}/report`, report(jobId, 'done', { detail: { audit: 'x'.repeat(70_000) } }), 400, 'E_VALIDATION'],
        [`/api/v1/agent/jobs/${jobId}/report`, { ...report(jobId, 'done'), padding: 'x'.repeat(600_000) }, 413, 'E_PAYLOAD_TOO_LARGE'],
        [`/api/v1/agent/jobs/${jobId}/report`, report(jobId, 'installing' as 'done'), 400, 'E_VALIDATION'],
        [`/api/v1/agent/jobs/${jobId}/report`, report(installJobs.get(web[0]!.deviceId)!.id, 'done'), 400, 'E_VALIDATION'],
        ['/api/v1/agent/jobs/../../etc/report', report(jobId, 'done'), 404, 'E_NOT_FOUND'],
        ['/api/v1/agent/jobs/bad%20id/report', report(jobId, 'done'), 400, 'E_VALIDATION'],
      ];
      for (const [url, body, status, code] of agentCases) {
        const r = await agent(d, 'POST', url, body);
        expect(r.statusCode, `${url} ${r.body.slice(0, 300)}`).toBe(status);
        expect(r.json().error.code).toBe(code);
      }
      expect(await Promise.all((['deployments', 'jobs', 'job_events', 'approvals'] as const).map(count))).toEqual(before);
      const job = await h.database.db.selectFrom('jobs').select(['state', 'report_json']).where('id', '=', jobId).executeTakeFirstOrThrow();
      expect(job).toEqual({ state: 'queued', report_json: null });
    });
  });
}
