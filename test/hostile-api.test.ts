/**
 * Hostile input against the API, on SQLite and PostgreSQL. The GET routes and the query
 * parameters they accept come from the server itself (`declaredRoutes` and the OpenAPI document
 * that the routes' zod schemas produce), so a new route or parameter is probed without an edit
 * here. Every parameter gets SQL injection strings, LIKE wildcards, NUL bytes, very long and
 * unicode text: the answer is a 400 with a coded error, or a 200 exactly like the one for a value
 * that matches nothing, never a 5xx; afterwards every table and row is still there. Then bodies:
 * oversized, deeply nested, huge numbers, duplicate and prototype keys, wrong content types,
 * truncated gzip, forged and malformed credentials; each with its code and proof nothing was
 * written.
 */
import { gzipSync } from 'node:zlib';
import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDatabases } from '../packages/server/src/testing/databases.js';
import { BOOKWORM, hashed, hostPackages, packagePatch } from '../packages/server/src/testing/fixtures.js';
import { createAdminToken } from '../packages/server/src/auth/store.js';
// the `declaredRoutes` decoration's type
import type {} from '../packages/server/src/http/auth.js';
import { checkinBody, makeHarness, systemFacts, type Harness } from '../packages/server/src/testing/harness.js';

const LONG = 'A'.repeat(5000);
/** What goes into every parameter. None of it is in the seeded data, so each must find nothing. */
const PAYLOADS: [string, string][] = [
  ['quote or', "' OR 1=1 --"],
  ['quote or 2', "' OR '1'='1"],
  ['drop table', '"; DROP TABLE devices; --'],
  ['drop table 2', "'; DROP TABLE devices; --"],
  ['union', "1) UNION SELECT id, hostname, null FROM devices --"],
  ['union 2', "' UNION SELECT token_hash FROM admin_tokens --"],
  ['stacked', '1; DELETE FROM devices'],
  ['comment', '/* */ or /**/1=1'],
  ['wildcards', '%_\\'],
  ['percent', '%'],
  ['underscore', '_'],
  ['escape char', '!%'],
  ['backslash', '\\'],
  ['nul', 'a\u0000b'],
  ['nul alone', '\u0000'],
  ['long', LONG],
  ['unicode', 'ü漢字🙂\u202e\u0301'],
  ['lone surrogate', '\ud800'],
  ['json', '{"$ne":null}'],
  ['array-like', '[]'],
  ['negative', '-1'],
  ['huge number', '1e400'],
  ['big int', '99999999999999999999999999'],
  ['fraction', '0.5'],
  ['empty', ''],
  ['space', ' '],
  ['control', '\r\n\t\u0007'],
  ['html', '<script>alert(1)</script>'],
];
const NEUTRAL = 'zz-no-such-value-7f3a';
/** Payloads that the seeded data holds literally (hostnames pct%host, under_score, plain-1): they may match. */
const OCCURS = new Set(['%', '_', '-1']);

/** Not probed, with the reason. A route outside /api/v1 is the console, the docs or health. */
const NOT_PROBED: Record<string, string> = {
  'GET /api/v1/events/stream': 'a server-sent event stream: it never ends (no query parameters: checked in the path probe below)',
  'GET /api/v1/tuf/*': 'signed catalog files served byte for byte: a path, probed separately below',
  'GET /api/v1/tls/ca.crt': 'no parameters; answers 404 here, where the server speaks plain HTTP (test/tls.test.ts serves it)',
};

interface OpenApiParam {
  in: 'query' | 'path';
  name: string;
  required?: boolean;
  schema: { type?: string; enum?: string[]; pattern?: string; format?: string; maxLength?: number; minLength?: number };
}

function coded(r: LightMyRequestResponse, where: string): string {
  let body: { error?: { code?: string } };
  try {
    body = r.json();
  } catch {
    throw new Error(`${where}: HTTP ${r.statusCode} without a JSON error body: ${r.body.slice(0, 200)}`);
  }
  const code = body.error?.code;
  expect(code, `${where}: HTTP ${r.statusCode} ${r.body.slice(0, 300)}`).toMatch(/^E_[A-Z_]+$/);
  return code!;
}

/** What two answers must share to be "the same result": status, and for JSON the counts. */
function shape(r: LightMyRequestResponse): unknown {
  const type = String(r.headers['content-type'] ?? '');
  if (r.statusCode !== 200) return { status: r.statusCode, code: safeJson(r)?.error?.code };
  if (type.includes('application/json')) {
    const b = safeJson(r);
    if (b && typeof b === 'object' && !Array.isArray(b)) {
      return { status: 200, total: b.total, items: Array.isArray(b.items) ? b.items.length : undefined, keys: Object.keys(b).sort() };
    }
    return { status: 200, length: Array.isArray(b) ? b.length : undefined };
  }
  if (type.includes('text/csv')) return { status: 200, lines: r.body.split('\n').length };
  return { status: 200, type };
}

