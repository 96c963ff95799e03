import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CatalogIndex, decideStates, makeEvalFacts, PATCH_ID_RE, PatchManifest, type InstalledPackage, type OsFacts } from '@patchwarden/core';
import { parsePackagesIndex, type BinaryRecord } from './packages-index.js';
import { AptCatalogBuilder, aptPatchId, versionForId, type IndexOrigin } from './patches.js';
import { Problems } from './problems.js';
import { TESTDATA } from './testing.js';

const bookworm: IndexOrigin = { originName: 'Debian', distribution: 'debian', release: 'bookworm', suite: 'bookworm', date: '2024-11-09', security: false };
const security: IndexOrigin = { ...bookworm, suite: 'bookworm-security', date: '2025-01-21', security: true };

function records(file: string): BinaryRecord[] {
  const problems = new Problems();
  const r = parsePackagesIndex(readFileSync(`${TESTDATA}${file}`, 'latin1'), file, problems, { arch: 'amd64' });
  expect(problems.list).toEqual([]);
  return r;
}

function build(...indexes: [IndexOrigin, BinaryRecord[]][]) {
  const problems = new Problems();
  const b = new AptCatalogBuilder(problems);
  for (const [o, r] of indexes) b.addIndex(o, 'amd64', r);
  const out = b.build();
  return { ...out, problems: problems.list, byId: new Map(out.patches.map((p) => [p.id, p])), chainBreaks: b.chainBreaks };
}

const rec = (name: string, version: string, source = name, sourceVersion = version, arch = 'amd64'): BinaryRecord => ({ name, version, arch, source, sourceVersion, line: 1 });

describe('patch ids', () => {
  it('write the epoch as _ and fit the id grammar', () => {
    expect(versionForId('1:4.13+dfsg1-1+deb12u1')).toBe('1_4.13+dfsg1-1+deb12u1');
    expect(aptPatchId('debian', 'bookworm', 'shadow', '1:4.13+dfsg1-1')).toBe('debian/bookworm/shadow-1_4.13+dfsg1-1');
    expect(aptPatchId('debian', 'bookworm', 'libjs', '0.9.0~RC2-2')).toBe('debian/bookworm/libjs-0.9.0~rc2-2');
    for (const v of ['1:2.0-1', '2.0+dfsg~rc1-1.1+b2', '0.0~PROMOTED-339-1.1', '10:1.0']) expect(aptPatchId('debian', 'sid', 'x', v)).toMatch(PATCH_ID_RE);
  });
});

