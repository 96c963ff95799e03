import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyWebhook, type AgentJob, type JobReportInput, type PackageFact, type WebhookBody } from '@patchwarden/core';
import { testDatabases } from '../testing/databases.js';
import { hashed, hostPackages, packagePatch } from '../testing/fixtures.js';
import { checkinBody, makeHarness, systemFacts, type Harness } from '../testing/harness.js';
import { notifyPatchExploitedNeeded } from './events.js';
import { RESPONSE_LIMIT, WebhookWorker, type WorkerLog } from './worker.js';

const SEC = 1000;

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  raw: string;
  body: WebhookBody<Record<string, unknown>>;
}

/** A webhook receiver on 127.0.0.1: records every request; answers the queued statuses, then 200. */
async function receiver() {
  const got: Received[] = [];
  const answers: { status: number; body?: string; headers?: Record<string, string> }[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      got.push({ path: req.url ?? '', headers: req.headers, raw, body: JSON.parse(raw) as Received['body'] });
      const a = answers.shift() ?? { status: 200, body: 'thanks' };
      res.writeHead(a.status, a.headers ?? { 'content-type': 'text/plain' });
      res.end(a.body ?? '');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return { url: (path = '/hook') => `http://127.0.0.1:${port}${path}`, got, answers, close: () => new Promise<void>((r) => server.close(() => r())) };
}

function captureLog(): WorkerLog & { lines: string[] } {
  const lines: string[] = [];
  const put = (obj: object, msg: string) => void lines.push(`${msg} ${JSON.stringify(obj)}`);
  return { lines, info: put, warn: put, error: put };
}

for (const tdb of testDatabases) {
  describe.skipIf(!tdb.available)(`webhooks on ${tdb.name}`, () => {
    let h: Harness;
    let rx: Awaited<ReturnType<typeof receiver>>;
    let worker: WebhookWorker;
    let log: ReturnType<typeof captureLog>;
    const inv = hashed(hostPackages());
    const [a, b] = [inv.packages[10]!, inv.packages[20]!];
    const P1 = 'test/p1';
    const P2 = 'test/p2';
    const web: { deviceId: string; token: string; hostname: string }[] = [];
    let hook: { id: string; secret: string };

    const agent = (token: string, method: string, url: string, payload?: unknown) =>
      h.app.inject({ method: method as 'GET', url, headers: { authorization: `Bearer ${token}` }, ...(payload === undefined ? {} : { payload: payload as object }) });
    const now = () => new Date(h.clock.now).toISOString();
    const report = (jobId: string, state: JobReportInput['state']): JobReportInput => ({
      jobId,
      state,
      events: [
        { at: now(), state: 'installing', message: 'dpkg -i' },
        { at: now(), state, message: `ended ${state}` },
        { at: now(), state },
      ],
    });
    /** every request the receiver got since `mark`, each checked with core's verifier */
    const since = (mark: number, secret = hook.secret) =>
      rx.got.slice(mark).map((r) => {
        const v = verifyWebhook({ secret, body: r.raw, timestamp: r.headers['x-patchwarden-timestamp'] as string, signature: r.headers['x-patchwarden-signature'] as string, now: h.clock.now });
        expect(v, r.raw).toMatchObject({ ok: true });
        expect(r.headers['x-patchwarden-event']).toBe(r.body.event);
        expect(r.headers['x-patchwarden-delivery']).toBe(r.body.id);
        expect(r.headers['content-type']).toBe('application/json');
        return r;
      });

    beforeAll(async () => {
      h = await makeHarness(await tdb.open());
      rx = await receiver();
      log = captureLog();
      worker = new WebhookWorker(h.database.db, () => h.clock.now);
      worker.log = log;
      const up = await h.admin('POST', '/api/v1/catalog/patches', {
        patches: [packagePatch(P1, a.name, `${a.version}+fix1`, { cves: ['CVE-2026-0001', 'CVE-2026-0002'] }), packagePatch(P2, b.name, `${b.version}+fix1`)],
        coverage: [{ family: 'linux', distribution: 'debian', release: 'bookworm', arch: ['amd64'] }],
        source: { kind: 'test' },
      });
      expect(up.statusCode, up.body).toBe(200);
      expect((await h.admin('POST', '/api/v1/groups', { name: 'web' })).statusCode).toBe(201);
      for (let i = 1; i <= 4; i++) {
        const hostname = `web-${i}`;
        const d = await h.enroll({ hostname, group: 'web' });
        const r = await h.checkin(d.token, checkinBody(systemFacts(hostname), { mode: 'full', ...hashed(inv.packages as PackageFact[]) }));
        expect(r.statusCode, r.body).toBe(200);
        web.push({ deviceId: d.deviceId, token: d.token, hostname });
      }
    });
    afterAll(async () => {
      await worker?.stop();
      await h?.close();
      await rx?.close();
    });

    it('refuses bad URLs, unknown events and weak secrets with E_VALIDATION, storing nothing', async () => {
      const cases: unknown[] = [
        { url: 'ftp://example.com/hook', events: ['ping'] },
        { url: 'file:///etc/passwd', events: ['ping'] },
        { url: 'not a url', events: ['ping'] },
        { url: 'http://user:pass@127.0.0.1/hook', events: ['ping'] },
        { url: 'https://token@example.com/hook', events: ['ping'] },
        { url: `https://example.com/${'x'.repeat(2100)}`, events: ['ping'] },
        { url: rx.url(), events: ['job.done'] },
        { url: rx.url(), events: [] },
        { url: rx.url() },
        { url: rx.url(), events: ['ping'], secret: 'short' },
        { url: rx.url(), events: ['ping'], extra: 1 },
      ];
      for (const body of cases) {
        const r = await h.admin('POST', '/api/v1/webhooks', body);
        expect(r.statusCode, `${JSON.stringify(body).slice(0, 100)} ${r.body}`).toBe(400);
        expect(r.json().error.code).toBe('E_VALIDATION');
      }
      expect((await h.admin('GET', '/api/v1/webhooks')).json()).toEqual({ items: [] });
      expect((await h.admin('DELETE', '/api/v1/webhooks/00000000-0000-4000-8000-000000000000')).json().error.code).toBe('E_NOT_FOUND');
      expect((await h.admin('POST', '/api/v1/webhooks/00000000-0000-4000-8000-000000000000/test')).json().error.code).toBe('E_NOT_FOUND');
      expect((await h.admin('GET', '/api/v1/webhooks/nope/deliveries')).json().error.code).toBe('E_VALIDATION');
    });

    it('makes a 256-bit secret, shows it once, and never lists it', async () => {
      const r = await h.admin('POST', '/api/v1/webhooks', { url: rx.url('/hook/path-token-123'), events: ['deployment.halted', 'job.failed', 'job.needs-attention', 'patch.exploited-needed'] });
      expect(r.statusCode, r.body).toBe(201);
      hook = r.json();
      expect(hook.secret).toMatch(/^pwh_[A-Za-z0-9_-]{43}$/);
      const own = await h.admin('POST', '/api/v1/webhooks', { url: rx.url('/other'), events: ['ping', 'ping'], secret: 'my-own-secret-of-32-characters!!' });
      expect(own.json()).toMatchObject({ events: ['ping'], secret: 'my-own-secret-of-32-characters!!' });
      const list = await h.admin('GET', '/api/v1/webhooks');
      const byId = (x: { id: string }, y: { id: string }) => x.id.localeCompare(y.id);
      expect(list.json().items.sort(byId)).toEqual(
        [
          { id: hook.id, url: rx.url('/hook/path-token-123'), events: ['deployment.halted', 'job.failed', 'job.needs-attention', 'patch.exploited-needed'], createdAt: now() },
          { id: own.json().id, url: rx.url('/other'), events: ['ping'], createdAt: now() },
        ].sort(byId),
      );
      expect(list.body).not.toContain(hook.secret);
      expect(list.body).not.toContain('my-own-secret');
      expect((await h.admin('DELETE', `/api/v1/webhooks/${own.json().id}`)).json()).toMatchObject({ id: own.json().id });
      expect((await h.admin('GET', '/api/v1/webhooks')).json().items).toHaveLength(1);
    });

    it('sends a signed ping that the receiver verifies with the core function', async () => {
      const mark = rx.got.length;
      const t = await h.admin('POST', `/api/v1/webhooks/${hook.id}/test`);
      expect(t.statusCode, t.body).toBe(202);
      expect(await worker.tick()).toBe(1);
      const [ping] = since(mark);
      expect(ping).toMatchObject({ path: '/hook/path-token-123', body: { id: t.json().deliveryId, event: 'ping', createdAt: now(), data: { webhookId: hook.id } } });
      expect(ping!.headers['x-patchwarden-timestamp']).toBe(String(h.clock.now / 1000));
      expect(await worker.tick()).toBe(0);
      const d = (await h.admin('GET', `/api/v1/webhooks/${hook.id}/deliveries`)).json();
      expect(d).toEqual({
        total: 1,
        items: [{ id: t.json().deliveryId, event: 'ping', status: 'delivered', attempts: 1, lastStatus: 200, lastError: null, createdAt: now(), lastAttemptAt: now(), nextAttemptAt: null, deliveredAt: now() }],
      });
    });

    it('a tampered body, a wrong secret and a stale timestamp fail verification', async () => {
      const r = rx.got.at(-1)!;
      const ok = { secret: hook.secret, body: r.raw, timestamp: r.headers['x-patchwarden-timestamp'] as string, signature: r.headers['x-patchwarden-signature'] as string, now: h.clock.now };
      expect(verifyWebhook(ok).ok).toBe(true);
      expect(verifyWebhook({ ...ok, body: r.raw.replace('ping', 'pong') })).toEqual({ ok: false, reason: 'mismatch' });
      expect(verifyWebhook({ ...ok, secret: 'pwh_not-the-secret-at-all-0000000000000000000' })).toEqual({ ok: false, reason: 'mismatch' });
      expect(verifyWebhook({ ...ok, now: h.clock.now + 6 * 60 * SEC })).toEqual({ ok: false, reason: 'stale' });
    });

    let deployment: string;
    const jobOf = new Map<string, AgentJob>();

    it('fires job.failed and deployment.halted on a report that crosses the threshold', async () => {
      expect((await h.admin('POST', '/api/v1/approvals', { patch: P1, group: 'web', decision: 'approve' })).statusCode).toBe(200);
      const r = await h.admin('POST', '/api/v1/deployments', { patches: [P1], groups: ['web'], start: now(), rings: [{ name: 'all', percent: 100, failureThreshold: 0.2 }] });
      expect(r.statusCode, r.body).toBe(201);
      deployment = r.json().id;
      for (const d of web) jobOf.set(d.hostname, (await agent(d.token, 'GET', '/api/v1/agent/jobs')).json().jobs[0]);
      const mark = rx.got.length;
      const j = jobOf.get('web-1')!;
      const rep = await agent(web[0]!.token, 'POST', `/api/v1/agent/jobs/${j.id}/report`, report(j.id, 'failed'));
      expect(rep.json()).toMatchObject({ deployment: { status: 'halted' } });
      expect(await worker.tick()).toBe(2);
      const got = since(mark).map((x) => x.body);
      expect(got.map((x) => x.event).sort()).toEqual(['deployment.halted', 'job.failed']);
      expect(got.find((x) => x.event === 'job.failed')!.data).toEqual({
        jobId: j.id,
        kind: 'install',
        deploymentId: deployment,
        device: { id: web[0]!.deviceId, hostname: 'web-1' },
        patch: { id: P1, revision: 1 },
        state: 'failed',
        message: 'ended failed',
      });
      const halted = got.find((x) => x.event === 'deployment.halted')!.data;
      expect(halted).toMatchObject({ deploymentId: deployment, by: 'threshold', patches: [P1] });
      expect(halted.reason).toContain('above the failure threshold of 20%');
      // a second report of the same job stores nothing and raises nothing
      await agent(web[0]!.token, 'POST', `/api/v1/agent/jobs/${j.id}/report`, report(j.id, 'failed'));
      expect(await worker.tick()).toBe(0);
    });

    it('fires job.needs-attention (and the halt again) after a resume; rolled-back is job.failed', async () => {
      expect((await h.admin('POST', `/api/v1/deployments/${deployment}/resume`)).statusCode).toBe(200);
      const mark = rx.got.length;
      const j = jobOf.get('web-2')!;
      await agent(web[1]!.token, 'POST', `/api/v1/agent/jobs/${j.id}/report`, report(j.id, 'needs-attention'));
      expect(await worker.tick()).toBe(2);
      const got = since(mark).map((x) => x.body);
      expect(got.map((x) => x.event).sort()).toEqual(['deployment.halted', 'job.needs-attention']);
      expect(got.find((x) => x.event === 'job.needs-attention')!.data).toMatchObject({ jobId: j.id, device: { hostname: 'web-2' }, state: 'needs-attention', message: 'ended needs-attention' });

      expect((await h.admin('POST', `/api/v1/deployments/${deployment}/resume`)).statusCode).toBe(200);
      const j3 = jobOf.get('web-3')!;
      await agent(web[2]!.token, 'POST', `/api/v1/agent/jobs/${j3.id}/report`, report(j3.id, 'rolled-back'));
      await worker.tick();
      expect(since(mark + 2).map((x) => [x.body.event, x.body.data.state ?? x.body.data.by])).toEqual(expect.arrayContaining([['job.failed', 'rolled-back']]));
      // a job that succeeded raises nothing
      const before = rx.got.length;
      expect((await h.admin('POST', `/api/v1/deployments/${deployment}/resume`)).statusCode).toBe(200);
      const j4 = jobOf.get('web-4')!;
      await agent(web[3]!.token, 'POST', `/api/v1/agent/jobs/${j4.id}/report`, report(j4.id, 'done'));
      await worker.tick();
      expect(since(before).map((x) => x.body.event)).not.toContain('job.failed');
    });

    it('fires deployment.halted on a manual halt, with its reason', async () => {
      await h.admin('POST', '/api/v1/approvals', { patch: P2, group: 'web', decision: 'approve' });
      const r = await h.admin('POST', '/api/v1/deployments', { patches: [P2], groups: ['web'], start: now() });
      const mark = rx.got.length;
      const halted = await h.admin('POST', `/api/v1/deployments/${r.json().id}/halt`, { reason: 'change freeze' });
      expect(halted.json()).toMatchObject({ status: 'halted' });
      expect(await worker.tick()).toBe(1);
      expect(since(mark).map((x) => x.body)).toEqual([expect.objectContaining({ event: 'deployment.halted', data: { deploymentId: r.json().id, reason: 'change freeze', by: 'manual', patches: [P2] } })]);
    });

    it('raises patch.exploited-needed with the CVEs and the number of devices needing the patch', async () => {
      const mark = rx.got.length;
      const data = await notifyPatchExploitedNeeded(h.database.db, h.clock.now, P1);
      expect(data).toEqual({ patch: { id: P1, revision: 1, title: expect.any(String), severity: 'high' }, cves: ['CVE-2026-0001', 'CVE-2026-0002'], devicesNeeding: 4 });
      expect(await notifyPatchExploitedNeeded(h.database.db, h.clock.now, 'test/none')).toBeNull();
      await worker.tick();
      expect(since(mark).map((x) => x.body)).toEqual([expect.objectContaining({ event: 'patch.exploited-needed', data })]);
    });

    it('retries with backoff: 500, 500, then 200 delivers on the 3rd attempt with the same body', async () => {
      const mark = rx.got.length;
      rx.answers.push({ status: 500, body: 'E'.repeat(5000) }, { status: 500, body: 'still down' });
      const id = (await h.admin('POST', `/api/v1/webhooks/${hook.id}/test`)).json().deliveryId as string;
      expect(await worker.tick()).toBe(1);
      const row = () => h.database.db.selectFrom('webhook_deliveries').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
      expect(await row()).toMatchObject({ status: 'pending', attempts: 1, last_status: 500, last_error: 'HTTP 500', next_attempt_at: h.clock.now + 30 * SEC });
      expect((await row()).last_response).toHaveLength(RESPONSE_LIMIT);
      expect(await worker.tick()).toBe(0); // not due yet
      h.clock.now += 30 * SEC;
      expect(await worker.tick()).toBe(1);
      expect(await row()).toMatchObject({ status: 'pending', attempts: 2, last_response: 'still down', next_attempt_at: h.clock.now + 60 * SEC });
      h.clock.now += 59 * SEC;
      expect(await worker.tick()).toBe(0);
      h.clock.now += SEC;
      expect(await worker.tick()).toBe(1);
      expect(await row()).toMatchObject({ status: 'delivered', attempts: 3, last_status: 200, last_error: null, delivered_at: h.clock.now });
      const got = since(mark);
      expect(got).toHaveLength(3);
      expect(new Set(got.map((x) => x.raw)).size).toBe(1);
      expect(new Set(got.map((x) => x.headers['x-patchwarden-delivery'])).size).toBe(1);
      const listed = (await h.admin('GET', `/api/v1/webhooks/${hook.id}/deliveries?limit=1000`)).json();
      expect(listed.items.find((x: { id: string }) => x.id === id)).toMatchObject({ status: 'delivered', attempts: 3, lastStatus: 200, createdAt: '2026-11-26T10:00:00.000Z' });
      expect(listed.total).toBe(listed.items.length);
      const page = (await h.admin('GET', `/api/v1/webhooks/${hook.id}/deliveries?limit=2&offset=1`)).json();
      expect(page.items).toHaveLength(2);
      expect(page.total).toBe(listed.total);
    });

    it('does not follow redirects, gives up after the last attempt, and records network errors', async () => {
      const mark = rx.got.length;
      const w2 = new WebhookWorker(h.database.db, () => h.clock.now, { maxAttempts: 2, baseDelayMs: SEC });
      w2.log = log;
      rx.answers.push({ status: 302, headers: { location: rx.url('/elsewhere') } }, { status: 307, headers: { location: rx.url('/elsewhere') } });
      const id = (await h.admin('POST', `/api/v1/webhooks/${hook.id}/test`)).json().deliveryId as string;
      expect(await w2.tick()).toBe(1);
      h.clock.now += SEC;
      expect(await w2.tick()).toBe(1);
      const row = await h.database.db.selectFrom('webhook_deliveries').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
      expect(row).toMatchObject({ status: 'failed', attempts: 2, last_status: 307, last_error: 'HTTP 307: redirects are not followed' });
      expect(rx.got.slice(mark).map((x) => x.path)).toEqual(['/hook/path-token-123', '/hook/path-token-123']);
      h.clock.now += 3600 * SEC;
      expect(await w2.tick()).toBe(0);

      // nobody listening: the error is recorded, the delivery stays pending for its next attempt
      const closed = await receiver();
      const url = closed.url('/gone');
      await closed.close();
      const dead = (await h.admin('POST', '/api/v1/webhooks', { url, events: ['ping'] })).json();
      const pid = (await h.admin('POST', `/api/v1/webhooks/${dead.id}/test`)).json().deliveryId as string;
      expect(await w2.tick()).toBe(1);
      const d = (await h.admin('GET', `/api/v1/webhooks/${dead.id}/deliveries`)).json().items[0];
      expect(d).toMatchObject({ id: pid, status: 'pending', attempts: 1, lastStatus: null });
      expect(d.lastError).toMatch(/ECONNREFUSED/);
      // removing the webhook drops its pending deliveries
      expect((await h.admin('DELETE', `/api/v1/webhooks/${dead.id}`)).statusCode).toBe(200);
      h.clock.now += 3600 * SEC;
      expect(await w2.tick()).toBe(0);
      expect(await h.database.db.selectFrom('webhook_deliveries').select('id').where('id', '=', pid).executeTakeFirst()).toBeUndefined();
    });

    it('resumes pending deliveries after a restart (a new worker on the same database)', async () => {
      const mark = rx.got.length;
      const id = (await h.admin('POST', `/api/v1/webhooks/${hook.id}/test`)).json().deliveryId as string;
      await worker.stop();
      const restarted = new WebhookWorker(h.database.db, () => h.clock.now);
      expect(await restarted.tick()).toBe(1);
      expect(since(mark).map((x) => x.body.id)).toEqual([id]);
    });

    it('an attempt cut short by a shutdown is not counted and goes out after the restart', async () => {
      const held: (() => void)[] = [];
      const slow = createServer((req, res) => {
        req.resume();
        held.push(() => res.end('late'));
      });
      await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
      const url = `http://127.0.0.1:${(slow.address() as AddressInfo).port}/slow`;
      const w = (await h.admin('POST', '/api/v1/webhooks', { url, events: ['ping'] })).json();
      const id = (await h.admin('POST', `/api/v1/webhooks/${w.id}/test`)).json().deliveryId as string;
      const first = new WebhookWorker(h.database.db, () => h.clock.now);
      first.start();
      for (let i = 0; i < 200 && held.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      expect(held).toHaveLength(1);
      await first.stop();
      const row = await h.database.db.selectFrom('webhook_deliveries').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
      expect(row).toMatchObject({ status: 'pending', attempts: 0, next_attempt_at: h.clock.now });
      const second = new WebhookWorker(h.database.db, () => h.clock.now, { timeoutMs: 2000 });
      const sent = second.tick();
      for (let i = 0; i < 200 && held.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
      held[1]!();
      expect(await sent).toBe(1);
      expect(await h.database.db.selectFrom('webhook_deliveries').select(['status', 'attempts']).where('id', '=', id).executeTakeFirstOrThrow()).toEqual({ status: 'delivered', attempts: 1 });
      held[0]!();
      slow.closeAllConnections();
      await new Promise<void>((r) => slow.close(() => r()));
      await h.admin('DELETE', `/api/v1/webhooks/${w.id}`);
    });

    it('never puts a secret, or the path of the URL, in the log or a listing', async () => {
      const all = log.lines.join('\n');
      expect(log.lines.length).toBeGreaterThan(5);
      expect(all).not.toContain(hook.secret);
      expect(all).not.toContain('path-token-123');
      expect(all).toContain('127.0.0.1');
      const deliveries = await h.admin('GET', `/api/v1/webhooks/${hook.id}/deliveries?limit=1000`);
      expect(deliveries.body).not.toContain(hook.secret);
      expect((await h.admin('GET', '/api/v1/webhooks')).body).not.toContain(hook.secret);
    });
  });
}
