import { createServer, type Server } from 'node:http';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PATCH_ID_RE, PatchManifest } from '@patchwarden/core';
import { formatFeedProblem } from '../osv/index.js';
import { importDebianTracker, importDebianTrackerValue } from './index.js';

const TESTDATA = fileURLToPath(new URL('./testdata/', import.meta.url));
const TRACKER = `${TESTDATA}tracker.json`;
const MALFORMED = `${TESTDATA}tracker-malformed.json`;

const dir = mkdtempSync(join(tmpdir(), 'pw-tracker-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the Debian security tracker JSON', async () => {
  const r = await importDebianTracker(TRACKER);
  const byId = new Map(r.patches.map((p) => [p.id, p]));

  it('builds one valid patch per release, source and fixed version', () => {
    expect(r.problems).toEqual([]);
    expect(r.records).toBe(7);
    for (const p of r.patches) {
      expect(PatchManifest.parse(p)).toEqual(p);
      expect(p.id).toMatch(PATCH_ID_RE);
    }
    expect([...byId.keys()]).toEqual([
      'debian-tracker/debian/bookworm/curl-7.88.1-10+deb12u5',
      'debian-tracker/debian/bookworm/openssl-3.0.11-1~deb12u2',
      'debian-tracker/debian/bookworm/openssl-3.0.14-1~deb12u2',
      'debian-tracker/debian/bookworm/util-linux-2.38.1-5+deb12u1',
      'debian-tracker/debian/bullseye/util-linux-2.36.1-8+deb11u2',
      'debian-tracker/debian/sid/openssl-3.0.12-1',
      'debian-tracker/debian/trixie/libssh2-1.11.0-4',
    ]);
    expect(byId.get('debian-tracker/debian/bookworm/openssl-3.0.14-1~deb12u2')).toMatchObject({
      title: 'openssl 3.0.14-1~deb12u2 (CVE-2024-6119)',
      vendor: 'Debian',
      cves: ['CVE-2024-6119'],
      advisories: [],
      supersedes: ['debian-tracker/debian/bookworm/openssl-3.0.11-1~deb12u2'],
      applicability: { package: { manager: 'dpkg', name: 'openssl', match: 'source', installed: true } },
      installed: { not: { package: { manager: 'dpkg', name: 'openssl', match: 'source', version: { lt: '3.0.14-1~deb12u2' } } } },
    });
    expect(r.coverage.map((c) => c.release)).toEqual(['bookworm', 'bullseye', 'sid', 'trixie']);
  });

  it("maps urgencies onto severities: high, medium, unimportant → none, 'not yet assigned' → medium", () => {
    expect(byId.get('debian-tracker/debian/bookworm/util-linux-2.38.1-5+deb12u1')!.severity).toBe('high');
    expect(byId.get('debian-tracker/debian/bookworm/curl-7.88.1-10+deb12u5')!.severity).toBe('medium');
    expect(byId.get('debian-tracker/debian/bookworm/openssl-3.0.11-1~deb12u2')!.severity).toBe('medium');
    expect(byId.get('debian-tracker/debian/trixie/libssh2-1.11.0-4')!.severity).toBe('low');
  });

  it('keeps open and undetermined issues as open vulnerabilities; fixed_version 0 means not affected', () => {
    expect(r.open.map((o) => `${o.release} ${o.source} ${[...o.cves, ...o.advisories].join(',')} ${o.status} ${o.severity}`)).toEqual([
      'bookworm libssh2 CVE-2023-48795 open low',
      'bookworm tar CVE-2005-2541 open none',
      'bookworm tar TEMP-0000000-1F5EC2 undetermined medium',
      'bullseye libssh2 CVE-2023-48795 undetermined low',
      'bullseye tar CVE-2005-2541 open none',
    ]);
    expect(r.releases).toEqual([
      { distribution: 'debian', release: 'bookworm', patches: 4, cves: 4, open: 3, notAffected: 0 },
      { distribution: 'debian', release: 'bullseye', patches: 1, cves: 1, open: 2, notAffected: 2 },
      { distribution: 'debian', release: 'sid', patches: 1, cves: 1, open: 0, notAffected: 0 },
      { distribution: 'debian', release: 'trixie', patches: 1, cves: 1, open: 0, notAffected: 0 },
    ]);
  });

  it('imports only the releases asked for', async () => {
    const only = await importDebianTracker(TRACKER, { releases: ['bookworm'] });
    expect(only.coverage.map((c) => c.release)).toEqual(['bookworm']);
    expect(only.patches.every((p) => p.id.startsWith('debian-tracker/debian/bookworm/'))).toBe(true);
  });
});

describe('entries that cannot be read', () => {
  it('are reported with their JSON path and skipped; the good ones stay', async () => {
    const r = await importDebianTracker(MALFORMED);
    expect(r.problems.map((p) => formatFeedProblem({ ...p, file: 'm.json' }))).toEqual([
      'error: m.json at $["-rf"]: invalid source package name "-rf"; 1 entry skipped',
      'error: m.json at $.openssl["not-a-cve"] (openssl): "not-a-cve" is neither a CVE nor a TEMP id; skipped',
      'error: m.json at $.openssl["CVE-2024-0002"].releases (openssl): Invalid input: expected record, received string; CVE-2024-0002 skipped',
      'error: m.json at $.openssl["CVE-2024-0003"].releases.bookworm.status (openssl): Invalid option: expected one of "resolved"|"open"|"undetermined"; CVE-2024-0003 for bookworm skipped',
      'error: m.json at $.openssl["CVE-2024-0003"].releases["../x"] (openssl): "../x" is not a release codename; skipped',
      'error: m.json at $.openssl["CVE-2024-0003"].releases.trixie.fixed_version (openssl): resolved without a fixed_version; CVE-2024-0003 for trixie skipped',
      'error: m.json at $.openssl["CVE-2024-0003"].releases.bullseye.fixed_version (openssl): invalid fixed_version "1.1.1w 0": it holds blanks; CVE-2024-0003 for bullseye skipped',
      'warning: m.json at $.openssl["CVE-2024-0003"].releases.sid.urgency (openssl): unknown urgency "whenever"; taken as medium',
      'error: m.json at $.libssh2: expected an object of issues; 0 entries skipped',
    ]);
    expect(r.errorCount).toBe(8);
    expect(r.patches.map((p) => `${p.id} ${p.severity}`)).toEqual(['debian-tracker/debian/sid/openssl-3.0.15-1 medium']);
  });

  it('a document that is not the JSON object of the tracker stops the import, with the byte where it breaks', async () => {
    const text = readFileSync(TRACKER, 'utf8');
    const cut = join(dir, 'cut.json');
    writeFileSync(cut, text.slice(0, 1000));
    await expect(importDebianTracker(cut)).rejects.toMatchObject({ code: 'E_FEED_INVALID', message: expect.stringMatching(/^.*cut\.json cannot be read at byte 1000 \(line \d+, column \d+\): not JSON: the text ends too early/) });
    expect(() => importDebianTrackerValue([1, 2], 'list.json')).toThrow(/not the Debian security tracker's JSON: expected an object of source packages at \$/);
    await expect(importDebianTracker(join(dir, 'missing.json'))).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
  });
});

describe('from a URL', () => {
  let server: Server;
  let base: string;
  const body = readFileSync(TRACKER);

  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url === '/tracker/data/json') res.end(body);
      else if (req.url === '/json.gz') res.end(gzipSync(body));
      else if (req.url === '/big') res.end(Buffer.alloc(2048, 0x20));
      else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('reads it, gzip-compressed or plain, and warns that plain http vouches for nothing', async () => {
    const local = await importDebianTracker(TRACKER);
    for (const path of ['/tracker/data/json', '/json.gz']) {
      const r = await importDebianTracker(`${base}${path}`);
      expect(r.patches).toEqual(local.patches);
      expect(r.problems.map((p) => p.reason)).toEqual(['fetched over plain http: the tracker signs nothing, so nothing vouches for what arrived (use https)']);
    }
  });

  it('says what went wrong: not found, too large', async () => {
    await expect(importDebianTracker(`${base}/nope`)).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
    await expect(importDebianTracker(`${base}/big`, { maxBytes: 1024 })).rejects.toMatchObject({ code: 'E_FEED_INVALID' });
  });
});
