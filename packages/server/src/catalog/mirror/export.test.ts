/**
 * The air-gap export file, on each database: made on a central server (snapshot and timestamp
 * re-signed with the stated, longer expiry; replaced online on the normal schedule), imported
 * into a local server that has no upstream, verified like an online sync; tampered or unsafe
 * files refused with nothing switched.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Header } from 'tar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBundle, sha256Hex, signBundle } from '@patchwarden/core';
import { testDatabases } from '../../testing/databases.js';
import { makeHarness, type Harness } from '../../testing/harness.js';
import { generateKey } from '../keys.js';
import { signTargetsRole, targetPathOf } from '../tuf/repo.js';
import { ExportFile } from './export-file.js';
import { openIsolated, startLocal, zlibPatch, type Local } from './testing.js';

const DAY = 86_400_000;
const bookworm = [{ family: 'linux', distribution: 'debian', release: 'bookworm', arch: ['amd64'] }];

/** A signed custom bundle, uploaded and listed as `patch publish` does it. */
async function publishCustom(h: Harness) {
  const author = generateKey('alice', 'author');
  await h.app.catalogContext.tuf.setAuthors([{ type: 'patchwarden-public-key', name: 'alice', role: 'author', keyid: author.keyid, public: author.public }]);
  const script = Buffer.from('#!/bin/sh\ntouch /opt/acme/fixed\n');
  const manifest = {
    id: 'custom/acme-hotfix-12',
    revision: 1,
    title: 'acme hotfix',
    severity: 'medium',
    platforms: [{ family: 'linux' }],
    applicability: { os: { family: 'linux' } },
    installed: { file: { path: '/opt/acme/fixed', exists: true } },
    install: [{ type: 'script', interpreter: 'sh', source: 'install.sh', timeoutSeconds: 30, expectExit: [0] }],
    undo: [],
    restart: { reboot: 'never', kernel: false },
    payload: [{ path: 'install.sh', size: script.length, sha256: sha256Hex(script) }],
  };
  const bundle = signBundle(buildBundle(manifest, new Map([['install.sh', script]])), author);
  const up = await h.app.inject({ method: 'POST', url: '/api/v1/catalog/bundles', headers: { authorization: `Bearer ${h.adminToken}`, 'content-type': 'application/octet-stream' }, payload: bundle });
  expect(up.statusCode, up.body).toBe(200);
  const cur = (await h.admin('GET', '/api/v1/catalog/custom-role')).json();
  const path = targetPathOf('custom/acme-hotfix-12', 'bundle');
  const signed = JSON.parse(signTargetsRole({ ...cur.template, targets: { [path]: { length: bundle.length, hashes: { sha256: sha256Hex(bundle) }, custom: { patch: 'custom/acme-hotfix-12', revision: 1 } } } }, [author]).toString());
  const listed = await h.admin('PUT', '/api/v1/catalog/custom-role', signed);
  expect(listed.statusCode, listed.body).toBe(200);
  return bundle;
}

function tarEntry(path: string, data: Buffer, type: 'File' | 'SymbolicLink' = 'File', linkpath?: string): Buffer {
  const h = Buffer.alloc(512);
  new Header({ path, mode: 0o644, size: type === 'File' ? data.length : 0, mtime: new Date(0), type, ...(linkpath ? { linkpath } : {}) }).encode(h, 0);
  const body = type === 'File' ? data : Buffer.alloc(0);
  return Buffer.concat([h, body, Buffer.alloc((512 - (body.length % 512)) % 512)]);
}

