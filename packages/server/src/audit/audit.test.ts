import { createSocket } from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDatabases } from '../testing/databases.js';
import { buildApp, type PatchwardenApp } from '../app.js';
import { createAdminToken } from '../auth/store.js';
import type { Database } from '../db/database.js';
import { entryHash, GENESIS, readAnchor, seal, stableJson } from './chain.js';
import { AuditLog } from './log.js';
import { fileSink, parseSyslogUrl, syslogLine, syslogSink } from './sinks.js';

for (const tdb of testDatabases) {
  describe.skipIf(!tdb.available)(`the audit log on ${tdb.name}`, () => {
    let database: Database;
    let app: PatchwardenApp;
    let dir: string;
    let token: string;
    const key = Buffer.alloc(32, 7);
    const clock = { now: Date.parse('2026-11-26T10:00:00Z') };
    const received: string[] = [];
    const udp = createSocket('udp4');

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'pw-audit-'));
      await new Promise<void>((r) => udp.bind(0, '127.0.0.1', () => r()));
      udp.on('message', (m) => received.push(m.toString('utf8')));
      database = await tdb.open();
      app = await buildApp({
        db: database.db,
        dialect: database.dialect,
        logger: false,
        now: () => clock.now,
        auditKey: key,
        auditAnchorFile: join(dir, 'audit-anchor.json'),
        auditSinks: [fileSink(join(dir, 'audit.jsonl')), syslogSink(`udp://127.0.0.1:${udp.address().port}`)],
      });
      token = (await createAdminToken(database.db, 'ops', clock.now)).token;
    });
    afterAll(async () => {
      await app?.close();
      await database?.close();
      udp.close();
      rmSync(dir, { recursive: true, force: true });
    });

    const admin = (method: string, url: string, body?: object) => app.inject({ method: method as 'POST', url, headers: { authorization: `Bearer ${token}` }, ...(body ? { payload: body } : {}) });
    const log = () => new AuditLog(database.db, key, { anchorFile: join(dir, 'audit-anchor.json') });

    it('writes who, when, what, before and after for every change, never a secret, and nothing for reads or refusals', async () => {
      await admin('POST', '/api/v1/groups', { name: 'web', description: 'nginx' });
      clock.now += 1000;
      await admin('PATCH', '/api/v1/groups/web', { description: 'nginx and caddy' });
      await admin('POST', '/api/v1/enrollment-secrets', { name: 'laptops', group: null });
      await admin('POST', '/api/v1/groups', { name: 'web' }); // a conflict: nothing changed
      await admin('GET', '/api/v1/groups');
      await admin('POST', '/api/v1/users', { name: 'ann', password: 'ann password 12', role: 'auditor' });
      await admin('PATCH', '/api/v1/users/ann', { role: 'operator' });
      await app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { name: 'ann', password: 'wrong wrong wrong' } });
      const list = await admin('GET', '/api/v1/audit?limit=50');
      expect(list.statusCode).toBe(200);
      const items = (list.json().items as { seq: number; action: string; actor: { name: string }; target: string | null; detail: Record<string, unknown> }[]).reverse();
      expect(items.map((e) => e.action)).toEqual([
        'POST /api/v1/groups',
        'PATCH /api/v1/groups/:ref',
        'POST /api/v1/enrollment-secrets',
        'POST /api/v1/users',
        'PATCH /api/v1/users/:ref',
        'sign-in failed',
      ]);
      expect(items.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6]);
      expect(items[0]!.actor).toEqual({ kind: 'token', id: expect.any(String), name: 'ops' });
      expect(items[1]!).toMatchObject({ target: 'web', detail: { request: { description: 'nginx and caddy' }, after: { description: 'nginx and caddy' } } });
      expect(items[4]!.detail).toMatchObject({ before: { role: 'auditor' }, after: { role: 'operator' } });
      // the enrollment secret and the password are in no entry, in no sink
      const all = JSON.stringify(items) + readFileSync(join(dir, 'audit.jsonl'), 'utf8') + received.join('\n');
      expect(all).not.toMatch(/pwe_[A-Za-z0-9_-]{20}/);
      expect(all).not.toContain('ann password 12');
      expect((items[2]!.detail.after as { secret: string }).secret).toBe('[redacted]');
      expect(items[5]!).toMatchObject({ actor: { kind: 'anonymous', name: 'ann' }, detail: { code: 'E_UNAUTHENTICATED' } });
      // the file sink and syslog got every entry as it was written
      expect(readFileSync(join(dir, 'audit.jsonl'), 'utf8').trim().split('\n')).toHaveLength(6);
      for (let i = 0; i < 50 && received.length < 6; i++) await new Promise((r) => setTimeout(r, 20));
      expect(received).toHaveLength(6);
      expect(received[0]).toMatch(/^<85>1 2026-11-26T10:00:00\.000Z \S+ patchwarden - audit \[patchwarden@32473 seq="1" hash="[0-9a-f]{64}" actor="ops" action="POST \/api\/v1\/groups"\] \{/);
      expect((await admin('GET', '/api/v1/audit/verify')).json()).toEqual({ ok: true, entries: 6, anchoredSeq: 6, problem: null });
      // filters: by actor (wildcards literal) and action
      expect((await admin('GET', '/api/v1/audit?actor=ops')).json().total).toBe(5);
      expect((await admin('GET', '/api/v1/audit?actor=o%25')).json().total).toBe(0);
      expect((await admin('GET', `/api/v1/audit?action=${encodeURIComponent('sign-in failed')}`)).json().items[0].actor.name).toBe('ann');
    });

    it('detects a changed row, a chain rewritten without the key, and entries cut off the end', async () => {
      const db = database.db;
      const row = await db.selectFrom('audit_log').selectAll().where('seq', '=', 3).executeTakeFirstOrThrow();
      // 1. an edited entry
      await db.updateTable('audit_log').set({ detail_json: JSON.stringify({ forged: true }) }).where('seq', '=', 3).execute();
      expect(await log().verify()).toMatchObject({ ok: false, problem: { seq: 3, reason: expect.stringMatching(/content does not match/) } });
      // 2. the same edit with every later hash recomputed: consistent as a chain, but not sealed
      let prev = (await db.selectFrom('audit_log').select('hash').where('seq', '=', 2).executeTakeFirstOrThrow()).hash;
      const rows = await db.selectFrom('audit_log').selectAll().where('seq', '>=', 3).orderBy('seq').execute();
      const forgedKey = Buffer.alloc(32, 9);
      for (const r of rows) {
        const f = { at: Number(r.at), actor: JSON.parse(r.actor_json), action: r.action, target: r.target, detail: JSON.parse(r.detail_json!), ip: r.ip };
        const hash = entryHash(prev, Number(r.seq), f);
        await db.updateTable('audit_log').set({ prev_hash: prev, hash, mac: seal(forgedKey, Number(r.seq), hash) }).where('seq', '=', r.seq).execute();
        prev = hash;
      }
      expect(await log().verify()).toMatchObject({ ok: false, problem: { seq: 3, reason: expect.stringMatching(/seal does not match the audit key/) } });
      // put it back as it was
      await db.deleteFrom('audit_log').where('seq', '>=', 3).execute();
      await db.insertInto('audit_log').values(row).execute();
      const fresh = new AuditLog(db, key, {});
      // the originals of 4…6 are gone: the anchor (entry 6) says the log was cut short
      expect(await log().verify()).toMatchObject({ ok: false, problem: { reason: expect.stringMatching(/ends at entry 3 but the anchor vouches for entry 6/) } });
      expect(await fresh.verify()).toMatchObject({ ok: true, entries: 3, anchoredSeq: null });
      // a forged anchor is refused
      expect(readAnchor(join(dir, 'audit-anchor.json'), key)).toMatchObject({ seq: 6 });
      expect(() => readAnchor(join(dir, 'audit-anchor.json'), forgedKey)).toThrow(/not sealed by the audit key/);
    });
  });
}

