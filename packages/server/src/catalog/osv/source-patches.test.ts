/**
 * The patches of source-level feeds decided by core's engine on package facts as dpkg records
 * them: binaries named after their source carry no Source field, binNMUs and binaries with
 * versions of their own carry `Source: name (version)`.
 */
import { describe, expect, it } from 'vitest';
import { CatalogIndex, decideStates, evaluateRule, makeEvalFacts, traceRule, type OsFacts, type PackageFact } from '@patchwarden/core';
import { changedKeys } from '../../compliance/engine.js';
import { FeedProblems } from './problems.js';
import { affectedRule, compareIds, SourcePatchBuilder, type FixInput } from './source-patches.js';

const bookworm: OsFacts = { family: 'linux', distribution: 'debian', version: '12', versionCodename: 'bookworm', machine: 'x86_64', packageArch: 'amd64' };
const ref = { distribution: 'debian', release: 'bookworm' };

function pkg(name: string, version: string, source?: string, sourceVersion?: string): PackageFact {
  return { manager: 'dpkg', name, version, arch: 'amd64', state: 'installed', ...(source ? { source } : {}), ...(sourceVersion ? { sourceVersion } : {}) };
}

function fix(source: string, fixed: string, cve: string, extra: Partial<FixInput> = {}): FixInput {
  return { ...ref, source, fixed, introduced: '0', cves: [cve], advisories: [], severity: 'high', ...extra };
}

function build(...fixes: FixInput[]) {
  const problems = new FeedProblems();
  const b = new SourcePatchBuilder('osv', 'Debian', problems);
  for (const f of fixes) b.addFix(f);
  const out = b.build();
  return { ...out, problems: problems.list, index: new CatalogIndex(out.patches) };
}

function decide(index: CatalogIndex, packages: PackageFact[], os: OsFacts = bookworm) {
  const facts = makeEvalFacts({ os, managers: ['dpkg'], packages });
  return Object.fromEntries([...decideStates(index, facts, { covered: true })].map(([id, d]) => [id, d.state]));
}

describe('source patches decided on dpkg facts', () => {
  const { patches, index, problems } = build(
    fix('openssl', '3.0.11-1~deb12u2', 'CVE-2023-5363'),
    fix('openssl', '3.0.14-1~deb12u2', 'CVE-2024-6119'),
    fix('libssh2', '1.10.0-3', 'CVE-2099-0001'),
    fix('libssh2', '1.10.0-3+deb12u1', 'CVE-2099-0002'),
    fix('util-linux', '2.38.1-5+deb12u1', 'CVE-2024-28085'),
    fix('linux', '6.1.119-1', 'CVE-2024-0001'),
  );
  const id = (s: string) => `osv/debian/bookworm/${s}`;

  it('builds valid patches', () => {
    expect(problems).toEqual([]);
    expect(patches.map((p) => p.id)).toEqual([
      id('libssh2-1.10.0-3'),
      id('libssh2-1.10.0-3+deb12u1'),
      id('linux-6.1.119-1'),
      id('openssl-3.0.11-1~deb12u2'),
      id('openssl-3.0.14-1~deb12u2'),
      id('util-linux-2.38.1-5+deb12u1'),
    ]);
    expect(patches.find((p) => p.id === id('linux-6.1.119-1'))!.restart).toEqual({ reboot: 'required', kernel: true });
  });

  it('a binary without a Source field is its own source', () => {
    expect(decide(index, [pkg('openssl', '3.0.11-1~deb12u1')])).toMatchObject({ [id('openssl-3.0.11-1~deb12u2')]: 'superseded', [id('openssl-3.0.14-1~deb12u2')]: 'needed' });
    expect(decide(index, [pkg('openssl', '3.0.14-1~deb12u2')])).toMatchObject({ [id('openssl-3.0.11-1~deb12u2')]: 'installed', [id('openssl-3.0.14-1~deb12u2')]: 'installed' });
  });

  it('one binary of the source left behind keeps the patch needed', () => {
    const partial = [pkg('openssl', '3.0.14-1~deb12u2'), pkg('libssl3', '3.0.11-1~deb12u1', 'openssl')];
    expect(decide(index, partial)[id('openssl-3.0.14-1~deb12u2')]).toBe('needed');
    const facts = makeEvalFacts({ os: bookworm, managers: ['dpkg'], packages: partial });
    const p = patches.find((x) => x.id === id('openssl-3.0.14-1~deb12u2'))!;
    expect(traceRule(p.installed, facts)).toMatchObject({
      rule: 'not',
      result: 'false',
      children: [{ rule: 'dpkg source openssl < 3.0.14-1~deb12u2', result: 'true', detail: 'libssl3 3.0.11-1~deb12u1 (amd64, source openssl 3.0.11-1~deb12u1) < 3.0.14-1~deb12u2' }],
    });
  });

  it('a binNMU is compared by its source version', () => {
    // libssh2-1 1.10.0-3+b1, Source: libssh2 (1.10.0-3): the fix 1.10.0-3 is there, 1.10.0-3+deb12u1 is not
    const states = decide(index, [pkg('libssh2-1', '1.10.0-3+b1', 'libssh2', '1.10.0-3')]);
    expect(states[id('libssh2-1.10.0-3')]).toBe('installed');
    expect(states[id('libssh2-1.10.0-3+deb12u1')]).toBe('needed');
  });

  it('a binary with a version of its own is compared by its source version', () => {
    // bsdutils 1:2.38.1-5 of util-linux 2.38.1-5: its epoch puts the binary above every fix
    const old = [pkg('bsdutils', '1:2.38.1-5', 'util-linux', '2.38.1-5'), pkg('libuuid1', '2.38.1-5+deb12u1', 'util-linux')];
    expect(decide(index, old)[id('util-linux-2.38.1-5+deb12u1')]).toBe('needed');
    const fixed = [pkg('bsdutils', '1:2.38.1-5+deb12u1', 'util-linux', '2.38.1-5+deb12u1'), pkg('libuuid1', '2.38.1-5+deb12u1', 'util-linux')];
    expect(decide(index, fixed)[id('util-linux-2.38.1-5+deb12u1')]).toBe('installed');
  });

  it('applies to no device without a binary of the source, nor to another release', () => {
    expect(Object.values(decide(index, [pkg('bash', '5.2.15-2+b8', 'bash', '5.2.15-2')])).every((s) => s === 'not_applicable')).toBe(true);
    const bullseye = { ...bookworm, version: '11', versionCodename: 'bullseye' };
    expect(decide(index, [pkg('openssl', '1.1.1w-0+deb11u1')], bullseye)[id('openssl-3.0.14-1~deb12u2')]).toBe('not_applicable');
  });

  it('is re-evaluated when a binary of the source changes, whatever its own name', () => {
    const before = [pkg('libssl3', '3.0.11-1~deb12u1', 'openssl')];
    const after = [pkg('libssl3', '3.0.14-1~deb12u2', 'openssl')];
    const affected = index.affectedBy(changedKeys(before, after));
    expect(affected).toContain(id('openssl-3.0.14-1~deb12u2'));
    expect(affected).toContain(id('openssl-3.0.11-1~deb12u2'));
    expect(affected).not.toContain(id('libssh2-1.10.0-3'));
  });

  it('a fix from a later version on applies only to devices that have that version', () => {
    const late = build(fix('foo', '2.4-1', 'CVE-2099-0003', { introduced: '2.0-1' }));
    const p = late.patches[0]!.id;
    expect(decide(late.index, [pkg('foo', '1.9-1')])[p]).toBe('not_applicable');
    expect(decide(late.index, [pkg('foo', '2.1-1')])[p]).toBe('needed');
    expect(decide(late.index, [pkg('foo', '2.4-1')])[p]).toBe('installed');
  });
});

