import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { parsePackagesIndex } from './packages-index.js';
import { Problems } from './problems.js';
import { readIndex } from './read.js';
import { TESTDATA } from './testing.js';

const good = (name: string, version = '1.0-1', extra = '') => `Package: ${name}\nVersion: ${version}\nArchitecture: amd64\n${extra}Description: x\n continued\n .\n more\n\n`;

function parse(text: string, arch?: string) {
  const problems = new Problems();
  const records = parsePackagesIndex(text, 'P', problems, arch ? { arch } : {});
  return { records, problems: problems.list };
}

describe('Packages records', () => {
  it('reads name, version, architecture and source (with and without its version)', () => {
    const { records, problems } = parse(readFileSync(`${TESTDATA}Packages.sample`, 'latin1'), 'amd64');
    expect(problems).toEqual([]);
    expect(records).toHaveLength(11);
    expect(records[0]).toEqual({
      name: 'libssl3',
      version: '3.0.11-1~deb12u2',
      arch: 'amd64',
      source: 'openssl',
      sourceVersion: '3.0.11-1~deb12u2',
      line: 1,
      // the package file as the index states it: what a server fetches and caches
      file: { path: 'pool/main/o/openssl/libssl3_3.0.11-1~deb12u2_amd64.deb', size: 2019496, sha256: '7a3e8a4bd3d1ce4cf1f8d1d9de7cd1b3e1bd7f7b2c1b1a77e1c2d8b7e3a2f1c0' },
    });
    expect(records[1]).toMatchObject({ name: 'openssl', source: 'openssl', sourceVersion: '3.0.11-1~deb12u2', line: 20 });
    expect(records.find((r) => r.name === 'libfoo1')).toMatchObject({ version: '1.2-3+b1', source: 'foo', sourceVersion: '1.2-3' });
    expect(records.find((r) => r.name === 'passwd')).toMatchObject({ version: '1:4.13+dfsg1-1', source: 'shadow' });
  });

  it('skips hostile records with their line, and keeps the good ones around them', () => {
    const text = [
      good('ok-first'),
      good('-rf'),
      good('semi', '1.0;reboot'),
      good('spacey', '1.0 2.0'),
      good('UPPER'),
      good('noversion').replace('Version: 1.0-1\n', ''),
      'Version: 1.0\nArchitecture: amd64\n\n',
      good('twice', '1.0', 'Package: twice\n'),
      good('src-bad', '1.0', 'Source: foo (1.0;x)\n'),
      good('src-bad2', '1.0', 'Source: -foo\n'),
      good('wrong-arch').replace('amd64', 'arm64'),
      good('bad-arch').replace('amd64', 'AMD 64'),
      good('status', '1.0', 'Status: install ok installed\n'),
      good('folded', '1.0', 'Source: foo\n (1.0)\n'),
      ' leading continuation\nPackage: lead\nVersion: 1\nArchitecture: all\n\n',
      good('ok-last'),
    ].join('');
    const { records, problems } = parse(text, 'amd64');
    expect(records.map((r) => r.name)).toEqual(['ok-first', 'ok-last']);
    const lineOf = (needle: string) => text.slice(0, text.indexOf(needle)).split('\n').length;
    const at = (needle: string) => problems.find((p) => p.line === lineOf(needle))?.message;
    expect(problems.every((p) => p.level === 'error' && p.file === 'P' && p.message.endsWith('record skipped'))).toBe(true);
    expect(problems).toHaveLength(14);
    expect(at('Package: -rf')).toMatch(/invalid package name "-rf"/);
    expect(at('Version: 1.0;reboot')).toMatch(/invalid version "1.0;reboot": .*invalid character/);
    expect(at('Version: 1.0 2.0')).toMatch(/invalid version "1.0 2.0": .*embedded spaces/);
    expect(at('Package: UPPER')).toMatch(/invalid package name "UPPER"/);
    expect(at('Source: foo (1.0;x)')).toMatch(/invalid source version/);
    expect(at(' (1.0)')).toMatch(/field Source continues/);
    expect(problems.map((p) => p.message)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^no Version field/),
        expect.stringMatching(/^no Package field/),
        expect.stringMatching(/^field Package appears twice/),
        expect.stringMatching(/^invalid source version "1.0;x"/),
        expect.stringMatching(/^invalid source package name "-foo"/),
        expect.stringMatching(/^architecture arm64 in an index of amd64/),
        expect.stringMatching(/^invalid architecture "AMD 64"/),
        expect.stringMatching(/^a Status field: this is a dpkg status record/),
        expect.stringMatching(/^field Source continues on a second line/),
        expect.stringMatching(/^the record starts with a continuation line/),
      ]),
    );
    expect(problems.find((p) => p.message.startsWith('invalid package name "-rf"'))?.package).toBe('-rf');
  });

  it('refuses a 10 MB field it reads without copying it, and skips a 10 MB field it does not read', () => {
    const huge = 'a'.repeat(10 * 1024 * 1024);
    const { records, problems } = parse(`${good('ok')}Package: ${huge}\nVersion: 1\nArchitecture: all\n\n${good('long-description', '1', `Description: ${huge}\n`).replace('Description: x\n', '')}`);
    expect(records.map((r) => r.name)).toEqual(['ok', 'long-description']);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ line: 9, message: expect.stringMatching(/^field Package is 10485761 bytes long/) });
    expect(problems[0]!.package).toBeUndefined();
  });

  it('survives binary garbage: every problem has a line, nothing is thrown', () => {
    const garbage = randomBytes(256 * 1024).toString('latin1');
    const { records, problems } = parse(`${good('before')}${garbage}\n\n${good('after')}`);
    expect(records.map((r) => r.name)).toContain('before');
    expect(records.map((r) => r.name)).toContain('after');
    expect(problems.length).toBeGreaterThan(0);
    for (const p of problems) expect(p.line).toBeGreaterThan(0);
    // quoted values are escaped and clipped
    for (const p of problems) expect(p.message.length).toBeLessThan(300);
  });

  it('caps the listed problems of a file full of bad records, and counts them all', () => {
    const problems = new Problems();
    parsePackagesIndex(good('-bad').repeat(5000), 'P', problems);
    expect(problems.count).toBe(5000);
    expect(problems.list).toHaveLength(1000);
  });

  it('handles CRLF, trailing blanks and a missing final newline', () => {
    const { records, problems } = parse('Package: aa\r\nVersion: 1\r\nArchitecture: all\r\n \t \r\nPackage: bb\nVersion: 2\nArchitecture: all');
    expect(problems).toEqual([]);
    expect(records.map((r) => `${r.name}=${r.version}`)).toEqual(['aa=1', 'bb=2']);
  });
});

