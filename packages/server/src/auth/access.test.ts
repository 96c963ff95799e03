import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROLES, type Permission, type Role } from '@patchwarden/core';
import { testDatabases } from '../testing/databases.js';
import { checkinBody, makeHarness, systemFacts, type Harness } from '../testing/harness.js';
import { hashed, hostPackages } from '../testing/fixtures.js';
import { buildApp } from '../app.js';
import { createAdminToken } from './store.js';
import { setPasswordCostForTests } from './passwords.js';

setPasswordCostForTests({ N: 2 ** 10, r: 8, p: 1 });

/**
 * What each route needs, written out here by hand: a route added to the server without an entry
 * fails the first test, so every new route is classified on purpose.
 */
const EXPECTED: Record<string, Permission> = {
  'GET /api/v1/approval-rules': 'view', 'POST /api/v1/approval-rules': 'approve', 'DELETE /api/v1/approval-rules/:id': 'approve', 'POST /api/v1/approval-rules/apply': 'approve',
  'GET /api/v1/approvals': 'view', 'POST /api/v1/approvals': 'approve',
  'GET /api/v1/audit': 'audit', 'GET /api/v1/audit/verify': 'audit',
  'GET /api/v1/catalog/authors': 'view', 'POST /api/v1/catalog/authors': 'manage',
  'GET /api/v1/catalog/bundles': 'view', 'POST /api/v1/catalog/bundles': 'publish',
  'GET /api/v1/catalog/custom-role': 'view', 'PUT /api/v1/catalog/custom-role': 'publish',
  'GET /api/v1/catalog/export': 'view', 'GET /api/v1/catalog/export-file': 'manage',
  'GET /api/v1/catalog/metadata/:role': 'view', 'POST /api/v1/catalog/metadata': 'manage',
  'GET /api/v1/catalog/patch': 'view', 'GET /api/v1/catalog/patch/devices': 'view', 'GET /api/v1/catalog/patch/relations': 'view',
  'GET /api/v1/catalog/patches': 'view', 'POST /api/v1/catalog/patches': 'manage', 'POST /api/v1/catalog/payloads/cache': 'manage',
  'POST /api/v1/compliance/history/snapshot': 'manage', 'POST /api/v1/compliance/recompute': 'manage',
  'GET /api/v1/cves/exploited': 'view', 'GET /api/v1/cves/exploited/needed': 'view', 'POST /api/v1/cves/:id/exploited': 'approve',
  'GET /api/v1/dashboard': 'view',
  'GET /api/v1/deployments': 'view', 'POST /api/v1/deployments': 'deploy', 'POST /api/v1/deployments/preview': 'deploy',
  'GET /api/v1/deployments/:id': 'view', 'GET /api/v1/deployments/:id/jobs': 'view',
  'POST /api/v1/deployments/:id/halt': 'deploy', 'POST /api/v1/deployments/:id/resume': 'deploy', 'POST /api/v1/deployments/:id/undo': 'undo',
  'GET /api/v1/devices': 'view', 'GET /api/v1/devices/:ref': 'view', 'GET /api/v1/devices/:ref/events': 'view', 'GET /api/v1/devices/:ref/explain': 'view',
  'GET /api/v1/devices/:ref/packages': 'view', 'GET /api/v1/devices/:ref/patches': 'view',
  'PUT /api/v1/devices/:ref/group': 'manage', 'POST /api/v1/devices/:ref/labels': 'manage', 'POST /api/v1/devices/:ref/revoke': 'manage', 'POST /api/v1/devices/:ref/scan': 'deploy',
  'POST /api/v1/devices/:ref/approve': 'manage',
  'GET /api/v1/enrollment-secrets': 'view', 'POST /api/v1/enrollment-secrets': 'manage', 'POST /api/v1/enrollment-secrets/:id/revoke': 'manage', 'POST /api/v1/enrollment-secrets/:id/rotate': 'manage',
  'GET /api/v1/events/stream': 'view',
  'GET /api/v1/groups': 'view', 'POST /api/v1/groups': 'manage', 'PATCH /api/v1/groups/:ref': 'manage', 'DELETE /api/v1/groups/:ref': 'manage',
  'GET /api/v1/groups/:name/members': 'view', 'GET /api/v1/groups/:name/windows': 'view', 'PUT /api/v1/groups/:name/windows': 'manage',
  'GET /api/v1/jobs': 'view', 'GET /api/v1/jobs/:id': 'view',
  'GET /api/v1/mirror/status': 'view', 'POST /api/v1/mirror/import': 'manage', 'POST /api/v1/mirror/sync': 'manage',
  'GET /api/v1/reports/cves': 'view', 'GET /api/v1/reports/cves.csv': 'view', 'GET /api/v1/reports/history': 'view',
  'GET /api/v1/reports/needed': 'view', 'GET /api/v1/reports/needed.csv': 'view', 'GET /api/v1/reports/needed.pdf': 'view',
  'GET /api/v1/sites': 'view', 'POST /api/v1/sites': 'manage', 'POST /api/v1/sites/:id/revoke': 'manage',
  'GET /api/v1/tokens': 'view', 'POST /api/v1/tokens': 'view', 'POST /api/v1/tokens/:id/revoke': 'view',
  'GET /api/v1/users': 'manage', 'POST /api/v1/users': 'manage', 'PATCH /api/v1/users/:ref': 'manage',
  'GET /api/v1/webhooks': 'view', 'POST /api/v1/webhooks': 'manage', 'DELETE /api/v1/webhooks/:id': 'manage',
  'GET /api/v1/webhooks/:id/deliveries': 'view', 'POST /api/v1/webhooks/:id/test': 'manage',
  'GET /api/v1/whoami': 'view',
};

