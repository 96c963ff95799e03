/**
 * The console API with 10,000 devices (SQLite, the slower of the two on one connection): 40
 * shared package sets, 300 patches with compliance computed by the engine, 30 days of history,
 * 10,000 finished install jobs. Each answer must come in under a second.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inventoryHash, sortInventory, type PackageFact } from '@patchwarden/core';
import { testDatabases } from '../testing/databases.js';
import { BOOKWORM, hostPackages, packagePatch } from '../testing/fixtures.js';
import { makeHarness, type Harness } from '../testing/harness.js';
import { upsertPatches } from '../catalog/store.js';
import { createGroup } from '../groups/store.js';
import { ensureSet } from '../inventory/store.js';
import { recordHistory, dayOf } from '../compliance/history.js';

const DEVICES = 10_000;
const SETS = 40;
const PATCHES = 300;
const LIMIT_MS = 1000;

describe('console API with 10,000 devices (sqlite)', () => {
  let h: Harness;
  let patch = '';
  const timings: string[] = [];

  beforeAll(async () => {
    h = await makeHarness(await testDatabases[0]!.open());
    const { db } = h.database;
    const dialect = h.database.dialect;
    const now = h.clock.now;
    let s = 20261126;
    const rand = () => (s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32;
    const base = hostPackages().filter((p) => p.state === 'installed').slice(0, 600);
    const severities = ['critical', 'high', 'medium', 'low'] as const;
    const patches = Array.from({ length: PATCHES }, (_, i) => {
      const p = base[i % base.length]!;
      return packagePatch(`speed/${p.name}-${i}`, p.name, `${p.version}+pw${i}`, { severity: severities[i % 4]!, title: `${p.name}: security update ${i}` });
    });
    patch = patches[0]!.id;
    await upsertPatches(db, patches, BOOKWORM, { kind: 'test' }, now - 86_400_000);
    const sys = { os: { family: 'linux', distribution: 'debian', version: '12', versionCodename: 'bookworm', machine: 'x86_64', packageArch: 'amd64' }, kernelRelease: '6.1.0-28-amd64', rebootRequired: false, managers: ['dpkg'] };
    const contexts: { set: number; ctx: number; count: number }[] = [];
    for (let k = 0; k < SETS; k++) {
      const list: PackageFact[] = base.filter(() => rand() > 0.1).map((p) => ({ ...p }));
      sortInventory(list);
      const ref = await db.transaction().execute((tx) => ensureSet(tx, dialect, list, inventoryHash(list), now));
      const c = await db.insertInto('eval_contexts').values({ key: `speed-${k}`, package_set_id: ref.id, system_json: JSON.stringify(sys), generation: -1, covered: 1, created_at: now }).returning('id').executeTakeFirstOrThrow();
      contexts.push({ set: ref.id, ctx: c.id, count: list.length });
    }
    const group = await createGroup(db, 'web', 'web servers', now);
    const rows = [];
    for (let d = 0; d < DEVICES; d++) {
      const c = contexts[d % SETS]!;
      rows.push({
        id: `00000000-0000-4000-8000-${String(d).padStart(12, '0')}`,
        hostname: `web-${String(d).padStart(5, '0')}`,
        status: 'active' as const,
        group_id: d % 4 === 0 ? group.id : null,
        token_hash: createHash('sha256').update(`speed-token-${d}`).digest('hex'),
        secret_id: null,
        enrolled_at: now - 86_400_000,
        last_seen_at: now,
        revoked_at: null,
        system_json: null,
        system_hash: null,
        os_pretty: 'Debian GNU/Linux 12 (bookworm)',
        package_set_id: c.set,
        package_count: c.count,
        inventory_status: 'ok' as const,
        inventory_message: null,
        context_id: c.ctx,
      });
    }
    for (let i = 0; i < rows.length; i += 500) await db.insertInto('devices').values(rows.slice(i, i + 500)).execute();
    await h.app.compliance.recomputeAll();
    // 30 days of history: today's snapshot copied back
    const today = dayOf(now);
    await recordHistory(db, today);
    for (let k = 1; k < 30; k++) {
      const day = dayOf(now - k * 86_400_000);
      await db
        .insertInto('compliance_history')
        .columns(['day', 'device_id', 'state', 'severity', 'count'])
        .expression((eb) => eb.selectFrom('compliance_history').select([eb.val(day).as('day'), 'device_id', 'state', 'severity', 'count']).where('day', '=', today))
        .execute();
    }
    // one finished deployment with 10,000 done install jobs
    await db.insertInto('deployments').values({ id: 'dep-speed', status: 'active', halt_reason: null, patches_json: JSON.stringify([patch]), target_json: JSON.stringify({ groups: [], labels: [], devices: [], exclude: { groups: [], labels: [], devices: [] }, testRings: [] }), rings_json: JSON.stringify([{ name: 'all', percent: 100, bakeMinutes: 0, failureThreshold: 0, maxNotReporting: 0 }]), start_at: now - 3_600_000, deadline_at: null, created_at: now - 3_600_000, undone_at: null }).execute();
    const jobs = rows.map((r, i) => ({
      id: `job-${i}`, deployment_id: 'dep-speed', device_id: r.id, kind: 'install' as const, patch_id: patches[i % PATCHES]!.id, revision: 1, target: 'x', ring: 0, state: 'done',
      undoes: null, created_at: now - 3_600_000, handed_at: now - 3_000_000, finished_at: now - Math.floor(rand() * 3_000_000), report_json: '{}',
    }));
    for (let i = 0; i < jobs.length; i += 500) await db.insertInto('jobs').values(jobs.slice(i, i + 500)).execute();
    expect((await h.admin('POST', '/api/v1/approvals', { patch, group: 'web', decision: 'approve' })).statusCode).toBe(200);
  }, 300_000);

  afterAll(async () => {
    if (timings.length) console.log(`console API with ${DEVICES} devices:\n${timings.join('\n')}`);
    await h?.close();
  });

  const timed: [string, string, string, unknown?][] = [
    ['dashboard', 'GET', '/api/v1/dashboard'],
    ['patches sorted by devices, needed', 'GET', '/api/v1/catalog/patches?state=needed&sort=devices&order=desc'],
    ['patches by vendor and CVE', 'GET', '/api/v1/catalog/patches?vendor=speed&cve=CVE-2024-1&severity=critical,high'],
    ["a patch's devices (page)", 'GET', '/api/v1/catalog/patch/devices?id=PATCH&limit=100&offset=2000'],
    ["a patch's relations", 'GET', '/api/v1/catalog/patch/relations?id=PATCH'],
    ['needed.csv by patch', 'GET', '/api/v1/reports/needed.csv?by=patch&limit=50'],
    ['deployment preview (2,500 devices)', 'POST', '/api/v1/deployments/preview', { patches: ['PATCH'], groups: ['web'], start: '2026-11-26T10:00:00Z', rings: [{ name: 'canary', percent: 10 }, { name: 'rest', percent: 100 }] }],
  ];
  for (const [name, method, url, body] of timed) {
    it(`${name} answers in under ${LIMIT_MS} ms`, async () => {
      const u = url.replace('PATCH', patch);
      const b = body === undefined ? undefined : JSON.parse(JSON.stringify(body).replace('PATCH', patch));
      await h.admin(method, u, b); // warm: statement cache, catalog in memory
      // the best of three: other test files share this machine's cores meanwhile
      let ms = Infinity;
      let r = await h.admin(method, u, b);
      for (let i = 0; i < 3; i++) {
        const t0 = performance.now();
        r = await h.admin(method, u, b);
        ms = Math.min(ms, performance.now() - t0);
      }
      timings.push(`  ${name.padEnd(40)} ${ms.toFixed(0).padStart(5)} ms`);
      expect(r.statusCode, r.body.slice(0, 500)).toBe(200);
      expect(ms).toBeLessThan(LIMIT_MS);
      if (name === 'dashboard') {
        const d = r.json();
        expect(d.devices.total).toBe(DEVICES);
        expect(d.trend).toHaveLength(30);
        expect(d.sla[0].patched).toBeGreaterThan(0);
      }
    });
  }
});