describe('open vulnerabilities', () => {
  const facts = (packages: PackageFact[]) => makeEvalFacts({ os: bookworm, managers: ['dpkg'], packages });
  const binNmu = facts([pkg('bash', '5.2.15-2+b8', 'bash', '5.2.15-2')]);

  it('last_affected is compared with the source version: a binNMU above it is still affected', () => {
    const rule = affectedRule('bash', { introduced: '0', lastAffected: '5.2.15-2' });
    expect(evaluateRule(rule, binNmu).result).toBe('true');
    expect(evaluateRule(rule, facts([pkg('bash', '5.2.15-3')])).result).toBe('false');
  });

  it('without bounds any binary of the source is affected; without a dpkg inventory the answer is unknown', () => {
    const rule = affectedRule('bash', {});
    expect(evaluateRule(rule, binNmu).result).toBe('true');
    expect(evaluateRule(rule, facts([pkg('dash', '0.5.12-2')])).result).toBe('false');
    expect(evaluateRule(rule, makeEvalFacts({ os: bookworm, managers: [], packages: [] }))).toEqual({ result: 'unknown', missing: ['packages:dpkg'] });
  });

  it('explicit versions are matched exactly', () => {
    const rule = affectedRule('bash', { versions: ['5.2.15-1', '5.2.15-2'] });
    expect(evaluateRule(rule, binNmu).result).toBe('true');
    expect(evaluateRule(rule, facts([pkg('bash', '5.2.15-2+deb12u1')])).result).toBe('false');
  });
});

describe('ids', () => {
  it('sort CVEs by year and number, then other ids', () => {
    expect(['DSA-5532-1', 'CVE-2023-38545', 'CVE-2023-5363', 'CVE-2021-44228', 'DEBIAN-CVE-2023-5363'].sort(compareIds)).toEqual([
      'CVE-2021-44228',
      'CVE-2023-5363',
      'CVE-2023-38545',
      'DEBIAN-CVE-2023-5363',
      'DSA-5532-1',
    ]);
  });

  it('two versions that differ only by case map to one id: the second is reported, not silently merged', () => {
    const { patches, problems } = build(fix('foo', '1.0~RC1-1', 'CVE-2099-0004'), fix('foo', '1.0~rc1-1', 'CVE-2099-0005'));
    expect(patches).toHaveLength(1);
    expect(problems).toEqual([
      { level: 'error', file: 'osv:debian/bookworm', package: 'foo', reason: 'version 1.0~rc1-1 maps to the id osv/debian/bookworm/foo-1.0~rc1-1 of another version; skipped' },
    ]);
  });

  it('more CVEs than a manifest holds are cut with a warning', () => {
    const many = Array.from({ length: 1001 }, (_, i) => `CVE-2024-${String(10000 + i)}`);
    const { patches, problems } = build({ ...fix('linux', '6.1.119-1', 'CVE-2024-0001'), cves: many });
    expect(patches[0]!.cves).toHaveLength(1000);
    expect(problems).toEqual([expect.objectContaining({ level: 'warning', reason: expect.stringContaining('closes 1001 CVEs') })]);
  });
});