for (const tdb of testDatabases) {
  describe.skipIf(!tdb.available)(`catalog export file on ${tdb.name}`, () => {
    let central: Harness;
    let dir: string;
    let exported: Buffer;
    let bundle: Buffer;
    const now = () => central.clock.now;
    let local: Local;

    beforeAll(async () => {
      central = await makeHarness(await openIsolated(tdb));
      dir = mkdtempSync(join(tmpdir(), 'pw-export-'));
      const patches = Array.from({ length: 40 }, (_, i) => zlibPatch(`debian/zlib-${i}`, `1:1.2.13.dfsg-1+pw${i}`));
      expect((await central.admin('POST', '/api/v1/catalog/patches', { patches, coverage: bookworm, source: { kind: 'osv' } })).statusCode).toBe(200);
      bundle = await publishCustom(central);
      const root = await central.app.catalogContext.tuf.currentRoot();
      writeFileSync(join(dir, 'root.json'), root);
      // an air-gapped local server: the pinned root, no upstream
      local = await startLocal(await openIsolated(tdb), { pin: { sha256: sha256Hex(root), from: `sha256:${sha256Hex(root)}` }, workDir: join(dir, 'spool') }, now);
    });
    afterAll(async () => {
      await local?.close();
      await central?.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('exports metadata re-signed for the stated expiry, every root, every target and the coverage', async () => {
      const ts0 = (await central.app.catalogContext.tuf.role('timestamp')).version;
      const res = await central.admin('GET', '/api/v1/catalog/export-file?expiresDays=30');
      expect(res.statusCode, res.body.slice(0, 300)).toBe(200);
      expect(res.headers['content-type']).toBe('application/x-tar');
      exported = res.rawPayload;
      // offline roles last a year; the online ones were re-signed to last 30 days at least
      expect(Date.parse(res.headers['x-patchwarden-expires'] as string)).toBe(Math.floor((now() + 30 * DAY) / 1000) * 1000);
      const ts = JSON.parse((await central.app.catalogContext.tuf.role('timestamp')).bytes.toString()).signed;
      expect(ts.version).toBe(ts0 + 1);
      expect(Date.parse(ts.expires) - now()).toBeGreaterThan(29 * DAY);

      const path = join(dir, 'catalog.tar');
      writeFileSync(path, exported);
      const f = await ExportFile.open(path);
      try {
        expect(f.index).toMatchObject({ format: 'patchwarden-catalog-export', timestamp: ts.version, targets: 41 });
        expect(await f.coverage()).toEqual(bookworm);
        expect(Buffer.from((await f.get('metadata/1.root.json', 1e6))!).equals(await central.app.catalogContext.tuf.currentRoot())).toBe(true);
        const b = await f.get(`targets/custom/${sha256Hex(bundle)}.acme-hotfix-12.bundle`, bundle.length);
        expect(Buffer.from(b!).equals(bundle)).toBe(true);
        expect(await f.get('../etc/passwd', 10)).toBeNull();
      } finally {
        await f.close();
      }
    });

    it('replaces the long-lived timestamp online on the normal schedule', async () => {
      const tuf = central.app.catalogContext.tuf;
      expect((await tuf.refreshExpiring()).resigned).toEqual([]);
      central.clock.now += 13 * 3600_000;
      try {
        expect((await tuf.refreshExpiring()).resigned).toEqual(['snapshot', 'timestamp']);
        const ts = JSON.parse((await tuf.role('timestamp')).bytes.toString()).signed;
        expect(Date.parse(ts.expires) - now()).toBe(DAY);
      } finally {
        central.clock.now -= 13 * 3600_000;
      }
    });

    it('imports into a local server without an upstream, verified like a sync, and states the expiry', async () => {
      const res = await local.app.inject({
        method: 'POST',
        url: '/api/v1/mirror/import?name=catalog.tar',
        headers: { authorization: `Bearer ${local.adminToken}`, 'content-type': 'application/x-tar' },
        payload: exported,
      });
      expect(res.statusCode, res.body).toBe(200);
      const r = res.json();
      expect(r).toMatchObject({ source: 'file:catalog.tar', changed: true, patches: { created: 41 }, targets: { listed: 41, fetched: 41 }, coverage: 1 });
      expect(Date.parse(r.expires)).toBe(Math.floor((now() + 30 * DAY) / 1000) * 1000);
      const m = await local.db.selectFrom('patches').select(['id', 'source_kind']).where('id', '=', 'custom/acme-hotfix-12').executeTakeFirstOrThrow();
      expect(m.source_kind).toBe('mirror');
      // byte for byte what the central server served when it exported
      const tuf = local.app.catalogContext.tuf;
      const listed = await local.db.selectFrom('tuf_targets').select(['path', 'sha256']).where('patch_id', '=', 'custom/acme-hotfix-12').executeTakeFirstOrThrow();
      expect((await tuf.file(`targets/custom/${listed.sha256}.acme-hotfix-12.bundle`))!.equals(bundle)).toBe(true);
      expect((await local.admin('GET', '/api/v1/tuf-root')).rawPayload.equals(readFileSync(join(dir, 'root.json')))).toBe(true);
      // an online sync needs an upstream this server does not have
      expect((await local.admin('POST', '/api/v1/mirror/sync')).json().error.code).toBe('E_CONFLICT');
      // the same file again changes nothing
      const again = await local.app.inject({ method: 'POST', url: '/api/v1/mirror/import', headers: { authorization: `Bearer ${local.adminToken}`, 'content-type': 'application/x-tar' }, payload: exported });
      expect(again.json()).toMatchObject({ changed: false, targets: { fetched: 0 } });
    });

    it('refuses a tampered export file, switching nothing', async () => {
      const before = await local.db.selectFrom('tuf_roles').select(['name', 'version', 'sha256']).orderBy('name').execute();
      const post = (body: Buffer) =>
        local.app.inject({ method: 'POST', url: '/api/v1/mirror/import', headers: { authorization: `Bearer ${local.adminToken}`, 'content-type': 'application/x-tar' }, payload: body });
      // a new export with a new patch, then one byte of that patch object changed (a target
      // this server already holds is not read again, so a change there would go unnoticed and harmless)
      expect((await central.admin('POST', '/api/v1/catalog/patches', { patches: [zlibPatch('debian/zlib-new', '2.0')], coverage: [], source: { kind: 'osv' } })).statusCode).toBe(200);
      const fresh = (await central.admin('GET', '/api/v1/catalog/export-file')).rawPayload;
      const bad = Buffer.from(fresh);
      const at = bad.indexOf('"title":"debian/zlib-new');
      expect(at).toBeGreaterThan(0);
      bad[at + 9] = 'D'.charCodeAt(0);
      let r = await post(bad);
      expect(r.statusCode).toBe(422);
      expect(r.json().error.code).toBe('E_DIGEST_MISMATCH');
      // and one byte of the timestamp
      const ts = Buffer.from(fresh);
      const t = ts.indexOf('"_type":"timestamp"');
      const e = ts.indexOf('"expires":"', t) + 12;
      ts[e] = ts[e]! ^ 1;
      r = await post(ts);
      expect(r.json().error.code).toBe('E_SIGNATURE_INVALID');
      // a changed byte in a header: its checksum fails
      const hdr = Buffer.from(fresh);
      hdr[0] = hdr[0]! ^ 1;
      r = await post(hdr);
      expect(r.json().error).toMatchObject({ code: 'E_BUNDLE_INVALID', message: expect.stringMatching(/checksum/) });
      // links, escaping names, truncation, garbage after the end
      const withLink = Buffer.concat([tarEntry('metadata/timestamp.json', Buffer.alloc(0), 'SymbolicLink', '/etc/passwd'), Buffer.alloc(1024)]);
      expect((await post(withLink)).json().error.message).toMatch(/SymbolicLink entry/);
      const escaping = Buffer.concat([tarEntry('metadata/../../x.json', Buffer.from('{}')), Buffer.alloc(1024)]);
      expect((await post(escaping)).json().error.message).toMatch(/not an entry of an export file/);
      expect((await post(fresh.subarray(0, fresh.length - 2048))).json().error.message).toMatch(/truncated/);
      expect((await post(Buffer.concat([fresh, Buffer.from('trailing')]))).json().error.message).toMatch(/after the end/);
      const after = await local.db.selectFrom('tuf_roles').select(['name', 'version', 'sha256']).orderBy('name').execute();
      expect(after).toEqual(before);
      // the untampered one is taken
      r = await post(fresh);
      expect(r.statusCode, r.body).toBe(200);
      expect(r.json().changed).toBe(true);
    });

    it('carries the cached vendor package files the patches install, each checked against its signed manifest', async () => {
      const deb = Buffer.from('!<arch>\na real .deb would be here, fetched once by cache-payloads\n');
      const missing = Buffer.from('a file the central server never cached');
      const withFile = (id: string, b: Buffer) => ({
        ...zlibPatch(id, '1:1.2.13.dfsg-1+pay'),
        install: [{ type: 'package', manager: 'apt', op: 'upgrade', name: 'zlib1g', version: '1:1.2.13.dfsg-1+pay', fetch: { repository: 'http://deb.example.org/debian', path: `pool/${id.slice(7)}.deb`, size: b.length, sha256: sha256Hex(b) } }],
      });
      expect((await central.admin('POST', '/api/v1/catalog/patches', { patches: [withFile('debian/zlib-cached', deb), withFile('debian/zlib-uncached', missing)], coverage: [], source: { kind: 'osv' } })).statusCode).toBe(200);
      // as `catalog cache-payloads` leaves it: the file in the central content store
      await central.database.db.insertInto('content').values({ sha256: sha256Hex(deb), length: deb.length, bytes: deb, created_at: now() }).execute();
      const res = await central.admin('GET', '/api/v1/catalog/export-file');
      const path = join(dir, 'with-payloads.tar');
      writeFileSync(path, res.rawPayload);
      const f = await ExportFile.open(path);
      try {
        expect(f.index.payloads).toBe(1);
      } finally {
        await f.close();
      }
      const r = await local.app.inject({ method: 'POST', url: '/api/v1/mirror/import', headers: { authorization: `Bearer ${local.adminToken}`, 'content-type': 'application/x-tar' }, payload: res.rawPayload });
      expect(r.statusCode, r.body).toBe(200);
      expect(r.json().payloads).toEqual({ referenced: 2, fetched: 1, bytes: deb.length, unavailable: 1 });
      const got = await local.admin('GET', `/api/v1/content/${sha256Hex(deb)}`);
      expect(got.statusCode).toBe(200);
      expect(got.rawPayload.equals(deb)).toBe(true);
      expect((await local.admin('GET', `/api/v1/content/${sha256Hex(missing)}`)).statusCode).toBe(404);
    });

    it('an export file from another catalog does not verify against the pinned root', async () => {
      const other = await makeHarness(await openIsolated(tdb));
      try {
        await other.admin('POST', '/api/v1/catalog/patches', { patches: [zlibPatch('debian/evil', '1')], coverage: bookworm, source: { kind: 'bench' } });
        const foreign = (await other.admin('GET', '/api/v1/catalog/export-file')).rawPayload;
        const r = await local.app.inject({ method: 'POST', url: '/api/v1/mirror/import', headers: { authorization: `Bearer ${local.adminToken}`, 'content-type': 'application/x-tar' }, payload: foreign });
        expect(r.json().error.code).toBe('E_SIGNATURE_INVALID');
        expect(await local.db.selectFrom('patches').select('id').where('id', '=', 'debian/evil').executeTakeFirst()).toBeUndefined();
      } finally {
        await other.close();
      }
    });
  });
}
