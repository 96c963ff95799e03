/**
 * The agent holds the line against a compromised server. An attacker owns the server: its
 * database, its content store, its online key, and every answer it gives (a hostile front in
 * this file sits between the agent and the real server and can replace any answer, hand out
 * jobs and read the reports). The attacker does not hold the offline root key or an author's
 * key. The real agent code runs over real HTTP on a sandbox device with real dpkg.
 *
 * Already tested elsewhere, so not repeated here:
 * - a server whose root is not the pinned one: test/agent-catalog.test.ts ("trusts nothing from
 *   a server with another root") and a root fingerprint checked before enrollment (same file);
 * - bytes changed on the way to a local server's mirror, and a forged or replayed root or
 *   targets at import: test/local-server.test.ts, test/offline-root.test.ts;
 * - bundles signed by untrusted keys, refused by the server at publish: test/custom-patches.test.ts;
 * - a dpkg downgrade stopped by preflight through a real deployment, rollback and undo after the
 *   package files are gone: test/agent-jobs.test.ts (undo), here only with a hostile server.
 */
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MetadataKind } from '@tufjs/models';
import { buildBundle, canonicalJson, readBundle, signBundle, type AgentJob } from '@patchwarden/core';
import { buildDeb } from '../packages/agent/src/installers/testing.js';
import { processJobs } from '../packages/agent/src/jobs/loop.js';
import { openDatabase, type Database } from '../packages/server/src/db/database.js';
import { readPrivateKey } from '../packages/server/src/catalog/keys.js';
import { signMetadata, TufRepository } from '../packages/server/src/catalog/tuf/repo.js';
import { api, assertBuilt, cli, startServerProcess, type ServerProcess } from './support/processes.js';
import { makeDevice, packageStates, publishPatch, sha256 } from './support/patching.js';

const CONF = 'setting = patched\n';
const DEMO = 'custom/pw-demo-1.0-2';
const RETRACTED = 'custom/pw-retracted';
const linux = [{ family: 'linux' }];

type Json = Record<string, unknown>;
interface Report {
  state: string;
  message: string;
}

/** The attacker's front: forwards to the real server, except where the test says otherwise. */
async function hostileFront(upstream: string) {
  const up = new URL(upstream);
  const ctl = {
    jobs: [] as AgentJob[],
    reports: new Map<string, Report>(),
    /** path → bytes served instead of the server's answer (null: 404) */
    files: new Map<string, Buffer | null>(),
    /** changes each check-in answer */
    checkinAnswer: null as ((answer: Json) => Json) | null,
    checkins: [] as Json[],
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const path = (req.url ?? '/').split('?')[0]!;
      const send = (status: number, data: Buffer | string, type = 'application/json') => {
        res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(data) });
        res.end(data);
      };
      if (req.method === 'GET' && path === '/api/v1/agent/jobs') {
        const jobs = ctl.jobs;
        ctl.jobs = [];
        return send(200, JSON.stringify({ jobs }));
      }
      const report = /^\/api\/v1\/agent\/jobs\/([^/]+)\/report$/.exec(path);
      if (req.method === 'POST' && report) {
        // the outcome's message is the report's last event in the final state
        const r = JSON.parse(body.toString('utf8')) as { state: string; events: { state: string; message?: string }[] };
        ctl.reports.set(report[1]!, { state: r.state, message: r.events.filter((e) => e.state === r.state).at(-1)?.message ?? '' });
        return send(200, '{}');
      }
      if (ctl.files.has(path)) {
        const f = ctl.files.get(path)!;
        return f ? send(200, f, 'application/octet-stream') : send(404, JSON.stringify({ error: { code: 'E_NOT_FOUND', message: 'no such file' } }));
      }
      const checkin = req.method === 'POST' && path === '/api/v1/agent/checkin';
      if (checkin) ctl.checkins.push(JSON.parse((req.headers['content-encoding'] === 'gzip' ? gunzipSync(body) : body).toString('utf8')) as Json);
      const fwd = http.request({ host: up.hostname, port: up.port, path: req.url, method: req.method, headers: req.headers }, (r) => {
        const out: Buffer[] = [];
        r.on('data', (c: Buffer) => out.push(c));
        r.on('end', () => {
          let data = Buffer.concat(out);
          const headers = { ...r.headers };
          if (checkin && ctl.checkinAnswer && r.statusCode === 200) {
            const plain = r.headers['content-encoding'] === 'gzip' ? gunzipSync(data) : data;
            data = Buffer.from(JSON.stringify(ctl.checkinAnswer(JSON.parse(plain.toString('utf8')) as Json)));
            delete headers['content-encoding'];
          }
          delete headers['transfer-encoding'];
          headers['content-length'] = String(data.length);
          res.writeHead(r.statusCode ?? 502, headers);
          res.end(data);
        });
      });
      fwd.on('error', () => res.destroy());
      fwd.end(body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, ctl, close: () => new Promise<void>((r) => server.close(() => r())) };
}

