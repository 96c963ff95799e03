import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDatabases } from '../testing/databases.js';
import { makeHarness, type Harness } from '../testing/harness.js';
import { zlibPatch } from '../catalog/mirror/testing.js';

for (const tdb of testDatabases) {
  describe.skipIf(!tdb.available)(`sites on ${tdb.name}`, () => {
    let h: Harness;
    let token: string;
    const as = (t: string, method: string, url: string, payload?: object) =>
      h.app.inject({ method: method as 'GET', url, headers: { authorization: `Bearer ${t}` }, ...(payload ? { payload } : {}) });

    beforeAll(async () => {
      h = await makeHarness(await tdb.open());
    });
    afterAll(async () => h?.close());

    it('creates a site credential shown once and stored as its sha256', async () => {
      const r = await h.admin('POST', '/api/v1/sites', { name: 'lyon', mode: 'autonomous' });
      expect(r.statusCode, r.body).toBe(201);
      token = r.json().token;
      expect(token).toMatch(/^pws_[A-Za-z0-9_-]{43}$/);
      expect(r.json()).toMatchObject({ name: 'lyon', mode: 'autonomous', revokedAt: null, report: null, behind: null });
      const row = await h.database.db.selectFrom('sites').select('token_hash').executeTakeFirstOrThrow();
      expect(row.token_hash).toBe(createHash('sha256').update(token).digest('hex'));
      const list = (await h.admin('GET', '/api/v1/sites')).json().items;
      expect(list).toHaveLength(1);
      expect(JSON.stringify(list)).not.toContain(token);
      expect((await h.admin('POST', '/api/v1/sites', { name: 'lyon', mode: 'replica' })).json().error.code).toBe('E_CONFLICT');
      expect((await h.admin('POST', '/api/v1/sites', { name: 'x', mode: 'master' })).statusCode).toBe(400);
    });

    it('lets a site read the signed catalog and its channel, nothing an administrator reads', async () => {
      expect((await as(token, 'GET', '/api/v1/tuf/metadata/timestamp.json')).statusCode).toBe(200);
      expect((await as(token, 'GET', '/api/v1/tuf-root')).statusCode).toBe(200);
      expect((await as(token, 'GET', '/api/v1/devices')).statusCode).toBe(401);
      expect((await as(token, 'GET', '/api/v1/sites')).statusCode).toBe(401);
      const self = await as(token, 'GET', '/api/v1/sites/self');
      expect(self.json()).toMatchObject({ name: 'lyon', mode: 'autonomous', coverage: [] });
      // an admin or device token is not a site
      expect((await h.admin('GET', '/api/v1/sites/self')).statusCode).toBe(401);
      const dev = await h.enroll({ hostname: 'd1' });
      expect((await as(dev.token, 'GET', '/api/v1/sites/self')).statusCode).toBe(401);
    });

    it('has an approvals channel that answers an empty list until approvals exist', async () => {
      const a = (await as(token, 'GET', '/api/v1/sites/self/approvals')).json();
      expect(a).toMatchObject({ mode: 'autonomous', items: [] });
      expect(a.note).toMatch(/own approvals/);
      const r = await h.admin('POST', '/api/v1/sites', { name: 'nantes', mode: 'replica' });
      expect((await as(r.json().token, 'GET', '/api/v1/sites/self/approvals')).json().note).toMatch(/replica site takes them from here/);
    });

    it('records what a site reports and shows which sites are behind', async () => {
      const up = await h.admin('POST', '/api/v1/catalog/patches', { patches: [zlibPatch('debian/zlib-1', '1:1.2.13.dfsg-1+pw1')], coverage: [], source: { kind: 'apt' } });
      expect(up.statusCode, up.body).toBe(200);
      const snapshot = (await h.database.db.selectFrom('tuf_roles').select('version').where('name', '=', 'snapshot').executeTakeFirstOrThrow()).version;
      const report = { root: 1, timestamp: 3, snapshot: snapshot - 1, targets: 0, expires: null, syncedAt: null, error: null };
      expect((await as(token, 'POST', '/api/v1/sites/self/report', report)).statusCode).toBe(200);
      let lyon = (await h.admin('GET', '/api/v1/sites')).json().items.find((s: { name: string }) => s.name === 'lyon');
      expect(lyon).toMatchObject({ behind: true, report: { snapshot: snapshot - 1 } });
      expect(lyon.lastSeenAt).not.toBeNull();
      await as(token, 'POST', '/api/v1/sites/self/report', { ...report, snapshot });
      lyon = (await h.admin('GET', '/api/v1/sites')).json().items.find((s: { name: string }) => s.name === 'lyon');
      expect(lyon.behind).toBe(false);
      expect((await as(token, 'POST', '/api/v1/sites/self/report', { ...report, extra: 1 })).statusCode).toBe(400);
    });

    it('revokes a site by name: its token stops working at once, with a reason', async () => {
      const r = await h.admin('POST', '/api/v1/sites/lyon/revoke');
      expect(r.statusCode).toBe(200);
      expect(r.json().revokedAt).not.toBeNull();
      const f = await as(token, 'GET', '/api/v1/tuf/metadata/timestamp.json');
      expect(f.statusCode).toBe(403);
      expect(f.json().error).toMatchObject({ code: 'E_FORBIDDEN', message: expect.stringMatching(/lyon.*revoked/) });
      expect((await as(token, 'GET', '/api/v1/sites/self')).statusCode).toBe(403);
      expect((await h.admin('POST', '/api/v1/sites/nowhere/revoke')).statusCode).toBe(404);
    });
  });
}