/** Routes that stream or change the whole fleet: checked for refusal only, never called when allowed. */
const NOT_CALLED = new Set(['GET /api/v1/events/stream']);

for (const tdb of testDatabases) {
  describe.skipIf(!tdb.available)(`who may do what, on ${tdb.name}`, () => {
    let h: Harness;
    const tokens = {} as Record<Role, string>;

    beforeAll(async () => {
      h = await makeHarness(await tdb.open());
      for (const role of Object.keys(ROLES) as Role[]) tokens[role] = (await createAdminToken(h.database.db, `${role} token`, h.clock.now, { role })).token;
    });
    afterAll(async () => h?.close());

    const as = (token: string, method: string, url: string, body?: unknown, headers: Record<string, string> = {}) =>
      h.app.inject({ method: method as 'GET', url, headers: { authorization: `Bearer ${token}`, ...headers }, ...(body === undefined ? {} : { payload: body as object }) });

    it('every route of the server declares the permission written down here', () => {
      const declared = h.app.declaredRoutes.filter((r) => r.auth === 'admin' && r.method !== 'HEAD');
      const got = Object.fromEntries(declared.map((r) => [`${r.method} ${r.url}`, r.permission]));
      expect(got).toEqual(EXPECTED);
    });

    it('answers each role on each route: 403 with the missing permission where the role lacks it, never 403 where it has it', async () => {
      let refused = 0;
      let allowed = 0;
      for (const role of Object.keys(ROLES) as Role[]) {
        for (const [route, permission] of Object.entries(EXPECTED)) {
          const [method, path] = route.split(' ') as [string, string];
          const may = (ROLES[role] as readonly Permission[]).includes(permission);
          if (may && NOT_CALLED.has(route)) continue;
          const url = path.replace(/:(\w+)/g, 'x');
          const res = await as(tokens[role], method, url, method === 'GET' ? undefined : {});
          if (may) {
            expect([401, 403], `${role} ${route} → ${res.statusCode} ${res.body.slice(0, 200)}`).not.toContain(res.statusCode);
            allowed++;
          } else {
            expect(res.statusCode, `${role} ${route}`).toBe(403);
            expect(res.json().error).toMatchObject({ code: 'E_FORBIDDEN', details: { permission, role } });
            refused++;
          }
        }
      }
      // 4 roles × every route; the counts prove both sides ran
      expect(refused).toBeGreaterThan(60);
      expect(allowed).toBeGreaterThan(150);
    });

    it('signs in with a password: an HttpOnly SameSite cookie, changes need the CSRF token, sign-out ends it', async () => {
      expect((await h.admin('POST', '/api/v1/users', { name: 'olga', password: 'correct horse battery', role: 'operator' })).statusCode).toBe(201);
      expect((await h.admin('POST', '/api/v1/users', { name: 'olga', password: 'correct horse battery', role: 'operator' })).json().error.code).toBe('E_CONFLICT');
      expect((await h.admin('POST', '/api/v1/users', { name: 'short', password: 'short', role: 'operator' })).json().error.code).toBe('E_VALIDATION');
      const login = await h.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { name: 'olga', password: 'correct horse battery' } });
      expect(login.statusCode).toBe(200);
      const setCookie = String(login.headers['set-cookie']);
      expect(setCookie).toMatch(/^pw_session=[A-Za-z0-9_-]{43}; Max-Age=604800; Path=\/; HttpOnly; SameSite=Strict$/);
      const cookie = setCookie.split(';')[0]!;
      const { csrf, role } = login.json();
      expect(role).toBe('operator');
      const who = await h.app.inject({ method: 'GET', url: '/api/v1/whoami', headers: { cookie } });
      expect(who.json()).toMatchObject({ kind: 'user', name: 'olga', role: 'operator', permissions: ['view', 'approve', 'deploy', 'undo'], csrf });
      // a change without the CSRF token is refused before it runs; with it, it runs
      const g = await h.admin('POST', '/api/v1/groups', { name: 'csrf-test' });
      expect(g.statusCode).toBe(201);
      const noCsrf = await h.app.inject({ method: 'POST', url: '/api/v1/approvals', headers: { cookie }, payload: { patch: 'none/x', group: 'csrf-test', decision: 'decline' } });
      expect(noCsrf.statusCode).toBe(403);
      expect(noCsrf.json().error.message).toMatch(/CSRF/);
      const wrongCsrf = await h.app.inject({ method: 'POST', url: '/api/v1/approvals', headers: { cookie, 'x-csrf-token': 'x'.repeat(32) }, payload: { patch: 'none/x', group: 'csrf-test', decision: 'decline' } });
      expect(wrongCsrf.statusCode).toBe(403);
      const withCsrf = await h.app.inject({ method: 'POST', url: '/api/v1/tokens', headers: { cookie, 'x-csrf-token': csrf }, payload: { name: 'olga script', scopes: ['view'] } });
      expect(withCsrf.statusCode).toBe(201);
      // the operator's role has no 'manage'
      expect((await h.app.inject({ method: 'GET', url: '/api/v1/users', headers: { cookie } })).statusCode).toBe(403);
      // a bearer header wins over the cookie, and a bad one is not rescued by it
      expect((await h.app.inject({ method: 'GET', url: '/api/v1/whoami', headers: { cookie, authorization: 'Bearer pwa_forged_forged_forged' } })).statusCode).toBe(401);
      const out = await h.app.inject({ method: 'POST', url: '/api/v1/auth/logout', headers: { cookie } });
      expect(out.statusCode).toBe(204);
      expect(String(out.headers['set-cookie'])).toMatch(/^pw_session=; Max-Age=0|Expires=Thu, 01 Jan 1970/);
      expect((await h.app.inject({ method: 'GET', url: '/api/v1/whoami', headers: { cookie } })).statusCode).toBe(401);
    });

    it('locks an account after 5 failed sign-ins in a row, even for the right password, until it is unlocked', async () => {
      await h.admin('POST', '/api/v1/users', { name: 'mallory', password: 'the real password!', role: 'auditor' });
      const login = (password: string, name = 'mallory') => h.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { name, password }, remoteAddress: `10.0.0.${Math.floor(Math.random() * 200) + 1}` });
      for (let i = 0; i < 5; i++) {
        const r = await login(`guess ${i}`);
        expect(r.statusCode).toBe(401);
        expect(r.json().error.message).toBe('the user name or password is wrong');
      }
      // an unknown user gets the very same answer
      expect((await login('whatever', 'nobody')).json().error.message).toBe('the user name or password is wrong');
      const locked = await login('the real password!');
      expect(locked.statusCode).toBe(429);
      expect(locked.json().error.code).toBe('E_RATE_LIMITED');
      // 15 minutes later it opens again; an administrator can also unlock at once
      h.clock.now += 15 * 60_000 + 1;
      expect((await login('the real password!')).statusCode).toBe(200);
      for (let i = 0; i < 6; i++) await login('wrong again');
      expect((await login('the real password!')).statusCode).toBe(429);
      expect((await h.admin('PATCH', '/api/v1/users/mallory', { unlock: true })).json().lockedUntil).toBeNull();
      expect((await login('the real password!')).statusCode).toBe(200);
      // a disabled user cannot sign in, and its sessions ended
      expect((await h.admin('PATCH', '/api/v1/users/mallory', { disabled: true })).json().disabled).toBe(true);
      expect((await login('the real password!')).statusCode).toBe(401);
    });

    it('API tokens: scopes narrow, expiry ends, revocation ends, and no token gives more than its maker holds', async () => {
      await h.admin('POST', '/api/v1/users', { name: 'petra', password: 'petra password 1', role: 'author' });
      let cookie = '';
      let csrf = '';
      const signIn = async () => {
        const r = await h.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { name: 'petra', password: 'petra password 1' } });
        cookie = String(r.headers['set-cookie']).split(';')[0]!;
        csrf = r.json().csrf as string;
      };
      await signIn();
      const mk = (body: unknown) => h.app.inject({ method: 'POST', url: '/api/v1/tokens', headers: { cookie, 'x-csrf-token': csrf }, payload: body as object });
      const over = await mk({ name: 'too much', scopes: ['deploy'] });
      expect(over.statusCode).toBe(403);
      expect((await mk({ name: 'svc', service: { role: 'administrator' } })).statusCode).toBe(403);
      const t = await mk({ name: 'ci publish', scopes: ['publish'], expiresInDays: 1 });
      expect(t.statusCode).toBe(201);
      const { token, id } = t.json();
      // publish only: reading is outside its scopes
      expect((await as(token, 'GET', '/api/v1/devices')).statusCode).toBe(403);
      expect((await as(token, 'PUT', '/api/v1/catalog/custom-role', {})).statusCode).not.toBe(403);
      h.clock.now += 86_400_000 + 1;
      const expired = await as(token, 'PUT', '/api/v1/catalog/custom-role', {});
      expect(expired.statusCode).toBe(401);
      expect(expired.json().error.message).toMatch(/expired/);
      // the session ended too (8 idle hours)
      expect((await h.app.inject({ method: 'GET', url: '/api/v1/whoami', headers: { cookie } })).json().error.message).toBe('the session has ended');
      await signIn();
      const t2 = (await mk({ name: 'reader' })).json();
      expect((await as(t2.token, 'GET', '/api/v1/whoami')).json()).toMatchObject({ kind: 'token', user: 'petra', role: 'author' });
      expect((await as(t2.token, 'POST', `/api/v1/tokens/${t2.id}/revoke`)).statusCode).toBe(200);
      expect((await as(t2.token, 'GET', '/api/v1/whoami')).statusCode).toBe(401);
      // someone else's token is not petra's to revoke; the list shows her own only
      const mine = await h.app.inject({ method: 'GET', url: '/api/v1/tokens', headers: { cookie } });
      expect(mine.json().items.map((x: { name: string }) => x.name).sort()).toEqual(['ci publish', 'reader']);
      const adminTokens = (await h.admin('GET', '/api/v1/tokens')).json().items as { id: string }[];
      const foreign = adminTokens.find((x) => x.id !== id && x.id !== t2.id)!;
      expect((await h.app.inject({ method: 'POST', url: `/api/v1/tokens/${foreign.id}/revoke`, headers: { cookie, 'x-csrf-token': csrf } })).statusCode).toBe(404);
      // a disabled user's tokens stop working
      const t3 = (await mk({ name: 'later' })).json();
      await h.admin('PATCH', '/api/v1/users/petra', { disabled: true });
      expect((await as(t3.token, 'GET', '/api/v1/whoami')).json().error.message).toMatch(/disabled/);
    });

    it('keeps an operator limited to groups inside them: scans, approvals and fleet-wide switches', async () => {
      const inv = hashed(hostPackages());
      await h.admin('POST', '/api/v1/groups', { name: 'lab' });
      await h.admin('POST', '/api/v1/groups', { name: 'prod' });
      const lab = await h.enroll({ hostname: 'lab-1', group: 'lab' });
      const prod = await h.enroll({ hostname: 'prod-1', group: 'prod' });
      for (const [d, n] of [[lab, 'lab-1'], [prod, 'prod-1']] as const) await h.checkin(d.token, checkinBody(systemFacts(n), { mode: 'full', ...inv }));
      await h.admin('POST', '/api/v1/users', { name: 'lab-op', password: 'lab operator pw', role: 'operator', groups: ['lab'] });
      expect((await h.admin('POST', '/api/v1/users', { name: 'bad', password: 'lab operator pw', role: 'auditor', groups: ['lab'] })).json().error.code).toBe('E_VALIDATION');
      const users = (await h.admin('GET', '/api/v1/users')).json().items as { name: string; groups: string[] | null }[];
      expect(users.find((u) => u.name === 'lab-op')!.groups).toEqual(['lab']);
      const l = await h.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { name: 'lab-op', password: 'lab operator pw' } });
      const headers = { cookie: String(l.headers['set-cookie']).split(';')[0]!, 'x-csrf-token': l.json().csrf as string };
      const call = (method: string, url: string, payload?: object) => h.app.inject({ method: method as 'POST', url, headers, ...(payload ? { payload } : {}) });
      expect((await call('POST', `/api/v1/devices/${lab.deviceId}/scan`)).statusCode).toBe(200);
      const outside = await call('POST', `/api/v1/devices/${prod.deviceId}/scan`);
      expect(outside.statusCode).toBe(403);
      expect(outside.json().error.message).toMatch(/outside the groups 'lab-op' may act on: prod-1/);
      expect((await call('POST', '/api/v1/approvals', { patch: 'none/x', group: 'prod', decision: 'decline' })).statusCode).toBe(403);
      expect((await call('POST', '/api/v1/cves/CVE-2024-0001/exploited', { exploited: true })).statusCode).toBe(403);
      expect((await call('POST', '/api/v1/approval-rules/apply', {})).statusCode).toBe(403);
      expect((await call('GET', '/api/v1/whoami')).json().groups).toEqual(['lab']);
      // a deployment reaching a device outside is refused before anything is written
      const before = (await h.admin('GET', '/api/v1/deployments')).json().total;
      const dep = await call('POST', '/api/v1/deployments', { patches: ['none/x'], groups: ['prod'], start: new Date(h.clock.now).toISOString() });
      expect(dep.statusCode, dep.body).toBe(403);
      expect((await h.admin('GET', '/api/v1/deployments')).json().total).toBe(before);
    });
  });
}

