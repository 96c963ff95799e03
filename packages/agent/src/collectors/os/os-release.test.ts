import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { OsFacts } from '@patchwarden/core';
import { osFactsFromRelease, parseOsRelease } from './os-release.js';

/** The oracle: what a POSIX shell gets when it sources the file. */
function shellValues(file: string, keys: string[]): Record<string, string> {
  const script = '. "$0" && for k in "$@"; do eval "printf \'%s\\0\' \\"\\${$k}\\""; done';
  const out = execFileSync('sh', ['-c', script, file, ...keys], { encoding: 'utf8', env: {} });
  const values = out.split('\0');
  return Object.fromEntries(keys.map((k, i) => [k, values[i]!]));
}

const hostRelease = ['/etc/os-release', '/usr/lib/os-release'].find((f) => {
  try {
    readFileSync(f);
    return true;
  } catch {
    return false;
  }
})!;

describe('parseOsRelease', () => {
  it('reads the host os-release as a shell does', () => {
    const fields = parseOsRelease(readFileSync(hostRelease, 'utf8'));
    expect(fields.ID).toMatch(/^[a-z0-9._-]+$/);
    expect({ ...fields }).toEqual(shellValues(hostRelease, Object.keys(fields)));
  });

  const tricky = [
    '# a comment',
    '',
    `NAME="Foo \\"Bar\\" \\\\ \\$x \\\`y\\\`"`,
    `SINGLE='single $no "expansion" \\n'`,
    'BARE=unquoted',
    'ESCAPED=unquoted\\ space',
    'KEEP="a\\qb"',
    `CONCAT="concat"'enated'`,
    'COMMENTED=value # trailing comment',
    'HASH=foo#bar',
    '   INDENTED=yes',
    'EMPTY=',
    'EMPTYQ=""',
    'TWICE=1',
    'TWICE=2',
    'UTF8="Ünïcødé 😀"',
  ].join('\n');
  const expected = {
    NAME: 'Foo "Bar" \\ $x `y`',
    SINGLE: 'single $no "expansion" \\n',
    BARE: 'unquoted',
    ESCAPED: 'unquoted space',
    KEEP: 'a\\qb',
    CONCAT: 'concatenated',
    COMMENTED: 'value',
    HASH: 'foo#bar',
    INDENTED: 'yes',
    EMPTY: '',
    EMPTYQ: '',
    TWICE: '2',
    UTF8: 'Ünïcødé 😀',
  };

  it('handles quoting, escapes and comments like a shell', () => {
    expect({ ...parseOsRelease(tricky) }).toEqual(expected);
    expect({ ...parseOsRelease(tricky.replaceAll('\n', '\r\n')) }).toEqual(expected);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pw-osr-'));
    try {
      writeFileSync(path.join(dir, 'os-release'), tricky);
      expect(shellValues(path.join(dir, 'os-release'), Object.keys(expected))).toEqual(expected);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('ignores lines a shell would expand, execute or reject', () => {
    const invalid = [
      'SUB=$(reboot)',
      'TICK=`id`',
      'VAR="$HOME"',
      'TICKQ="`id`"',
      'OPEN="unterminated',
      "OPEN1='unterminated",
      'WORDS=two words',
      'SEMI=a;b',
      'PIPE=a|b',
      'CONT=trailing\\',
      '1BAD=x',
      'SPACED =x',
      'no equals sign',
      '=novalue',
    ];
    expect({ ...parseOsRelease(invalid.join('\n')) }).toEqual({});
  });

  it('keeps a key named __proto__ as data', () => {
    const fields = parseOsRelease('__proto__=x\nID=debian');
    expect(fields.__proto__).toBe('x');
    expect(Object.keys(fields)).toEqual(['__proto__', 'ID']);
  });
});

describe('osFactsFromRelease', () => {
  it('maps the os-release fields', () => {
    const fields = parseOsRelease(
      'PRETTY_NAME="Ubuntu 24.04.1 LTS"\nNAME="Ubuntu"\nVERSION_ID="24.04"\nID=ubuntu\nID_LIKE=debian\nUBUNTU_CODENAME=noble\n',
    );
    expect(osFactsFromRelease(fields, 'aarch64', { packageArch: 'arm64' })).toEqual({
      family: 'linux',
      distribution: 'ubuntu',
      idLike: ['debian'],
      name: 'Ubuntu',
      prettyName: 'Ubuntu 24.04.1 LTS',
      version: '24.04',
      versionCodename: 'noble',
      machine: 'aarch64',
      packageArch: 'arm64',
    });
  });

  it('truncates overlong strings and drops invalid optional fields', () => {
    const facts = osFactsFromRelease(
      {
        ID: 'Not A/Valid Id',
        ID_LIKE: `rhel ${'x'.repeat(100)} fedora ${Array.from({ length: 20 }, (_, i) => `d${i}`).join(' ')}`,
        NAME: '😀'.repeat(300),
        PRETTY_NAME: '   ',
        VERSION_ID: '9'.repeat(100),
      },
      'm'.repeat(100),
      { family: 'linux', packageArch: '' },
    );
    expect(OsFacts.safeParse(facts).success).toBe(true);
    expect(facts.distribution).toBeUndefined();
    expect(facts.idLike).toHaveLength(16);
    expect(facts.idLike?.slice(0, 2)).toEqual(['rhel', 'fedora']);
    expect(facts.name).toBe('😀'.repeat(256)); // 512 UTF-16 units, no half surrogate
    expect(facts.prettyName).toBeUndefined();
    expect(facts.version).toBe('9'.repeat(64));
    expect(facts.machine).toBe('m'.repeat(64));
    expect(facts.packageArch).toBeUndefined();
  });

  it('gives the minimum for an empty os-release', () => {
    expect(osFactsFromRelease({}, '')).toEqual({ family: 'linux', machine: 'unknown' });
  });
});
