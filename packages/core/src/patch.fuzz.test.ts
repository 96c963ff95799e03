/**
 * Fuzzing the patch manifest (patch.ts with its actions, actions.ts) and the rule language
 * (`parseRule`): structure-aware mutations of valid manifests and rules. The contracts:
 * parseManifest returns a manifest or throws E_VALIDATION; parseRule returns ok or a reason,
 * never throws; what they accept can be evaluated, described and put in canonical form.
 */
import { describe, expect, it } from 'vitest';
import { parseManifest } from './bundle.js';
import { canonicalJson } from './canonical.js';
import { describeRule, evaluateRule, ruleFactKeys, traceRule } from './rules/evaluate.js';
import { makeEvalFacts } from './rules/facts.js';
import { parseRule } from './rules/schema.js';
import { formatFuzzStats, fuzz, fuzzSettings, mutateJson, passedShare } from './testing/fuzz.js';
import { undoLimits } from './undo.js';

const { seed: SEED, scale } = fuzzSettings(process.env, 0x9a7c4);
const now = () => performance.now();
const H = (c: string) => c.repeat(64);

const MANIFESTS: unknown[] = [
  {
    id: 'custom/acme-hotfix-12',
    revision: 1,
    title: 'Acme hotfix 12',
    severity: 'high',
    platforms: [{ family: 'linux' }],
    applicability: { os: { family: 'linux' } },
    installed: { file: { path: '/opt/acme/state', exists: true } },
    payload: [{ path: 'scripts/install.sh', size: 40, sha256: H('a') }],
    install: [{ type: 'script', interpreter: 'sh', source: 'scripts/install.sh', timeoutSeconds: 60, expectExit: [0] }],
  },
  {
    id: 'debian/bookworm/openssl-3.0.15-1~deb12u1',
    revision: 2,
    title: 'openssl 3.0.15-1~deb12u1 (DSA-5764-1, CVE-2024-6119)',
    vendor: 'Debian',
    severity: 'critical',
    cves: ['CVE-2024-6119'],
    advisories: ['DSA-5764-1'],
    releaseDate: '2024-09-03',
    platforms: [{ family: 'linux', distribution: 'debian', release: 'bookworm', arch: ['amd64'] }],
    applicability: { all: [{ os: { distribution: 'debian', codename: 'bookworm' } }, { package: { manager: 'dpkg', name: 'openssl', match: 'source', installed: true } }] },
    installed: { not: { package: { manager: 'dpkg', name: 'openssl', match: 'source', version: { lt: '3.0.15-1~deb12u1' } } } },
    supersedes: ['debian/bookworm/openssl-3.0.14-1~deb12u2'],
    restart: { reboot: 'possible', kernel: false },
    fixes: [{ manager: 'dpkg', name: 'libssl3', arch: 'amd64', version: '3.0.15-1~deb12u1' }],
    install: [
      {
        type: 'package',
        manager: 'apt',
        op: 'upgrade',
        name: 'libssl3',
        version: '3.0.15-1~deb12u1',
        arch: 'amd64',
        fetch: { repository: 'http://deb.debian.org/debian-security', path: 'pool/updates/main/o/openssl/libssl3_3.0.15-1~deb12u1_amd64.deb', size: 2025012, sha256: H('b') },
      },
    ],
  },
  {
    id: 'custom/win-config-7',
    revision: 7,
    title: 'Windows config fix',
    severity: 'low',
    platforms: [{ family: 'windows' }],
    applicability: { any: [{ registry: { key: 'HKLM\\SOFTWARE\\Acme', value: 'Version', version: { lt: '10.0.1' } } }, { hotfix: 'KB5031234' }] },
    installed: { file: { path: 'C:\\Program Files\\Acme\\acme.exe', version: { ge: '10.0.1.0' }, field: 'product' } },
    requires: ['custom/win-base-1'],
    payload: [
      { path: 'files/acme.conf', size: 10, sha256: H('c') },
      { path: 'msi/acme.msi', size: 1000, sha256: H('d') },
    ],
    install: [
      { type: 'file', op: 'replace', path: 'C:\\ProgramData\\Acme\\acme.conf', source: 'files/acme.conf', sha256: H('c'), priorSha256: H('e') },
      { type: 'package', manager: 'msiexec', op: 'install', name: 'Acme', version: '10.0.1', file: 'msi/acme.msi' },
    ],
    undo: [{ type: 'file', op: 'replace', path: 'C:\\ProgramData\\Acme\\acme.conf', source: 'files/acme.conf', sha256: H('c'), priorSha256: H('c') }],
  },
];

