import { readFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { packageLine } from '@patchwarden/core';
import type { PackageFact } from '@patchwarden/core';
import { MAX_PROBLEMS, parseDpkgStatus } from './parse.js';
import { dpkgQuery, makeAdmindir } from './dpkg-query.testutil.js';

const fixture = (name: string) => fileURLToPath(new URL(`../../../testdata/dpkg/${name}`, import.meta.url));
const read = (name: string) => readFileSync(fixture(name), 'utf8');
const lines = (facts: PackageFact[]) => facts.map(packageLine).sort();

const pkg = (name: string, version: string, extra: Partial<PackageFact> = {}): PackageFact => ({
  manager: 'dpkg',
  name,
  version,
  arch: 'amd64',
  state: 'installed',
  ...extra,
});

/** A minimal valid paragraph with fields overridden (null drops a field). */
function para(fields: Record<string, string | null>): string {
  const all: Record<string, string | null> = {
    Package: 'hello',
    Status: 'install ok installed',
    Architecture: 'amd64',
    Version: '2.10-3',
    ...fields,
  };
  return Object.entries(all)
    .filter(([, v]) => v !== null)
    .map(([k, v]) => `${k}: ${v}\n`)
    .join('');
}

describe('parseDpkgStatus on hand-written fixtures', () => {
  it('keeps the source version of a binNMU and the source name only when they differ', () => {
    const r = parseDpkgStatus(read('binnmu.status'));
    expect(r.problems).toEqual([]);
    expect(r.packages).toEqual([
      pkg('foo', '1.2-3+b1', { sourceVersion: '1.2-3' }),
      pkg('libbar1', '1:2.0-1+b2', { source: 'bar', sourceVersion: '1:2.0-1' }),
      pkg('baz-utils', '0.9-1', { arch: 'all', source: 'baz' }),
      pkg('qux', '3.1-2'),
    ]);
  });

  it('keeps one package name installed for two architectures', () => {
    const r = parseDpkgStatus(read('multiarch.status'));
    expect(r.problems).toEqual([]);
    expect(r.packages).toEqual([
      pkg('libc6', '2.36-9+deb12u10', { source: 'glibc' }),
      pkg('libc6', '2.36-9+deb12u10', { source: 'glibc', arch: 'i386' }),
      pkg('zlib1g', '1:1.2.13.dfsg-1', { source: 'zlib', arch: 'i386' }),
    ]);
  });

  it('reports config-files and transitional states and leaves not-installed entries out silently', () => {
    const r = parseDpkgStatus(read('config-files.status'));
    expect(r.problems).toEqual([]);
    expect(r.packages).toEqual([
      pkg('oldtool', '4.1-2', { state: 'config-files' }),
      pkg('half-done', '1.0-1', { state: 'half-configured' }),
      pkg('waiting', '2.3', { arch: 'all', state: 'triggers-pending' }),
    ]);
  });

  it('skips continuation lines and reads field names case-insensitively', () => {
    const r = parseDpkgStatus(read('continuation.status'));
    expect(r.problems).toEqual([]);
    expect(r.packages).toEqual([
      pkg('openssh-server', '1:9.2p1-2+deb12u5', { source: 'openssh' }),
      pkg('lower-case-fields', '0.1-1', { arch: 'all' }),
    ]);
  });

  it('reads CRLF line endings', () => {
    const text = read('crlf.status');
    expect(text).toContain('\r\n'); // the fixture must not have been normalised by git
    const r = parseDpkgStatus(text);
    expect(r.problems).toEqual([]);
    expect(r.packages).toEqual([
      pkg('dos-tool', '2.0-1+b1', { source: 'dos', sourceVersion: '2.0-1' }),
      pkg('dos-lib1', '2.0-1', { state: 'unpacked' }),
    ]);
  });

  it('lists the packages held at their version (apt-mark hold), installed ones only', () => {
    const text = [para({ Package: 'zeta', Status: 'hold ok installed' }), para({ Package: 'alpha', Status: 'hold ok installed' }), para({ Package: 'free' }), para({ Package: 'gone', Status: 'hold ok not-installed' })].join('\n');
    const r = parseDpkgStatus(text);
    expect(r.held).toEqual(['alpha', 'zeta']);
    expect(r.packages.map((p) => p.name).sort()).toEqual(['alpha', 'free', 'zeta']);
  });

  it.each(['binnmu', 'multiarch', 'config-files', 'continuation'])('agrees with dpkg-query on %s.status', (name) => {
    const dir = makeAdmindir({ file: fixture(`${name}.status`) });
    try {
      expect(lines(parseDpkgStatus(read(`${name}.status`)).packages)).toEqual(lines(dpkgQuery(dir)));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('parseDpkgStatus on malformed input', () => {
  const one = (text: string) => {
    const r = parseDpkgStatus(text);
    expect(r.packages).toEqual([]);
    expect(r.problems).toHaveLength(1);
    expect(r.skipped).toBe(1);
    return r.problems[0]!;
  };

  it('returns nothing for empty and blank input', () => {
    for (const text of ['', '\n', '\n\n  \n\t\n', '\r\n\r\n']) {
      expect(parseDpkgStatus(text)).toEqual({ packages: [], problems: [], skipped: 0, held: [] });
    }
  });

  it('refuses a package name starting with "-"', () => {
    const p = one(para({ Package: '-rf' }));
    expect(p).toMatchObject({ line: 1, package: '-rf' });
    expect(p.message).toMatch(/invalid package name/);
  });

  it('refuses a version with a shell metacharacter', () => {
    expect(one(para({ Version: '1.0;rm' })).message).toMatch(/invalid character ';'/);
  });

  it('refuses invalid architectures, sources and source versions', () => {
    expect(one(para({ Architecture: 'AMD64' })).message).toMatch(/architecture/);
    expect(one(para({ Source: 'foo (1.0' })).message).toMatch(/invalid Source field/);
    expect(one(para({ Source: 'foo (1.0$(id))' })).message).toMatch(/invalid Source field/);
    expect(one(para({ Source: 'foo (x1.0)' })).message).toMatch(/sourceVersion/);
    expect(one(para({ Source: 'Foo' })).message).toMatch(/invalid source package name/);
  });

  it('names the missing field', () => {
    expect(one(para({ Version: null })).message).toBe('missing Version field');
    expect(one(para({ Architecture: null })).message).toBe('missing Architecture field');
    expect(one(para({ Status: null })).message).toBe('missing Status field');
    expect(one(para({ Package: null })).message).toBe('missing Package field');
  });

  it('refuses invalid Status fields', () => {
    expect(one(para({ Status: 'install ok bogus' })).message).toMatch(/invalid package state 'bogus'/);
    expect(one(para({ Status: 'install ok' })).message).toMatch(/invalid Status field/);
    expect(one(para({ Status: 'want ok installed' })).message).toMatch(/invalid Status field/);
    expect(one(para({ Status: 'install ok installed extra' })).message).toMatch(/invalid Status field/);
  });

  it('refuses structural errors inside a paragraph', () => {
    expect(one(` Version: 1\n${para({})}`).message).toMatch(/continuation line without a field/);
    expect(one(para({ Version: '1.0\n 2.0' })).message).toMatch(/continuation line in Version field/);
    expect(one(`${para({})}Package: again\n`).message).toMatch(/duplicate Package field/);
    expect(one(`${para({})}this line has no colon\n`).message).toMatch(/line 5 is not a field/);
  });

  it('keeps the first of two entries for one name and architecture', () => {
    const text = `${para({})}\n${para({ Version: '2.10-4' })}\n${para({ Architecture: 'i386' })}`;
    const r = parseDpkgStatus(text);
    expect(r.packages).toEqual([pkg('hello', '2.10-3'), pkg('hello', '2.10-3', { arch: 'i386' })]);
    expect(r.problems).toEqual([{ line: 6, package: 'hello', message: 'duplicate entry for hello:amd64' }]);
  });

  it('counts the 1-based line where each skipped paragraph starts, past a BOM and blank runs', () => {
    const text = `\ufeff${para({})}\n\n  \n${para({ Package: 'Bad' })}\n${para({ Package: 'ok2' })}`;
    const r = parseDpkgStatus(text);
    expect(r.packages.map((p) => p.name)).toEqual(['hello', 'ok2']);
    expect(r.problems).toEqual([expect.objectContaining({ line: 8, package: 'Bad' })]);
  });

  it('survives a 10 MB single line, with short messages', () => {
    const big = 'x'.repeat(10 * 1024 * 1024);
    const p1 = one(big);
    expect(p1.message.length).toBeLessThan(200);
    const p2 = one(para({ Package: big }));
    expect(p2.package!.length).toBeLessThanOrEqual(81);
    expect(p2.message.length).toBeLessThan(500);
    one(para({ Version: `1.${big}` }));
    // a huge value in a field we do not read costs nothing
    expect(parseDpkgStatus(para({ Description: big })).packages).toEqual([pkg('hello', '2.10-3')]);
  });

  it('handles many lines without a colon', () => {
    const r = parseDpkgStatus(`${'x\n'.repeat(1_000_000)}Package: late\n\n${'y\n\n'.repeat(1_000_000)}z: 1\n`);
    expect(r.skipped).toBe(1_000_002);
  });

  it('lists at most MAX_PROBLEMS problems but counts every skipped entry', () => {
    const text = Array.from({ length: 3 * MAX_PROBLEMS }, (_, i) => para({ Version: `v${i}` })).join('\n');
    const r = parseDpkgStatus(text);
    expect(r.problems).toHaveLength(MAX_PROBLEMS);
    expect(r.skipped).toBe(3 * MAX_PROBLEMS);
  });
});