function safeJson(r: LightMyRequestResponse): { error?: { code?: string }; code?: string; total?: number; items?: unknown[] } | null {
  try {
    return r.json();
  } catch {
    return null;
  }
}

/** Failures grouped by route and parameter, the payloads listed once per message. */
function summarize(failures: string[]): string {
  const groups = new Map<string, string[]>();
  for (const f of failures) {
    const m = /^(.*?)<([^>]*)>(.*)$/.exec(f);
    const key = m ? `${m[1]}<…>${m[3]!.slice(0, 200)}` : f;
    groups.set(key, [...(groups.get(key) ?? []), m ? m[2]! : '']);
  }
  return [...groups].map(([k, labels]) => `${k}  [${labels.join(', ')}]`).join('\n');
}

const qs = (params: Record<string, string>) =>
  Object.entries(params)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
    .join('&');

/** encodeURIComponent, except that a lone surrogate (which it refuses) travels as raw bytes. */
function encodeLoose(s: string): string {
  try {
    return encodeURIComponent(s);
  } catch {
    return Array.from(Buffer.from(s, 'utf8')).map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');
  }
}

for (const tdb of testDatabases) {
  describe.skipIf(!tdb.available)(`hostile input on ${tdb.name}`, () => {
    let h: Harness;
    let docs: { paths: Record<string, Record<string, { parameters?: OpenApiParam[] }>> };
    const inv = hashed(hostPackages().slice(0, 40));
    const PATCH = 'debian/dsa-9999-1';
    const seeded = {
      devices: {} as Record<string, { deviceId: string; token: string }>,
      deployment: '',
      job: '',
      webhook: '',
      siteToken: '',
      contentSha: '',
    };

    /** Row counts of every table and the list of tables: what no refused request may change. */
    async function snapshot() {
      const db = h.database.db;
      const tables =
        tdb.name === 'sqlite'
          ? (await sql<{ name: string }>`select name from sqlite_master where type in ('table', 'view') and name not like 'sqlite_%' order by name`.execute(db)).rows.map((r) => r.name)
          : (await sql<{ name: string }>`select table_name as name from information_schema.tables where table_schema = current_schema() order by table_name`.execute(db)).rows.map((r) => r.name);
      const counts: Record<string, number> = {};
      for (const t of tables) {
        // an audit trail may record refusals; a catalog export signs a new snapshot and timestamp
        if (t === 'audit_log' || t === 'tuf_files') continue;
        const r = await sql<{ n: number | string }>`select count(*) as n from ${sql.table(t)}`.execute(db);
        counts[t] = Number(r.rows[0]!.n);
      }
      const devices = await db.selectFrom('devices').select(['id', 'hostname', 'status', 'last_seen_at', 'package_set_id', 'system_json']).orderBy('id').execute();
      const groups = await db.selectFrom('groups').selectAll().orderBy('id').execute();
      return { tables, counts, devices, groups };
    }

    /**
     * Admin tokens to take turns with: the API allows 6,000 requests a minute per credential,
     * and this test sends more than that in a few seconds.
     */
    const adminTokens: string[] = [];
    let sent = 0;
    const admin = () => adminTokens[Math.floor(sent / 5000) % adminTokens.length] ?? h.adminToken;

    function inject(method: string, url: string, opts: { token?: string | null; payload?: string | Buffer; headers?: Record<string, string> } = {}) {
      const headers: Record<string, string> = { ...opts.headers };
      sent++;
      const token = opts.token === undefined ? admin() : opts.token;
      if (token) headers.authorization = `Bearer ${token}`;
      return h.app.inject({ method: method as 'GET', url, headers, ...(opts.payload === undefined ? {} : { payload: opts.payload }) });
    }

    const json = (method: string, url: string, body: string | Buffer, token?: string | null, extra: Record<string, string> = {}) =>
      inject(method, url, { token, payload: body, headers: { 'content-type': 'application/json', ...extra } });

    beforeAll(async () => {
      h = await makeHarness(await tdb.open());
      docs = (await h.app.inject({ method: 'GET', url: '/api/docs/json' })).json();
      for (let i = 0; i < 8; i++) adminTokens.push((await createAdminToken(h.database.db, `hostile ${i}`, h.clock.now)).token);
      const ok = (r: LightMyRequestResponse, what: string) => expect(r.statusCode, `${what}: ${r.body}`).toBeLessThan(300);
      ok(await h.admin('POST', '/api/v1/groups', { name: 'web servers', description: 'nginx' }), 'group');
      ok(await h.admin('POST', '/api/v1/groups', { name: 'grp_under', description: 'a % in the description' }), 'group 2');
      // hostnames holding the LIKE wildcards and the escape character, to prove they match literally
      for (const host of ['plain-1', 'pct%host', 'under_score', 'bang!host', 'UPPER-1']) {
        const d = await h.enroll({ hostname: host, group: host === 'plain-1' ? 'web servers' : null });
        seeded.devices[host] = d;
        h.clock.now += 1000;
        ok(await h.checkin(d.token, checkinBody(systemFacts(host), { mode: 'full', ...inv })), `check-in ${host}`);
      }
      ok(await h.admin('POST', `/api/v1/devices/${seeded.devices['plain-1']!.deviceId}/labels`, { add: ['env=prod'] }), 'label');
      const pkg = inv.packages[0]!;
      ok(await h.admin('POST', '/api/v1/catalog/patches', { patches: [packagePatch(PATCH, pkg.name, `${pkg.version}+fix9`)], coverage: BOOKWORM, source: { kind: 'test' } }), 'patch');
      ok(await h.admin('POST', '/api/v1/approvals', { patch: PATCH, group: 'web servers', decision: 'approve' }), 'approval');
      const dep = await h.admin('POST', '/api/v1/deployments', { patches: [PATCH], groups: ['web servers'], start: new Date(h.clock.now).toISOString() });
      ok(dep, 'deployment');
      seeded.deployment = dep.json().id;
      const jobs = await h.admin('GET', `/api/v1/deployments/${seeded.deployment}/jobs`);
      seeded.job = jobs.json().items[0]?.id ?? '';
      expect(seeded.job, jobs.body).not.toBe('');
      const wh = await h.admin('POST', '/api/v1/webhooks', { url: 'https://hooks.example.com/patchwarden', events: ['ping'] });
      ok(wh, 'webhook');
      seeded.webhook = wh.json().id;
      const site = await h.admin('POST', '/api/v1/sites', { name: 'branch office', mode: 'replica' });
      ok(site, 'site');
      seeded.siteToken = site.json().token;
      const root = await h.app.inject({ method: 'GET', url: '/api/v1/tuf/metadata/1.root.json', headers: { authorization: `Bearer ${h.adminToken}` } });
      expect(root.statusCode, root.body).toBe(200);
      // a content-store object: the patch's manifest, as the snapshot names it
      const row = await h.database.db.selectFrom('content').select('sha256').limit(1).executeTakeFirst();
      seeded.contentSha = row?.sha256 ?? '0'.repeat(64);
    }, 60_000);
    afterAll(async () => h?.close());

    /** A valid value for each path parameter, by route. */
    function pathValue(url: string, name: string): string {
      if (name === 'ref') return seeded.devices['plain-1']!.deviceId;
      if (name === 'name') return 'web servers';
      if (name === 'role') return 'root';
      if (name === 'sha256') return seeded.contentSha;
      if (name === 'id') {
        if (url.startsWith('/api/v1/deployments/')) return seeded.deployment;
        if (url.startsWith('/api/v1/jobs/')) return seeded.job;
        if (url.startsWith('/api/v1/webhooks/')) return seeded.webhook;
      }
      throw new Error(`no seeded value for :${name} of ${url}: add one to pathValue`);
    }

    /** A valid value for each required query parameter. */
    function requiredValue(url: string, p: OpenApiParam): string {
      if (p.schema.enum) return p.schema.enum[0]!;
      if (['id', 'patch'].includes(p.name)) return PATCH;
      throw new Error(`no value for the required parameter ${p.name} of ${url}: add one to requiredValue`);
    }

    function tokenFor(auth: string): string | null {
      if (auth === 'public') return null;
      if (auth === 'device') return seeded.devices['UPPER-1']!.token;
      if (auth === 'site') return seeded.siteToken;
      return admin();
    }

    function probedRoutes() {
      return h.app.declaredRoutes.filter((r) => r.method === 'GET' && r.url.startsWith('/api/v1/') && !NOT_PROBED[`GET ${r.url}`]);
    }

    function paramsOf(url: string): OpenApiParam[] {
      const doc = docs.paths[url.replace(/:(\w+)/g, '{$1}')]?.get;
      if (!doc) throw new Error(`GET ${url} is not in the OpenAPI document: give it a schema (or list it in NOT_PROBED with a reason)`);
      return doc.parameters ?? [];
    }

    it('finds the list routes and their parameters in the server itself', () => {
      const routes = probedRoutes();
      expect(routes.length).toBeGreaterThan(30);
      const names = new Set(routes.flatMap((r) => paramsOf(r.url).map((p) => p.name)));
      for (const n of ['search', 'sort', 'order', 'group', 'label', 'state', 'severity', 'os', 'offset', 'limit']) expect(names, n).toContain(n);
      // every route that is not probed says why
      for (const k of Object.keys(NOT_PROBED)) expect(h.app.declaredRoutes.some((r) => `${r.method} ${r.url}` === k), k).toBe(true);
    });

    it('answers every hostile query parameter with the neutral result or a coded 400, never a 5xx', async () => {
      const before = await snapshot();
      const failures: string[] = [];
      let tried = 0;
      for (const route of probedRoutes()) {
        const params = paramsOf(route.url);
        let path = route.url;
        for (const p of params.filter((x) => x.in === 'path')) path = path.replace(`:${p.name}`, encodeURIComponent(pathValue(route.url, p.name)));
        const base: Record<string, string> = {};
        for (const p of params.filter((x) => x.in === 'query' && x.required)) base[p.name] = requiredValue(route.url, p);
        const token = tokenFor(route.auth);
        const get = (extra: Record<string, string>, raw = '') => {
          const q = [qs({ ...base, ...extra }), raw].filter(Boolean).join('&');
          return inject('GET', q ? `${path}?${q}` : path, { token });
        };
        const plain = await get({});
        if (plain.statusCode !== 200) failures.push(`GET ${path}: HTTP ${plain.statusCode} with valid parameters: ${plain.body.slice(0, 200)}`);
        const query = params.filter((p) => p.in === 'query');
        // the declared ones, and the usual names a route may not declare (a strict schema refuses them)
        const probes = [...query.map((p) => p.name), ...['search', 'sort', 'order', 'filter', 'group', 'cursor', '__proto__', 'constructor'].filter((n) => !query.some((p) => p.name === n))];
        for (const name of probes) {
          const decl = query.find((p) => p.name === name);
          const freeText = decl?.schema.type === 'string' && !decl.schema.enum && !decl.schema.pattern && !decl.schema.format;
          const neutral = freeText ? await get({ [name]: NEUTRAL }) : null;
          for (const [label, value] of PAYLOADS) {
            tried++;
            const where = `GET ${route.url} ?${name}=<${label}>`;
            const r = await get({}, `${encodeURIComponent(name)}=${encodeLoose(value)}`);
            if (r.statusCode >= 500) {
              failures.push(`${where}: HTTP ${r.statusCode} ${r.body.slice(0, 300)}`);
              continue;
            }
            if (r.statusCode !== 200) {
              const code = safeJson(r)?.error?.code;
              if (!code || !/^E_[A-Z_]+$/.test(code)) failures.push(`${where}: HTTP ${r.statusCode} without a coded error: ${r.body.slice(0, 200)}`);
              else if (r.statusCode !== 400 && !(neutral && neutral.statusCode === r.statusCode)) failures.push(`${where}: HTTP ${r.statusCode} ${code} (the neutral value got ${neutral?.statusCode ?? 'no probe'})`);
              else if (r.statusCode === 400 && code !== 'E_VALIDATION' && code !== 'E_BAD_REQUEST') failures.push(`${where}: 400 with ${code}`);
              continue;
            }
            // accepted: only a free-text parameter may accept these, and then it must find what nothing finds
            if (!decl) {
              // a route without a query schema ignores what it does not read: the answer must be the plain one
              if (query.length > 0 || JSON.stringify(shape(r)) !== JSON.stringify(shape(plain))) failures.push(`${where}: an undeclared parameter was accepted`);
            } else if (!freeText) {
              const fits =
                (decl.schema.enum?.includes(value) ?? false) ||
                (decl.schema.pattern !== undefined && !decl.schema.format && new RegExp(decl.schema.pattern).test(value)) ||
                (decl.schema.type === 'integer' && /^\d+$/.test(value));
              // an empty (or blank) number is the default, as z.coerce reads it
              const asDefault = value.trim() === '' && !decl.required && JSON.stringify(shape(r)) === JSON.stringify(shape(plain));
              if (!fits && !asDefault) failures.push(`${where}: accepted by a ${JSON.stringify(decl.schema).slice(0, 80)} parameter`);
            } else if (OCCURS.has(value)) {
              // in the seeded data literally: it may find those rows, never more than everything
              const all = safeJson(plain)?.total;
              const got = safeJson(r)?.total;
              if (typeof all === 'number' && (typeof got !== 'number' || got > all)) failures.push(`${where}: found ${got} of ${all}`);
            } else if (value.length > (decl.schema.maxLength ?? Infinity)) {
              failures.push(`${where}: accepted ${value.length} characters though the limit is ${decl.schema.maxLength}`);
            } else if (value.trim() !== '' && JSON.stringify(shape(r)) !== JSON.stringify(shape(neutral!))) {
              failures.push(`${where}: ${JSON.stringify(shape(r))} differs from a value that matches nothing: ${JSON.stringify(shape(neutral!))}`);
            }
          }
        }
      }
      expect(failures, summarize(failures)).toEqual([]);
      expect(tried).toBeGreaterThan(1000);
      console.log(`hostile query parameters on ${tdb.name}: ${probedRoutes().length} routes, ${tried} requests`);
      expect(await snapshot()).toEqual(before);
    }, 300_000);

    it('answers every hostile path parameter with a coded 4xx, never a 5xx', async () => {
      const before = await snapshot();
      const failures: string[] = [];
      const routes = [...probedRoutes().filter((r) => r.url.includes(':')), ...h.app.declaredRoutes.filter((r) => r.url.startsWith('/api/v1/') && r.method !== 'GET' && r.method !== 'HEAD' && r.url.includes(':'))];
      const paths = [...routes.map((r) => ({ ...r })), { method: 'GET', url: '/api/v1/tuf/:file', auth: 'reader' as const, permission: null }];
      for (const route of paths) {
        for (const [label, value] of PAYLOADS) {
          if (value === '') continue;
          const url = route.url.replace(/:(\w+)/g, () => encodeLoose(value));
          const r = await inject(route.method, url, { token: tokenFor(route.auth), ...(route.method === 'GET' || route.method === 'DELETE' ? {} : { payload: '{}', headers: { 'content-type': 'application/json' } }) });
          const where = `${route.method} ${route.url} <${label}>`;
          if (r.statusCode >= 500) failures.push(`${where}: HTTP ${r.statusCode} ${r.body.slice(0, 300)}`);
          else if (r.statusCode < 400) failures.push(`${where}: HTTP ${r.statusCode} for a hostile id`);
          else if (!/^E_[A-Z_]+$/.test(safeJson(r)?.error?.code ?? '')) failures.push(`${where}: HTTP ${r.statusCode} without a coded error: ${r.body.slice(0, 200)}`);
        }
      }
      expect(failures, summarize(failures)).toEqual([]);
      // the refused changes wrote nothing (revoke, delete, halt … of a hostile id)
      expect(await snapshot()).toEqual(before);
    }, 300_000);

    it('treats % _ ! and \\ in searches literally', async () => {
      const hosts = async (url: string) => (await h.admin('GET', url)).json().items.map((d: { hostname: string }) => d.hostname).sort();
      expect(await hosts('/api/v1/devices?search=%25')).toEqual(['pct%host']);
      expect(await hosts('/api/v1/devices?search=_')).toEqual(['under_score']);
      expect(await hosts('/api/v1/devices?search=!')).toEqual(['bang!host']);
      expect(await hosts('/api/v1/devices?search=t%25h')).toEqual(['pct%host']);
      expect(await hosts('/api/v1/devices?search=r_s')).toEqual(['under_score']);
      expect(await hosts('/api/v1/devices?search=upper')).toEqual(['UPPER-1']);
      expect(await hosts(`/api/v1/devices?search=${encodeURIComponent("' OR 1=1 --")}`)).toEqual([]);
      expect(await hosts('/api/v1/devices?group=grp%25under')).toEqual([]);
      expect(await hosts('/api/v1/devices?group=web%20servers')).toEqual(['plain-1']);
      expect(await hosts('/api/v1/devices?group=%25')).toEqual([]);
      expect(await hosts('/api/v1/devices?os=%25')).toEqual([]);
      expect((await hosts('/api/v1/devices?os=debian')).length).toBe(5);
      expect(await hosts(`/api/v1/devices?search=${encodeURIComponent('%_\\')}`)).toEqual([]);
      const pk = async (q: string) => (await h.admin('GET', `/api/v1/devices/plain-1/packages?search=${q}`)).json().total;
      expect(await pk('%25')).toBe(0);
      expect(await pk('_')).toBe(inv.packages.filter((p) => p.name.includes('_') || p.source?.includes('_')).length);
      const patches = async (q: string) => (await h.admin('GET', `/api/v1/catalog/patches?search=${q}`)).json().total;
      expect(await patches('%25')).toBe(0);
      expect(await patches('dsa-9999')).toBe(1);
      expect(await patches('dsa_9999')).toBe(0);
    });

    it('refuses an oversized body with 413 E_PAYLOAD_TOO_LARGE and writes nothing', async () => {
      const before = await snapshot();
      const big = JSON.stringify({ name: 'huge', description: 'x'.repeat(1024 * 1024 + 10) });
      const r = await json('POST', '/api/v1/groups', big);
      expect(r.statusCode).toBe(413);
      expect(coded(r, 'oversized')).toBe('E_PAYLOAD_TOO_LARGE');
      // the same, gzip-compressed to a few kilobytes: the limit counts decoded bytes
      const gz = await json('POST', '/api/v1/groups', gzipSync(big), undefined, { 'content-encoding': 'gzip' });
      expect(gz.statusCode, gz.body).toBe(413);
      expect(coded(gz, 'gzip oversized')).toBe('E_PAYLOAD_TOO_LARGE');
      expect(await snapshot()).toEqual(before);
    });

    it('refuses deeply nested JSON with a 400, without a stack overflow', async () => {
      const before = await snapshot();
      const depth = 100_000;
      const cases: [string, string][] = [
        ['unclosed arrays', '['.repeat(depth)],
        ['closed arrays', '['.repeat(depth) + ']'.repeat(depth)],
        ['nested objects in a field', `{"name":"deep","description":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}`],
        // a dynamic group's query is a recursive schema: depth must stop it before the stack does
        ['nested group query', `{"name":"deep-q","query":${'{"all":['.repeat(depth)}{"label":"x"}${']}'.repeat(depth)}}`],
        ['nested rule in a patch', `{"patches":[${JSON.stringify(packagePatch('debian/dsa-deep-1', 'bash', '9')).replace(/"installed":\{[^]*?\}\}\}/, `"installed":${'{"not":'.repeat(depth)}{"os":{"family":"linux"}}${'}'.repeat(depth)}`)}],"source":{"kind":"test"}}`],
      ];
      for (const [what, body] of cases) {
        const url = what.includes('patch') ? '/api/v1/catalog/patches' : '/api/v1/groups';
        const r = await json('POST', url, body);
        expect(r.statusCode, `${what}: ${r.body.slice(0, 300)}`).toBe(400);
        expect(['E_BAD_REQUEST', 'E_VALIDATION']).toContain(coded(r, what));
      }
      // the server still answers
      expect((await h.admin('GET', '/api/v1/groups')).statusCode).toBe(200);
      expect(await snapshot()).toEqual(before);
    }, 60_000);

    it('refuses huge numbers, and duplicate and prototype keys change nothing they should not', async () => {
      const before = await snapshot();
      const dev = seeded.devices['plain-1']!.deviceId;
      for (const n of ['1e400', '-1e400', '123456789012345678901234567890', '100.0000001', '-0', 'NaN', 'Infinity', '0x10', '1_0']) {
        const r = await json('POST', '/api/v1/deployments', `{"patches":["${PATCH}"],"groups":["web servers"],"start":"2026-11-26T10:00:00Z","rings":[{"name":"a","percent":${n}}]}`);
        expect(r.statusCode, `percent ${n}: ${r.body}`).toBe(400);
        expect(['E_VALIDATION', 'E_BAD_REQUEST'], `percent ${n}`).toContain(coded(r, `percent ${n}`));
      }
      for (const q of ['limit=1e400', 'limit=99999999999999999999', 'offset=1e400', 'offset=-0', 'limit=0x10', 'limit=1%2C2', 'limit=1&limit=2']) {
        const r = await h.admin('GET', `/api/v1/devices?${q}`);
        expect(r.statusCode, `${q}: ${r.body}`).toBeLessThan(500);
        if (r.statusCode !== 200) expect(coded(r, q)).toBe('E_VALIDATION');
      }
      // __proto__ and constructor: refused like any unknown key, and no prototype is touched
      for (const body of [
        '{"name":"proto","__proto__":{"polluted":1}}',
        '{"name":"ctor","constructor":{"prototype":{"polluted":1}}}',
        '{"__proto__":{"name":"sneaky"}}',
      ]) {
        const r = await json('POST', '/api/v1/groups', body);
        expect(r.statusCode, `${body}: ${r.body}`).toBe(400);
        expect(coded(r, body)).toBe('E_VALIDATION');
      }
      const lab = await json('POST', `/api/v1/devices/${dev}/labels`, '{"add":["x"],"__proto__":{"add":["y"]}}');
      expect(lab.statusCode, lab.body).toBe(400);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      expect(await snapshot()).toEqual(before);
      // duplicate keys: JSON's last one wins, once; nothing else appears
      const dup = await json('POST', '/api/v1/groups', '{"name":"dup-a","name":"dup-b","description":"d"}');
      expect(dup.statusCode, dup.body).toBe(201);
      const names = (await h.admin('GET', '/api/v1/groups')).json().items?.map((g: { name: string }) => g.name) ?? (await h.admin('GET', '/api/v1/groups')).json().map((g: { name: string }) => g.name);
      expect(names).toContain('dup-b');
      expect(names).not.toContain('dup-a');
      expect(await h.admin('DELETE', '/api/v1/groups/dup-b').then((r) => r.statusCode)).toBeLessThan(300);
      expect(await snapshot()).toEqual(before);
    });

    it('refuses wrong content types with 415 E_UNSUPPORTED_MEDIA and writes nothing', async () => {
      const before = await snapshot();
      const body = '{"name":"typed","description":"d"}';
      for (const type of ['application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml', 'application/octet-stream', 'text/html', '../../etc/passwd', 'application/json-patch+json']) {
        const r = await inject('POST', '/api/v1/groups', { payload: body, headers: { 'content-type': type } });
        expect(r.statusCode, `${type}: ${r.body}`).toBe(415);
        expect(coded(r, type)).toBe('E_UNSUPPORTED_MEDIA');
      }
      // Fastify reads text/plain as a string, which no body schema takes
      const text = await inject('POST', '/api/v1/groups', { payload: body, headers: { 'content-type': 'text/plain' } });
      expect(text.statusCode, text.body).toBe(400);
      expect(coded(text, 'text/plain')).toBe('E_VALIDATION');
      // no Content-Type at all
      const none = await inject('POST', '/api/v1/groups', { payload: body });
      expect(none.statusCode, none.body).toBeGreaterThanOrEqual(400);
      expect(none.statusCode).toBeLessThan(500);
      coded(none, 'no content type');
      const enc = await json('POST', '/api/v1/groups', body, undefined, { 'content-encoding': 'br' });
      expect(enc.statusCode).toBe(415);
      expect(coded(enc, 'br')).toBe('E_UNSUPPORTED_MEDIA');
      // not JSON at all, or JSON of the wrong kind
      for (const [what, raw] of [['not json', 'name=typed'], ['empty', ''], ['null', 'null'], ['array', '[]'], ['string', '"x"']]) {
        const r = await json('POST', '/api/v1/groups', raw!);
        expect(r.statusCode, `${what}: ${r.body}`).toBe(400);
        expect(['E_BAD_REQUEST', 'E_VALIDATION']).toContain(coded(r, what!));
      }
      expect(await snapshot()).toEqual(before);
    });

    it('refuses a truncated or corrupt gzip check-in and keeps the device as it was', async () => {
      const dev = seeded.devices['UPPER-1']!;
      const before = await snapshot();
      const full = gzipSync(JSON.stringify(checkinBody(systemFacts('UPPER-1'), { mode: 'full', ...hashed(hostPackages()) })));
      const cases: [string, Buffer][] = [
        ['truncated', full.subarray(0, Math.floor(full.length / 2))],
        ['header only', full.subarray(0, 10)],
        ['corrupt', Buffer.concat([full.subarray(0, 20), randomBytes(200), full.subarray(220)])],
        ['not gzip', Buffer.from('{"protocol":1}')],
      ];
      for (const [what, payload] of cases) {
        const r = await inject('POST', '/api/v1/agent/checkin', { token: dev.token, payload, headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' } });
        expect(r.statusCode, `${what}: ${r.body}`).toBe(400);
        expect(coded(r, what)).toBe('E_BAD_REQUEST');
      }
      // a gzip bomb: a few kilobytes that decode past the limit
      const bomb = gzipSync(Buffer.concat([Buffer.from('{"protocol":1,"x":"'), Buffer.alloc(20 * 1024 * 1024, 0x61), Buffer.from('"}')]));
      const r = await inject('POST', '/api/v1/agent/checkin', { token: dev.token, payload: bomb, headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' } });
      expect(r.statusCode, r.body).toBe(413);
      expect(coded(r, 'bomb')).toBe('E_PAYLOAD_TOO_LARGE');
      expect(await snapshot()).toEqual(before);
    }, 60_000);

    it('refuses forged device tokens and malformed Authorization headers, and writes nothing', async () => {
      const victim = await h.enroll({ hostname: 'to-revoke' });
      h.clock.now += 1000;
      expect((await h.checkin(victim.token, checkinBody(systemFacts('to-revoke'), { mode: 'full', ...inv }))).statusCode).toBe(200);
      expect((await h.admin('POST', `/api/v1/devices/${victim.deviceId}/revoke`)).statusCode).toBe(200);
      const before = await snapshot();
      h.clock.now += 60_000;
      const body = JSON.stringify(checkinBody(systemFacts('forged'), { mode: 'full', ...inv }));
      const valid = seeded.devices['UPPER-1']!.token;
      const forged: [string, string | undefined, string, number][] = [
        ['random device token', `Bearer pwd_${randomBytes(32).toString('base64url')}`, 'E_UNAUTHENTICATED', 401],
        ['random, no prefix', `Bearer ${randomBytes(32).toString('base64url')}`, 'E_UNAUTHENTICATED', 401],
        ['wrong prefix', `Bearer pwa_${valid.slice(4)}`, 'E_UNAUTHENTICATED', 401],
        ['a valid token, one character changed', `Bearer ${valid.slice(0, -1)}${valid.endsWith('A') ? 'B' : 'A'}`, 'E_UNAUTHENTICATED', 401],
        ['revoked device', `Bearer ${victim.token}`, 'E_DEVICE_REVOKED', 403],
        ['site token', `Bearer ${seeded.siteToken}`, 'E_UNAUTHENTICATED', 401],
        ['admin token', `Bearer ${h.adminToken}`, 'E_UNAUTHENTICATED', 401],
        ['enrollment-secret shape', `Bearer pwe_${randomBytes(32).toString('base64url')}`, 'E_UNAUTHENTICATED', 401],
        ['none', undefined, 'E_UNAUTHENTICATED', 401],
        ['empty', '', 'E_UNAUTHENTICATED', 401],
        ['Bearer alone', 'Bearer', 'E_UNAUTHENTICATED', 401],
        ['Bearer and spaces', 'Bearer    ', 'E_UNAUTHENTICATED', 401],
        ['two spaces', `Bearer  ${valid}`, 'E_UNAUTHENTICATED', 401],
        ['Basic', `Basic ${Buffer.from(`x:${valid}`).toString('base64')}`, 'E_UNAUTHENTICATED', 401],
        ['lower-case scheme', `bearer ${valid}`, 'E_UNAUTHENTICATED', 401],
        ['token without scheme', valid, 'E_UNAUTHENTICATED', 401],
        ['two tokens', `Bearer ${valid} Bearer ${valid}`, 'E_UNAUTHENTICATED', 401],
        ['comma list', `Bearer ${valid}, Bearer x`, 'E_UNAUTHENTICATED', 401],
        ['injection', "Bearer ' OR 1=1 --", 'E_UNAUTHENTICATED', 401],
        ['very long', `Bearer pwd_${'A'.repeat(100_000)}`, 'E_UNAUTHENTICATED', 401],
        ['unicode', 'Bearer pwd_ü漢字', 'E_UNAUTHENTICATED', 401],
      ];
      const routes: [string, string, string | undefined][] = [
        ['POST', '/api/v1/agent/checkin', body],
        ['GET', '/api/v1/agent/jobs?wait=0', undefined],
        ['POST', `/api/v1/agent/jobs/${seeded.job}/report`, '{}'],
      ];
      for (const [what, header, code, status] of forged) {
        for (const [method, url, payload] of routes) {
          const headers: Record<string, string> = { 'content-type': 'application/json' };
          if (header !== undefined) headers.authorization = header;
          const r = await h.app.inject({ method: method as 'GET', url, headers, ...(payload === undefined ? {} : { payload }) });
          expect(r.statusCode, `${what} on ${method} ${url}: ${r.body}`).toBe(status);
          expect(coded(r, what)).toBe(code);
        }
      }
      // admin routes refuse device and site tokens the same way
      for (const token of [valid, seeded.siteToken, victim.token]) {
        const r = await json('POST', '/api/v1/groups', '{"name":"by-device"}', token);
        expect(r.statusCode, r.body).toBe(401);
        expect(coded(r, 'device token on an admin route')).toBe('E_UNAUTHENTICATED');
      }
      // a request with a NUL or a newline in the header never reaches the server (Node refuses it)
      for (const bad of [`Bearer ${valid}\u0000`, `Bearer ${valid}\r\nX-Admin: 1`]) {
        const status = await h.app.inject({ method: 'GET', url: '/api/v1/agent/jobs?wait=0', headers: { authorization: bad } }).then((r) => r.statusCode, () => 'refused');
        expect([401, 'refused'], JSON.stringify(bad)).toContain(status);
      }
      expect(await snapshot()).toEqual(before);
    }, 60_000);
  });
}
