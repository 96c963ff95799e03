/**
 * `patchwarden scan --osv DIR` / `--debian-tracker FILE` and the two import commands, run as the
 * built CLI on a sandbox copy of this machine's dpkg status in which the binaries of the sources
 * the records name are set to known versions: some below the records' fixed versions (among them
 * a binary with an epoch of its own, a binNMU and a second architecture), some exactly at them.
 * The CVE list must be exactly the expected one, and dpkg itself must agree on every comparison.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, assertBuilt, cli, ROOT, startServerProcess } from './support/processes.js';

const OSV = join(ROOT, 'packages/server/src/catalog/osv/testdata/debian');
const GO = join(ROOT, 'packages/server/src/catalog/osv/testdata/go-vulndb');
const TRACKER = join(ROOT, 'packages/server/src/catalog/debian-tracker/testdata/tracker.json');
const HOST_STATUS = '/var/lib/dpkg/status';
/** every source package the test records name: the sandbox decides their versions */
const SOURCES = new Set(['openssl', 'util-linux', 'libssh2', 'tar', 'curl', 'glibc']);

interface Item {
  cve: string;
  package: string;
  arch: string;
  source: string;
  installed: string;
  sourceVersion: string;
  fixed: string | null;
  state: string;
  severity: string;
  patch: string | null;
  advisories: string[];
}

let dir: string;
let root: string;
let status: string;
let native: string;
let foreign: string;

const field = (para: string, name: string) => new RegExp(`^${name}: *(.*)$`, 'mi').exec(para)?.[1];

function paragraph(name: string, arch: string, version: string, source?: string, extra: string[] = []): string {
  return [
    `Package: ${name}`,
    'Status: install ok installed',
    'Priority: optional',
    'Section: libs',
    'Installed-Size: 1',
    'Maintainer: Patchwarden tests <tests@patchwarden.invalid>',
    `Architecture: ${arch}`,
    ...extra,
    ...(source ? [`Source: ${source}`] : []),
    `Version: ${version}`,
    'Description: set by test/scan-osv.test.ts',
  ].join('\n');
}

