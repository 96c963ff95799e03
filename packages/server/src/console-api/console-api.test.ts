import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentJob, PackageFact, PatchManifest, SystemFacts } from '@patchwarden/core';
import { testDatabases } from '../testing/databases.js';
import { BOOKWORM, hashed, hostPackages, packagePatch } from '../testing/fixtures.js';
import { checkinBody, makeHarness, systemFacts, type Harness } from '../testing/harness.js';
import { EventBus } from './bus.js';
import { StreamHub } from './stream.js';
import { csvField, csvLine, neededTable } from './reports.js';
import type { NeededReport } from '../compliance/routes.js';
import type { DashboardAnswer } from './dashboard.js';

const HOUR = 3_600_000;
const SCRIPT = '<script>alert(1)</script>';
const FORMULA = "=cmd|' /C calc'!A0";
const PC = 'test/pc';
const PH = 'test/ph';
const PM = 'test/pm';
const PL = 'test/pl';
const PX = 'test/px';
const PR1 = 'test/pr1';
const PR2 = 'test/pr2';

/** Minimal RFC 4180 reader for the tests. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let f = '';
  let q = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (q) {
      if (ch === '"' && text[i + 1] === '"') {
        f += '"';
        i++;
      }
      else if (ch === '"') q = false;
      else f += ch;
    } else if (ch === '"') q = true;
    else if (ch === ',') {
      row.push(f);
      f = '';
    }
    else if (ch === '\r' && text[i + 1] === '\n') {
      row.push(f);
      rows.push(row);
      row = [];
      f = '';
      i++;
    } else f += ch;
  }
  return rows;
}
const unprefix = (cell: string) => (/^'[=+\-@\t\r]/.test(cell) ? cell.slice(1) : cell);

describe('CSV fields', () => {
  it('quotes per RFC 4180 and defuses formulas', () => {
    expect(csvField('plain')).toBe('plain');
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField('two\nlines')).toBe('"two\nlines"');
    expect(csvField('-1')).toBe("'-1");
    expect(csvField('+1')).toBe("'+1");
    expect(csvField('@SUM(A1)')).toBe("'@SUM(A1)");
    expect(csvField('=1,2')).toBe(`"'=1,2"`);
    expect(csvField(FORMULA)).toBe(`'${FORMULA}`);
    expect(csvField(SCRIPT)).toBe(SCRIPT);
    expect(csvLine(['a', 'b,c'])).toBe('a,"b,c"\r\n');
  });
});

describe('event stream hub', () => {
  function fakeResponse() {
    const out: string[] = [];
    const handlers = new Map<string, () => void>();
    const res = {
      writableLength: 0,
      writeHead: () => res,
      write: (t: string) => out.push(t) > 0,
      end: () => handlers.get('close')?.(),
      destroy: () => undefined,
      once: (ev: string, fn: () => void) => handlers.set(ev, fn),
    };
    return { res: res as unknown as ServerResponse, out, close: () => handlers.get('close')?.() };
  }

  it('refuses streams beyond the limit, pings, fans out and cleans up', async () => {
    const bus = new EventBus();
    const hub = new StreamHub(bus, null as never, 1, 20);
    const a = fakeResponse();
    hub.attach(a.res);
    expect(() => hub.attach(fakeResponse().res)).toThrow(expect.objectContaining({ code: 'E_RATE_LIMITED' }));
    await new Promise((r) => setTimeout(r, 60));
    expect(a.out.filter((t) => t === ': ping\n\n').length).toBeGreaterThan(0);
    bus.emit('deployment', { id: 'd1', status: 'running', change: 'created', reason: null });
    expect(a.out.at(-1)).toBe('event: deployment\ndata: {"id":"d1","status":"running","change":"created","reason":null}\n\n');
    expect(bus.listenerCount('deployment')).toBe(1);
    a.close();
    expect(hub.open).toBe(0);
    expect(bus.listenerCount('deployment')).toBe(0);
    hub.attach(fakeResponse().res); // room again
    hub.closeAll();
    expect(hub.open).toBe(0);
  });

  it('a failing listener never reaches the emitter', () => {
    const bus = new EventBus();
    const errors: unknown[] = [];
    bus.onListenerError = (e) => errors.push(e);
    bus.on('job', () => {
      throw new Error('boom');
    });
    expect(() => bus.emit('job', { jobId: 'j', deploymentId: 'd', deviceId: 'x', kind: 'install', state: 'handed', at: '' })).not.toThrow();
    expect(errors).toHaveLength(1);
  });
});

for (const tdb of testDatabases) {
  describe.skipIf(!tdb.available)(`console API on ${tdb.name}`, () => {
    let h: Harness;
    const inv = hashed(hostPackages());
    const installed = inv.packages.filter((p) => p.state === 'installed');
    const [a, b, c, d, e] = [installed[10]!, installed[20]!, installed[30]!, installed[40]!, installed[50]!];
    const fixed = (names: string[]) => hashed(inv.packages.map((p) => (names.includes(p.name) && p.arch === installed.find((x) => x.name === p.name)!.arch ? { ...p, version: `${p.version}+fix1` } : p)) as PackageFact[]);
    const devs = new Map<string, { deviceId: string; token: string }>();
    const get = async (url: string) => {
      const r = await h.admin('GET', url);
      expect(r.statusCode, r.body).toBe(200);
      return r.json();
    };
    const iso = () => new Date(h.clock.now).toISOString();
    const agent = (name: string, method: string, url: string, payload?: unknown) =>
      h.app.inject({ method: method as 'GET', url, headers: { authorization: `Bearer ${devs.get(name)!.token}` }, ...(payload === undefined ? {} : { payload: payload as object }) });

    async function device(hostname: string, inventory: ReturnType<typeof hashed> | null, system: SystemFacts = systemFacts(hostname)) {
      const dv = await h.enroll({ hostname, group: 'fleet' });
      devs.set(hostname, dv);
      if (inventory) {
        const r = await h.checkin(dv.token, checkinBody(system, { mode: 'full', ...inventory }));
        expect(r.statusCode, r.body).toBe(200);
      }
    }

    beforeAll(async () => {
      h = await makeHarness(await tdb.open());
      const t0 = h.clock.now;
      const patches: PatchManifest[] = [
        packagePatch(PC, a.name, `${a.version}+fix1`, { severity: 'critical' }),
        packagePatch(PH, b.name, `${b.version}+fix1`, { severity: 'high' }),
        packagePatch(PM, c.name, `${c.version}+fix1`, { severity: 'medium', title: SCRIPT }),
        packagePatch(PL, d.name, `${d.version}+fix1`, { severity: 'low', title: FORMULA }),
        packagePatch(PX, e.name, '0', { severity: 'low', vendor: 'Acme', cves: ['CVE-2024-12345'], title: 'already installed everywhere' }),
        packagePatch(PR1, 'no-such-package-pw', '1', { severity: 'medium', requires: [PC], supersedes: ['test/gone'] }),
        packagePatch(PR2, 'no-such-package-pw', '1', { severity: 'medium', conflicts: [PR1] }),
      ];
      const up = await h.admin('POST', '/api/v1/catalog/patches', { patches, coverage: BOOKWORM, source: { kind: 'test' } });
      expect(up.statusCode, up.body).toBe(200);
      expect((await h.admin('POST', '/api/v1/groups', { name: 'fleet' })).statusCode).toBe(201);
      const all = [a.name, b.name, c.name, d.name];
      await device('full-1', fixed(all));
      await device('full-2', fixed(all));
      await device('crit-1', inv);
      await device('high-1', fixed([a.name]));
      await device('low-1', fixed([a.name, b.name, c.name]));
      const jammy = systemFacts('na-1');
      jammy.os = { ...jammy.os, distribution: 'ubuntu', name: 'Ubuntu', prettyName: 'Ubuntu 22.04', version: '22.04', versionCodename: 'jammy' };
      await device('na-1', inv, jammy);
      await device('pending-1', null);
      h.clock.now = t0 + HOUR;
    });
    afterAll(async () => h?.close());

    it('dashboard: fully patched, needing by worst severity, not assessed and pending apart', async () => {
      expect((await h.admin('POST', '/api/v1/compliance/history/snapshot')).statusCode).toBe(200);
      const dash: DashboardAnswer = await get('/api/v1/dashboard');
      expect(dash.devices).toEqual({ total: 7, fullyPatched: 2, needing: { critical: 1, high: 1, medium: 0, low: 1, unknown: 0 }, notAssessed: 1, unknownState: 1 });
      expect(dash.topPatches).toEqual([
        { patch: { id: PL, title: FORMULA, severity: 'low' }, devices: 3 },
        { patch: { id: PH, title: `${b.name} ${b.version}+fix1`, severity: 'high' }, devices: 2 },
        { patch: { id: PM, title: SCRIPT, severity: 'medium' }, devices: 2 },
        { patch: { id: PC, title: `${a.name} ${a.version}+fix1`, severity: 'critical' }, devices: 1 },
      ]);
      expect(dash.devicesBehind.map((x) => [x.device.hostname, x.needed, x.critical])).toEqual([
        ['crit-1', 4, 1],
        ['high-1', 3, 0],
        ['low-1', 1, 0],
      ]);
      expect(dash.deployments).toEqual([]);
      expect(dash.trend).toEqual([{ day: '2026-11-26', devices: 6, needing: 3, bySeverity: { critical: 1, high: 2, medium: 2, low: 3 } }]);
      expect(dash.sla.map((s) => s.severity)).toEqual(['critical', 'high', 'medium', 'low']);
      expect(dash.sla[0]).toEqual({ severity: 'critical', patched: 0, medianHours: null, p90Hours: null });
    });

    it('patch list: filters, sorts, device counts; unknown sorts refused, injection strings match nothing', async () => {
      const ids = async (qs: string) => ((await get(`/api/v1/catalog/patches?${qs}`)).items as { id: string }[]).map((i) => i.id);
      const base = await get('/api/v1/catalog/patches');
      expect(base.total).toBe(7);
      expect(base.items[0]).toEqual({ id: PC, revision: 1, title: `${a.name} ${a.version}+fix1`, severity: 'critical', releaseDate: null, source: 'test', devices: 1 });
      expect(await ids('severity=critical,high')).toEqual([PC, PH]);
      expect(await ids('severity=low')).toEqual([PL, PX]);
      expect(await ids('state=needed&sort=devices&order=desc')).toEqual([PL, PH, PM, PC]);
      expect(await ids('sort=severity&order=desc&limit=2')).toEqual([PC, PH]);
      expect(await ids('vendor=ACME')).toEqual([PX]);
      expect((await ids('vendor=test')).length).toBe(6);
      expect(await ids('cve=cve-2024-12345')).toEqual([PX]);
      expect(await ids('cve=CVE-2024-1234')).toEqual([]);
      expect((await ids('source=test')).length).toBe(7);
      expect(await ids('search=pr&sort=id&order=desc')).toEqual([PR2, PR1]);
      for (const bad of ['sort=hostname', 'sort=id;drop table patches', 'order=sideways', 'severity=urgent', 'state=installed', 'colour=red']) {
        const r = await h.admin('GET', `/api/v1/catalog/patches?${bad}`);
        expect(r.statusCode, bad).toBe(400);
        expect(r.json().error.code).toBe('E_VALIDATION');
      }
      for (const evil of ["' OR 1=1 --", "x'); DROP TABLE patches; --", '%', '_', '"', '!%', "\\' or ''='"]) {
        for (const f of ['vendor', 'cve', 'source', 'search']) {
          const r = await h.admin('GET', `/api/v1/catalog/patches?${f}=${encodeURIComponent(evil)}`);
          expect(r.statusCode, `${f}=${evil}: ${r.body}`).toBe(200);
          expect(r.json().total, `${f}=${evil}`).toBe(0);
        }
      }
      expect((await get('/api/v1/catalog/patches')).total).toBe(7);
    });

    it("a patch's devices by state, and its relations both ways", async () => {
      const hosts = async (qs: string) => ((await get(`/api/v1/catalog/patch/devices?${qs}`)).items as { hostname: string }[]).map((i) => i.hostname);
      expect(await get(`/api/v1/catalog/patch/devices?id=${PC}`)).toEqual({ patch: PC, state: 'needed', total: 1, items: [{ id: devs.get('crit-1')!.deviceId, hostname: 'crit-1', state: 'needed' }] });
      expect(await hosts(`id=${PC}&state=installed`)).toEqual(['full-1', 'full-2', 'high-1', 'low-1']);
      expect(await hosts(`id=${PC}&state=not_assessed`)).toEqual(['na-1']);
      const na = await get(`/api/v1/catalog/patch/devices?id=${PR1}&state=not_applicable&limit=2&offset=1`);
      expect(na.total).toBe(5); // assessed devices: crit-1, full-1, full-2, high-1, low-1
      expect(na.items.map((i: { hostname: string }) => i.hostname)).toEqual(['full-1', 'full-2']);
      expect((await h.admin('GET', '/api/v1/catalog/patch/devices?id=test/nope')).json().error.code).toBe('E_NOT_FOUND');
      expect((await h.admin('GET', `/api/v1/catalog/patch/devices?id=${PC}&state=bogus`)).statusCode).toBe(400);

      const r1 = await get(`/api/v1/catalog/patch/relations?id=${PR1}`);
      expect(r1).toEqual({
        patch: PR1,
        requires: [{ id: PC, title: `${a.name} ${a.version}+fix1`, state: 'listed' }],
        supersedes: [{ id: 'test/gone', title: null, state: 'missing' }],
        conflicts: [],
        requiredBy: [],
        supersededBy: [],
        conflictedBy: [{ id: PR2, title: 'no-such-package-pw 1', state: 'listed' }],
      });
      expect((await get(`/api/v1/catalog/patch/relations?id=${PC}`)).requiredBy).toEqual([{ id: PR1, title: 'no-such-package-pw 1', state: 'listed' }]);
      expect((await h.admin('GET', '/api/v1/catalog/patch/relations?id=test/nope')).statusCode).toBe(404);
    });

    it('exports: CSV and PDF hold the rows of GET /api/v1/reports/needed, hostile text as text', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'pw-pdf-'));
      try {
        for (const by of ['device', 'patch'] as const) {
          const report: NeededReport = await get(`/api/v1/reports/needed?by=${by}`);
          const table = neededTable(report);
          expect(table.rows.length).toBe(by === 'device' ? 8 : 4);
          const csv = await h.admin('GET', `/api/v1/reports/needed.csv?by=${by}`);
          expect(csv.statusCode).toBe(200);
          expect(csv.headers['content-type']).toBe('text/csv; charset=utf-8');
          expect(csv.headers['content-disposition']).toBe(`attachment; filename="patchwarden-needed-by-${by}-2026-11-26.csv"`);
          const rows = parseCsv(csv.body);
          expect(rows[0]).toEqual(table.columns.map((c) => c.name));
          expect(rows.slice(1).map((r) => r.map(unprefix))).toEqual(table.rows);
          expect(csv.body).toContain(`'${FORMULA}`);
          expect(csv.body).toContain(SCRIPT);
          if (by === 'device') {
            expect(rows[1]![0]).toBe('crit-1');
            expect(rows.slice(1).map((r) => r[1])).toEqual(report.items.flatMap((i) => (i as { needed: { patch: string }[] }).needed.map((n) => n.patch)));
          } else {
            expect(rows.slice(1).map((r) => r[0])).toEqual([PC, PH, PM, PL]);
            expect(rows.find((r) => r[0] === PL)!.slice(3)).toEqual(['3', 'crit-1, high-1, low-1']);
          }

          const pdf = await h.admin('GET', `/api/v1/reports/needed.pdf?by=${by}`);
          expect(pdf.statusCode).toBe(200);
          expect(pdf.headers['content-type']).toBe('application/pdf');
          expect(pdf.headers['content-disposition']).toBe(`attachment; filename="patchwarden-needed-by-${by}-2026-11-26.pdf"`);
          expect(pdf.rawPayload.subarray(0, 5).toString()).toBe('%PDF-');
          const file = join(dir, `${by}.pdf`);
          writeFileSync(file, pdf.rawPayload);
          const text = execFileSync('pdftotext', ['-raw', file, '-'], { encoding: 'utf8' });
          const flat = text.replace(/\s+/g, '');
          expect(text).toContain('Generated 2026-11-26T11:00:00.000Z');
          for (const row of table.rows) for (const cell of row) expect(flat, cell).toContain(cell.replace(/\s+/g, ''));
          expect(text).toContain(SCRIPT);
          expect(text).toContain(FORMULA);
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('a PDF too large to be useful is refused with a hint to the CSV', async () => {
      const { checkPdfSize, PDF_MAX_ROWS } = await import('./reports.js');
      const rows = Array.from({ length: PDF_MAX_ROWS + 1 }, () => ['a']);
      expect(() => checkPdfSize({ title: 't', columns: [{ name: 'x', width: 1 }], rows })).toThrow(expect.objectContaining({ code: 'E_VALIDATION', hint: expect.stringContaining('CSV') }));
    });

    it('a PDF of a row taller than a page continues over pages', async () => {
      const { neededPdf } = await import('./reports.js');
      const many = Array.from({ length: 3000 }, (_, i) => `host-${String(i).padStart(4, '0')}.example.org`);
      const doc = neededPdf(
        { title: 'big', columns: [{ name: 'patch id', width: 0.3 }, { name: 'hostnames', width: 0.7 }], rows: [['test/big', many.join(', ')]] },
        new Date(0),
      );
      const chunks: Buffer[] = [];
      for await (const ch of doc) chunks.push(ch as Buffer);
      const dir = mkdtempSync(join(tmpdir(), 'pw-pdf-'));
      try {
        writeFileSync(join(dir, 'big.pdf'), Buffer.concat(chunks));
        const text = execFileSync('pdftotext', ['-raw', join(dir, 'big.pdf'), '-'], { encoding: 'utf8' });
        const pages = text.split('\f').filter((p) => p.trim()).length;
        expect(pages).toBeGreaterThan(3);
        const flat = text.replace(/\s+/g, '');
        for (const host of [many[0]!, many[1500]!, many[2999]!]) expect(flat).toContain(host);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('the OpenAPI document describes the new routes; the preview takes exactly the body of create', async () => {
      const doc = await get('/api/docs/json');
      for (const path of ['/api/v1/dashboard', '/api/v1/events/stream', '/api/v1/reports/needed.csv', '/api/v1/reports/needed.pdf', '/api/v1/catalog/patch/devices', '/api/v1/catalog/patch/relations']) {
        expect(doc.paths[path]?.get, path).toBeDefined();
      }
      expect(doc.paths['/api/v1/deployments/preview'].post.requestBody).toEqual(doc.paths['/api/v1/deployments'].post.requestBody);
      expect(doc.paths['/api/v1/catalog/patches'].get.parameters.map((p: { name: string }) => p.name).sort()).toEqual(
        ['cve', 'limit', 'offset', 'order', 'platform', 'search', 'severity', 'sort', 'source', 'state', 'vendor'],
      );
    });

    it('deployment preview: names unapproved patches, writes nothing, matches what create makes', async () => {
      const count = async () => Number((await h.database.db.selectFrom('deployments').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
      const body = {
        patches: [PC, PH],
        groups: ['fleet'],
        start: iso(),
        rings: [
          { name: 'canary', percent: 50 },
          { name: 'rest', percent: 100 },
        ],
      };
      expect((await h.admin('POST', '/api/v1/approvals', { patch: PC, group: 'fleet', decision: 'approve' })).statusCode).toBe(200);
      const blocked = await h.admin('POST', '/api/v1/deployments/preview', body);
      expect(blocked.statusCode, blocked.body).toBe(200);
      expect(blocked.json().notApproved.map((x: { patch: string }) => x.patch)).toEqual([PH]);
      expect(blocked.json().notApproved[0].message).toContain(`${PH} for group fleet`);
      expect((await h.admin('POST', '/api/v1/deployments', body)).statusCode).toBe(409);

      expect((await h.admin('POST', '/api/v1/approvals', { patch: PH, group: 'fleet', decision: 'approve' })).statusCode).toBe(200);
      const p = await h.admin('POST', '/api/v1/deployments/preview', body);
      expect(p.statusCode, p.body).toBe(200);
      const preview = p.json();
      expect(await count()).toBe(0);
      expect(preview.notApproved).toEqual([]);
      expect(preview.targeted).toBe(7); // every device is in the group; only crit-1 and high-1 need the patches
      const created = await h.admin('POST', '/api/v1/deployments', body);
      expect(created.statusCode, created.body).toBe(201);
      const dep = created.json();
      expect(preview.rings.map((r: { name: string; exact: boolean }) => [r.name, r.exact])).toEqual([
        ['canary', false],
        ['rest', false],
      ]);
      const perRing = await h.database.db
        .selectFrom('jobs')
        .select('ring')
        .select((eb) => eb.fn.count<number>('device_id').distinct().as('n'))
        .where('deployment_id', '=', dep.id)
        .groupBy('ring')
        .orderBy('ring')
        .execute();
      expect(preview.rings.map((r: { devices: unknown[] }) => r.devices.length)).toEqual(perRing.map((r) => Number(r.n)));
      const previewDevices = preview.rings.flatMap((r: { devices: { hostname: string }[] }) => r.devices.map((x) => x.hostname)).sort();
      expect(previewDevices).toEqual(['crit-1', 'high-1']);
      expect(preview.rings.reduce((n: number, r: { jobs: number }) => n + r.jobs, 0)).toBe(3);
      expect(dep.jobs.install).toEqual({ queued: 3 });
      expect(preview.unassigned).toEqual(dep.unassigned);
      expect(preview.undoLimits).toEqual(dep.undoLimits);
      // group rings are exact
      const g = await h.admin('POST', '/api/v1/deployments/preview', { ...body, rings: [{ name: 'fleet', groups: ['fleet'] }] });
      expect(g.json().rings).toEqual([
        {
          name: 'fleet',
          exact: true,
          devices: ['crit-1', 'high-1'].map((n) => ({ id: devs.get(n)!.deviceId, hostname: n })).sort((x, y) => (x.id < y.id ? -1 : 1)),
          jobs: 3,
        },
      ]);
      // out of the way of the next test: undone, so its install jobs are not handed out
      expect((await h.admin('POST', `/api/v1/deployments/${dep.id}/undo`)).statusCode).toBe(200);
      expect((await h.admin('POST', '/api/v1/deployments/preview', { ...body, deadline: iso() })).json().error.code).toBe('E_VALIDATION');
      expect((await h.admin('POST', '/api/v1/deployments/preview', { ...body, patches: ['test/nope'] })).json().error.code).toBe('E_NOT_FOUND');
    });

    it('event stream: checkin and job events, over a real socket with the bearer header', async () => {
      await h.app.listen({ port: 0, host: '127.0.0.1' });
      const port = (h.app.server.address() as AddressInfo).port;
      const url = `http://127.0.0.1:${port}/api/v1/events/stream`;
      const unauthenticated = await fetch(url);
      expect(unauthenticated.status).toBe(401);
      expect(((await unauthenticated.json()) as { error: { code: string } }).error.code).toBe('E_UNAUTHENTICATED');
      const abort = new AbortController();
      const res = await fetch(url, { headers: { authorization: `Bearer ${h.adminToken}` }, signal: abort.signal });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
      const reader = res.body!.getReader();
      const decoder = new TextDecoder();
      let buf = '';
      const events: { event: string; data: Record<string, unknown> }[] = [];
      async function until(pred: () => boolean) {
        const deadline = Date.now() + 5000;
        while (!pred()) {
          if (Date.now() > deadline) throw new Error(`timed out; got ${JSON.stringify(events)}`);
          const { value, done } = await reader.read();
          if (done) throw new Error('stream ended');
          buf += decoder.decode(value, { stream: true });
          let i: number;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            const ev = /^event: (.+)$/m.exec(block)?.[1];
            const data = /^data: (.+)$/m.exec(block)?.[1];
            if (ev && data) events.push({ event: ev, data: JSON.parse(data) as Record<string, unknown> });
          }
        }
      }
      // a check-in that sends no system facts: the stream fills in the hostname
      const crit = devs.get('crit-1')!;
      const same = await h.checkin(crit.token, checkinBody(undefined, { mode: 'same', hash: inv.hash }, (await import('@patchwarden/core')).canonicalDigest(systemFacts('crit-1'))));
      expect(same.statusCode, same.body).toBe(200);
      await until(() => events.some((e) => e.event === 'checkin'));
      expect(events.find((e) => e.event === 'checkin')!.data).toEqual({ deviceId: crit.deviceId, hostname: 'crit-1', at: iso() });

      const created = await h.admin('POST', '/api/v1/deployments', { patches: [PC], devices: ['crit-1'], start: iso() });
      expect(created.statusCode, created.body).toBe(201);
      const depId = created.json().id as string;
      await until(() => events.some((e) => e.event === 'deployment' && e.data.change === 'created'));
      const jobs = (await agent('crit-1', 'GET', '/api/v1/agent/jobs')).json().jobs as AgentJob[];
      expect(jobs).toHaveLength(1);
      await until(() => events.some((e) => e.event === 'job'));
      expect(events.find((e) => e.event === 'job')!.data).toEqual({ jobId: jobs[0]!.id, deploymentId: depId, deviceId: crit.deviceId, kind: 'install', state: 'handed', at: iso() });

      const running: DashboardAnswer = await get('/api/v1/dashboard');
      expect(running.deployments).toEqual([{ id: depId, status: 'running', patches: [PC], createdAt: iso(), jobs: { total: 1, finished: 0, succeeded: 0, failed: 0 } }]);

      h.clock.now += 2 * HOUR;
      const rep = await agent('crit-1', 'POST', `/api/v1/agent/jobs/${jobs[0]!.id}/report`, { jobId: jobs[0]!.id, state: 'done', events: [{ at: iso(), state: 'installing' }] });
      expect(rep.statusCode, rep.body).toBe(200);
      await until(() => events.some((e) => e.event === 'job' && e.data.state === 'done'));
      await until(() => events.some((e) => e.event === 'deployment' && e.data.change === 'complete'));
      abort.abort();
      // fetch's pooled keep-alive sockets would hold the app's close up for seconds
      h.app.server.closeAllConnections();

      // time to patch: from the deployment's creation (later than the patch's import) to the report
      const done: DashboardAnswer = await get('/api/v1/dashboard');
      expect(done.deployments).toEqual([]);
      expect(done.sla[0]).toEqual({ severity: 'critical', patched: 1, medianHours: 2, p90Hours: 2 });
    });
  });
}
