import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { PatchwardenError } from '@patchwarden/core';
import { importAptLists } from './lists.js';
import { lz4Decode } from './lz4.js';
import { HOST_LISTS, hostInReleases, MIRROR, TEST_KEYRING } from './testing.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** The fixture mirror laid out as apt lays out its lists. */
function fixtureLists(): string {
  const dir = mkdtempSync(join(tmpdir(), 'patchwarden-lists-'));
  dirs.push(dir);
  const p = 'mirror.example_debian_dists_';
  copyFileSync(`${MIRROR}/dists/bookworm/Release`, join(dir, `${p}bookworm_Release`));
  copyFileSync(`${MIRROR}/dists/bookworm/Release.gpg`, join(dir, `${p}bookworm_Release.gpg`));
  copyFileSync(`${MIRROR}/dists/bookworm/main/binary-amd64/Packages.gz`, join(dir, `${p}bookworm_main_binary-amd64_Packages.gz`));
  copyFileSync(`${MIRROR}/dists/bookworm-security/InRelease`, join(dir, `${p}bookworm-security_InRelease`));
  copyFileSync(`${MIRROR}/dists/bookworm-security/main/binary-amd64/Packages.xz`, join(dir, `${p}bookworm-security_main_binary-amd64_Packages.xz`));
  return dir;
}

async function refusal(p: Promise<unknown>): Promise<PatchwardenError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(PatchwardenError);
  return err as PatchwardenError;
}

