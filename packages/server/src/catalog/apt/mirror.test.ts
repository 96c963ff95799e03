import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PatchwardenError } from '@patchwarden/core';
import { lz4Decode } from './lz4.js';
import { importAptMirror } from './mirror.js';
import { HOST_LISTS, hostInReleases, MIRROR, TEST_KEYRING } from './testing.js';

/** path → body; a test may replace any file, as a hostile mirror would. */
const files = new Map<string, Buffer>();
const requests: string[] = [];
let server: Server;
let base: string;

function load(dir: string, prefix: string): void {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) load(`${dir}/${e.name}`, `${prefix}/${e.name}`);
    else files.set(`${prefix}/${e.name}`, readFileSync(`${dir}/${e.name}`));
  }
}

beforeAll(async () => {
  server = createServer((req, res) => {
    requests.push(req.url!);
    const body = files.get(req.url!.replace(/^\/debian/, ''));
    res.statusCode = body ? 200 : 404;
    res.end(body ?? 'not found');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/debian`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

function reset(): void {
  files.clear();
  requests.length = 0;
  load(MIRROR, '');
}

async function refusal(p: Promise<unknown>): Promise<PatchwardenError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(PatchwardenError);
  return err as PatchwardenError;
}

const opts = { keyrings: [TEST_KEYRING], architectures: ['amd64'] };

describe('importAptMirror', () => {
  it('fetches InRelease or Release + Release.gpg, then the cheapest index they list', async () => {
    reset();
    const r = await importAptMirror(base, ['bookworm', 'bookworm-security'], opts);
    expect(r.problems).toEqual([]);
    expect(r.releases.map((x) => [x.codename, x.verified, x.indexes.map((i) => i.path)])).toEqual([
      ['bookworm', true, ['main/binary-amd64/Packages.gz']],
      ['bookworm-security', true, ['main/binary-amd64/Packages.xz']],
    ]);
    expect(r.patches).toHaveLength(12);
    expect(requests).toEqual([
      '/debian/dists/bookworm/InRelease',
      '/debian/dists/bookworm/Release',
      '/debian/dists/bookworm/Release.gpg',
      '/debian/dists/bookworm/main/binary-amd64/Packages.gz',
      '/debian/dists/bookworm-security/InRelease',
      '/debian/dists/bookworm-security/main/binary-amd64/Packages.xz',
    ]);
  });

  it('falls back to the next listed form when one is missing', async () => {
    reset();
    files.delete('/dists/bookworm-security/main/binary-amd64/Packages.xz');
    const r = await importAptMirror(base, ['bookworm-security'], opts);
    expect(r.releases[0]!.indexes.map((i) => i.path)).toEqual(['main/binary-amd64/Packages']);
  });

  it('refuses a download whose hash or size differs from the Release file', async () => {
    reset();
    const gz = Buffer.from(files.get('/dists/bookworm/main/binary-amd64/Packages.gz')!);
    gz[gz.length - 5] = gz[gz.length - 5]! ^ 1;
    files.set('/dists/bookworm/main/binary-amd64/Packages.gz', gz);
    expect((await refusal(importAptMirror(base, ['bookworm'], opts))).message).toMatch(/SHA256 does not match the Release file's entry for main\/binary-amd64\/Packages.gz/);
    reset();
    files.set('/dists/bookworm/main/binary-amd64/Packages.gz', Buffer.concat([files.get('/dists/bookworm/main/binary-amd64/Packages.gz')!, Buffer.alloc(10)]));
    expect((await refusal(importAptMirror(base, ['bookworm'], opts))).message).toMatch(/larger than the \d+ bytes expected/);
  });

  it('refuses a Release file with a bad signature, or none while a keyring is in use', async () => {
    reset();
    const rel = files.get('/dists/bookworm/Release')!.toString().replace('Suite: stable', 'Suite: stabla');
    files.set('/dists/bookworm/Release', Buffer.from(rel));
    expect((await refusal(importAptMirror(base, ['bookworm'], opts))).message).toMatch(/invalid signature on .*\/dists\/bookworm\/Release: bad signature/);
    reset();
    files.delete('/dists/bookworm/Release.gpg');
    expect((await refusal(importAptMirror(base, ['bookworm'], opts))).message).toMatch(/has no signature/);
  });

  it('refuses a suite signed by a key outside the keyrings (the user named it)', async () => {
    reset();
    hostInReleases();
    const err = await refusal(importAptMirror(base, ['bookworm-security'], { ...opts, keyrings: ['/usr/share/keyrings/debian-archive-keyring.gpg'] }));
    expect(err.message).toMatch(/cannot verify .*NO_PUBKEY/);
  });

  it('checks its arguments and names what is missing', async () => {
    reset();
    expect((await refusal(importAptMirror(base, ['../../etc'], opts))).message).toMatch(/invalid suite name/);
    expect((await refusal(importAptMirror('ftp://example.org/debian', ['bookworm'], opts))).message).toMatch(/only http and https/);
    expect((await refusal(importAptMirror(base, [], opts))).message).toMatch(/at least one suite/);
    expect((await refusal(importAptMirror(base, ['trixie'], opts))).code).toBe('E_NOT_FOUND');
    expect((await refusal(importAptMirror('http://127.0.0.1:1/debian', ['bookworm'], opts))).code).toBe('E_SERVER_UNREACHABLE');
    const r = await importAptMirror(base, ['bookworm'], { ...opts, architectures: ['arm64'] });
    expect(r.problems).toEqual([expect.objectContaining({ level: 'warning', message: 'lists no main/binary-arm64/Packages index' })]);
    // nothing read, nothing covered: an arm64 device stays not assessed
    expect(r.coverage).toEqual([]);
  });

  it("imports a real Debian suite as a mirror serves it (this machine's bookworm-updates)", async () => {
    const release = hostInReleases().find((f) => /_dists_[a-z]+-updates_InRelease$/.test(f));
    expect(release, 'an -updates suite in the lists (apt-get update)').toBeDefined();
    const prefix = release!.slice(HOST_LISTS.length + 1, -'_InRelease'.length);
    const suite = prefix.split('_dists_')[1]!;
    const index = `${HOST_LISTS}/${prefix}_main_binary-amd64_Packages.lz4`;
    expect(existsSync(index)).toBe(true);
    files.clear();
    files.set(`/dists/${suite}/InRelease`, readFileSync(release!));
    // served uncompressed (the .xz the archive signs is not kept by apt); its hash is signed too
    files.set(`/dists/${suite}/main/binary-amd64/Packages`, lz4Decode(readFileSync(index)).data);
    const r = await importAptMirror(base, [suite], { architectures: ['amd64'], components: ['main'] });
    expect(r.releases[0]).toMatchObject({ origin: 'Debian', codename: suite, verified: true, indexes: [{ path: 'main/binary-amd64/Packages', checked: true }] });
    expect(r.errorCount).toBe(0);
    expect(r.patches.length).toBeGreaterThan(0);
  });
});
