import { describe, expect, it } from 'vitest';
import { CatalogIndex, decideStates, type EvalPatch } from './compliance.js';
import { makeEvalFacts, type InstalledPackage } from './rules/facts.js';
import { evaluateRule, traceRule, ruleFactKeys } from './rules/evaluate.js';
import { parseRule, type Rule } from './rules/schema.js';
import type { OsFacts } from './facts.js';

const bookworm: OsFacts = { family: 'linux', distribution: 'debian', version: '12', versionCodename: 'bookworm', machine: 'x86_64', packageArch: 'amd64' };
const pkg = (name: string, version: string, arch = 'amd64', source?: string, sourceVersion?: string): InstalledPackage => ({
  manager: 'dpkg', name, version, arch, ...(source ? { source } : {}), ...(sourceVersion ? { sourceVersion } : {}),
});
const facts = (packages: InstalledPackage[], over: Partial<Parameters<typeof makeEvalFacts>[0]> = {}) =>
  makeEvalFacts({ os: bookworm, managers: ['dpkg'], packages, kernelRelease: '6.1.0-18-amd64', ...over });
const rule = (r: unknown): Rule => {
  const p = parseRule(r);
  if (!p.ok) throw new Error(p.reason);
  return p.rule;
};
const debPatch = (id: string, name: string, fixed: string, extra: Partial<EvalPatch> = {}): EvalPatch => ({
  id,
  platforms: [{ family: 'linux', distribution: 'debian', release: 'bookworm', arch: ['amd64'] }],
  applicability: rule({ package: { manager: 'dpkg', name, installed: true } }),
  installed: rule({ package: { manager: 'dpkg', name, version: { ge: fixed } } }),
  requires: [],
  supersedes: [],
  conflicts: [],
  restart: { reboot: 'never', kernel: false },
  ...extra,
});

describe('rules', () => {
  it('evaluates to true, false or unknown, with the facts it lacks', () => {
    const f = facts([pkg('openssl', '3.0.11-1~deb12u2'), pkg('libssl3', '3.0.11-1~deb12u2', 'amd64', 'openssl')]);
    expect(evaluateRule(rule({ package: { manager: 'dpkg', name: 'openssl', version: { lt: '3.0.15-1~deb12u1' } } }), f).result).toBe('true');
    expect(evaluateRule(rule({ package: { manager: 'dpkg', name: 'openssl', absent: true } }), f).result).toBe('false');
    expect(evaluateRule(rule({ package: { manager: 'dpkg', name: 'openssl', match: 'source', version: { lt: '3.0.15-1~deb12u1' } } }), f).result).toBe('true');
    expect(evaluateRule(rule({ package: { manager: 'rpm', name: 'openssl', installed: true } }), f)).toEqual({ result: 'unknown', missing: ['packages:rpm'] });
    expect(evaluateRule(rule({ file: { path: '/etc/ssl/openssl.cnf', exists: true } }), f)).toEqual({ result: 'unknown', missing: ['file:/etc/ssl/openssl.cnf'] });
    // a decisive branch decides, whatever the others lack
    expect(evaluateRule(rule({ any: [{ file: { path: '/x', exists: true } }, { os: { distribution: 'debian' } }] }), f)).toEqual({ result: 'true', missing: [] });
    expect(evaluateRule(rule({ all: [{ file: { path: '/x', exists: true } }, { os: { distribution: 'ubuntu' } }] }), f)).toEqual({ result: 'false', missing: [] });
    expect(evaluateRule(rule({ not: { hotfix: 'KB5034441' } }), f)).toEqual({ result: 'unknown', missing: ['hotfixes'] });
  });

  it('explains which leaves decided, with the values compared', () => {
    const f = facts([pkg('openssl', '3.0.11-1~deb12u2')]);
    const t = traceRule(rule({ all: [{ os: { codename: 'bookworm' } }, { package: { manager: 'dpkg', name: 'openssl', version: { lt: '3.0.15-1~deb12u1' } } }] }), f);
    expect(t.result).toBe('true');
    expect(t.children![1]).toEqual({ rule: 'dpkg openssl < 3.0.15-1~deb12u1', result: 'true', detail: 'openssl 3.0.11-1~deb12u2 (amd64) < 3.0.15-1~deb12u1' });
  });

  it('refuses malformed and hostile rules with the reason', () => {
    const bad: [unknown, RegExp][] = [
      [{ package: { manager: 'dpkg', name: 'x', version: { lt: '1;rm' } } }, /invalid deb version/],
      [{ package: { manager: 'dpkg', name: 'x', installed: true, absent: true } }, /exactly one/],
      [{ package: { manager: 'dpkg', name: 'x', version: { lt: '1', gt: '0' } } }, /exactly one/],
      [{ all: [] }, /rule.all: a list of 1 to 1024 rules/],
      [{ nope: 1 }, /./],
      [JSON.parse('{"all":[{"os":{"family":"linux"}}],"__proto__":{}}'), /./],
      [Array.from({ length: 40 }).reduce((r) => ({ not: r }), { os: { family: 'linux' } }), /nests deeper/],
      [{ hotfix: 'rm -rf' }, /KB/],
      [{ file: { path: '/x', mtime: { lt: 'yesterday' } } }, /./],
    ];
    for (const [r, why] of bad) {
      const p = parseRule(r);
      expect(p.ok, JSON.stringify(r).slice(0, 80)).toBe(false);
      if (!p.ok) expect(p.reason).toMatch(why);
    }
  });

  it('lists the fact keys a rule reads, including under not and absent', () => {
    const keys = ruleFactKeys(rule({ all: [{ not: { package: { manager: 'dpkg', name: 'a', installed: true } } }, { package: { manager: 'dpkg', name: 'b', absent: true } }, { os: { family: 'linux' } }] }));
    expect([...keys].sort()).toEqual(['os', 'package:dpkg:a', 'package:dpkg:b']);
  });
});

