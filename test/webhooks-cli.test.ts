/**
 * Webhooks and the live deployment view through the built CLI against a server process: the
 * server's own worker delivers signed events to a receiver on 127.0.0.1, and `deploy status
 * --watch` follows a deployment until it ends, with the exit code that says how.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyWebhook } from '@patchwarden/core';
import { api, assertBuilt, cli, deviceFetch, startServerProcess, type ServerProcess } from './support/processes.js';
import { makeRoot } from './support/sandbox.js';

const arch = process.arch === 'arm64' ? 'arm64' : 'amd64';
const bookworm = [{ family: 'linux', distribution: 'debian', release: 'bookworm', arch: [arch] }];

function installedVersion(name: string): string {
  const para = readFileSync('/var/lib/dpkg/status', 'utf8').split('\n\n').find((p) => p.startsWith(`Package: ${name}\n`));
  const v = para && /^Version: (.+)$/m.exec(para);
  if (!v) throw new Error(`${name} is not installed here`);
  return v[1]!;
}

function patch(id: string, name: string, fixed: string, installed = true) {
  return {
    id,
    revision: 1,
    title: `${name} ${fixed}`,
    severity: 'high',
    cves: [],
    advisories: [],
    platforms: bookworm,
    applicability: { package: { manager: 'dpkg', name, installed } },
    installed: { package: { manager: 'dpkg', name, version: { ge: fixed } } },
    requires: [],
    supersedes: [],
    conflicts: [],
    restart: { reboot: 'never', kernel: false },
    fixes: [],
    payload: [],
    install: [],
    undo: [],
  };
}

describe('webhooks and deploy status --watch through the CLI and a server process', () => {
  let dir: string;
  let server: ServerProcess;
  let flags: string[];
  const got: { headers: IncomingHttpHeaders; raw: string; at: number }[] = [];
  const rx = createServer((req, res) => {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString()));
    req.on('end', () => {
      got.push({ headers: req.headers, raw, at: Date.now() });
      res.end('ok');
    });
  });
  let hookUrl: string;

  beforeAll(async () => {
    assertBuilt();
    dir = mkdtempSync(join(tmpdir(), 'pw-webhooks-cli-'));
    server = await startServerProcess(join(dir, 'server'));
    flags = ['--server', server.url, '--token', server.adminToken];
    await new Promise<void>((r) => rx.listen(0, '127.0.0.1', r));
    hookUrl = `http://127.0.0.1:${(rx.address() as AddressInfo).port}/patchwarden/hook-path-secret`;
    expect((await api(server, 'POST', '/api/v1/groups', { name: 'lab' })).status).toBe(201);
    const s = await api<{ secret: string }>(server, 'POST', '/api/v1/enrollment-secrets', { name: 'lab', group: 'lab' });
    makeRoot(join(dir, 'root'), { hostname: 'lab-1' });
    const agentArgs = ['--data-dir', join(dir, 'agent'), '--root', join(dir, 'root')];
    const e = await cli(['agent', 'enroll', '--server', server.url, '--secret', s.body.secret, ...agentArgs]);
    expect(e.status, e.stderr).toBe(0);
    const run = await cli(['agent', 'run', '--once', ...agentArgs]);
    expect(run.status, run.stderr).toBe(0);
    const up = await api(server, 'POST', '/api/v1/catalog/patches', {
      patches: [patch('test/dpkg', 'dpkg', `${installedVersion('dpkg')}+fix1`), patch('test/unused', 'zzz-not-installed', '1.0')],
      coverage: bookworm,
      source: { kind: 'test' },
    });
    expect(up.status, JSON.stringify(up.body)).toBe(200);
    for (const p of ['test/dpkg', 'test/unused']) expect((await api(server, 'POST', '/api/v1/approvals', { patch: p, group: 'lab', decision: 'approve' })).status).toBe(200);
  }, 120_000);

  afterAll(async () => {
    await server?.stop();
    await new Promise<void>((r) => rx.close(() => r()));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function until<T>(what: string, f: () => T | undefined, ms = 15_000): Promise<T> {
    const end = Date.now() + ms;
    for (;;) {
      const v = f();
      if (v !== undefined) return v;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  let hookId: string;
  let secret: string;

  it('adds, lists, tests and shows the deliveries of a webhook; the server signs, core verifies', async () => {
    const bad = await cli(['webhooks', 'add', hookUrl, '--events', 'job.failed,job.done', ...flags]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/E_VALIDATION: unknown event 'job.done'[\s\S]*→ events: deployment.halted, job.failed/);
    const badUrl = await cli(['webhooks', 'add', 'ftp://127.0.0.1/x', '--events', 'ping', ...flags]);
    expect(badUrl.status).toBe(2);
    expect(badUrl.stderr).toMatch(/E_VALIDATION: .*http or https/);

    const add = await cli(['webhooks', 'add', hookUrl, '--events', 'job.failed,deployment.halted', ...flags]);
    expect(add.status, add.stderr).toBe(0);
    const m = /^webhook (\S+) added: (\S+) \(job.failed, deployment.halted\)\nIts signing secret, shown only now: give it to the receiver\n(pwh_\S+)\n/.exec(add.stdout);
    expect(m, add.stdout).not.toBeNull();
    [, hookId, , secret] = m as unknown as [string, string, string, string];

    const list = await cli(['webhooks', 'list', ...flags]);
    expect(list.stdout).toMatch(/^ID\s+URL\s+EVENTS\s+CREATED\n/);
    expect(list.stdout).toContain(hookUrl);
    expect(list.stdout).not.toContain(secret);
    const json = JSON.parse((await cli(['webhooks', 'list', '--json', ...flags])).stdout);
    expect(json.items).toEqual([{ id: hookId, url: hookUrl, events: ['job.failed', 'deployment.halted'], createdAt: expect.any(String) }]);

    const test = await cli(['webhooks', 'test', hookId, ...flags]);
    expect(test.stdout).toMatch(/^ping queued as delivery \S+; see what happened with: patchwarden webhooks deliveries/);
    const ping = await until('the ping', () => got.find((g) => g.headers['x-patchwarden-event'] === 'ping'));
    const v = verifyWebhook({ secret, body: ping.raw, timestamp: ping.headers['x-patchwarden-timestamp'] as string, signature: ping.headers['x-patchwarden-signature'] as string, now: Date.now() });
    expect(v.ok).toBe(true);
    expect(JSON.parse(ping.raw)).toMatchObject({ event: 'ping', data: { webhookId: hookId } });
    expect(verifyWebhook({ secret: `${secret}x`, body: ping.raw, timestamp: ping.headers['x-patchwarden-timestamp'] as string, signature: ping.headers['x-patchwarden-signature'] as string, now: Date.now() }).ok).toBe(false);

    let table = '';
    for (let i = 0; i < 50 && !/delivered/.test(table); i++) {
      table = (await cli(['webhooks', 'deliveries', hookId, ...flags])).stdout;
      if (!/delivered/.test(table)) await new Promise((r) => setTimeout(r, 100));
    }
    expect(table).toMatch(/^ID\s+EVENT\s+STATUS\s+ATTEMPTS\s+LAST ANSWER/);
    expect(table).toMatch(/ping\s+delivered\s+1\s+HTTP 200/);
  }, 60_000);

  it('deploy status --watch follows a running deployment until it is halted (exit 11), undone (12) or complete (0)', async () => {
    const r = await api<{ id: string; status: string }>(server, 'POST', '/api/v1/deployments', {
      patches: ['test/dpkg'],
      groups: ['lab'],
      start: new Date().toISOString(),
      rings: [{ name: 'canary', percent: 100, failureThreshold: 0.5 }],
    });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const id = r.body.id;
    expect(r.body.status).toBe('running');
    const mark = got.length;
    const watching = cli(['deploy', 'status', id, '--watch', '--interval', '0.3', ...flags]);
    await new Promise((res) => setTimeout(res, 1200));
    // the device fails its job: job.failed, then the ring crosses its threshold
    const agentDir = join(dir, 'agent');
    const jobs = await deviceFetch(agentDir, `${server.url}/api/v1/agent/jobs`).then((x) => x.json() as Promise<{ jobs: { id: string }[] }>);
    expect(jobs.jobs).toHaveLength(1);
    const jobId = jobs.jobs[0]!.id;
    const at = new Date().toISOString();
    const rep = await deviceFetch(agentDir, `${server.url}/api/v1/agent/jobs/${jobId}/report`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jobId, state: 'failed', events: [{ at, state: 'installing' }, { at, state: 'failed', message: 'dpkg: error processing package' }] }),
    });
    expect(rep.status).toBe(200);
    const w = await watching;
    expect(w.status, w.stderr).toBe(11);
    const lines = w.stdout.trim().split('\n');
    expect(lines[0]).toBe(`deployment ${id}: running`);
    expect(lines[1]).toBe('  canary: 0/1 finished (0 succeeded, 0 failed), running');
    expect(lines).toContain(`deployment ${id}: halted — ring 1: 1 of 1 finished jobs failed (100%), above the failure threshold of 50%`);
    expect(lines.at(-1)).toMatch(/^ {2}canary: 1\/1 finished \(0 succeeded, 1 failed\), halted/);
    // one line per change: nothing repeated while nothing changed
    expect(new Set(lines).size).toBe(lines.length);

    // the server's own worker delivered both events, signed
    const events = await until('two events', () => (got.length >= mark + 2 ? got.slice(mark) : undefined));
    for (const e of events) {
      expect(verifyWebhook({ secret, body: e.raw, timestamp: e.headers['x-patchwarden-timestamp'] as string, signature: e.headers['x-patchwarden-signature'] as string, now: Date.now() }).ok).toBe(true);
    }
    const bodies = events.map((e) => JSON.parse(e.raw));
    expect(bodies.map((b) => b.event).sort()).toEqual(['deployment.halted', 'job.failed']);
    expect(bodies.find((b) => b.event === 'job.failed').data).toMatchObject({ jobId, deploymentId: id, device: { hostname: 'lab-1' }, patch: { id: 'test/dpkg' }, state: 'failed', message: 'dpkg: error processing package' });

    expect((await api(server, 'POST', `/api/v1/deployments/${id}/undo`)).status).toBe(200);
    const undone = await cli(['deploy', 'status', id, '--watch', ...flags]);
    expect(undone.status).toBe(12);
    expect(undone.stdout).toContain(`deployment ${id}: undone`);

    const c = await api<{ id: string; status: string }>(server, 'POST', '/api/v1/deployments', { patches: ['test/unused'], groups: ['lab'], start: new Date().toISOString() });
    expect(c.body.status).toBe('complete');
    const done = await cli(['deploy', 'status', c.body.id, '--watch', ...flags]);
    expect(done.status, done.stderr).toBe(0);
    expect(done.stdout).toBe(`deployment ${c.body.id}: complete\n  all: 0/0 finished (0 succeeded, 0 failed), healthy — the ring has no devices\n`);
    const json = await cli(['deploy', 'status', c.body.id, '--watch', '--json', ...flags]);
    expect(JSON.parse(json.stdout)).toMatchObject({ id: c.body.id, status: 'complete' });
    const bad = await cli(['deploy', 'status', c.body.id, '--watch', '--interval', '0', ...flags]);
    expect(bad.status).toBe(2);
  }, 60_000);

  it('removes a webhook; the server log never held its secret or its URL path', async () => {
    const rm = await cli(['webhooks', 'remove', hookId, ...flags]);
    expect(rm.stdout).toBe(`webhook ${hookId} removed (${hookUrl})\n`);
    expect((await cli(['webhooks', 'list', ...flags])).stdout).toMatch(/^No webhooks yet/);
    expect((await cli(['webhooks', 'deliveries', hookId, ...flags])).status).toBe(4);
    expect(server.output()).not.toContain(secret);
    expect(server.output()).not.toContain('hook-path-secret');
  });
});
