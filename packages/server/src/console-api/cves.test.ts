import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PackageFact, PatchManifest, SystemFacts } from '@patchwarden/core';
import { testDatabases } from '../testing/databases.js';
import { BOOKWORM, hashed, hostPackages, packagePatch } from '../testing/fixtures.js';
import { checkinBody, makeHarness, systemFacts, type Harness } from '../testing/harness.js';
import type { OpenCveReport } from './cves.js';

const SCRIPT = '<script>alert(1)</script>';
const FORMULA = "=cmd|' /C calc'!A0";
const P1 = 'test/p1';
const P2 = 'test/p2';
const P3 = 'test/p3';
const P4 = 'test/p4';
const P5 = 'test/p5';
const P6 = 'test/p6';
const [C1, C2, C3, C4, C5, C6] = ['CVE-2026-0001', 'CVE-2026-0002', 'CVE-2026-0003', 'CVE-2026-0004', 'CVE-2026-0005', 'CVE-2026-0006'];
const HOSTILE = ["' OR 1=1 --", "x'); DROP TABLE patches; --", '%', '_', '"', '!%', "\\' or ''='", '{"a":1}', 'debian"', SCRIPT];

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
      } else if (ch === '"') q = false;
      else f += ch;
    } else if (ch === '"') q = true;
    else if (ch === ',') {
      row.push(f);
      f = '';
    } else if (ch === '\r' && text[i + 1] === '\n') {
      row.push(f);
      rows.push(row);
      row = [];
      f = '';
      i++;
    } else f += ch;
  }
  return rows;
}

