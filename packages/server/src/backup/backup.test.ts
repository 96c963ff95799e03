import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import pg from 'pg';
import { Header } from 'tar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PatchwardenError, type PackageFact } from '@patchwarden/core';
import { buildApp, type PatchwardenApp } from '../app.js';
import { createAdminToken } from '../auth/store.js';
import { loadOrCreateRepoKeys } from '../catalog/tuf/keystore.js';
import { openDatabase, type Database } from '../db/database.js';
import { pgUrl } from '../testing/databases.js';
import { BOOKWORM, hashed, hostPackages, packagePatch } from '../testing/fixtures.js';
import { checkinBody, systemFacts } from '../testing/harness.js';
import { ArchiveReader, ArchiveWriter, MANIFEST_NAME, type BackupManifest } from './archive.js';
import { backup } from './backup.js';
import { restore } from './restore.js';
import { listTables, type AnyDb } from './tables.js';

const NOW = Date.parse('2026-11-26T10:00:00Z');
const root = mkdtempSync(join(tmpdir(), 'pw-backup-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = (name: string) => join(root, `${name}-${++n}`);

interface Server {
  app: PatchwardenApp;
  database: Database;
  token: string;
  get(url: string): Promise<unknown>;
  close(): Promise<void>;
}

/** A server on a data directory as `patchwarden server` lays it out: database, keys, token file, config, audit anchor. */
async function serve(dataDir: string, database: Database, token?: string): Promise<Server> {
  const catalogKeys = await loadOrCreateRepoKeys(dataDir, { allowLocalRoot: true });
  const auditKeyFile = join(dataDir, 'keys', 'audit.key');
  if (!existsSync(auditKeyFile)) writeFileSync(auditKeyFile, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
  const auditKey = Buffer.from(readFileSync(auditKeyFile, 'utf8').trim(), 'hex');
  const app = await buildApp({ db: database.db, dialect: database.dialect, catalogKeys, logger: false, now: () => NOW, auditKey, auditAnchorFile: join(dataDir, 'audit-anchor.json') });
  if (!token) {
    token = (await createAdminToken(database.db, 'first administrator', NOW)).token;
    writeFileSync(join(dataDir, 'admin-token'), `${token}\n`, { mode: 0o600 });
    writeFileSync(join(dataDir, 'server.json'), `${JSON.stringify({ logLevel: 'warn' })}\n`, { mode: 0o600 });
  }
  const t = token;
  return {
    app,
    database,
    token: t,
    async get(url) {
      const r = await app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${t}` } });
      expect(r.statusCode, r.body).toBe(200);
      return r.json();
    },
    async close() {
      await app.close();
      await database.close();
    },
  };
}

async function adminCall(s: Server, method: string, url: string, body?: unknown) {
  const r = await s.app.inject({ method: method as 'POST', url, headers: { authorization: `Bearer ${s.token}` }, ...(body === undefined ? {} : { payload: body as object }) });
  expect(r.statusCode, `${method} ${url}: ${r.body}`).toBeLessThan(300);
  return r.json();
}

/** Patches in the catalog, groups, enrolled devices with inventories and labels, an approval and a deployment. */
async function populate(s: Server): Promise<void> {
  const inv = hashed(hostPackages());
  const [a, b] = [inv.packages[10]!, inv.packages[20]!];
  await adminCall(s, 'POST', '/api/v1/catalog/patches', {
    patches: [packagePatch('test/p1', a.name, `${a.version}+fix1`), packagePatch('test/p2', b.name, `${b.version}+fix1`)],
    coverage: BOOKWORM,
    source: { kind: 'test' },
  });
  for (const g of ['web', 'db']) await adminCall(s, 'POST', '/api/v1/groups', { name: g });
  for (const [i, host] of ['web-1', 'web-2', 'db-1'].entries()) {
    const secret = (await adminCall(s, 'POST', '/api/v1/enrollment-secrets', { name: host, group: host.startsWith('web') ? 'web' : 'db' })).secret as string;
    const e = await s.app.inject({ method: 'POST', url: '/api/v1/enroll', payload: { secret, system: systemFacts(host) } });
    expect(e.statusCode, e.body).toBe(200);
    const { deviceId, token } = e.json() as { deviceId: string; token: string };
    // each device a slightly different inventory: distinct package sets and contexts
    const pkgs = (inv.packages as PackageFact[]).filter((_, k) => k % 7 !== i);
    const c = await s.app.inject({
      method: 'POST',
      url: '/api/v1/agent/checkin',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      payload: JSON.stringify(checkinBody(systemFacts(host), { mode: 'full', ...hashed(pkgs) })),
    });
    expect(c.statusCode, c.body).toBe(200);
    await adminCall(s, 'POST', `/api/v1/devices/${deviceId}/labels`, { add: [`rack=${i}`, 'pci'] });
  }
  await adminCall(s, 'POST', '/api/v1/approvals', { patch: 'test/p1', group: 'web', decision: 'approve' });
  await adminCall(s, 'POST', '/api/v1/deployments', { patches: ['test/p1'], groups: ['web'], start: new Date(NOW).toISOString() });
}

/** Every table's rows, in a form equal across dialects. */
async function dumpTables(db: AnyDb, dialect: Database['dialect']): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const t of await listTables(db, dialect)) {
    const rows = (await sql<Record<string, unknown>>`select * from ${sql.table(t)}`.execute(db)).rows;
    out[t] = rows
      .map((r) => JSON.stringify(Object.keys(r).sort().map((k) => [k, Buffer.isBuffer(r[k]) ? `hex:${(r[k] as Buffer).toString('hex')}` : r[k]])))
      .sort();
  }
  return out;
}

function treeOf(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string, rel: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name), `${rel}${e.name}/`);
      else out[`${rel}${e.name}`] = readFileSync(join(d, e.name)).toString('base64');
    }
  };
  walk(dir, '');
  return out;
}

async function refusal(p: Promise<unknown>): Promise<PatchwardenError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(PatchwardenError);
    return err as PatchwardenError;
  }
  throw new Error('expected a refusal');
}
const codeOf = async (p: Promise<unknown>) => (await refusal(p)).code;

/** A copy of an archive with its entries and manifest edited (hashes kept as edited: the caller decides). */
async function rewrite(src: string, edit: (entries: Map<string, Buffer>, m: BackupManifest) => void, extra?: (fh: Awaited<ReturnType<typeof open>>) => Promise<void>): Promise<string> {
  const r = await ArchiveReader.open(src);
  const entries = new Map<string, Buffer>();
  for (const name of r.entries.keys()) entries.set(name, await r.read(name));
  const m = await r.manifest();
  await r.close();
  edit(entries, m);
  entries.set(MANIFEST_NAME, Buffer.from(JSON.stringify(m)));
  const dst = fresh('edited.tar');
  const w = await ArchiveWriter.create(dst, new Date(NOW));
  for (const [name, data] of entries) await w.add(name, data);
  await w.finish();
  if (extra) {
    const fh = await open(dst, 'r+');
    await extra(fh);
    await fh.close();
  }
  return dst;
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('backup and restore', () => {
  const srcDir = fresh('source');
  let source: Server;
  let archive: string;
  let expected: Record<string, string[]>;
  let devices: unknown;
  let backupResult: Awaited<ReturnType<typeof backup>>;

  beforeAll(async () => {
    mkdirSync(srcDir, { mode: 0o700 });
    source = await serve(srcDir, await openDatabase({ url: join(srcDir, 'patchwarden.db') }));
    await populate(source);
    devices = await source.get('/api/v1/devices');
    expected = await dumpTables(source.database.db as AnyDb, 'sqlite');
    // taken while the server runs, from a connection of its own
    archive = join(fresh('out'), 'pw.tar');
    mkdirSync(join(archive, '..'));
    backupResult = await backup({ dataDir: srcDir, out: archive, now: () => NOW });
    console.log(`backup of the test state: ${backupResult.rows} rows in ${backupResult.tables.length} tables, ${backupResult.content.entries} content entries, ${backupResult.bytes} bytes, ${backupResult.ms} ms`);
  });
  afterAll(async () => source?.close());

  it('writes one owner-only tar with a manifest that names and hashes every entry', async () => {
    expect(statSync(archive).mode & 0o777).toBe(0o600);
    expect(readdirSync(join(archive, '..'))).toEqual(['pw.tar']);
    const r = await ArchiveReader.open(archive);
    const m = await r.manifest();
    expect(m).toMatchObject({ format: 'patchwarden-backup', formatVersion: 1, dialect: 'sqlite', createdAt: new Date(NOW).toISOString() });
    expect(m.schema.migration).toBe(m.schema.migrations.at(-1));
    const names = m.tables.map((t) => t.name);
    for (const t of ['devices', 'packages', 'package_set_members', 'content', 'tuf_files', 'deployments', 'jobs', 'admin_tokens']) expect(names).toContain(t);
    expect(names).not.toContain('kysely_migration');
    expect(m.tables.find((t) => t.name === 'devices')!.rows).toBe(3);
    const paths = m.files.map((f) => f.path);
    for (const p of ['keys/online.key', 'keys/root.key', 'keys/audit.key', 'files/admin-token', 'files/server.json']) expect(paths).toContain(p);
    expect(paths.some((p) => p.startsWith('content/'))).toBe(true);
    expect(paths.some((p) => p.includes('patchwarden.db'))).toBe(false);
    expect(m.sequences.packages).toBeGreaterThan(0);
    for (const f of m.files) expect(await r.sha256(f.path)).toBe(f.sha256);
    // entries are 0600 (keys among them)
    const fh = await open(archive, 'r');
    const block = Buffer.alloc(512);
    await fh.read(block, 0, 512, r.entries.get('keys/online.key')!.offset - 512);
    expect(new Header(block, 0).mode).toBe(0o600);
    await fh.close();
    await r.close();
  });

  it('restores SQLite into a fresh data directory: same rows, same keys, same answers', async () => {
    const dir = fresh('restored');
    const res = await restore({ archive, dataDir: dir });
    expect(res).toMatchObject({ dialect: 'sqlite', from: { dialect: 'sqlite' }, warnings: [] });
    const db = await openDatabase({ url: join(dir, 'patchwarden.db') });
    expect(await dumpTables(db.db as AnyDb, 'sqlite')).toEqual(expected);
    const srcTree = treeOf(srcDir);
    const dstTree = treeOf(dir);
    for (const f of Object.keys(srcTree).filter((f) => !f.startsWith('patchwarden.db'))) expect(dstTree[f], f).toBe(srcTree[f]);
    for (const f of readdirSync(join(dir, 'keys'))) expect(statSync(join(dir, 'keys', f)).mode & 0o777).toBe(0o600);
    const token = readFileSync(join(dir, 'admin-token'), 'utf8').trim();
    const restored = await serve(dir, db, token);
    try {
      expect(await restored.get('/api/v1/devices')).toEqual(devices);
      // the catalog it serves is signed by the same root
      expect(await restored.get('/api/v1/tuf-root')).toEqual(await source.get('/api/v1/tuf-root'));
    } finally {
      await restored.close();
    }
  });

  it('refuses a target that is not empty, with a code, and leaves it as it was', async () => {
    const dir = fresh('busy');
    mkdirSync(dir);
    writeFileSync(join(dir, 'notes.txt'), 'mine');
    const err = await refusal(restore({ archive, dataDir: dir }));
    expect(err).toMatchObject({ code: 'E_CONFLICT' });
    expect((err as PatchwardenError).hint).toContain('new --data-dir');
    expect(readdirSync(dir)).toEqual(['notes.txt']);
    const elsewhere = fresh('db-elsewhere');
    mkdirSync(elsewhere);
    writeFileSync(join(elsewhere, 'x.db'), 'not empty');
    const dir2 = fresh('empty');
    expect(await codeOf(restore({ archive, dataDir: dir2, database: join(elsewhere, 'x.db') }))).toBe('E_CONFLICT');
    expect(existsSync(dir2)).toBe(false);
    expect(readFileSync(join(elsewhere, 'x.db'), 'utf8')).toBe('not empty');
  });

  it('refuses a truncated archive before writing anything', async () => {
    const bytes = readFileSync(archive);
    for (const cut of [bytes.length - 1024, Math.floor(bytes.length / 2), 700]) {
      const t = fresh('truncated.tar');
      writeFileSync(t, bytes.subarray(0, cut));
      const dir = fresh('target');
      expect(await codeOf(restore({ archive: t, dataDir: dir }))).toBe('E_BACKUP_INVALID');
      expect(existsSync(dir)).toBe(false);
    }
  });

  it('refuses a flipped byte in a table file before writing anything', async () => {
    const r = await ArchiveReader.open(archive);
    const e = r.entries.get('db/devices.jsonl')!;
    await r.close();
    const bytes = Buffer.from(readFileSync(archive));
    bytes.writeUInt8(bytes.readUInt8(e.offset + 10) ^ 0x01, e.offset + 10);
    const t = fresh('flipped.tar');
    writeFileSync(t, bytes);
    const dir = fresh('target');
    const err = await refusal(restore({ archive: t, dataDir: dir }));
    expect(err).toMatchObject({ code: 'E_DIGEST_MISMATCH' });
    expect(err.message).toContain('db/devices.jsonl');
    expect(existsSync(dir)).toBe(false);
  });

  it('refuses names outside the data directory, symbolic links, and entries the manifest does not name', async () => {
    const cases: [string, string][] = [];
    // a manifest naming a path that climbs out
    cases.push([
      'manifest ../',
      await rewrite(archive, (_e, m) => m.files.push({ path: 'files/../../x', kind: 'file', size: 1, sha256: '0'.repeat(64) })),
    ]);
    cases.push(['manifest absolute', await rewrite(archive, (_e, m) => m.files.push({ path: '/etc/x', kind: 'file', size: 1, sha256: '0'.repeat(64) }))]);
    // entries with such names, hashes and all consistent
    for (const name of ['files/../x', '/tmp/x', 'keys/./x', 'x']) {
      cases.push([
        `entry ${name}`,
        await rewrite(archive, (e, m) => {
          e.set(name, Buffer.from('x'));
          m.files.push({ path: name, kind: 'file', size: 1, sha256: sha(Buffer.from('x')) });
        }),
      ]);
    }
    // a symbolic link entry in place of a key
    cases.push([
      'symlink',
      await rewrite(
        archive,
        () => {},
        async (fh) => {
          // overwrite the end-of-archive marker with a symlink header, then a new marker
          const { size } = await fh.stat();
          const h = Buffer.alloc(512);
          new Header({ path: 'keys/evil', type: 'SymbolicLink', linkpath: '/etc/passwd', mode: 0o777, size: 0, mtime: new Date(NOW), uid: 0, gid: 0 }).encode(h, 0);
          await fh.write(Buffer.concat([h, Buffer.alloc(1024)]), 0, 1536, size - 1024);
        },
      ),
    ]);
    // an entry the manifest does not name
    cases.push(['unnamed entry', await rewrite(archive, (e) => e.set('files/extra', Buffer.from('x')))]);
    for (const [what, file] of cases) {
      const dir = fresh('target');
      const err = await refusal(restore({ archive: file, dataDir: dir }));
      expect(err, what).toBeInstanceOf(PatchwardenError);
      expect(err.code, `${what}: ${err.message}`).toBe('E_BACKUP_INVALID');
      expect(existsSync(dir), what).toBe(false);
      expect(existsSync(join(root, 'x')), what).toBe(false);
    }
  });

  it('refuses a backup from a newer schema', async () => {
    const file = await rewrite(archive, (_e, m) => {
      m.schema.migrations.push('9999_future');
      m.schema.migration = '9999_future';
    });
    const dir = fresh('target');
    const err = await refusal(restore({ archive: file, dataDir: dir }));
    expect(err).toMatchObject({ code: 'E_BACKUP_INVALID' });
    expect(err.message).toContain('newer');
    expect(existsSync(dir)).toBe(false);
  });

  it('rolls back rows that do not fit (consistent hashes, a dangling foreign key): no half-restored database', async () => {
    const file = await rewrite(archive, (e, m) => {
      const t = m.tables.find((x) => x.name === 'device_labels')!;
      const lines = e.get(t.file)!.toString('utf8').trimEnd().split('\n');
      const row = JSON.parse(lines[0]!) as unknown[];
      row[t.columns.indexOf('device_id')] = 'no-such-device';
      lines[0] = JSON.stringify(row);
      const data = Buffer.from(`${lines.join('\n')}\n`);
      e.set(t.file, data);
      Object.assign(t, { size: data.length, sha256: sha(data) });
    });
    const dir = fresh('target');
    const err = await refusal(restore({ archive: file, dataDir: dir }));
    expect(err).toMatchObject({ code: 'E_BACKUP_INVALID' });
    expect(existsSync(dir)).toBe(false);
    // into an empty directory that exists: it stays, empty
    const dir2 = fresh('target');
    mkdirSync(dir2);
    expect(await codeOf(restore({ archive: file, dataDir: dir2 }))).toBe('E_BACKUP_INVALID');
    expect(readdirSync(dir2)).toEqual([]);
  });

  it('refuses to overwrite a file with a backup', async () => {
    expect(await codeOf(backup({ dataDir: srcDir, out: archive }))).toBe('E_CONFLICT');
  });

  describe.skipIf(!pgUrl)('across databases (PostgreSQL)', () => {
    const schemas: string[] = [];
    const schema = () => {
      const s = `pw_test_${randomBytes(6).toString('hex')}`;
      schemas.push(s);
      return s;
    };
    afterAll(async () => {
      const c = new pg.Client({ connectionString: pgUrl! });
      await c.connect();
      for (const s of schemas) await c.query(`drop schema if exists "${s}" cascade`);
      await c.end();
    });

    it('restores SQLite → PostgreSQL, and that PostgreSQL back → SQLite, equal every time', async () => {
      const dir = fresh('pg-restored');
      const pgSchema = schema();
      const res = await restore({ archive, dataDir: dir, database: pgUrl!, pgSchema });
      expect(res).toMatchObject({ dialect: 'postgres', from: { dialect: 'sqlite' } });
      const db = await openDatabase({ url: pgUrl!, pgSchema, poolSize: 2 });
      expect(await dumpTables(db.db as AnyDb, 'postgres')).toEqual(expected);
      const token = readFileSync(join(dir, 'admin-token'), 'utf8').trim();
      const restored = await serve(dir, db, token);
      let again: string;
      try {
        expect(await restored.get('/api/v1/devices')).toEqual(devices);
        // back up the PostgreSQL copy (REPEATABLE READ snapshot) before it changes
        again = join(fresh('out'), 'pg.tar');
        mkdirSync(join(again, '..'));
        const b = await backup({ dataDir: dir, database: pgUrl!, pgSchema, out: again, now: () => NOW });
        expect(b.dialect).toBe('postgres');
        // the sequences continue above the restored keys: a new device and a new inventory insert
        const secret = (await adminCall(restored, 'POST', '/api/v1/enrollment-secrets', { name: 'new', group: null })).secret as string;
        const e = await restored.app.inject({ method: 'POST', url: '/api/v1/enroll', payload: { secret, system: systemFacts('new-1') } });
        expect(e.statusCode, e.body).toBe(200);
        const pkgs = [...(hostPackages() as PackageFact[]), { manager: 'dpkg', name: 'zz-new', version: '1.0', arch: 'amd64', state: 'installed' } as PackageFact];
        const c = await restored.app.inject({
          method: 'POST',
          url: '/api/v1/agent/checkin',
          headers: { authorization: `Bearer ${e.json().token}`, 'content-type': 'application/json' },
          payload: JSON.stringify(checkinBody(systemFacts('new-1'), { mode: 'full', ...hashed(pkgs) })),
        });
        expect(c.statusCode, c.body).toBe(200);
      } finally {
        await restored.close();
      }
      const dir2 = fresh('from-pg');
      const res2 = await restore({ archive: again, dataDir: dir2 });
      expect(res2).toMatchObject({ dialect: 'sqlite', from: { dialect: 'postgres' } });
      const db2 = await openDatabase({ url: join(dir2, 'patchwarden.db') });
      try {
        expect(await dumpTables(db2.db as AnyDb, 'sqlite')).toEqual(expected);
      } finally {
        await db2.close();
      }
    });

    it('refuses a PostgreSQL database that has tables, and drops what a failed restore created', async () => {
      const busy = schema();
      const db = await openDatabase({ url: pgUrl!, pgSchema: busy, poolSize: 2 });
      await db.close();
      const dir = fresh('target');
      expect(await codeOf(restore({ archive, dataDir: dir, database: pgUrl!, pgSchema: busy }))).toBe('E_CONFLICT');
      expect(existsSync(dir)).toBe(false);

      const file = await rewrite(archive, (e, m) => {
        const t = m.tables.find((x) => x.name === 'device_labels')!;
        const data = Buffer.concat([e.get(t.file)!, Buffer.from(`${JSON.stringify(t.columns.map((c) => (c === 'device_id' ? 'ghost' : 'x')))}\n`)]);
        e.set(t.file, data);
        Object.assign(t, { size: data.length, sha256: sha(data), rows: t.rows + 1 });
      });
      const empty = schema();
      expect(await codeOf(restore({ archive: file, dataDir: dir, database: pgUrl!, pgSchema: empty }))).toBe('E_BACKUP_INVALID');
      expect(existsSync(dir)).toBe(false);
      const c = new pg.Client({ connectionString: pgUrl! });
      await c.connect();
      const left = await c.query('select count(*)::int as n from information_schema.tables where table_schema = $1', [empty]);
      await c.end();
      expect(left.rows[0].n).toBe(0);
    });
  });
});