describe('patches from Packages indexes', () => {
  const sample = records('Packages.sample');
  const fixed = records('Packages.security');
  const { patches, byId, coverage, problems } = build([bookworm, sample], [security, fixed]);

  it('one valid manifest per source version, with every binary built from it', () => {
    expect(problems.filter((p) => p.level === 'error')).toEqual([]);
    for (const p of patches) expect(PatchManifest.parse(p)).toEqual(p);
    expect(patches.map((p) => p.id).sort()).toEqual([
      'debian/bookworm/foo-1.2-3',
      'debian/bookworm/foo-1.2-3+deb12u1',
      'debian/bookworm/kitty-0.26.5-5',
      'debian/bookworm/kitty-0.26.5-5+deb12u1',
      'debian/bookworm/linux-6.1.119-1',
      'debian/bookworm/linux-6.1.128-1',
      'debian/bookworm/linux-signed-amd64-6.1.119+1',
      'debian/bookworm/linux-signed-amd64-6.1.128+1',
      'debian/bookworm/openssl-3.0.11-1~deb12u2',
      'debian/bookworm/openssl-3.0.15-1~deb12u1',
      'debian/bookworm/shadow-1_4.13+dfsg1-1',
      'debian/bookworm/shadow-1_4.13+dfsg1-1+deb12u1',
    ]);
    const o = byId.get('debian/bookworm/openssl-3.0.15-1~deb12u1')!;
    expect(o).toMatchObject({
      title: 'openssl 3.0.15-1~deb12u1 (bookworm-security)',
      vendor: 'Debian',
      severity: 'unknown',
      releaseDate: '2025-01-21',
      platforms: [{ family: 'linux', distribution: 'debian', release: 'bookworm', arch: ['amd64'] }],
      supersedes: ['debian/bookworm/openssl-3.0.11-1~deb12u2'],
      restart: { reboot: 'never', kernel: false },
      fixes: [
        { manager: 'dpkg', name: 'libssl-doc', arch: 'all', version: '3.0.15-1~deb12u1' },
        { manager: 'dpkg', name: 'libssl3', arch: 'amd64', version: '3.0.15-1~deb12u1' },
        { manager: 'dpkg', name: 'openssl', arch: 'amd64', version: '3.0.15-1~deb12u1' },
      ],
    });
    // arch-specific binaries are tested on their architecture, `all` ones on any
    expect(o.applicability).toEqual({
      any: [
        { package: { manager: 'dpkg', name: 'libssl-doc', installed: true } },
        { package: { manager: 'dpkg', name: 'libssl3', arch: 'amd64', installed: true } },
        { package: { manager: 'dpkg', name: 'openssl', arch: 'amd64', installed: true } },
      ],
    });
    expect(o.installed).toMatchObject({ all: expect.arrayContaining([{ any: [{ package: { manager: 'dpkg', name: 'libssl3', arch: 'amd64', absent: true } }, { package: { manager: 'dpkg', name: 'libssl3', arch: 'amd64', version: { ge: '3.0.15-1~deb12u1' } } }] }]) });
    expect(coverage).toEqual([{ family: 'linux', distribution: 'debian', release: 'bookworm', arch: ['amd64'] }]);
  });

  it("fixes a binNMU'd binary at its own version, not the source version", () => {
    expect(byId.get('debian/bookworm/foo-1.2-3')!.fixes).toEqual([
      { manager: 'dpkg', name: 'foo-data', arch: 'all', version: '1.2-3' },
      { manager: 'dpkg', name: 'libfoo1', arch: 'amd64', version: '1.2-3+b1' },
    ]);
    expect(byId.get('debian/bookworm/foo-1.2-3+deb12u1')!.supersedes).toEqual(['debian/bookworm/foo-1.2-3']);
  });

  it('installs by upgrading the binaries a device has, each with its package file from the signed index', () => {
    const withRepo = { ...security, repository: 'http://deb.debian.org/debian-security' };
    const { byId } = build([withRepo, records('Packages.sample')]);
    const o = byId.get('debian/bookworm/openssl-3.0.11-1~deb12u2')!;
    const libssl = o.install.find((a) => a.type === 'package' && a.name === 'libssl3');
    expect(libssl).toEqual({
      type: 'package',
      manager: 'apt',
      op: 'upgrade',
      name: 'libssl3',
      version: '3.0.11-1~deb12u2',
      arch: 'amd64',
      fetch: {
        repository: 'http://deb.debian.org/debian-security',
        path: 'pool/main/o/openssl/libssl3_3.0.11-1~deb12u2_amd64.deb',
        size: 2019496,
        sha256: '7a3e8a4bd3d1ce4cf1f8d1d9de7cd1b3e1bd7f7b2c1b1a77e1c2d8b7e3a2f1c0',
      },
    });
    expect(o.install.every((a) => a.type === 'package' && a.op === 'upgrade')).toBe(true);
    expect(o.install).toHaveLength(o.fixes.length);
    // without a known repository (a lone index file), the action has no file to fetch
    expect(build([security, records('Packages.sample')]).byId.get(o.id)!.install.every((a) => a.type === 'package' && !a.fetch)).toBe(true);
  });

  it('marks kernel patches as needing a reboot', () => {
    expect(byId.get('debian/bookworm/linux-signed-amd64-6.1.128+1')!.restart).toEqual({ reboot: 'required', kernel: true });
    expect(byId.get('debian/bookworm/linux-6.1.128-1')!.restart).toEqual({ reboot: 'required', kernel: true });
    // the new kernel's image is another binary name: the new version does not fix the old image
    expect(byId.get('debian/bookworm/linux-signed-amd64-6.1.128+1')!.supersedes).toEqual([]);
  });

  it('links successive versions in a chain', () => {
    const chain = build([bookworm, [rec('aa', '1.0-1')]], [security, [rec('aa', '1.0-2'), rec('aa', '1.0-1+deb12u1')]], [{ ...security, suite: 'bookworm-updates' }, [rec('aa', '1.0-3')]]);
    expect(chain.patches.map((p) => [p.id, p.supersedes])).toEqual([
      ['debian/bookworm/aa-1.0-1', []],
      ['debian/bookworm/aa-1.0-1+deb12u1', ['debian/bookworm/aa-1.0-1']],
      ['debian/bookworm/aa-1.0-2', ['debian/bookworm/aa-1.0-1+deb12u1']],
      ['debian/bookworm/aa-1.0-3', ['debian/bookworm/aa-1.0-2']],
    ]);
  });

  it('merges a version carried by two suites: both in the title, the earlier date', () => {
    const both = build([bookworm, [rec('aa', '1.0-1')]], [security, [rec('aa', '1.0-1')]]);
    expect(both.patches).toHaveLength(1);
    expect(both.patches[0]).toMatchObject({ title: 'aa 1.0-1 (bookworm, bookworm-security)', releaseDate: '2024-11-09' });
  });

  it('does not let a version that dropped a binary supersede the one that fixes it', () => {
    const r = build([bookworm, [rec('aa', '1.0-1', 'src'), rec('bb', '1.0-1', 'src')]], [security, [rec('aa', '1.0-2', 'src')]]);
    expect(r.patches.map((p) => p.supersedes)).toEqual([[], []]);
    expect(r.chainBreaks).toBe(1);
  });

  it('reports two versions that map to one id, keeps the first', () => {
    const r = build([bookworm, [rec('aa', '1.0A-1'), rec('aa', '1.0a-1')]]);
    expect(r.patches).toHaveLength(1);
    expect(r.problems.filter((p) => p.level === 'error')).toEqual([expect.objectContaining({ package: 'aa', message: expect.stringMatching(/maps to the id debian\/bookworm\/aa-1.0a-1 of another version/) })]);
  });

  it('splits rules of sources with more than 1024 binaries', () => {
    const many = Array.from({ length: 1500 }, (_, i) => rec(`bin${i}`, '1.0-1', 'big'));
    const r = build([bookworm, many]);
    expect(r.problems.filter((p) => p.level === 'error')).toEqual([]);
    const p = r.patches[0]!;
    expect(p.fixes).toHaveLength(1500);
    expect('any' in p.applicability && p.applicability.any).toHaveLength(2);
  });

  it('warns when no security suite was imported', () => {
    expect(build([bookworm, sample]).problems).toEqual([expect.objectContaining({ level: 'warning', message: expect.stringMatching(/no security suite/) })]);
    expect(problems).toEqual([]);
  });

  describe('decided by core on a device', () => {
    const os: OsFacts = { family: 'linux', distribution: 'debian', version: '12', versionCodename: 'bookworm', machine: 'x86_64', packageArch: 'amd64' };
    const pkg = (name: string, version: string, arch = 'amd64'): InstalledPackage => ({ manager: 'dpkg', name, version, arch });
    const decide = (installed: InstalledPackage[]) => decideStates(new CatalogIndex(patches), makeEvalFacts({ os, managers: ['dpkg'], packages: installed }), { covered: true });

    it('needs the newest version; the older one is superseded by it', () => {
      const d = decide([pkg('libssl3', '3.0.9-1'), pkg('libfoo1', '1.2-3+b1'), pkg('kitty-terminfo', '0.26.5-5+deb12u1', 'all')]);
      expect(d.get('debian/bookworm/openssl-3.0.15-1~deb12u1')?.state).toBe('needed');
      expect(d.get('debian/bookworm/openssl-3.0.11-1~deb12u2')).toEqual({ state: 'superseded', by: 'debian/bookworm/openssl-3.0.15-1~deb12u1' });
      // the binNMU'd library is at its own fixed version of 1.2-3: that patch is installed
      expect(d.get('debian/bookworm/foo-1.2-3')?.state).toBe('installed');
      expect(d.get('debian/bookworm/foo-1.2-3+deb12u1')?.state).toBe('needed');
      expect(d.get('debian/bookworm/kitty-0.26.5-5+deb12u1')?.state).toBe('installed');
      expect(d.get('debian/bookworm/shadow-1_4.13+dfsg1-1+deb12u1')?.state).toBe('not_applicable');
    });

    it('tests arch-specific binaries on their architecture only', () => {
      const d = decide([pkg('libssl3', '3.0.15-1~deb12u1'), pkg('libssl3', '3.0.11-1~deb12u2', 'i386')]);
      expect(d.get('debian/bookworm/openssl-3.0.15-1~deb12u1')?.state).toBe('installed');
    });

    it('compares epochs', () => {
      const d = decide([pkg('passwd', '1:4.13+dfsg1-1'), pkg('login', '1:4.13+dfsg1-1+deb12u1')]);
      expect(d.get('debian/bookworm/shadow-1_4.13+dfsg1-1+deb12u1')?.state).toBe('needed');
      const e = decide([pkg('passwd', '1:4.13+dfsg1-1+deb12u1'), pkg('login', '1:4.13+dfsg1-1+deb12u1')]);
      expect(e.get('debian/bookworm/shadow-1_4.13+dfsg1-1+deb12u1')?.state).toBe('installed');
    });
  });
});
