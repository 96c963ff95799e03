import { describe, expect, it } from 'vitest';
import { deviceQueryNeeds, matchesDeviceQuery, MAX_QUERY_DEPTH, parseDeviceQuery, type DeviceFacts, type DeviceQuery } from './targeting.js';

const web: DeviceFacts = {
  hostname: 'web-01.example.org',
  os: { id: 'debian', version: '12', codename: 'bookworm' },
  arch: ['x86_64', 'amd64'],
  labels: ['env=prod', 'pci'],
  packages: new Map([
    ['openssl', ['3.0.14-1~deb12u2']],
    ['libc6', ['2.36-9+deb12u7', '2.36-9+deb12u7']],
  ]),
  staticGroup: 'web',
};
const bare: DeviceFacts = { hostname: 'new-box', labels: [], staticGroup: null };

function q(input: unknown): DeviceQuery {
  const r = parseDeviceQuery(input);
  if (!r.ok) throw new Error(r.reason);
  return r.query;
}
const match = (input: unknown, facts: DeviceFacts = web) => matchesDeviceQuery(q(input), facts);

describe('matchesDeviceQuery', () => {
  it('tests OS id, version and codename exactly', () => {
    expect(match({ os: { id: 'debian' } })).toBe(true);
    expect(match({ os: { id: 'debian', codename: 'bookworm', version: '12' } })).toBe(true);
    expect(match({ os: { codename: 'bullseye' } })).toBe(false);
    expect(match({ os: { id: 'ubuntu' } })).toBe(false);
    expect(match({ os: { id: 'debian' } }, bare)).toBe(false);
  });

  it('tests the architecture by either name', () => {
    expect(match({ arch: 'amd64' })).toBe(true);
    expect(match({ arch: 'x86_64' })).toBe(true);
    expect(match({ arch: 'arm64' })).toBe(false);
  });

  it('tests a label exactly, or every label with a key= prefix', () => {
    expect(match({ label: 'pci' })).toBe(true);
    expect(match({ label: 'env=prod' })).toBe(true);
    expect(match({ label: 'env=' })).toBe(true);
    expect(match({ label: 'env' })).toBe(false);
    expect(match({ label: 'env=staging' })).toBe(false);
    expect(match({ label: 'role=' })).toBe(false);
  });

  it('tests the hostname with a case-insensitive glob, dots literal', () => {
    expect(match({ hostname: 'web-*' })).toBe(true);
    expect(match({ hostname: 'WEB-0?.example.org' })).toBe(true);
    expect(match({ hostname: 'web-01' })).toBe(false);
    expect(match({ hostname: 'web-01?example?org' })).toBe(true);
    expect(matchesDeviceQuery(q({ hostname: 'web-01.example.org' }), { ...web, hostname: 'web-01xexample.org' })).toBe(false);
  });

  it('tests an installed package, with a version comparison in the deb or rpm scheme', () => {
    expect(match({ package: { name: 'openssl' } })).toBe(true);
    expect(match({ package: { name: 'nginx' } })).toBe(false);
    expect(match({ package: { name: 'openssl', version: { lt: '3.0.15-1~deb12u1' } } })).toBe(true);
    // deb: ~ sorts before anything, so 3.0.14-1~deb12u2 < 3.0.14-1
    expect(match({ package: { name: 'openssl', version: { lt: '3.0.14-1' } } })).toBe(true);
    expect(match({ package: { name: 'openssl', version: { ge: '3.0.15' } } })).toBe(false);
    expect(match({ package: { name: 'libc6', version: { eq: '2.36-9+deb12u7' } } })).toBe(true);
    expect(matchesDeviceQuery(q({ package: { name: 'bash', scheme: 'rpm', version: { ge: '5.1.8-6.el9' } } }), { ...web, packages: new Map([['bash', ['5.1.8-9.el9']]]) })).toBe(true);
    expect(match({ package: { name: 'openssl' } }, bare)).toBe(false);
  });

  it('tests membership in a static group', () => {
    expect(match({ group: 'web' })).toBe(true);
    expect(match({ group: 'db' })).toBe(false);
    expect(match({ group: 'web' }, bare)).toBe(false);
  });

  it('combines with all, any and not', () => {
    expect(match({ all: [{ os: { id: 'debian' } }, { label: 'pci' }] })).toBe(true);
    expect(match({ all: [{ os: { id: 'debian' } }, { label: 'nope' }] })).toBe(false);
    expect(match({ any: [{ os: { id: 'ubuntu' } }, { label: 'pci' }] })).toBe(true);
    expect(match({ not: { label: 'pci' } })).toBe(false);
    expect(match({ not: { os: { id: 'debian' } } }, bare)).toBe(true);
    expect(match({ all: [{ group: 'web' }, { not: { package: { name: 'openssl', version: { ge: '3.0.15-1~deb12u1' } } } }] })).toBe(true);
  });

  it('lists the packages and groups a query reads', () => {
    const needs = deviceQueryNeeds(q({ any: [{ package: { name: 'openssl' } }, { not: { all: [{ group: 'web' }, { package: { name: 'libc6' } }] } }] }));
    expect([...needs.packages].sort()).toEqual(['libc6', 'openssl']);
    expect([...needs.groups]).toEqual(['web']);
  });
});