describe('patch states, decided in order', () => {
  const chain = [
    debPatch('debian/bookworm/openssl-3.0.11', 'openssl', '3.0.11-1~deb12u2'),
    debPatch('debian/bookworm/openssl-3.0.13', 'openssl', '3.0.13-1~deb12u1', { supersedes: ['debian/bookworm/openssl-3.0.11'] }),
    debPatch('debian/bookworm/openssl-3.0.15', 'openssl', '3.0.15-1~deb12u1', { supersedes: ['debian/bookworm/openssl-3.0.13'] }),
  ];
  const index = new CatalogIndex(chain);
  const states = (f: ReturnType<typeof facts>, covered = true) =>
    Object.fromEntries([...decideStates(index, f, { covered })].map(([id, d]) => [id.split('-').pop(), d.state]));

  it('needs only the newest of a supersedes chain', () => {
    expect(states(facts([pkg('openssl', '3.0.11-1~deb12u2')]))).toEqual({ '3.0.11': 'installed', '3.0.13': 'superseded', '3.0.15': 'needed' });
    expect(states(facts([pkg('openssl', '3.0.15-1~deb12u1')]))).toEqual({ '3.0.11': 'installed', '3.0.13': 'installed', '3.0.15': 'installed' });
    expect(states(facts([]))).toEqual({ '3.0.11': 'not_applicable', '3.0.13': 'not_applicable', '3.0.15': 'not_applicable' });
  });

  it('is not_assessed without a covering feed, unknown without facts, not_applicable on another release', () => {
    expect(Object.values(states(facts([pkg('openssl', '1')]), false))).toEqual(['not_assessed', 'not_assessed', 'not_assessed']);
    expect(Object.values(states(facts([pkg('openssl', '1')], { managers: [] })))).toEqual(['unknown', 'unknown', 'unknown']);
    const bullseye = facts([pkg('openssl', '1')], { os: { ...bookworm, version: '11', versionCodename: 'bullseye' } });
    expect(Object.values(states(bullseye))).toEqual(['not_applicable', 'not_applicable', 'not_applicable']);
  });

  it('is installed_pending_restart for kernel patches while an older kernel runs', () => {
    const k = new CatalogIndex([
      debPatch('debian/bookworm/linux-6.1.119', 'linux-image-6.1.0-28-amd64', '6.1.119-1', { restart: { reboot: 'required', kernel: true } }),
    ]);
    const running = facts([pkg('linux-image-6.1.0-18-amd64', '6.1.76-1'), pkg('linux-image-6.1.0-28-amd64', '6.1.119-1')]);
    expect(decideStates(k, running, { covered: true }).get('debian/bookworm/linux-6.1.119')!.state).toBe('installed_pending_restart');
    const rebooted = facts([pkg('linux-image-6.1.0-18-amd64', '6.1.76-1'), pkg('linux-image-6.1.0-28-amd64', '6.1.119-1')], { kernelRelease: '6.1.0-28-amd64' });
    expect(decideStates(k, rebooted, { covered: true }).get('debian/bookworm/linux-6.1.119')!.state).toBe('installed');
    const marker = facts([pkg('linux-image-6.1.0-28-amd64', '6.1.119-1')], { kernelRelease: '6.1.0-28-amd64', rebootRequired: true });
    expect(decideStates(k, marker, { covered: true }).get('debian/bookworm/linux-6.1.119')!.state).toBe('installed_pending_restart');
  });

  it('is blocked by a missing prerequisite or an installed conflict, and says which', () => {
    const idx = new CatalogIndex([
      debPatch('custom/base', 'base-tool', '2.0'),
      debPatch('custom/addon', 'addon', '2.0', { requires: ['custom/base'] }),
      debPatch('custom/other', 'other', '1.0', { conflicts: ['custom/addon-old'] }),
      debPatch('custom/addon-old', 'addon', '1.0'),
    ]);
    const d = decideStates(idx, facts([pkg('addon', '1.0'), pkg('other', '0.9')]), { covered: true });
    expect(d.get('custom/addon')).toMatchObject({ state: 'blocked', by: 'custom/base' });
    expect(d.get('custom/other')).toMatchObject({ state: 'blocked', by: 'custom/addon-old' });
    const ok = decideStates(idx, facts([pkg('addon', '1.0'), pkg('base-tool', '1.0')]), { covered: true });
    expect(ok.get('custom/addon')!.state).toBe('needed');
  });

  it('re-evaluates only what a change touches, OS-only rules always', () => {
    const osOnly: EvalPatch = { ...debPatch('custom/os-only', 'x', '1'), applicability: rule({ os: { codename: 'bookworm' } }), installed: rule({ os: { version: '13' } }) };
    const absent: EvalPatch = { ...debPatch('custom/needs-absent', 'x', '1'), applicability: rule({ package: { manager: 'dpkg', name: 'telnetd', absent: true } }) };
    const idx = new CatalogIndex([...chain, osOnly, absent]);
    expect([...idx.affectedBy(['package:dpkg:telnetd'])].sort()).toEqual(['custom/needs-absent', 'custom/os-only']);
    // a change to openssl touches the chain (and what the chain supersedes), plus OS-only rules
    expect([...idx.affectedBy(['package:dpkg:openssl'])].sort()).toEqual([...chain.map((p) => p.id), 'custom/os-only'].sort());
    const counter = { rules: 0 };
    decideStates(idx, facts([pkg('openssl', '3.0.15-1~deb12u1')]), { covered: true, counter }, idx.affectedBy(['package:dpkg:telnetd']));
    expect(counter.rules).toBe(4); // two patches, applicability and installed each
  });
});