describe('sign-in throttling per address', () => {
  it('answers 429 with a code after the per-minute limit of attempts from one address', async () => {
    const tdb = testDatabases[0]!;
    const database = await tdb.open();
    const app = await buildApp({ db: database.db, dialect: database.dialect, logger: false, rateLimits: { loginPerMinute: 3, enrollPerMinute: 2, apiPerMinute: 0 } });
    try {
      const codes: number[] = [];
      for (let i = 0; i < 5; i++) codes.push((await app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { name: 'x', password: 'y' }, remoteAddress: '192.0.2.7' })).statusCode);
      expect(codes).toEqual([401, 401, 401, 429, 429]);
      const r = await app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { name: 'x', password: 'y' }, remoteAddress: '192.0.2.7' });
      expect(r.json().error.code).toBe('E_RATE_LIMITED');
      // another address is not held back by the first
      expect((await app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { name: 'x', password: 'y' }, remoteAddress: '192.0.2.8' })).statusCode).toBe(401);
      // enrollment is limited the same way
      const enroll = [];
      for (let i = 0; i < 3; i++) enroll.push((await app.inject({ method: 'POST', url: '/api/v1/enroll', payload: { secret: 'pwe_nothing_nothing_nothing', system: systemFacts() }, remoteAddress: '192.0.2.9' })).statusCode);
      expect(enroll).toEqual([401, 401, 429]);
    } finally {
      await app.close();
      await database.close();
    }
  });
});