for (const tdb of testDatabases) {
  describe.skipIf(!tdb.available)(`open CVEs report and platform filter on ${tdb.name}`, () => {
    let h: Harness;
    const inv = hashed(hostPackages());
    const installed = inv.packages.filter((p) => p.state === 'installed');
    const [a, b, c, d, e] = [installed[11]!, installed[21]!, installed[31]!, installed[41]!, installed[51]!];
    const fixed = (names: string[]) =>
      hashed(inv.packages.map((p) => (names.includes(p.name) && p.arch === installed.find((x) => x.name === p.name)!.arch ? { ...p, version: `${p.version}+fix1` } : p)) as PackageFact[]);
    const get = async (url: string) => {
      const r = await h.admin('GET', url);
      expect(r.statusCode, r.body).toBe(200);
      return r.json();
    };
    const report = async (qs = ''): Promise<OpenCveReport> => get(`/api/v1/reports/cves${qs ? `?${qs}` : ''}`);
    const cves = async (qs = '') => (await report(qs)).items.map((i) => i.cve);

    async function device(hostname: string, inventory: ReturnType<typeof hashed>, system: SystemFacts = systemFacts(hostname)) {
      const dv = await h.enroll({ hostname, group: 'fleet' });
      const r = await h.checkin(dv.token, checkinBody(system, { mode: 'full', ...inventory }));
      expect(r.statusCode, r.body).toBe(200);
    }

    beforeAll(async () => {
      h = await makeHarness(await tdb.open());
      const patches: PatchManifest[] = [
        packagePatch(P1, a.name, `${a.version}+fix1`, { severity: 'critical', cves: [C1, C2] }),
        packagePatch(P2, b.name, `${b.version}+fix1`, { severity: 'low', cves: [C2, C3], title: SCRIPT }),
        packagePatch(P3, c.name, `${c.version}+fix1`, { severity: 'medium', cves: [C4], title: FORMULA }),
        // installed everywhere: its CVE is not open
        packagePatch(P4, d.name, '0', { severity: 'high', cves: [C5] }),
        // needed, but names no CVE
        packagePatch(P5, e.name, `${e.version}+fix1`, { severity: 'critical' }),
        // for another platform (the release in another case)
        packagePatch(P6, e.name, `${e.version}+fix1`, { severity: 'critical', cves: [C6], platforms: [{ family: 'linux', distribution: 'ubuntu', release: 'Jammy' }] }),
      ];
      const up = await h.admin('POST', '/api/v1/catalog/patches', { patches, coverage: BOOKWORM, source: { kind: 'test' } });
      expect(up.statusCode, up.body).toBe(200);
      expect((await h.admin('POST', '/api/v1/groups', { name: 'fleet' })).statusCode).toBe(201);
      await device('all-1', inv); // needs p1, p2, p3, p5
      await device('all-2', inv); // the same context as all-1
      await device('some-1', fixed([a.name])); // needs p2, p3, p5
      await device('one-1', fixed([a.name, b.name, c.name])); // needs p5
      await device('none-1', fixed([a.name, b.name, c.name, e.name]));
      const jammy = systemFacts('na-1');
      jammy.os = { ...jammy.os, distribution: 'ubuntu', name: 'Ubuntu', prettyName: 'Ubuntu 22.04', version: '22.04', versionCodename: 'jammy' };
      await device('na-1', inv, jammy); // not assessed: counts nowhere
    });
    afterAll(async () => h?.close());

    it('lists the CVEs of needed patches with their patches, highest severity and devices per CVE', async () => {
      const r = await report();
      expect(r.total).toBe(4);
      expect(r.items).toEqual([
        {
          cve: C2,
          exploited: false,
          severity: 'critical',
          patches: [
            { id: P1, title: `${a.name} ${a.version}+fix1`, severity: 'critical' },
            { id: P2, title: SCRIPT, severity: 'low' },
          ],
          devices: 3,
        },
        { cve: C1, exploited: false, severity: 'critical', patches: [{ id: P1, title: `${a.name} ${a.version}+fix1`, severity: 'critical' }], devices: 2 },
        { cve: C4, exploited: false, severity: 'medium', patches: [{ id: P3, title: FORMULA, severity: 'medium' }], devices: 3 },
        { cve: C3, exploited: false, severity: 'low', patches: [{ id: P2, title: SCRIPT, severity: 'low' }], devices: 3 },
      ]);
      expect(await cves('limit=2&offset=1')).toEqual([C1, C4]);
      expect((await report('limit=2&offset=1')).total).toBe(4);
      expect(await cves('offset=10')).toEqual([]);
    });

    it('puts exploited CVEs first; a flagged CVE without a needed patch stays out', async () => {
      for (const cve of [C3, C5]) expect((await h.admin('POST', `/api/v1/cves/${cve}/exploited`, { exploited: true })).statusCode).toBe(200);
      try {
        const r = await report();
        expect(r.items.map((i) => [i.cve, i.exploited])).toEqual([
          [C3, true],
          [C2, false],
          [C1, false],
          [C4, false],
        ]);
        expect(r.total).toBe(4);
      } finally {
        for (const cve of [C3, C5]) expect((await h.admin('POST', `/api/v1/cves/${cve}/exploited`, { exploited: false })).statusCode).toBe(200);
      }
    });

    it('filters by the severity of the CVE', async () => {
      expect(await cves('severity=critical')).toEqual([C2, C1]);
      expect((await report('severity=critical')).total).toBe(2);
      expect(await cves('severity=low')).toEqual([C3]);
      expect(await cves('severity=high')).toEqual([]);
    });

    it('CSV: the same rows, RFC 4180 quoting and formula cells defused', async () => {
      expect((await h.admin('POST', `/api/v1/cves/${C4}/exploited`, { exploited: true })).statusCode).toBe(200);
      try {
        const csv = await h.admin('GET', '/api/v1/reports/cves.csv');
        expect(csv.statusCode, csv.body).toBe(200);
        expect(csv.headers['content-type']).toBe('text/csv; charset=utf-8');
        expect(csv.headers['content-disposition']).toMatch(/^attachment; filename="patchwarden-open-cves-\d{4}-\d{2}-\d{2}\.csv"$/);
        expect(csv.body.endsWith('\r\n')).toBe(true);
        const rows = parseCsv(csv.body);
        expect(rows).toEqual([
          ['cve', 'exploited', 'severity', 'devices', 'patch ids', 'patch titles'],
          [C4, 'yes', 'medium', '3', P3, `'${FORMULA}`],
          [C2, 'no', 'critical', '3', `${P1}, ${P2}`, `${a.name} ${a.version}+fix1; ${SCRIPT}`],
          [C1, 'no', 'critical', '2', P1, `${a.name} ${a.version}+fix1`],
          [C3, 'no', 'low', '3', P2, SCRIPT],
        ]);
        const low = parseCsv((await h.admin('GET', '/api/v1/reports/cves.csv?severity=low')).body);
        expect(low.slice(1).map((r) => r[0])).toEqual([C3]);
        const one = parseCsv((await h.admin('GET', '/api/v1/reports/cves.csv?limit=1')).body);
        expect(one.length).toBe(2);
      } finally {
        expect((await h.admin('POST', `/api/v1/cves/${C4}/exploited`, { exploited: false })).statusCode).toBe(200);
      }
    });

    it('refuses unknown or malformed query values; the tables stay intact', async () => {
      for (const path of ['/api/v1/reports/cves', '/api/v1/reports/cves.csv']) {
        for (const bad of [
          ...HOSTILE.map((v) => `severity=${encodeURIComponent(v)}`),
          'limit=0',
          'limit=10001',
          `limit=${encodeURIComponent('1; drop table patches')}`,
          'colour=red',
          `by=${encodeURIComponent("' OR 1=1 --")}`,
        ]) {
          const r = await h.admin('GET', `${path}?${bad}`);
          expect(r.statusCode, `${path}?${bad}`).toBe(400);
          expect(r.json().error.code).toBe('E_VALIDATION');
        }
      }
      expect((await h.admin('GET', '/api/v1/reports/cves.csv?offset=1')).statusCode).toBe(400);
      expect((await h.admin('GET', '/api/v1/reports/cves?offset=-1')).statusCode).toBe(400);
      expect((await report()).total).toBe(4);
    });

    it('needs an admin token', async () => {
      for (const url of ['/api/v1/reports/cves', '/api/v1/reports/cves.csv']) {
        expect((await h.app.inject({ method: 'GET', url })).statusCode).toBe(401);
      }
    });

    it('patch list: platform filter on distribution or release, any case; hostile values match nothing', async () => {
      const ids = async (qs: string) => ((await get(`/api/v1/catalog/patches?${qs}`)).items as { id: string }[]).map((i) => i.id);
      expect(await ids('platform=ubuntu')).toEqual([P6]);
      expect(await ids('platform=jammy')).toEqual([P6]);
      expect(await ids('platform=JAMMY')).toEqual([P6]);
      expect(await ids('platform=Debian')).toEqual([P1, P2, P3, P4, P5]);
      expect(await ids('platform=bookworm&severity=critical')).toEqual([P1, P5]);
      for (const none of ['ubunt', 'buntu', 'linux', 'amd64', 'family', 'cves', 'CVE-2026-0006']) expect(await ids(`platform=${none}`), none).toEqual([]);
      for (const evil of HOSTILE) {
        const r = await h.admin('GET', `/api/v1/catalog/patches?platform=${encodeURIComponent(evil)}`);
        expect(r.statusCode, `${evil}: ${r.body}`).toBe(200);
        expect(r.json().total, evil).toBe(0);
      }
      expect((await h.admin('GET', '/api/v1/catalog/patches?platform=')).statusCode).toBe(400);
      expect((await h.admin('GET', `/api/v1/catalog/patches?platform=${'x'.repeat(65)}`)).statusCode).toBe(400);
      expect((await get('/api/v1/catalog/patches')).total).toBe(6);
    });

    it('the OpenAPI document describes the report routes and the platform parameter', async () => {
      const doc = await get('/api/docs/json');
      for (const path of ['/api/v1/reports/cves', '/api/v1/reports/cves.csv']) expect(doc.paths[path]?.get, path).toBeDefined();
      expect(doc.paths['/api/v1/catalog/patches'].get.parameters.map((p: { name: string }) => p.name)).toContain('platform');
    });
  });
}