describe('entry hashes', () => {
  it('take any JSON a request carries, fractions included, with keys in one order', () => {
    expect(stableJson({ b: [1.5, { d: 0.2, c: null }], a: 'x', u: undefined })).toBe('{"a":"x","b":[1.5,{"c":null,"d":0.2}]}');
    const f = { at: 1, actor: { kind: 'user' as const, id: null, name: 'a' }, action: 'POST /api/v1/deployments', target: null, detail: { request: { failureThreshold: 0.2 } }, ip: null };
    expect(entryHash(GENESIS, 1, f)).toMatch(/^[0-9a-f]{64}$/);
    expect(entryHash(GENESIS, 1, f)).not.toBe(entryHash(GENESIS, 1, { ...f, detail: { request: { failureThreshold: 0.3 } } }));
  });
});

describe('syslog lines', () => {
  it('follows RFC 5424 and escapes structured data', () => {
    const line = syslogLine({ seq: 9, at: 0, actor: { kind: 'user', id: 'u', name: 'a"b]c\\' }, action: 'x', target: null, detail: null, ip: null, prevHash: '0', hash: 'ab', mac: 'cd' }, 'host');
    expect(line).toBe('<85>1 1970-01-01T00:00:00.000Z host patchwarden - audit [patchwarden@32473 seq="9" hash="ab" actor="a\\"b\\]c\\\\" action="x"] {"actor":{"kind":"user","id":"u","name":"a\\"b]c\\\\"},"action":"x","target":null,"detail":null,"ip":null}');
    expect(parseSyslogUrl('udp://[::1]:5514')).toEqual({ host: '::1', port: 5514 });
    expect(() => parseSyslogUrl('tcp://x')).toThrow(/not a syslog address/);
  });
});