describe('parseDeviceQuery refuses hostile and wrong input, naming the place', () => {
  const reason = (input: unknown) => {
    const r = parseDeviceQuery(input);
    expect(r.ok).toBe(false);
    return r.ok ? '' : r.reason;
  };

  it('too deep', () => {
    let deep: unknown = { label: 'x' };
    for (let i = 0; i < MAX_QUERY_DEPTH + 1; i++) deep = { not: deep };
    expect(reason(deep)).toMatch(/nests deeper than 8 levels/);
    let ok: unknown = { label: 'x' };
    for (let i = 0; i < MAX_QUERY_DEPTH; i++) ok = { not: ok };
    expect(parseDeviceQuery(ok).ok).toBe(true);
    // a very deep object is refused without walking all of it
    let huge: unknown = { label: 'x' };
    for (let i = 0; i < 5000; i++) huge = { not: huge };
    expect(reason(huge)).toMatch(/nests deeper/);
  });

  it('unknown keys, at the top, inside a leaf and in a combinator', () => {
    expect(reason({ kernel: '6.1' })).toBe("query: unknown test 'kernel' (all, any, not, os, arch, label, hostname, package, group)");
    expect(reason({ os: { id: 'debian', flavour: 'x' } })).toMatch(/^query\.os: .*flavour/);
    expect(reason({ all: [{ label: 'a' }, { lable: 'b' }] })).toMatch(/^query\.all\[1\]: unknown test 'lable'/);
    expect(reason({ label: 'a', os: { id: 'debian' } })).toMatch(/exactly one key/);
    expect(reason({ __proto__: { label: 'a' } })).toMatch(/exactly one key/);
  });

  it('huge: too many nodes, too many children, too many bytes', () => {
    expect(reason({ any: Array.from({ length: 65 }, () => ({ label: 'a' })) })).toMatch(/^query\.any: a list of 1 to 64 queries/);
    const wide = { any: Array.from({ length: 40 }, () => ({ all: Array.from({ length: 10 }, () => ({ label: 'a' })) })) };
    expect(reason(wide)).toMatch(/at most 256 tests/);
    expect(reason({ any: Array.from({ length: 64 }, () => ({ hostname: 'x'.repeat(255) })) })).toMatch(/bytes, at most 16384/);
  });

  it('wrong values', () => {
    expect(reason(null)).toMatch(/^query: a query is an object/);
    expect(reason([])).toMatch(/^query: a query is an object/);
    expect(reason({ all: [] })).toMatch(/^query\.all: a list of 1 to 64/);
    expect(reason({ os: {} })).toMatch(/^query\.os: an os test names at least one/);
    expect(reason({ package: { name: 'openssl', version: { lt: 'not a version!' } } })).toMatch(/^query\.package\.version: invalid deb version/);
    expect(reason({ package: { name: 'openssl', version: { lt: '1', gt: '0' } } })).toMatch(/exactly one of lt/);
    expect(reason({ package: { name: 'openssl', scheme: 'apk' } })).toMatch(/^query\.package\.scheme/);
    expect(reason({ hostname: 'web-[0-9]' })).toMatch(/^query\.hostname: a hostname glob/);
    expect(reason({ label: '<script>' })).toMatch(/^query\.label/);
    const cyclic: Record<string, unknown> = {};
    cyclic.not = cyclic;
    expect(reason(cyclic)).toMatch(/nests deeper/);
  });
});
