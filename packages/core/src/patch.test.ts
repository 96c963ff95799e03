import { MAX_ACTIONS } from './actions.js';
import { describe, expect, it } from 'vitest';
import { checkManifest, PatchManifest } from './patch.js';

const H1 = '1'.repeat(64);
const H2 = '2'.repeat(64);

/** A manifest as the apt importer writes it: none of the action or payload fields. */
const aptManifest = {
  id: 'debian/openssl-3.0.15-1~deb12u1',
  revision: 1,
  title: 'openssl 3.0.15-1~deb12u1 (bookworm-security)',
  vendor: 'Debian',
  product: 'openssl',
  severity: 'unknown',
  platforms: [{ family: 'linux', distribution: 'debian', release: 'bookworm', arch: ['amd64'] }],
  applicability: { package: { manager: 'dpkg', name: 'openssl', arch: 'amd64', installed: true } },
  installed: {
    any: [
      { package: { manager: 'dpkg', name: 'openssl', arch: 'amd64', absent: true } },
      { package: { manager: 'dpkg', name: 'openssl', arch: 'amd64', version: { ge: '3.0.15-1~deb12u1' } } },
    ],
  },
  supersedes: ['debian/openssl-3.0.14-1~deb12u2'],
  restart: { reboot: 'never', kernel: false },
  fixes: [{ manager: 'dpkg', name: 'openssl', arch: 'amd64', version: '3.0.15-1~deb12u1' }],
};

const custom = (extra: Record<string, unknown>) => ({ ...aptManifest, id: 'custom/acme-hotfix-12', ...extra });

function issues(input: unknown): string[] {
  const r = PatchManifest.safeParse(input);
  expect(r.success).toBe(false);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

describe('PatchManifest', () => {
  it('still takes an apt-imported manifest unchanged, with empty payload and actions', () => {
    const m = PatchManifest.parse(aptManifest);
    expect(m).toEqual({ ...aptManifest, cves: [], advisories: [], requires: [], conflicts: [], payload: [], install: [], undo: [] });
    // parsing what was parsed changes nothing (the server stores and re-reads manifests)
    expect(PatchManifest.parse(m)).toEqual(m);
  });

  it('takes each action kind with the payload it reads', () => {
    const m = PatchManifest.parse(
      custom({
        payload: [
          { path: 'debs/acme_1.2-1_amd64.deb', size: 123_456, sha256: H1 },
          { path: 'conf/acme.conf', size: 0, sha256: H2 },
          { path: 'scripts/restart.sh', size: 4 * 1024 ** 3, sha256: H1 },
        ],
        install: [
          { type: 'package', manager: 'apt', op: 'install', name: 'openssl', version: '3.0.15-1~deb12u1' },
          { type: 'package', manager: 'dpkg', op: 'install', name: 'acme', file: 'debs/acme_1.2-1_amd64.deb' },
          { type: 'file', op: 'replace', path: '/etc/acme/acme.conf', source: 'conf/acme.conf', sha256: H2, priorSha256: H1, mode: '0640' },
          { type: 'script', interpreter: 'bash', source: 'scripts/restart.sh', timeoutSeconds: 120 },
        ],
        undo: [{ type: 'package', manager: 'dpkg', op: 'remove', name: 'acme' }],
        restart: { reboot: 'possible', kernel: false },
      }),
    );
    expect(m.install.map((a) => a.type)).toEqual(['package', 'package', 'file', 'script']);
    expect(m.install[3]).toMatchObject({ expectExit: [0] });
    expect(m.undo).toHaveLength(1);
  });

  it('refuses an action that reads a file the payload does not list, in install and undo', () => {
    expect(
      issues(
        custom({
          payload: [{ path: 'a.sh', size: 1, sha256: H1 }],
          install: [{ type: 'script', interpreter: 'sh', source: 'b.sh', timeoutSeconds: 5 }],
          undo: [{ type: 'package', manager: 'rpm', op: 'install', name: 'acme', file: 'acme.rpm' }],
        }),
      ),
    ).toEqual([
      "install.0.source: install action 0 reads 'b.sh', which the payload does not list",
      "undo.0.file: undo action 0 reads 'acme.rpm', which the payload does not list",
    ]);
  });

  it('refuses a placed file whose hash is not its source', () => {
    expect(
      issues(
        custom({
          payload: [{ path: 'x.conf', size: 1, sha256: H1 }],
          install: [{ type: 'file', op: 'place', path: '/etc/x.conf', source: 'x.conf', sha256: H2 }],
        }),
      ),
    ).toEqual([`install.0.sha256: install action 0 expects sha256 ${H2}, but its source 'x.conf' has ${H1}`]);
  });

  it('refuses duplicate payload paths, also when they differ only in case', () => {
    expect(issues(custom({ payload: [{ path: 'a.msi', size: 1, sha256: H1 }, { path: 'a.msi', size: 2, sha256: H2 }] }))).toEqual([
      "payload.1.path: payload path 'a.msi' is listed twice",
    ]);
    expect(issues(custom({ payload: [{ path: 'Setup.msi', size: 1, sha256: H1 }, { path: 'setup.msi', size: 1, sha256: H1 }] }))).toEqual([
      "payload.1.path: payload paths 'Setup.msi' and 'setup.msi' differ only in case",
    ]);
    expect(issues(custom({ payload: [{ path: 'a', size: 1, sha256: H1 }, { path: 'a/b', size: 1, sha256: H1 }] }))).toEqual([
      "payload: payload path 'a' is a file and also the directory of 'a/b'",
    ]);
  });

  it('refuses unsafe payload paths, sizes and hashes', () => {
    expect(issues(custom({ payload: [{ path: '../x.deb', size: 1, sha256: H1 }] }))[0]).toMatch(/^payload\.0\.path: .*contains '\.\.'/);
    expect(issues(custom({ payload: [{ path: '/etc/passwd', size: 1, sha256: H1 }] }))[0]).toMatch(/^payload\.0\.path: .*is absolute/);
    issues(custom({ payload: [{ path: 'x', size: -1, sha256: H1 }] }));
    issues(custom({ payload: [{ path: 'x', size: 4 * 1024 ** 3 + 1, sha256: H1 }] }));
    issues(custom({ payload: [{ path: 'x', size: 1.5, sha256: H1 }] }));
    issues(custom({ payload: [{ path: 'x', size: 1, sha256: H1.toUpperCase().replace(/1/g, 'A') }] }));
  });

  it('refuses more than MAX_ACTIONS actions and unknown action types', () => {
    const a = { type: 'package', manager: 'apt', op: 'upgrade', name: 'openssl' };
    expect(PatchManifest.safeParse(custom({ install: Array(MAX_ACTIONS).fill(a) })).success).toBe(true);
    issues(custom({ install: Array(MAX_ACTIONS + 1).fill(a) }));
    issues(custom({ undo: [{ type: 'reboot' }] }));
  });

  it('checkManifest finds nothing in a manifest without payload or actions', () => {
    expect(checkManifest({ payload: [], install: [], undo: [] })).toEqual([]);
  });
});