describe('truncated compressed indexes', () => {
  // 300 renamed copies of the sample, as Packages.many.lz4 holds them (in many LZ4 blocks)
  const text = `${readFileSync(`${TESTDATA}Packages.sample`, 'latin1')}\n`;
  const big = Buffer.from(Array.from({ length: 300 }, (_, i) => text.replace(/^Package: (.*)$/gm, `Package: $1-n${i}`)).join(''), 'latin1');
  const cases = [
    ['Packages.gz', gzipSync(big)],
    ['Packages.xz', execFileSync('xz', ['-c'], { input: big })],
    ['Packages.lz4', readFileSync(`${TESTDATA}Packages.many.lz4`)],
  ] as const;

  it('the whole files read without a problem', async () => {
    for (const [name, data] of cases) {
      const problems = new Problems();
      const r = await readIndex(data, `main/binary-amd64/${name}`, name, undefined, 'amd64', problems);
      expect(problems.list, name).toEqual([]);
      expect(r!.records, name).toHaveLength(3300);
    }
  });

  for (const [name, data] of cases) {
    it(`${name}: the complete records are kept and the loss is reported with its line, not thrown`, async () => {
      const problems = new Problems();
      const cut = data.subarray(0, Math.floor(data.length * 0.6));
      const r = await readIndex(cut, `main/binary-amd64/${name}`, `/lists/${name}`, undefined, 'amd64', problems);
      expect(r).not.toBeNull();
      expect(r!.checked).toBe(false);
      const [p, ...rest] = problems.list;
      expect(rest).toEqual([]);
      expect(p).toMatchObject({ level: 'error', file: `/lists/${name}`, message: expect.stringMatching(/^damaged at byte \d+ of the compressed file .*: the records from line \d+ on are missing$/) });
      // every record kept is whole: it starts before the reported line
      for (const rec of r!.records) expect(rec.line).toBeLessThan(p!.line!);
      expect(r!.records.length).toBeGreaterThan(100);
      expect(r!.records.length).toBeLessThan(3300);
    });
  }
});