describe('the agent against a compromised server', () => {
  assertBuilt();
  let dir: string;
  let offline: string;
  let server: ServerProcess;
  let front: Awaited<ReturnType<typeof hostileFront>>;
  let database: Database;
  /** the server's repository, driven by the attacker with the stolen online key */
  let stolen: TufRepository;
  let onlineKey: Awaited<ReturnType<typeof readPrivateKey>>;
  let device: string;
  let agentDir: string;
  let debs: { v1: string; v2: string };
  let bundles: { demo: string; retracted: string };
  /** metadata the agent once trusted: a timestamp and the custom listing that still named the retracted patch */
  let old: { timestamp: Buffer; customVersion: number };
  let jobCount = 0;

  const at = (...a: string[]) => [...a, '--server', server.url, '--token', server.adminToken];
  const tuf = async (path: string) => Buffer.from(await (await fetch(`${server.url}/api/v1/tuf/${path}`, { headers: { authorization: `Bearer ${server.adminToken}` } })).arrayBuffer());
  const tufJson = async (path: string) => JSON.parse((await tuf(path)).toString('utf8')) as { signed: Json & { version: number } };
  const installed = () => packageStates(device, ['pw-demo'])['pw-demo'];

  /** Hands one job to the agent through the front, runs the agent's job pass, returns what it reported. */
  async function runJob(patch: { id: string; revision: number }, target: string, opts: { dataDir?: string; kind?: 'undo'; undoes?: string } = {}): Promise<Report & { id: string }> {
    const id = `hostile-${++jobCount}-${Date.now()}`;
    const base = { id, deploymentId: 'hostile-deployment', patch, target, notBefore: new Date(Date.now() - 60_000).toISOString(), deadline: null };
    front.ctl.jobs = [opts.kind === 'undo' ? { ...base, kind: 'undo', undoes: opts.undoes! } : { ...base, kind: 'install' }];
    const data = opts.dataDir ?? agentDir;
    const pass = await processJobs({ dataDir: data, collect: { root: device }, root: device }, 0);
    expect(pass.ran.map((r) => r.id)).toEqual([id]);
    const report = front.ctl.reports.get(id);
    expect(report, `no report for ${id}`).toBeDefined();
    return { id, ...report! };
  }

  /** A copy of the agent's data directory, for attacks that leave the copy's catalog state spoiled. */
  function agentCopy(name: string): string {
    const copy = join(dir, `agent-${name}`);
    cpSync(agentDir, copy, { recursive: true });
    return copy;
  }

  /** Snapshot and timestamp as the attacker signs them with the stolen online key. */
  async function forgedSnapshot(change: (meta: Record<string, { version: number }>) => void, opts: { expires?: Date } = {}) {
    const ts = await tufJson('metadata/timestamp.json');
    const sv = (ts.signed.meta as Record<string, { version: number }>)['snapshot.json']!.version;
    const snap = await tufJson(`metadata/${sv}.snapshot.json`);
    const meta = structuredClone(snap.signed.meta) as Record<string, { version: number }>;
    change(meta);
    const expires = (opts.expires ?? new Date(Date.now() + 86_400_000)).toISOString().replace(/\.\d+Z$/, 'Z');
    const snapBytes = signMetadata(MetadataKind.Snapshot, { ...snap.signed, version: sv + 1, expires, meta }, [onlineKey]);
    const tsBytes = signMetadata(
      MetadataKind.Timestamp,
      { ...ts.signed, version: ts.signed.version + 1, expires, meta: { 'snapshot.json': { version: sv + 1, length: snapBytes.length, hashes: { sha256: sha256(snapBytes) } } } },
      [onlineKey],
    );
    front.ctl.files.set('/api/v1/tuf/metadata/timestamp.json', tsBytes);
    front.ctl.files.set(`/api/v1/tuf/metadata/${sv + 1}.snapshot.json`, snapBytes);
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pw-hostile-'));
    offline = join(dir, 'offline-machine');
    const data = join(dir, 'server');
    mkdirSync(data);
    // a catalog whose root key stays offline: the server holds the online key alone
    writeFileSync(join(data, 'server.json'), JSON.stringify({ localRoot: false }));
    server = await startServerProcess(data);
    for (const [name, role] of [['root-1', 'root'], ['author', 'author']]) expect((await cli(['keys', 'create', name!, '--role', role!, '--out', offline])).status).toBe(0);
    let r = await cli(['keys', 'root-init', '--key', join(offline, 'root-1.key'), '--online', join(data, 'keys/online.pub'), '--author', join(offline, 'author.pub'), '--out', offline]);
    expect(r.status, r.stderr).toBe(0);
    r = await cli(at('catalog', 'import-metadata', join(offline, '1.root.json'), join(offline, '1.targets.json')));
    expect(r.status, r.stderr).toBe(0);
    const author = join(offline, 'author.key');

    const out = join(dir, 'debs');
    mkdirSync(out);
    debs = {
      v1: buildDeb(out, { name: 'pw-demo', version: '1.0-1', files: { 'usr/share/pw-demo/version': '1.0-1\n' } }),
      v2: buildDeb(out, { name: 'pw-demo', version: '1.0-2', files: { 'usr/share/pw-demo/version': '1.0-2\n' } }),
    };
    bundles = {
      demo: await publishPatch(
        dir,
        server,
        author,
        {
          id: DEMO,
          revision: 1,
          title: 'pw-demo 1.0-2',
          severity: 'high',
          platforms: linux,
          applicability: { package: { manager: 'dpkg', name: 'pw-demo', installed: true } },
          installed: { all: [{ package: { manager: 'dpkg', name: 'pw-demo', version: { ge: '1.0-2' } } }, { file: { path: '/etc/pw-demo.conf', sha256: sha256(CONF) } }] },
          install: [
            { type: 'package', manager: 'dpkg', op: 'upgrade', name: 'pw-demo', version: '1.0-2', file: 'pw-demo_1.0-2_all.deb' },
            { type: 'file', op: 'place', path: '/etc/pw-demo.conf', source: 'pw-demo.conf', sha256: sha256(CONF), mode: '0644' },
          ],
        },
        { 'pw-demo_1.0-2_all.deb': { file: debs.v2 }, 'pw-demo.conf': { text: CONF } },
      ),
      // an author's patch that was published and then retracted: its signed bytes stay in the
      // content store, where the attacker finds them
      retracted: await publishPatch(
        dir,
        server,
        author,
        {
          id: RETRACTED,
          revision: 1,
          title: 'retracted',
          severity: 'low',
          platforms: linux,
          applicability: { package: { manager: 'dpkg', name: 'pw-demo', installed: true } },
          installed: { file: { path: '/opt/pw-retracted-ran', exists: true } },
          install: [{ type: 'script', interpreter: 'sh', source: 'run.sh', timeoutSeconds: 30 }],
        },
        { 'run.sh': { text: '#!/bin/sh\nmkdir -p /opt && touch /opt/pw-retracted-ran\n' } },
      ),
    };
    const timestamp = await tuf('metadata/timestamp.json');
    const sv = (JSON.parse(timestamp.toString('utf8')) as { signed: { meta: Record<string, { version: number }> } }).signed.meta['snapshot.json']!.version;
    old = { timestamp, customVersion: ((await tufJson(`metadata/${sv}.snapshot.json`)).signed.meta as Record<string, { version: number }>)['custom.json']!.version };
    r = await cli(at('patch', 'retract', RETRACTED, '--key', author));
    expect(r.status, r.stderr).toBe(0);
    // a vendor feed, so the online key's roles (vendors, debian, its bins) exist; one of its rules reads a file
    const up = await api(server, 'POST', '/api/v1/catalog/patches', {
      patches: [
        {
          id: 'debian/pw-vendor-file',
          revision: 1,
          title: 'a vendor patch whose rule reads a file',
          severity: 'low',
          platforms: linux,
          applicability: { package: { manager: 'dpkg', name: 'pw-demo', installed: true } },
          installed: { file: { path: '/etc/pw-vendor.conf', exists: true } },
        },
      ],
      coverage: [{ family: 'linux', distribution: 'debian', release: '12' }],
      source: { kind: 'apt' },
    });
    expect(up.status, JSON.stringify(up.body)).toBe(200);

    // the attacker: the server's database and online key
    onlineKey = await readPrivateKey(join(data, 'keys/online.key'));
    database = await openDatabase({ url: join(data, 'patchwarden.db'), migrateTo: null });
    stolen = new TufRepository(database.db, { online: onlineKey }, Date.now);

    front = await hostileFront(server.url);
    device = makeDevice(join(dir, 'device'), 'victim', [debs.v1]);
    writeFileSync(join(device, 'etc/shadow'), 'root:$6$secret-hash:19000:0:99999:7:::\n');
    agentDir = join(dir, 'agent');
    const secret = (await api<{ secret: string }>(server, 'POST', '/api/v1/enrollment-secrets', { name: 'victim' })).body.secret;
    const rootSha = createHash('sha256').update(readFileSync(join(offline, '1.root.json'))).digest('hex');
    r = await cli(['agent', 'enroll', '--server', front.url, '--secret', secret, '--installs', '--root-sha256', rootSha, '--data-dir', agentDir, '--root', device]);
    expect(r.status, r.stderr).toBe(0);
  }, 120_000);

  afterAll(async () => {
    await front?.close();
    await database?.close();
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  describe('runs only content that verifies against its pinned root', () => {
    it('refuses a bundle whose bytes were changed, with nothing installed', async () => {
      const bytes = readFileSync(bundles.demo);
      const tampered = Buffer.from(bytes);
      tampered[tampered.indexOf('setting = patched')] = 'S'.charCodeAt(0);
      front.ctl.files.set(`/api/v1/tuf/targets/custom/${sha256(bytes)}.pw-demo-1.0-2.bundle`, tampered);
      try {
        const r = await runJob({ id: DEMO, revision: 1 }, 'custom/pw-demo-1.0-2.bundle');
        expect(r.state).toBe('failed');
        expect(r.message).toMatch(/^E_DIGEST_MISMATCH: custom\/pw-demo-1\.0-2\.bundle does not match the signed catalog/);
      } finally {
        front.ctl.files.clear();
      }
      expect(installed()).toBe('1.0-1 ii');
      expect(existsSync(join(device, 'etc/pw-demo.conf'))).toBe(false);
    });

    it('refuses a bundle whose manifest differs from the one its author signed, even listed by the online key', async () => {
      const b = readBundle(readFileSync(bundles.demo));
      const manifest = { ...b.manifest, install: b.manifest.install.map((a) => (a.type === 'file' ? { ...a, path: '/etc/sudoers.d/pw-demo' } : a)) };
      const forged = buildBundle(manifest, b.payload, b.signatures);
      await stolen.publishVendorTargets([{ path: 'debian/pw-demo-forged.bundle', bytes: forged, patchId: 'debian/pw-demo-forged', revision: 1 }]);
      const r = await runJob({ id: DEMO, revision: 1 }, 'debian/pw-demo-forged.bundle');
      expect(r.state).toBe('failed');
      expect(r.message).toMatch(/^E_SIGNATURE_INVALID: the bundle custom\/pw-demo-1\.0-2 r1 has 0 valid signature/);
      expect(installed()).toBe('1.0-1 ii');
      expect(existsSync(join(device, 'etc/sudoers.d/pw-demo'))).toBe(false);
    });

    it('refuses a target the signed metadata does not list, though the server serves its author-signed bytes', async () => {
      const bytes = readFileSync(bundles.retracted);
      front.ctl.files.set(`/api/v1/tuf/targets/custom/${sha256(bytes)}.pw-retracted.bundle`, bytes);
      try {
        const r = await runJob({ id: RETRACTED, revision: 1 }, 'custom/pw-retracted.bundle');
        expect(r.state).toBe('failed');
        expect(r.message).toMatch(/^E_NOT_FOUND: the signed catalog has no custom\/pw-retracted\.bundle/);
      } finally {
        front.ctl.files.clear();
      }
      expect(existsSync(join(device, 'opt/pw-retracted-ran'))).toBe(false);
    });

    it("refuses an author's retracted bundle that the online key lists again under a vendor path", async () => {
      // the bytes carry the author's valid signature; only the role that lists them is wrong
      await stolen.publishVendorTargets([{ path: 'debian/pw-retracted.bundle', bytes: readFileSync(bundles.retracted), patchId: 'debian/pw-retracted', revision: 1 }]);
      const r = await runJob({ id: RETRACTED, revision: 1 }, 'debian/pw-retracted.bundle');
      expect(r.state).toBe('failed');
      expect(r.message).toMatch(/^E_SIGNATURE_INVALID: custom\/pw-retracted r1 was found at debian\/pw-retracted\.bundle, not at custom\/pw-retracted\.bundle/);
      expect(existsSync(join(device, 'opt/pw-retracted-ran'))).toBe(false);
    });

    it('refuses a custom listing signed by the online key, which is not an author key', async () => {
      const ts = await tufJson('metadata/timestamp.json');
      const snap = await tufJson(`metadata/${(ts.signed.meta as Record<string, { version: number }>)['snapshot.json']!.version}.snapshot.json`);
      const cv = (snap.signed.meta as Record<string, { version: number }>)['custom.json']!.version;
      const custom = await tufJson(`metadata/${cv}.custom.json`);
      const evil = signBundle(readFileSync(bundles.retracted), onlineKey);
      const listing = signMetadata(
        MetadataKind.Targets,
        { ...custom.signed, version: cv + 1, targets: { ...(custom.signed.targets as Json), 'custom/pw-retracted.bundle': { length: evil.length, hashes: { sha256: sha256(evil) } } } },
        [onlineKey],
      );
      front.ctl.files.set(`/api/v1/tuf/metadata/${cv + 1}.custom.json`, listing);
      front.ctl.files.set(`/api/v1/tuf/targets/custom/${sha256(evil)}.pw-retracted.bundle`, evil);
      await forgedSnapshot((meta) => (meta['custom.json'] = { version: cv + 1 }));
      try {
        const r = await runJob({ id: RETRACTED, revision: 1 }, 'custom/pw-retracted.bundle', { dataDir: agentCopy('untrusted-listing') });
        expect(r.state).toBe('failed');
        expect(r.message).toMatch(/^E_SIGNATURE_INVALID: the catalog does not verify: .*custom was signed by 0\/1 keys/);
      } finally {
        front.ctl.files.clear();
      }
      expect(existsSync(join(device, 'opt/pw-retracted-ran'))).toBe(false);
    });
  });

  describe('refuses downgrades, except an undo to its own snapshot', () => {
    let install: string;

    it('installs the genuine patch through the same server (the baseline for what follows)', async () => {
      const r = await runJob({ id: DEMO, revision: 1 }, 'custom/pw-demo-1.0-2.bundle');
      expect(r.state, r.message).toBe('done');
      install = r.id;
      expect(installed()).toBe('1.0-2 ii');
      expect(readFileSync(join(device, 'etc/pw-demo.conf'), 'utf8')).toBe(CONF);
    });

    it('refuses a job that would install a lower version than the one installed', async () => {
      // a vendor patch the online key may sign (a package action), whose package is older
      const v1 = readFileSync(debs.v1);
      const manifest = {
        id: 'debian/pw-demo-older',
        revision: 1,
        title: 'pw-demo back to 1.0-1',
        severity: 'critical',
        platforms: linux,
        applicability: { package: { manager: 'dpkg', name: 'pw-demo', installed: true } },
        installed: { package: { manager: 'dpkg', name: 'pw-demo', version: { le: '1.0-1' } } },
        install: [
          {
            type: 'package',
            manager: 'dpkg',
            op: 'upgrade',
            name: 'pw-demo',
            version: '1.0-1',
            fetch: { repository: 'http://deb.example.org/debian', path: 'pool/main/p/pw-demo/pw-demo_1.0-1_all.deb', size: v1.length, sha256: sha256(v1) },
          },
        ],
      };
      await stolen.publishVendorTargets([{ path: 'debian/pw-demo-older.json', bytes: canonicalJson(manifest), patchId: manifest.id, revision: 1 }]);
      front.ctl.files.set(`/api/v1/content/${sha256(v1)}`, v1);
      try {
        const r = await runJob({ id: manifest.id, revision: 1 }, 'debian/pw-demo-older.json');
        expect(r.state).toBe('failed');
        expect(r.message).toMatch(/preflight refused the patch: pw-demo 1\.0-2 is installed; 1\.0-1 would be a downgrade, which only an undo may do/);
      } finally {
        front.ctl.files.clear();
      }
      expect(installed()).toBe('1.0-2 ii');
    });

    it('refuses catalog metadata rolled back to older versions', async () => {
      const data = agentCopy('rollback');
      // a timestamp the agent trusted once, replayed
      front.ctl.files.set('/api/v1/tuf/metadata/timestamp.json', old.timestamp);
      let r = await runJob({ id: DEMO, revision: 1 }, 'custom/pw-demo-1.0-2.bundle', { dataDir: data });
      expect(r.state).toBe('failed');
      expect(r.message).toMatch(/^E_METADATA_ROLLBACK: .*New timestamp version \d+ is less than current version \d+/);
      front.ctl.files.clear();
      // a fresh snapshot, signed with the stolen online key, that lists the custom listing from
      // before the retraction: the retracted patch would be back
      await forgedSnapshot((meta) => (meta['custom.json'] = { version: old.customVersion }));
      try {
        r = await runJob({ id: RETRACTED, revision: 1 }, 'custom/pw-retracted.bundle', { dataDir: data });
        expect(r.state).toBe('failed');
        expect(r.message).toMatch(/^E_METADATA_ROLLBACK: .*New version \d+ of custom\.json is less than current version \d+/);
      } finally {
        front.ctl.files.clear();
      }
      expect(existsSync(join(device, 'opt/pw-retracted-ran'))).toBe(false);
    });

    it('refuses expired metadata, and still undoes its own install from the snapshot', async () => {
      const data = agentCopy('expired');
      await forgedSnapshot(() => {}, { expires: new Date(Date.now() - 3_600_000) });
      try {
        const r = await runJob({ id: DEMO, revision: 1 }, 'custom/pw-demo-1.0-2.bundle', { dataDir: data });
        expect(r.state).toBe('failed');
        expect(r.message).toMatch(/^E_METADATA_EXPIRED: .*expired/);
        // the undo of the genuine install needs no catalog at all
        const u = await runJob({ id: DEMO, revision: 1 }, 'custom/pw-demo-1.0-2.bundle', { dataDir: data, kind: 'undo', undoes: install });
        expect(u.state, u.message).toBe('done');
      } finally {
        front.ctl.files.clear();
      }
      expect(installed()).toBe('1.0-1 ii');
      expect(existsSync(join(device, 'etc/pw-demo.conf'))).toBe(false);
    });
  });

  describe('refuses scripts and file operations that no author signed', () => {
    const manifest = (id: string, action: Json, payload: { path: string; text: string }) => ({
      id,
      revision: 1,
      title: id,
      severity: 'critical',
      platforms: linux,
      applicability: { package: { manager: 'dpkg', name: 'pw-demo', installed: true } },
      installed: { file: { path: '/opt/pw-online-ran', exists: true } },
      install: [action],
      payload: [{ path: payload.path, size: Buffer.byteLength(payload.text), sha256: sha256(payload.text) }],
    });
    const script = { path: 'run.sh', text: '#!/bin/sh\nmkdir -p /opt && touch /opt/pw-online-ran\n' };

    it('refuses a vendor patch signed by the stolen online key that holds a script or a file operation', async () => {
      const withScript = manifest('debian/pw-online-script', { type: 'script', interpreter: 'sh', source: 'run.sh', timeoutSeconds: 30 }, script);
      const withFile = manifest('debian/pw-online-file', { type: 'file', op: 'place', path: '/opt/pw-online-ran', source: 'run.sh', sha256: sha256(script.text), mode: '0755' }, script);
      await stolen.publishVendorTargets([
        { path: 'debian/pw-online-script.json', bytes: canonicalJson(withScript), patchId: withScript.id, revision: 1 },
        { path: 'debian/pw-online-file.json', bytes: canonicalJson(withFile), patchId: withFile.id, revision: 1 },
      ]);
      for (const m of [withScript, withFile]) {
        const r = await runJob({ id: m.id, revision: 1 }, `${m.id}.json`);
        expect(r.state).toBe('failed');
        expect(r.message).toMatch(new RegExp(`^E_SIGNATURE_INVALID: ${m.id.replace('/', '\\/')} is signed by an online key only, but holds scripts, file operations or bundled packages`));
      }
      expect(existsSync(join(device, 'opt/pw-online-ran'))).toBe(false);
    });

    it('refuses a bundle with a script that the online key signed in place of an author', async () => {
      const m = manifest('debian/pw-online-bundle', { type: 'script', interpreter: 'sh', source: 'run.sh', timeoutSeconds: 30 }, script);
      const bundle = signBundle(buildBundle(m, new Map([['run.sh', Buffer.from(script.text)]])), onlineKey);
      await stolen.publishVendorTargets([{ path: 'debian/pw-online-bundle.bundle', bytes: bundle, patchId: m.id, revision: 1 }]);
      const r = await runJob({ id: m.id, revision: 1 }, 'debian/pw-online-bundle.bundle');
      expect(r.state).toBe('failed');
      expect(r.message).toMatch(/^E_SIGNATURE_INVALID: the bundle debian\/pw-online-bundle r1 has 0 valid signature\(s\) from trusted keys, 1 needed \(signed by unknown key/);
      expect(existsSync(join(device, 'opt/pw-online-ran'))).toBe(false);
    });
  });

  describe('collects only the facts that verified rules name', () => {
    it('never reads a file the server asks for that no verified rule names, and reads those that are', async () => {
      const asked = ['/etc/shadow', '/etc/pw-demo.conf', '/etc/pw-vendor.conf', '/root/.ssh/id_ed25519'];
      front.ctl.checkinAnswer = (a) => ({ ...a, catalogGeneration: 424242, collect: { files: asked, registry: [] } });
      try {
        const args = ['--data-dir', agentDir, '--root', device];
        // the first check-in hears the directive, the second reports what the agent collected
        for (let i = 0; i < 2; i++) {
          const r = await cli(['agent', 'run', '--once', ...args]);
          expect(r.status, r.stderr).toBe(0);
        }
      } finally {
        front.ctl.checkinAnswer = null;
      }
      const last = front.ctl.checkins.at(-1)!;
      expect(last.catalog).toBe(424242);
      const files = (last.system as { files?: Record<string, unknown> } | undefined)?.files;
      // named by the author-signed custom patch and by a vendor rule: reported
      expect(Object.keys(files ?? {}).sort()).toEqual(['/etc/pw-demo.conf', '/etc/pw-vendor.conf']);
      // never sent in any check-in
      for (const c of front.ctl.checkins) expect(JSON.stringify(c)).not.toMatch(/shadow|secret-hash|id_ed25519/);
    });
  });
});
