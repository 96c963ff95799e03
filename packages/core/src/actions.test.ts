import { describe, expect, it } from 'vitest';
import { actionsNeedAuthor, ActionSchema, devicePathProblem, payloadPathProblem, payloadRefs, type Action } from './actions.js';

const H1 = '1'.repeat(64);
const H2 = '2'.repeat(64);

/** The messages of a refused action (fails the test when it is accepted). */
function refusal(input: unknown): string[] {
  const r = ActionSchema.safeParse(input);
  expect(r.success, JSON.stringify(input)).toBe(false);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

describe('package actions', () => {
  it('accepts each manager with its own name and version grammar', () => {
    const ok: unknown[] = [
      { type: 'package', manager: 'apt', op: 'install', name: 'openssl', version: '3.0.15-1~deb12u1', arch: 'amd64' },
      { type: 'package', manager: 'dpkg', op: 'install', name: 'libssl3', version: '1:3.0.15-1', file: 'debs/libssl3_3.0.15-1_amd64.deb' },
      { type: 'package', manager: 'dnf', op: 'install', name: 'openssl-libs', version: '1:3.0.7-27.el9', arch: 'x86_64' },
      { type: 'package', manager: 'rpm', op: 'remove', name: 'Foo_bar' },
      { type: 'package', manager: 'apk', op: 'install', name: 'libcrypto3', version: '3.1.4-r5' },
      { type: 'package', manager: 'msiexec', op: 'install', name: '{23170F69-40C1-2702-2301-000001000000}', version: '23.1', file: '7z2301-x64.msi' },
      { type: 'package', manager: 'wusa', op: 'install', name: 'KB5034441', file: 'windows10.0-kb5034441-x64.msu' },
      { type: 'package', manager: 'installer', op: 'install', name: 'com.example.agent', version: '4.10.0-beta2', file: 'Agent.pkg' },
      { type: 'package', manager: 'pkgadd', op: 'remove', name: 'SUNWcsu' },
    ];
    for (const a of ok) expect(ActionSchema.parse(a)).toEqual(a);
  });

  it('refuses a name that starts with -, saying it would be read as an option', () => {
    for (const manager of ['apt', 'rpm', 'apk', 'msiexec'] as const) {
      const why = refusal({ type: 'package', manager, op: 'install', name: '-oAPT::Foo=1' });
      expect(why).toEqual([`name: package name '-oAPT::Foo=1' starts with '-', which ${manager} would read as an option`]);
    }
  });

  it("refuses names outside the manager's grammar", () => {
    expect(refusal({ type: 'package', manager: 'apt', op: 'install', name: 'OpenSSL' })[0]).toMatch(/^name: 'OpenSSL' is not a Debian package name/);
    expect(refusal({ type: 'package', manager: 'apt', op: 'install', name: 'x' })[0]).toMatch(/not a Debian package name/);
    expect(refusal({ type: 'package', manager: 'dnf', op: 'install', name: 'a b' })[0]).toMatch(/not an RPM package name/);
    expect(refusal({ type: 'package', manager: 'apk', op: 'install', name: 'Musl' })[0]).toMatch(/not an Alpine package name/);
    expect(refusal({ type: 'package', manager: 'wusa', op: 'install', name: 'KB1;calc' })[0]).toMatch(/not a product name or id/);
  });

  it("checks versions with the manager's scheme", () => {
    expect(refusal({ type: 'package', manager: 'apt', op: 'install', name: 'openssl', version: 'v3' })[0]).toMatch(/^version: invalid deb version 'v3': /);
    expect(refusal({ type: 'package', manager: 'dnf', op: 'install', name: 'openssl', version: '1.0-1-2' })[0]).toMatch(/^version: invalid rpm version '1.0-1-2': more than one '-'/);
    expect(refusal({ type: 'package', manager: 'msiexec', op: 'install', name: 'App', version: '1.0.0.0.1' })[0]).toMatch(/^version: invalid windows version/);
    expect(refusal({ type: 'package', manager: 'pkg', op: 'install', name: 'curl', version: '--8.5' })).toEqual([
      "version: version '--8.5' starts with '-', which pkg would read as an option",
    ]);
    // the same string is fine for one manager and not another
    expect(ActionSchema.safeParse({ type: 'package', manager: 'rpm', op: 'install', name: 'a', version: '1.0^git1' }).success).toBe(true);
    expect(ActionSchema.safeParse({ type: 'package', manager: 'apt', op: 'install', name: 'aa', version: '1.0^git1' }).success).toBe(false);
  });

  it('refuses a bundled file that is not a package of that manager, or on a remove', () => {
    expect(refusal({ type: 'package', manager: 'apt', op: 'install', name: 'aa', file: 'aa.rpm' })).toEqual(['file: a file for apt ends with .deb']);
    expect(refusal({ type: 'package', manager: 'dpkg', op: 'remove', name: 'aa', file: 'aa.deb' })).toEqual(['file: a remove action takes no bundled file']);
    expect(refusal({ type: 'package', manager: 'dpkg', op: 'install', name: 'aa', file: '../aa.deb' })[0]).toMatch(/contains '\.\.'/);
  });

  it('refuses unknown managers and fields', () => {
    refusal({ type: 'package', manager: 'brew', op: 'install', name: 'aa' });
    refusal({ type: 'package', manager: 'apt', op: 'install', name: 'aa', options: ['--force-yes'] });
    refusal({ type: 'package', manager: 'apt', op: 'install', name: 'aa', arch: '-amd64' });
  });
});

describe('file actions', () => {
  it('accepts place, replace and delete with the hashes each needs', () => {
    const ok: unknown[] = [
      { type: 'file', op: 'place', path: '/etc/acme/agent.conf', source: 'conf/agent.conf', sha256: H1, mode: '0644' },
      { type: 'file', op: 'replace', path: 'C:\\Program Files\\Acme\\acme.dll', source: 'acme.dll', sha256: H1, priorSha256: H2 },
      { type: 'file', op: 'delete', path: '/usr/lib/acme/old.so', priorSha256: H2 },
    ];
    for (const a of ok) expect(ActionSchema.parse(a)).toEqual(a);
  });

  it('refuses a replace without priorSha256 and a place without source or sha256', () => {
    expect(refusal({ type: 'file', op: 'replace', path: '/etc/x', source: 'x', sha256: H1 })).toEqual([
      'priorSha256: a replace action needs priorSha256 (priorSha256 is the content expected before)',
    ]);
    expect(refusal({ type: 'file', op: 'place', path: '/etc/x' })).toEqual([
      'source: a place action needs source (the file must not exist before)',
      'sha256: a place action needs sha256 (the file must not exist before)',
    ]);
    expect(refusal({ type: 'file', op: 'place', path: '/etc/x', source: 'x', sha256: H1, priorSha256: H2 })).toEqual([
      'priorSha256: a place action takes no priorSha256 (the file must not exist before)',
    ]);
    expect(refusal({ type: 'file', op: 'delete', path: '/etc/x' })[0]).toBe('priorSha256: a delete action needs priorSha256 (priorSha256 is the content expected before)');
    expect(refusal({ type: 'file', op: 'delete', path: '/etc/x', priorSha256: H2, source: 'x' })[0]).toMatch(/^source: a delete action takes no source/);
  });

  it('refuses device paths that are relative, climb, hide a NUL or are too long', () => {
    const file = (path: string) => ({ type: 'file', op: 'delete', path, priorSha256: H1 });
    expect(refusal(file('etc/passwd'))[0]).toMatch(/is not absolute/);
    expect(refusal(file('/opt/acme/../../etc/shadow'))[0]).toMatch(/contains a '\.\.' segment/);
    expect(refusal(file('C:\\Acme\\..\\Windows\\System32\\x.dll'))[0]).toMatch(/contains a '\.\.' segment/);
    expect(refusal(file('C:\\Acme/../Windows/x.dll'))[0]).toMatch(/contains a '\.\.' segment/);
    expect(refusal(file('/etc/x\0.conf'))[0]).toMatch(/NUL/);
    expect(refusal(file('/etc//x'))[0]).toMatch(/empty segment/);
    expect(refusal(file('/etc/x\n.conf'))[0]).toMatch(/control characters/);
    expect(refusal(file('C:\\x.dll:stream'))[0]).toMatch(/stream/);
    expect(refusal(file(`/${'a'.repeat(1024)}`))[0]).toMatch(/at most 1024/);
    expect(devicePathProblem(`/${'a'.repeat(1023)}`)).toBeNull();
  });

  it('refuses a mode on a Windows path and a mode that is not octal', () => {
    expect(refusal({ type: 'file', op: 'place', path: 'C:\\x.txt', source: 'x', sha256: H1, mode: '0644' })).toEqual(['mode: mode applies to POSIX paths only']);
    expect(refusal({ type: 'file', op: 'place', path: '/x', source: 'x', sha256: H1, mode: '0o644' })[0]).toMatch(/octal/);
    expect(refusal({ type: 'file', op: 'place', path: '/x', source: 'x', sha256: H1, mode: '0648' })[0]).toMatch(/octal/);
  });
});

describe('script actions', () => {
  it('accepts a script and gives it expectExit [0] by default', () => {
    const a = ActionSchema.parse({ type: 'script', interpreter: 'powershell', source: 'scripts/fix.ps1', args: ['-Force'], timeoutSeconds: 600 });
    expect(a).toEqual({ type: 'script', interpreter: 'powershell', source: 'scripts/fix.ps1', args: ['-Force'], timeoutSeconds: 600, expectExit: [0] });
    expect(ActionSchema.parse({ type: 'script', interpreter: 'cmd', source: 'x.cmd', timeoutSeconds: 1, expectExit: [0, 3010] })).toMatchObject({ expectExit: [0, 3010] });
  });

  it('refuses a script with no expected exit code', () => {
    expect(refusal({ type: 'script', interpreter: 'sh', source: 'x.sh', timeoutSeconds: 60, expectExit: [] })).toEqual([
      'expectExit: a script lists at least one expected exit code',
    ]);
  });

  it('refuses bad timeouts, arguments and interpreters', () => {
    refusal({ type: 'script', interpreter: 'sh', source: 'x.sh' });
    refusal({ type: 'script', interpreter: 'sh', source: 'x.sh', timeoutSeconds: 0 });
    refusal({ type: 'script', interpreter: 'sh', source: 'x.sh', timeoutSeconds: 86_401 });
    refusal({ type: 'script', interpreter: 'sh', source: 'x.sh', timeoutSeconds: 1.5 });
    refusal({ type: 'script', interpreter: 'perl', source: 'x.pl', timeoutSeconds: 60 });
    expect(refusal({ type: 'script', interpreter: 'sh', source: 'x.sh', timeoutSeconds: 60, args: ['a\0b'] })[0]).toMatch(/NUL/);
    refusal({ type: 'script', interpreter: 'sh', source: 'x.sh', timeoutSeconds: 60, args: Array(33).fill('a') });
    refusal({ type: 'script', interpreter: 'sh', source: '/tmp/x.sh', timeoutSeconds: 60 });
  });
});

describe('payload paths', () => {
  it('accepts relative POSIX paths of safe segments', () => {
    for (const p of ['a', 'debs/libssl3_3.0.15-1~deb12u1_amd64.deb', 'x/y/z+1.msi', '7z2301-x64.msi']) expect(payloadPathProblem(p)).toBeNull();
  });

  it('says why a path is refused', () => {
    expect(payloadPathProblem('../x.deb')).toBe("payload path '../x.deb' contains '..': it must stay inside the bundle");
    expect(payloadPathProblem('a/../../x')).toMatch(/contains '\.\.'/);
    expect(payloadPathProblem('/etc/passwd')).toBe("payload path '/etc/passwd' is absolute: it is relative to the bundle");
    expect(payloadPathProblem('a\\b')).toMatch(/contains '\\'/);
    expect(payloadPathProblem('a//b')).toMatch(/empty segment/);
    expect(payloadPathProblem('a/')).toMatch(/empty segment/);
    expect(payloadPathProblem('.hidden')).toMatch(/segment '\.hidden'/);
    expect(payloadPathProblem('a/-rf')).toMatch(/segment '-rf'/);
    expect(payloadPathProblem('a b')).toMatch(/segment 'a b'/);
    expect(payloadPathProblem('a'.repeat(201))).toMatch(/at most 200/);
    expect(payloadPathProblem('a'.repeat(200))).toBeNull();
  });
});

describe('actionsNeedAuthor and payloadRefs', () => {
  const repoInstall: Action = { type: 'package', manager: 'apt', op: 'install', name: 'openssl', version: '3.0.15-1' };
  const bundled: Action = { type: 'package', manager: 'dpkg', op: 'install', name: 'openssl', file: 'b/openssl.deb' };
  const script: Action = { type: 'script', interpreter: 'sh', source: 'a/fix.sh', timeoutSeconds: 60, expectExit: [0] };
  const file: Action = { type: 'file', op: 'delete', path: '/etc/x', priorSha256: H1 };

  it('lets an online key sign only package actions against trusted repositories', () => {
    expect(actionsNeedAuthor({ install: [], undo: [] })).toBe(false);
    expect(actionsNeedAuthor({ install: [repoInstall], undo: [{ ...repoInstall, op: 'remove' }] })).toBe(false);
    expect(actionsNeedAuthor({ install: [repoInstall, bundled], undo: [] })).toBe(true);
    expect(actionsNeedAuthor({ install: [repoInstall], undo: [script] })).toBe(true);
    expect(actionsNeedAuthor({ install: [file], undo: [] })).toBe(true);
  });

  it('lists the payload files actions read, sorted and once each', () => {
    expect(payloadRefs({ install: [script, repoInstall, bundled, file], undo: [script] })).toEqual(['a/fix.sh', 'b/openssl.deb']);
    expect(payloadRefs({ install: [repoInstall], undo: [] })).toEqual([]);
  });
});