beforeAll(() => {
  assertBuilt();
  native = execFileSync('dpkg', ['--print-architecture'], { encoding: 'utf8' }).trim();
  foreign = native === 'amd64' ? 'i386' : 'amd64';
  dir = mkdtempSync(join(tmpdir(), 'patchwarden-scan-osv-'));
  // a bookworm root whatever the host runs: the records are for bookworm
  root = join(dir, 'root');
  mkdirSync(join(root, 'etc'), { recursive: true });
  writeFileSync(join(root, 'etc/os-release'), 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nVERSION="12 (bookworm)"\nVERSION_CODENAME=bookworm\nID=debian\n');
  const host = readFileSync(HOST_STATUS, 'utf8').split(/\n\n+/).filter((p) => p.trim() !== '');
  const kept = host.filter((p) => !SOURCES.has((field(p, 'Source') ?? field(p, 'Package')!).split(' ')[0]!));
  const multiArch = ['Multi-Arch: same'];
  const added = [
    paragraph('libssl3', native, '3.0.11-1~deb12u1', 'openssl', multiArch),
    paragraph('libssl3', foreign, '3.0.11-1~deb12u1', 'openssl', multiArch),
    // dpkg writes no Source field when it equals the package name
    paragraph('openssl', native, '3.0.13-1~deb12u1'),
    // util-linux 2.38.1-5 builds bsdutils with an epoch: 1:2.38.1-5 is above every fixed source version
    paragraph('bsdutils', native, '1:2.38.1-5', 'util-linux (2.38.1-5)'),
    paragraph('libuuid1', native, '2.38.1-5', 'util-linux', multiArch),
    // a binNMU
    paragraph('libssh2-1', native, '1.10.0-3+b1', 'libssh2 (1.10.0-3)', multiArch),
    paragraph('tar', native, '1.34+dfsg-1.2+deb12u1'),
    // exactly at the fixed versions
    paragraph('libcurl4', native, '7.88.1-10+deb12u5', 'curl', multiArch),
    paragraph('libc6', native, '2.36-9+deb12u3', 'glibc', multiArch),
  ];
  status = join(dir, 'status');
  writeFileSync(status, `${[...kept, ...added].join('\n\n')}\n`);
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const scan = (...args: string[]) => cli(['scan', '--root', root, '--dpkg-status', status, ...args]);
const line = (i: Item) => `${i.cve} ${i.package}:${i.arch === native ? '' : i.arch} ${i.fixed ?? `(${i.state})`}`;

function dpkgAgrees(a: string, op: 'lt' | 'ge' | 'gt', b: string): boolean {
  return spawnSync('dpkg', ['--compare-versions', a, op, b]).status === 0;
}

describe('patchwarden scan --osv', () => {
  let items: Item[];

  it('lists exactly the open CVEs of the machine, by installed binary', async () => {
    const r = await scan('--osv', OSV, '--json');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    items = JSON.parse(r.stdout) as Item[];
    expect(items.map(line)).toEqual([
      'CVE-2005-2541 tar: (open)',
      'CVE-2023-5363 libssl3: 3.0.11-1~deb12u2',
      `CVE-2023-5363 libssl3:${foreign} 3.0.11-1~deb12u2`,
      'CVE-2023-5678 libssl3: 3.0.13-1~deb12u1',
      `CVE-2023-5678 libssl3:${foreign} 3.0.13-1~deb12u1`,
      'CVE-2023-48795 libssh2-1: (open)',
      'CVE-2024-5535 libssl3: 3.0.14-1~deb12u2',
      `CVE-2024-5535 libssl3:${foreign} 3.0.14-1~deb12u2`,
      'CVE-2024-5535 openssl: 3.0.14-1~deb12u2',
      'CVE-2024-6119 libssl3: 3.0.14-1~deb12u2',
      `CVE-2024-6119 libssl3:${foreign} 3.0.14-1~deb12u2`,
      'CVE-2024-6119 openssl: 3.0.14-1~deb12u2',
      'CVE-2024-28085 bsdutils: 2.38.1-5+deb12u1',
      'CVE-2024-28085 libuuid1: 2.38.1-5+deb12u1',
    ]);
    expect(items.find((i) => i.package === 'bsdutils')).toEqual({
      cve: 'CVE-2024-28085',
      package: 'bsdutils',
      arch: native,
      source: 'util-linux',
      installed: '1:2.38.1-5',
      sourceVersion: '2.38.1-5',
      fixed: '2.38.1-5+deb12u1',
      state: 'needed',
      severity: 'medium',
      patch: 'osv/debian/bookworm/util-linux-2.38.1-5+deb12u1',
      advisories: ['DSA-5650-1'],
    });
    expect(items.find((i) => i.package === 'libssh2-1')).toMatchObject({ source: 'libssh2', installed: '1.10.0-3+b1', sourceVersion: '1.10.0-3', fixed: null, state: 'open', patch: null });
  }, 60_000);

  it('dpkg agrees: each listed fix is above the source version, and the binary version would have misled', () => {
    for (const i of items.filter((x) => x.fixed)) expect(dpkgAgrees(i.sourceVersion, 'lt', i.fixed!), line(i)).toBe(true);
    const bsdutils = items.find((i) => i.package === 'bsdutils')!;
    expect(dpkgAgrees(bsdutils.installed, 'gt', bsdutils.fixed!)).toBe(true);
    // the binaries at the fixed versions are not listed, and dpkg says they are not below them
    expect(items.some((i) => i.source === 'curl' || i.source === 'glibc')).toBe(false);
    expect(dpkgAgrees('7.88.1-10+deb12u5', 'ge', '7.88.1-10+deb12u5')).toBe(true);
  });

  it('prints a table for people, with the source version and what has no fix yet', async () => {
    const r = await scan('--osv', OSV);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^CVE {13}PACKAGE +SOURCE +INSTALLED +FIXED +SEVERITY$/m);
    expect(r.stdout).toMatch(/^CVE-2024-28085 +bsdutils +util-linux 2\.38\.1-5 +1:2\.38\.1-5 +2\.38\.1-5\+deb12u1 +medium$/m);
    expect(r.stdout).toMatch(/^CVE-2023-48795 +libssh2-1 +libssh2 1\.10\.0-3 +1\.10\.0-3\+b1 +\(no fix yet\) +medium$/m);
    expect(r.stdout).toMatch(new RegExp(`^CVE-2023-5363 +libssl3:${foreign} `, 'm'));
    expect(r.stdout).toMatch(/7 CVEs affect debian 12 \(bookworm\) \S+ \(7 packages\): 5 with a fix to install, 2 without a fix; feeds: .*: 8 records, 11 patches, 3 without a fix$/m);
  }, 60_000);

  it('explains a patch with the source versions it compared', async () => {
    const r = await scan('--osv', OSV, '--explain', 'osv/debian/bookworm/util-linux-2.38.1-5+deb12u1');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('osv/debian/bookworm/util-linux-2.38.1-5+deb12u1: needed');
    expect(r.stdout).toContain(`✓ dpkg source util-linux < 2.38.1-5+deb12u1 — bsdutils 1:2.38.1-5 (${native}, source util-linux 2.38.1-5) < 2.38.1-5+deb12u1`);
  }, 60_000);

  it("counts other ecosystems' records and reports files that are no records, on stderr", async () => {
    const r = await scan('--osv', OSV, '--osv', GO, '--json');
    expect(r.status, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as Item[]).map(line)).toEqual(items.map(line));
    expect(r.stderr.trim().split('\n')).toEqual([
      `error: ${GO}/ID/index.json at $: not OSV records: an array of string (an index file?); skipped`,
      `error: ${GO}/index.json at $: not an OSV record (no id, no modified: an index or alias file?); skipped`,
    ]);
    const go = await scan('--osv', GO);
    expect(go.status).not.toBe(0);
    expect(go.stderr).toMatch(/not assessed: no feed covers this machine/);
  }, 60_000);
});

describe('patchwarden scan --debian-tracker', () => {
  it('lists resolved issues still needed, open ones with fixed null and undetermined ones as such', async () => {
    const r = await scan('--debian-tracker', TRACKER, '--json');
    expect(r.status, r.stderr).toBe(0);
    const items = JSON.parse(r.stdout) as Item[];
    expect(items.map((i) => `${line(i)} ${i.severity}`)).toEqual([
      'CVE-2005-2541 tar: (open) none',
      'CVE-2023-5363 libssl3: 3.0.11-1~deb12u2 medium',
      `CVE-2023-5363 libssl3:${foreign} 3.0.11-1~deb12u2 medium`,
      'CVE-2023-48795 libssh2-1: (open) low',
      'CVE-2024-6119 libssl3: 3.0.14-1~deb12u2 medium',
      `CVE-2024-6119 libssl3:${foreign} 3.0.14-1~deb12u2 medium`,
      'CVE-2024-6119 openssl: 3.0.14-1~deb12u2 medium',
      'CVE-2024-28085 bsdutils: 2.38.1-5+deb12u1 high',
      'CVE-2024-28085 libuuid1: 2.38.1-5+deb12u1 high',
      'TEMP-0000000-1F5EC2 tar: (undetermined) medium',
    ]);
  }, 60_000);

  it('merges with OSV: one item per CVE and package, a fix before none', async () => {
    const r = await scan('--osv', OSV, '--debian-tracker', TRACKER, '--json');
    expect(r.status, r.stderr).toBe(0);
    const items = JSON.parse(r.stdout) as Item[];
    expect(new Set(items.map((i) => `${i.cve} ${i.package} ${i.arch}`)).size).toBe(items.length);
    expect(items).toHaveLength(15);
    expect(items.find((i) => i.cve === 'CVE-2024-6119' && i.package === 'openssl')!.advisories).toEqual(['DSA-5764-1']);
  }, 60_000);
});

describe('patchwarden catalog import-osv / import-debian-tracker', () => {
  it('writes a catalog file that scan --catalog reads (the open vulnerabilities are no patches)', async () => {
    const file = join(dir, 'osv-catalog.json');
    const w = await cli(['catalog', 'import-osv', OSV, '--release', 'bookworm', '--out', file, '--json']);
    expect(w.status, w.stderr).toBe(0);
    const summary = JSON.parse(w.stdout) as { patches: number; open: number; out: string; records: number; unhandled: object };
    expect(summary).toMatchObject({ patches: 6, open: 2, out: file, records: 8, unhandled: {} });
    const r = await scan('--catalog', file, '--json');
    expect(r.status, r.stderr).toBe(0);
    const needed = (JSON.parse(r.stdout) as { patch: string }[]).map((i) => i.patch);
    expect([...new Set(needed)].sort()).toEqual(['osv/debian/bookworm/openssl-3.0.14-1~deb12u2', 'osv/debian/bookworm/util-linux-2.38.1-5+deb12u1']);
  }, 60_000);

  it('lists what it could not read with file and position, and refuses a feed with no patches', async () => {
    const mixed = join(dir, 'mixed');
    cpSync(OSV, mixed, { recursive: true });
    writeFileSync(join(mixed, 'DSA-9999-1.json'), readFileSync(join(OSV, 'DSA-5532-1.json'), 'utf8').slice(0, 200));
    const r = await cli(['catalog', 'import-osv', mixed, GO, '--out', join(dir, 'mixed.json')]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^debian\/bookworm +6 +8 +2 +0$/m);
    expect(r.stdout).toContain('11 patches from 13 records in 15 files; covers debian/bookworm, debian/bullseye, debian/trixie');
    expect(r.stdout).toContain('not handled, counted and skipped: 5 Go');
    expect(r.stdout).toMatch(/3 problems \(3 skipped something\):\n {2}error: \S+\/DSA-9999-1\.json at byte 200 \(line \d+, column \d+\): not JSON: the text ends too early/);
    const none = await cli(['catalog', 'import-osv', GO, '--out', join(dir, 'go.json')]);
    expect(none.status).toBe(2);
    expect(none.stderr).toMatch(/E_VALIDATION: no patches: 5 records read, none with a fixed Debian version \(not handled: 5 Go\)/);
  }, 60_000);

  it('uploads to a server in batches; a second import changes nothing; the tracker beside it', async () => {
    const server = await startServerProcess(join(dir, 'server'));
    try {
      const auth = ['--server', server.url, '--token', server.adminToken, '--json'];
      const first = await cli(['catalog', 'import-osv', OSV, '--batch-size', '4', ...auth]);
      expect(first.status, first.stderr).toBe(0);
      const one = JSON.parse(first.stdout) as { patches: number; upload: object };
      expect(one.upload).toEqual({ created: 11, updated: 0, unchanged: 0 });
      const again = await cli(['catalog', 'import-osv', OSV, ...auth]);
      expect((JSON.parse(again.stdout) as typeof one).upload).toEqual({ created: 0, updated: 0, unchanged: 11 });
      const t = await cli(['catalog', 'import-debian-tracker', TRACKER, '--release', 'bookworm', ...auth]);
      expect(t.status, t.stderr).toBe(0);
      expect(JSON.parse(t.stdout)).toMatchObject({ kind: 'debian-tracker', patches: 4, open: 3, upload: { created: 4, updated: 0, unchanged: 0 } });
      const listed = await api<{ total: number }>(server, 'GET', '/api/v1/catalog/patches?limit=1');
      expect(listed.body.total).toBe(15);
      // the server's catalog decides as the feeds do
      const fromServer = await scan('--server', server.url, '--token', server.adminToken, '--json');
      expect(fromServer.status, fromServer.stderr).toBe(0);
      expect([...new Set((JSON.parse(fromServer.stdout) as { patch: string }[]).map((i) => i.patch))].sort()).toEqual([
        'debian-tracker/debian/bookworm/openssl-3.0.14-1~deb12u2',
        'debian-tracker/debian/bookworm/util-linux-2.38.1-5+deb12u1',
        'osv/debian/bookworm/openssl-3.0.14-1~deb12u2',
        'osv/debian/bookworm/util-linux-2.38.1-5+deb12u1',
      ]);
    } finally {
      await server.stop();
    }
  }, 120_000);
});
