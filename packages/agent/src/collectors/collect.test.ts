import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { SystemFacts } from '@patchwarden/core';
import { collectFacts, parseOsRelease } from './index.js';
import { dpkgQuery } from './dpkg/dpkg-query.testutil.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'pw-collect-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

type Tree = Record<string, string | { link: string } | { dir: true } | { fifo: true }>;

/** A sandbox root: a path ending in '/' is a directory, { link } a symlink. */
function sandbox(name: string, tree: Tree): string {
  const root = path.join(tmp, name);
  mkdirSync(root);
  for (const [p, what] of Object.entries(tree)) {
    const full = path.join(root, p);
    mkdirSync(path.dirname(full), { recursive: true });
    if (typeof what === 'string') writeFileSync(full, what);
    else if ('link' in what) symlinkSync(what.link, full);
    else if ('dir' in what) mkdirSync(full);
    else execFileSync('mkfifo', [full]);
  }
  return root;
}

const STATUS = `Package: zsh
Status: install ok installed
Architecture: amd64
Version: 5.9-4+b1
Source: zsh (5.9-4)

Package: bash
Status: install ok installed
Architecture: amd64
Version: 5.2.15-2+b8
Source: bash (5.2.15-2)

Package: -rf
Status: install ok installed
Architecture: amd64
Version: 1.0

Package: base-files
Status: install ok installed
Architecture: amd64
Version: 12.4+deb12u5
`;