describe('importAptLists', () => {
  it("imports this machine's lists, every index checked against its verified Release file", async () => {
    hostInReleases();
    const r = await importAptLists(HOST_LISTS);
    expect(r.errorCount).toBe(0);
    expect(r.releases.length).toBeGreaterThan(0);
    for (const rel of r.releases) {
      expect(rel.verified, rel.location).toBe(true);
      expect(rel.signers.length).toBeGreaterThan(0);
      for (const i of rel.indexes) expect(i.checked, i.location).toBe(true);
    }
    expect(r.records).toBeGreaterThan(10_000);
    expect(r.patches.length).toBeGreaterThan(5_000);
    expect(new Set(r.patches.map((p) => p.id)).size).toBe(r.patches.length);
    const osRelease = readFileSync('/etc/os-release', 'utf8');
    const codename = /^VERSION_CODENAME=(.*)$/m.exec(osRelease)?.[1];
    expect(r.coverage.map((c) => c.release)).toContain(codename);
  });

  it('reads Release + Release.gpg and InRelease, .gz and .xz, into one release', async () => {
    const r = await importAptLists(fixtureLists(), { keyrings: [TEST_KEYRING] });
    expect(r.problems).toEqual([]);
    expect(r.releases.map((x) => [x.codename, x.release, x.verified, x.indexes.map((i) => i.path)])).toEqual([
      ['bookworm-security', 'bookworm', true, ['main/binary-amd64/Packages.xz']],
      ['bookworm', 'bookworm', true, ['main/binary-amd64/Packages.gz']],
    ]);
    expect(r.patches).toHaveLength(12);
    expect(r.coverage).toEqual([{ family: 'linux', distribution: 'debian', release: 'bookworm', arch: ['amd64'] }]);
  });

  it('accepts an index apt stored recompressed: the signed hash of its content decides', async () => {
    const dir = fixtureLists();
    const name = join(dir, 'mirror.example_debian_dists_bookworm_main_binary-amd64_Packages.gz');
    const again = gzipSync(readFileSync(`${MIRROR}/dists/bookworm/main/binary-amd64/Packages`), { level: 1 });
    expect(again.equals(readFileSync(name))).toBe(false);
    writeFileSync(name, again);
    const r = await importAptLists(dir, { keyrings: [TEST_KEYRING] });
    expect(r.problems).toEqual([]);
    expect(r.patches).toHaveLength(12);
  });

  it('refuses an index that does not match its Release file', async () => {
    const dir = fixtureLists();
    const name = 'mirror.example_debian_dists_bookworm-security_main_binary-amd64_Packages';
    rmSync(join(dir, `${name}.xz`));
    const text = readFileSync(`${MIRROR}/dists/bookworm-security/main/binary-amd64/Packages`, 'latin1');
    writeFileSync(join(dir, name), text.replace('Version: 3.0.15-1~deb12u1', 'Version: 3.0.16-1~deb12u1'), 'latin1');
    const err = await refusal(importAptLists(dir, { keyrings: [TEST_KEYRING] }));
    expect(err.code).toBe('E_VALIDATION');
    expect(err.message).toMatch(/SHA256 does not match the Release file's entry for main\/binary-amd64\/Packages/);
  });

  it("refuses a tampered copy of this machine's lists", async () => {
    const [release] = hostInReleases().filter((f) => f.includes('bookworm-updates')).concat(hostInReleases());
    const prefix = release!.slice(HOST_LISTS.length + 1, -'_InRelease'.length);
    const index = readdirSync(HOST_LISTS).find((n) => n.startsWith(`${prefix}_`) && n.endsWith('_Packages.lz4'))!;
    const dir = mkdtempSync(join(tmpdir(), 'patchwarden-lists-'));
    dirs.push(dir);
    copyFileSync(release!, join(dir, `${prefix}_InRelease`));
    const text = lz4Decode(readFileSync(join(HOST_LISTS, index))).data.toString('latin1');
    writeFileSync(join(dir, index.replace(/\.lz4$/, '')), text.replace(/^Version: /m, 'Version: 9'), 'latin1');
    expect((await refusal(importAptLists(dir))).message).toMatch(/does not match the Release file's entry/);
  });

  it('refuses a Release file whose signature is bad', async () => {
    const dir = fixtureLists();
    const f = join(dir, 'mirror.example_debian_dists_bookworm-security_InRelease');
    writeFileSync(f, readFileSync(f, 'latin1').replace('Codename: bookworm-security', 'Codename: bookworm-securitx'), 'latin1');
    const err = await refusal(importAptLists(dir, { keyrings: [TEST_KEYRING] }));
    expect(err.message).toMatch(/invalid signature on .*bookworm-security_InRelease: bad signature/);
  });

  it('skips, and reports, a release signed by a key outside the keyrings', async () => {
    hostInReleases();
    const r = await importAptLists(fixtureLists(), { keyrings: ['/usr/share/keyrings/debian-archive-keyring.gpg'] });
    expect(r.patches).toEqual([]);
    expect(r.releases).toEqual([]);
    expect(r.problems).toHaveLength(2);
    for (const p of r.problems) expect(p).toMatchObject({ level: 'error', message: expect.stringMatching(/^cannot verify: no good signature by a key of the keyring .*release skipped/) });
  });

  it('reads unverified without a keyring, and says so', async () => {
    const r = await importAptLists(fixtureLists(), { keyrings: [] });
    expect(r.patches).toHaveLength(12);
    expect(r.releases.every((x) => !x.verified)).toBe(true);
    expect(r.problems.filter((p) => /not verified: no keyring/.test(p.message))).toHaveLength(2);
  });

  it('filters suites and reports indexes without a Release file', async () => {
    const dir = fixtureLists();
    writeFileSync(join(dir, 'other.example_dists_x_main_binary-amd64_Packages'), '');
    const r = await importAptLists(dir, { keyrings: [TEST_KEYRING], suites: ['bookworm-security'] });
    expect(r.releases.map((x) => x.codename)).toEqual(['bookworm-security']);
    expect(r.patches).toHaveLength(6);
    expect(r.problems).toEqual([
      expect.objectContaining({ level: 'warning', file: join(dir, 'other.example_dists_x_main_binary-amd64_Packages'), message: expect.stringMatching(/without a Release file/) }),
    ]);
  });

  it('names a missing directory', async () => {
    const err = await refusal(importAptLists('/nonexistent/lists'));
    expect(err.code).toBe('E_NOT_FOUND');
  });
});