const RULES: unknown[] = MANIFESTS.flatMap((m) => [(m as { applicability: unknown }).applicability, (m as { installed: unknown }).installed]).concat([
  { file: { path: '/etc/ssl/openssl.cnf', mtime: { lt: '2024-01-01T00:00:00Z' } } },
  { file: { path: '/usr/bin/x', sha256: H('f') } },
  { package: { manager: 'rpm', name: 'kernel', version: { ge: '5.14.0-362.el9' } } },
  { package: { manager: 'apk', name: 'busybox', absent: true } },
]);

const FACTS = makeEvalFacts({
  os: { family: 'linux', distribution: 'debian', versionCodename: 'bookworm', machine: 'x86_64' },
  managers: ['dpkg', 'msi'],
  packages: [{ manager: 'dpkg', name: 'libssl3', version: '3.0.11-1~deb12u2', arch: 'amd64', source: 'openssl', state: 'installed' }],
  files: new Map([['/opt/acme/state', { exists: true, sha256: H('f'), mtime: '2023-05-01T00:00:00.000Z', fileVersion: '10.0.0.1' }]]),
  registry: new Map([['HKLM\\SOFTWARE\\Acme\\Version', { exists: true, data: '10.0.0' }]]),
  hotfixes: new Set(['KB5031234']),
});

describe('patch manifests under fuzzing', () => {
  it(`parseManifest accepts a manifest or throws E_VALIDATION (seed ${SEED})`, async () => {
    const stats = await fuzz({
      label: 'parseManifest',
      corpus: MANIFESTS,
      seed: SEED,
      iterations: 4000 * scale,
      budgetMs: 1500 * scale,
      now,
      mutate: (v, rng, corpus) => mutateJson(v, rng, corpus, { maxStack: 2 }),
      codes: ['E_VALIDATION'],
      run: (v, reached) => {
        const m = parseManifest(v);
        reached();
        canonicalJson(m);
        undoLimits(m);
        for (const r of [m.applicability, m.installed]) evaluateRule(r, FACTS);
      },
    });
    console.log(formatFuzzStats(stats));
    expect(passedShare(stats)).toBeGreaterThanOrEqual(5);
  });

  it(`parseRule returns a rule or a reason, and what it accepts evaluates (seed ${SEED})`, async () => {
    const stats = await fuzz({
      label: 'parseRule',
      corpus: RULES,
      seed: SEED,
      iterations: 6000 * scale,
      budgetMs: 1500 * scale,
      now,
      mutate: (v, rng, corpus) => mutateJson(v, rng, corpus, { maxStack: 3 }),
      codes: [],
      run: (v, reached) => {
        const r = parseRule(v);
        if (!r.ok) {
          if (typeof r.reason !== 'string' || !r.reason.startsWith('rule')) throw new Error(`a reason without its path: ${r.reason}`);
          return;
        }
        reached();
        evaluateRule(r.rule, FACTS);
        traceRule(r.rule, FACTS);
        describeRule(r.rule);
        ruleFactKeys(r.rule);
      },
    });
    console.log(formatFuzzStats(stats));
    expect(passedShare(stats)).toBeGreaterThanOrEqual(10);
  });

  it('refuses a rule nested far deeper than its limit without exhausting the stack', () => {
    let deep: unknown = { os: { family: 'linux' } };
    for (let i = 0; i < 100_000; i++) deep = { not: deep };
    expect(parseRule(deep)).toMatchObject({ ok: false });
    expect(() => parseManifest({ ...(MANIFESTS[0] as object), installed: deep })).toThrow(expect.objectContaining({ code: 'E_VALIDATION' }));
  });
});