describe('collectFacts on a sandbox root', () => {
  it('reads every fact below the root', async () => {
    const root = sandbox('full', {
      'usr/lib/os-release': 'ID=sandboxos\nNAME="Sandbox OS"\nVERSION_ID=1.0\nVERSION_CODENAME=sandy\n',
      // absolute, as in real images: must resolve inside the root, not on the host
      'etc/os-release': { link: '/usr/lib/os-release' },
      'etc/hostname': 'sandbox-host\nignored\n',
      'etc/timezone': 'Europe/Berlin\n',
      'etc/localtime': { link: '/usr/share/zoneinfo/Asia/Tokyo' },
      'etc/machine-id': 'abcdef0123456789abcdef0123456789\n',
      'var/run': { link: '/run' },
      'run/reboot-required': '*** System restart required ***\n',
      'var/lib/dpkg/status': STATUS,
    });
    const facts = await collectFacts({ root });
    expect(facts.system).toEqual({
      hostname: 'sandbox-host',
      os: expect.objectContaining({ family: 'linux', distribution: 'sandboxos', name: 'Sandbox OS', version: '1.0', versionCodename: 'sandy', machine: os.machine() }),
      kernel: { release: os.release() },
      timezone: 'Europe/Berlin',
      machineId: 'abcdef0123456789abcdef0123456789',
      rebootRequired: true,
      collectors: [
        {
          name: 'dpkg',
          status: 'ok',
          count: 3,
          message: expect.stringMatching(/^1 entry skipped: first problem at line 13 \(-rf\): name: invalid package name/),
        },
      ],
    });
    expect(SystemFacts.safeParse({ ...facts.system, agentVersion: '0' }).success).toBe(true);
    expect(facts.packages.map((p) => `${p.name}=${p.version}/${p.sourceVersion ?? ''}`)).toEqual([
      'base-files=12.4+deb12u5/',
      'bash=5.2.15-2+b8/5.2.15-2',
      'zsh=5.9-4+b1/5.9-4',
    ]);
  });

  it('takes the time zone from the localtime link and falls back for the rest', async () => {
    const root = sandbox('sparse', {
      'usr/lib/os-release': 'ID=sparse\n',
      'etc/localtime': { link: '/usr/share/zoneinfo/posix/America/New_York' },
      'etc/machine-id': 'uninitialized\n',
      'etc/hostname': { fifo: true }, // reading a FIFO would block forever
      'var/run': { link: '/run' },
    });
    const facts = await collectFacts({ root, kernelRelease: '6.1.0-99-amd64' });
    expect(facts.system).toMatchObject({
      hostname: os.hostname(),
      os: { distribution: 'sparse' },
      kernel: { release: '6.1.0-99-amd64' },
      timezone: 'America/New_York',
      rebootRequired: false,
      collectors: [{ name: 'packages', status: 'absent', message: 'no supported package database found' }],
    });
    expect(facts.system.machineId).toBeUndefined();
    expect(facts.packages).toEqual([]);
  });

  it('never reads the host through a link that climbs out of the root', async () => {
    const root = sandbox('climb', {
      'etc/os-release': { link: '../../../../../../../../usr/lib/os-release' },
      'usr/lib/os-release': 'ID=confined\n',
      'etc/hostname': { link: 'hostname' },
    });
    const facts = await collectFacts({ root });
    expect(facts.system.os.distribution).toBe('confined');
    expect(facts.system.hostname).toBe(os.hostname()); // the looping link counts as absent
    expect(facts.system.timezone).toBeUndefined();
  });

  it.each([
    ['usr/lib/sysimage/rpm/rpmdb.sqlite', '/usr/lib/sysimage/rpm/rpmdb.sqlite'],
    ['var/lib/rpm/Packages', '/var/lib/rpm/Packages'],
    ['var/lib/rpm/Packages.db', '/var/lib/rpm/Packages.db'],
  ])('reports an RPM-only root (%s) as unsupported, never as an empty inventory', async (file, shown) => {
    const root = sandbox(`rpm-${file.replaceAll('/', '_')}`, {
      'etc/os-release': 'ID=fedora\nVERSION_ID=41\n',
      [file]: '',
    });
    const facts = await collectFacts({ root });
    expect(facts.packages).toEqual([]);
    expect(facts.system.collectors).toEqual([
      {
        name: 'rpm',
        status: 'unsupported',
        message: `RPM database found at ${shown}: RPM inventories are not supported by this agent version yet`,
      },
    ]);
  });

  it('reports an RPM database beside dpkg, and an empty dpkg database as no inventory', async () => {
    const rpm = { name: 'rpm', status: 'unsupported', message: expect.stringMatching(/^RPM database found at \/var\/lib\/rpm\/rpmdb.sqlite:/) };
    const both = sandbox('dpkg-and-rpm', { 'var/lib/dpkg/status': STATUS, 'var/lib/rpm/rpmdb.sqlite': '' });
    expect((await collectFacts({ root: both })).system.collectors).toEqual([expect.objectContaining({ name: 'dpkg', status: 'ok', count: 3 }), rpm]);
    const emptyDpkg = sandbox('empty-dpkg-and-rpm', { 'var/lib/dpkg/status': '', 'var/lib/rpm/rpmdb.sqlite': '' });
    const facts = await collectFacts({ root: emptyDpkg });
    expect(facts.system.collectors).toEqual([rpm, { name: 'dpkg', status: 'absent', message: 'the dpkg status file lists no packages' }]);
    expect(facts.system.collectors.some((c) => c.status === 'ok')).toBe(false);
  });

  it('reports an unreadable status file as an error', async () => {
    const root = sandbox('status-dir', { 'var/lib/dpkg/status': { dir: true } });
    const facts = await collectFacts({ root });
    expect(facts.system.collectors).toEqual([
      { name: 'dpkg', status: 'error', message: expect.stringMatching(/not a regular file/) },
    ]);
    expect(facts.packages).toEqual([]);
  });

  it('reads an explicit status file instead of the root one', async () => {
    const root = sandbox('explicit', { 'var/lib/dpkg/status': STATUS });
    const fixture = fileURLToPath(new URL('../../testdata/dpkg/multiarch.status', import.meta.url));
    const facts = await collectFacts({ root, dpkgStatus: fixture, hostname: 'given' });
    expect(facts.system.hostname).toBe('given');
    expect(facts.system.collectors).toEqual([{ name: 'dpkg', status: 'ok', count: 3 }]);
    expect(facts.packages.map((p) => `${p.name}:${p.arch}`)).toEqual(['libc6:amd64', 'libc6:i386', 'zlib1g:i386']);

    const missing = await collectFacts({ root, dpkgStatus: path.join(tmp, 'no-such-status') });
    expect(missing.system.collectors).toEqual([{ name: 'dpkg', status: 'error', message: expect.stringMatching(/does not exist/) }]);
  });
});

describe('collectFacts on the host', () => {
  it('finds as many dpkg packages as dpkg-query', async () => {
    const facts = await collectFacts({ root: '/' });
    const expected = dpkgQuery();
    expect(facts.system.collectors).toContainEqual({ name: 'dpkg', status: 'ok', count: expected.length });
    expect(facts.packages).toHaveLength(expected.length);
    const keys = facts.packages.map((p) => `dpkg\t${p.name}\t${p.arch}`);
    expect(keys).toEqual([...keys].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
    expect(facts.system.hostname).toBe(os.hostname());
    expect(facts.system.kernel).toEqual({ release: os.release(), version: os.version() });
    expect(facts.system.os.distribution).toBe(parseOsRelease(readFileSync('/etc/os-release', 'utf8')).ID);
    expect(facts.system.os.packageArch).toBe(execFileSync('dpkg', ['--print-architecture'], { encoding: 'utf8' }).trim());
    expect(SystemFacts.safeParse({ ...facts.system, agentVersion: '0' }).success).toBe(true);
  });
});
