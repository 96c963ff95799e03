import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { PATCH_ID_RE, PatchManifest } from '@patchwarden/core';
import { formatFeedProblem, importOsv, type FeedImport } from './index.js';
import { bytePosition, jsonErrorOffset, parseJsonBytes } from './json.js';

const TESTDATA = fileURLToPath(new URL('./testdata/', import.meta.url));
const DEBIAN = `${TESTDATA}debian`;
const GO = `${TESTDATA}go-vulndb`;

const dir = mkdtempSync(join(tmpdir(), 'pw-osv-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const dsa5532 = () => JSON.parse(readFileSync(`${DEBIAN}/DSA-5532-1.json`, 'utf8')) as Record<string, unknown> & { affected: Record<string, unknown>[] };

/** Imports one file written into a folder of its own; returns the result and its problems as text. */
async function importOne(name: string, content: string | Buffer): Promise<{ r: FeedImport; problems: string[] }> {
  const sub = mkdtempSync(join(dir, 'case-'));
  writeFileSync(join(sub, name), content);
  const r = await importOsv([sub]);
  return { r, problems: r.problems.map((p) => formatFeedProblem({ ...p, file: p.file.slice(sub.length + 1) })) };
}

describe('OSV records of Debian', async () => {
  const r = await importOsv([DEBIAN]);
  const byId = new Map(r.patches.map((p) => [p.id, p]));

  it('reads every record and builds one valid patch per release, source package and fixed version', () => {
    expect(r.problems).toEqual([]);
    expect(r.records).toBe(8);
    expect(r.unhandled).toEqual({});
    for (const p of r.patches) {
      expect(PatchManifest.parse(p)).toEqual(p);
      expect(p.id).toMatch(PATCH_ID_RE);
    }
    expect([...byId.keys()]).toEqual([
      'osv/debian/bookworm/curl-7.88.1-10+deb12u5',
      'osv/debian/bookworm/glibc-2.36-9+deb12u3',
      'osv/debian/bookworm/openssl-3.0.11-1~deb12u2',
      'osv/debian/bookworm/openssl-3.0.13-1~deb12u1',
      'osv/debian/bookworm/openssl-3.0.14-1~deb12u2',
      'osv/debian/bookworm/util-linux-2.38.1-5+deb12u1',
      'osv/debian/bullseye/glibc-2.31-13+deb11u7',
      'osv/debian/bullseye/openssl-1.1.1w-0+deb11u2',
      'osv/debian/bullseye/util-linux-2.36.1-8+deb11u2',
      'osv/debian/trixie/libssh2-1.11.0-4',
      'osv/debian/trixie/openssl-3.1.4-2',
    ]);
    expect(r.coverage).toEqual(['bookworm', 'bullseye', 'trixie'].map((release) => ({ family: 'linux', distribution: 'debian', release })));
    expect(r.releases.find((x) => x.release === 'bookworm')).toEqual({ distribution: 'debian', release: 'bookworm', patches: 6, cves: 8, open: 2, notAffected: 0 });
  });

  it('tests the source package of the installed binaries, and every binary of it', () => {
    expect(byId.get('osv/debian/bookworm/openssl-3.0.11-1~deb12u2')).toMatchObject({
      id: 'osv/debian/bookworm/openssl-3.0.11-1~deb12u2',
      revision: 1,
      title: 'openssl 3.0.11-1~deb12u2 (DSA-5532-1, CVE-2023-5363)',
      description: 'DSA-5532-1: openssl - security update',
      vendor: 'Debian',
      product: 'openssl',
      severity: 'medium',
      cves: ['CVE-2023-5363'],
      advisories: ['DSA-5532-1'],
      releaseDate: '2023-10-24',
      platforms: [{ family: 'linux', distribution: 'debian', release: 'bookworm' }],
      applicability: { package: { manager: 'dpkg', name: 'openssl', match: 'source', installed: true } },
      installed: { not: { package: { manager: 'dpkg', name: 'openssl', match: 'source', version: { lt: '3.0.11-1~deb12u2' } } } },
      requires: [],
      supersedes: [],
      conflicts: [],
      restart: { reboot: 'never', kernel: false },
      fixes: [],
    });
  });

  it('links later fixes of a source to earlier ones, per release', () => {
    expect(byId.get('osv/debian/bookworm/openssl-3.0.13-1~deb12u1')!.supersedes).toEqual(['osv/debian/bookworm/openssl-3.0.11-1~deb12u2']);
    expect(byId.get('osv/debian/bookworm/openssl-3.0.14-1~deb12u2')!.supersedes).toEqual(['osv/debian/bookworm/openssl-3.0.13-1~deb12u1']);
    expect(byId.get('osv/debian/bullseye/openssl-1.1.1w-0+deb11u2')!.supersedes).toEqual([]);
  });

  it('takes CVEs from the id, aliases, upstream and, for Debian advisories, related', () => {
    expect(byId.get('osv/debian/bookworm/curl-7.88.1-10+deb12u5')).toMatchObject({ cves: ['CVE-2023-46218', 'CVE-2023-46219'], advisories: ['DSA-5587-1'] });
    // DEBIAN-CVE ids are advisories too, but the title names the CVE only once
    expect(byId.get('osv/debian/bookworm/glibc-2.36-9+deb12u3')).toMatchObject({
      cves: ['CVE-2023-4911'],
      advisories: ['DEBIAN-CVE-2023-4911', 'DSA-5514-1'],
      title: 'glibc 2.36-9+deb12u3 (DSA-5514-1, CVE-2023-4911)',
    });
    expect(byId.get('osv/debian/bookworm/openssl-3.0.14-1~deb12u2')!.cves).toEqual(['CVE-2024-5535', 'CVE-2024-6119']);
  });

  it('rates with the CVSS vector, else the urgency, else medium', () => {
    expect(byId.get('osv/debian/bookworm/glibc-2.36-9+deb12u3')!.severity).toBe('high'); // 7.8
    expect(byId.get('osv/debian/bookworm/util-linux-2.38.1-5+deb12u1')!.severity).toBe('medium'); // 5.5
    expect(byId.get('osv/debian/bookworm/openssl-3.0.11-1~deb12u2')!.severity).toBe('medium'); // nothing said
    expect(r.open.find((o) => o.source === 'tar')!.severity).toBe('none'); // unimportant
  });

  it('keeps vulnerabilities without a fix as open ones, with the rule that says who is affected', () => {
    expect(r.open.map((o) => `${o.release} ${o.source} ${o.cves.join(',')} ${o.status}`)).toEqual([
      'bookworm tar CVE-2005-2541 open',
      'bookworm libssh2 CVE-2023-48795 open',
      'bullseye tar CVE-2005-2541 open',
    ]);
    expect(r.open[1]).toMatchObject({
      feed: 'osv',
      severity: 'medium',
      platform: { family: 'linux', distribution: 'debian', release: 'bookworm' },
      affected: { package: { manager: 'dpkg', name: 'libssh2', match: 'source', installed: true } },
    });
  });
});

describe('records of other ecosystems (the Go database of golang.org/x/vuln)', () => {
  it('are counted per ecosystem and skipped; files that are no records are reported with their position', async () => {
    const r = await importOsv([GO]);
    expect(r.records).toBe(5);
    expect(r.unhandled).toEqual({ Go: 5 });
    expect(r.patches).toEqual([]);
    expect(r.coverage).toEqual([]);
    expect(r.inputs).toEqual([{ location: GO, files: 6, records: 5 }]);
    expect(r.problems.map(formatFeedProblem)).toEqual([
      `error: ${GO}/ID/index.json at $: not OSV records: an array of string (an index file?); skipped`,
      `error: ${GO}/index.json at $: not an OSV record (no id, no modified: an index or alias file?); skipped`,
    ]);
  });

  it('read with Debian records, change nothing of them', async () => {
    const both = await importOsv([GO, DEBIAN]);
    const alone = await importOsv([DEBIAN]);
    expect(both.patches).toEqual(alone.patches);
    expect(both.records).toBe(13);
  });
});

describe('records that cannot be read', () => {
  it('a truncated file: the byte where it ends', async () => {
    const text = readFileSync(`${DEBIAN}/DSA-5532-1.json`, 'utf8');
    const cut = text.slice(0, 300);
    const { r, problems } = await importOne('DSA-5532-1.json', cut);
    expect(r.records).toBe(0);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^error: DSA-5532-1\.json at byte 300 \(line 7, column \d+\): not JSON: the text ends too early \(truncated\?\): .+; file skipped$/);
    expect(problems[0]).toContain(bytePosition(cut, 300));
  });

  it('text that is not JSON, or not UTF-8: the byte where it breaks', async () => {
    expect((await importOne('a.json', '{"id": "DSA-1-1", "modified": tru}')).problems).toEqual([
      "error: a.json at byte 30 (line 1, column 31): not JSON: Unexpected token '}'; file skipped",
    ]);
    expect((await importOne('b.json', 'hello')).problems).toEqual(["error: b.json at byte 0 (line 1, column 1): not JSON: Unexpected token 'h'; file skipped"]);
    expect((await importOne('e.json', '')).problems).toEqual(['error: e.json at byte 0 (line 1, column 1): empty file; file skipped']);
    expect((await importOne('f.json', '{\n  "id": "DSA-1-1",\n  "modified" 5\n}')).problems).toEqual([
      "error: f.json at byte 34 (line 3, column 14): not JSON: Unexpected number; file skipped",
    ]);
    const latin1 = Buffer.concat([Buffer.from('{"id": "DSA-1-1", "summary": "caf'), Buffer.from([0xe9]), Buffer.from('"}')]);
    expect((await importOne('c.json', latin1)).problems).toEqual(['error: c.json at byte 33 (line 1, column 34): not UTF-8 text; file skipped']);
  });

  it('fields of the wrong type or breaking the schema: the JSON path of the field', async () => {
    const cases: [string, (rec: ReturnType<typeof dsa5532>) => void, string][] = [
      ['no-modified', (x) => delete x.modified, '$.modified: Invalid input: expected string, received undefined; record "DSA-5532-1" skipped'],
      ['bad-time', (x) => (x.modified = 'yesterday'), '$.modified: expected an RFC 3339 UTC timestamp such as 2023-10-24T00:00:00Z; record "DSA-5532-1" skipped'],
      ['affected-string', (x) => (x.affected = 'openssl' as never), '$.affected: Invalid input: expected array, received string; record "DSA-5532-1" skipped'],
      ['hostile-id', (x) => (x.id = '../../etc/passwd'), '$.id: an OSV id is letters, digits and . _ : - (at most 100); record "../../etc/passwd" skipped'],
      [
        'two-kinds',
        (x) => ((x.affected[0]!.ranges as { events: unknown[] }[])[0]!.events[1] = { introduced: '1.0', fixed: '2.0' }),
        '$.affected[0].ranges[0].events[1]: an event has exactly one of introduced, fixed, last_affected, limit; record "DSA-5532-1" skipped',
      ],
      [
        'no-introduced',
        (x) => ((x.affected[0]!.ranges as { events: unknown[] }[])[0]!.events = [{ fixed: '3.0.11-1~deb12u2' }]),
        '$.affected[0].ranges[0].events: a range has at least one introduced event; record "DSA-5532-1" skipped',
      ],
      [
        'fixed-and-last',
        (x) => (x.affected[0]!.ranges as { events: unknown[] }[])[0]!.events.push({ last_affected: '3.0.12-1' }),
        '$.affected[0].ranges[0].events: a range has fixed or last_affected events, not both; record "DSA-5532-1" skipped',
      ],
      ['range-type', (x) => ((x.affected[0]!.ranges as { type: string }[])[0]!.type = 'DEBIAN'), '$.affected[0].ranges[0].type: Invalid option: expected one of "GIT"|"SEMVER"|"ECOSYSTEM"; record "DSA-5532-1" skipped'],
    ];
    for (const [name, change, message] of cases) {
      const rec = dsa5532();
      change(rec);
      const { r, problems } = await importOne(`${name}.json`, JSON.stringify(rec));
      expect(problems, name).toEqual([`error: ${name}.json at ${message}`]);
      expect(r.patches, name).toEqual([]);
    }
  });

  it('in an array of records, the bad one is reported by its index and the others are kept', async () => {
    const good = dsa5532();
    const { r, problems } = await importOne('module.json', JSON.stringify([good, 42, { ...good, id: 'DSA-5532-2', modified: 5 }]));
    expect(problems).toEqual([
      'error: module.json at $[1]: not an OSV record: a number; skipped',
      'error: module.json at $[2].modified: Invalid input: expected string, received number; record "DSA-5532-2" skipped',
    ]);
    expect(r.records).toBe(1);
    expect(r.patches.map((p) => p.id)).toEqual(['osv/debian/bookworm/openssl-3.0.11-1~deb12u2']);
  });

  it('refuses hostile package names and versions against the grammar, and keeps the rest of the record', async () => {
    const rec = dsa5532();
    const entry = (name: string, fixed: string, ecosystem = 'Debian:12') => ({ package: { ecosystem, name }, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed }] }] });
    rec.affected.push(entry('-rf', '1.0-1'), entry('../x', '1.0-1'), entry('OpenSSL', '1.0-1'), entry('openssl', '3.0.11 -1'), entry('openssl', 'abc', 'Debian:11'), entry('openssl', '1:'), entry('openssl', '1.1.1w-0+deb11u2', 'Debian'));
    const { r, problems } = await importOne('hostile.json', JSON.stringify(rec));
    expect(problems).toEqual([
      'error: hostile.json at $.affected[1].package.name: invalid source package name "-rf"; DSA-5532-1 for bookworm skipped',
      'error: hostile.json at $.affected[2].package.name: invalid source package name "../x"; DSA-5532-1 for bookworm skipped',
      'error: hostile.json at $.affected[3].package.name: invalid source package name "OpenSSL"; DSA-5532-1 for bookworm skipped',
      'error: hostile.json at $.affected[4].ranges[0].events[1].fixed: invalid fixed version "3.0.11 -1": it holds blanks; DSA-5532-1 for bookworm skipped',
      'error: hostile.json at $.affected[5].ranges[0].events[1].fixed: invalid fixed version "abc": version number does not start with digit; DSA-5532-1 for bullseye skipped',
      'error: hostile.json at $.affected[6].ranges[0].events[1].fixed: invalid fixed version "1:": nothing after colon in version number; DSA-5532-1 for bookworm skipped',
      'warning: hostile.json at $.affected[7].package.ecosystem: "Debian" names no Debian release; entry skipped',
    ]);
    expect(r.patches.map((p) => p.id)).toEqual(['osv/debian/bookworm/openssl-3.0.11-1~deb12u2']);
    expect(r.unhandled).toEqual({ 'Debian (no release)': 1 });
    // a release whose only entry was refused is not claimed as covered
    expect(r.coverage.map((c) => c.release)).toEqual(['bookworm']);
  });

  it('says what it leaves out on purpose: withdrawn records, ranges that do not order Debian versions, odd aliases', async () => {
    const withdrawn = { ...dsa5532(), withdrawn: '2024-01-01T00:00:00Z' };
    expect((await importOne('w.json', JSON.stringify(withdrawn))).problems).toEqual(['warning: w.json at $.withdrawn: DSA-5532-1 was withdrawn on 2024-01-01; not imported']);
    const git = dsa5532();
    git.affected[0]!.ranges = [{ type: 'GIT', repo: 'https://github.com/openssl/openssl', events: [{ introduced: '0' }, { fixed: 'a'.repeat(40) }] }];
    git.aliases = ['CVE-2023-5363', 'GHSA-xxxx-yyyy-zzzz', 'not an id'];
    const g = await importOne('git.json', JSON.stringify(git));
    expect(g.problems).toEqual([
      'warning: git.json at $.aliases[2]: "not an id" is not an advisory id; left out',
      'warning: git.json at $.affected[0].ranges[0].type (openssl): a GIT range does not order Debian versions; ignored',
      'warning: git.json at $.affected[0] (openssl): no ECOSYSTEM range and no versions: DSA-5532-1 says nothing usable for bookworm',
    ]);
    expect(g.r.patches).toEqual([]);
  });

  it('a symbolic link to a folder is not followed; a missing path stops the import', async () => {
    const sub = mkdtempSync(join(dir, 'links-'));
    mkdirSync(join(sub, 'real'));
    writeFileSync(join(sub, 'real', 'DSA-5532-1.json'), JSON.stringify(dsa5532()));
    symlinkSync(join(sub, 'real'), join(sub, 'loop.json'));
    const r = await importOsv([sub]);
    expect(r.records).toBe(1);
    expect(r.problems.map(formatFeedProblem)).toEqual([`warning: ${join(sub, 'loop.json')}: a symbolic link to no regular file: not followed`]);
    await expect(importOsv([join(sub, 'nope')])).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
  });
});

describe('ranges', () => {
  it('turn into fixes and open intervals: introduced, fixed, last_affected, limit, and versions', async () => {
    const rec = {
      id: 'DEBIAN-CVE-2099-0001',
      modified: '2099-01-01T00:00:00Z',
      affected: [
        // two intervals, listed out of order: each fix is a patch; the later one applies from 2.0 on
        { package: { ecosystem: 'Debian:12', name: 'foo' }, ranges: [{ type: 'ECOSYSTEM', events: [{ fixed: '2.4-1' }, { introduced: '2.0-1' }, { fixed: '1.8-1' }, { introduced: '0' }] }] },
        { package: { ecosystem: 'Debian:12', name: 'bar' }, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '1.0-1' }, { last_affected: '1.2-3' }] }] },
        { package: { ecosystem: 'Debian:12', name: 'baz' }, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { limit: '5.0-1' }] }] },
        { package: { ecosystem: 'Debian:12', name: 'qux' }, versions: ['1.0-1', '1.0-2'] },
      ],
    };
    const { r, problems } = await importOne('ranges.json', JSON.stringify(rec));
    expect(problems).toEqual([]);
    const t = (name: string) => ({ manager: 'dpkg', name, match: 'source' });
    expect(r.patches.map((p) => [p.id, p.applicability, p.supersedes])).toEqual([
      ['osv/debian/bookworm/foo-1.8-1', { package: { ...t('foo'), installed: true } }, []],
      ['osv/debian/bookworm/foo-2.4-1', { package: { ...t('foo'), version: { ge: '2.0-1' } } }, ['osv/debian/bookworm/foo-1.8-1']],
    ]);
    expect(r.open.map((o) => [o.source, o.affected])).toEqual([
      ['bar', { all: [{ package: { ...t('bar'), version: { ge: '1.0-1' } } }, { package: { ...t('bar'), version: { le: '1.2-3' } } }] }],
      ['baz', { package: { ...t('baz'), version: { lt: '5.0-1' } } }],
      ['qux', { any: [{ package: { ...t('qux'), version: { eq: '1.0-1' } } }, { package: { ...t('qux'), version: { eq: '1.0-2' } } }] }],
    ]);
  });
});

describe('JSON positions', () => {
  it('finds the offset of the first syntax error where V8 names none', () => {
    for (const [text, at] of [
      ['{"a": tru}', 6],
      ['[1, }', 4],
      ['{"a": 1} x', 9],
      ['{"a" 1}', 5],
      ['{"a": "\\x"}', 8],
      ['[[[[', 4],
      ['{"a": [1, {"b": null}], "c": "d"}', -1],
      ['  ', 2],
    ] as const) {
      expect(jsonErrorOffset(text), text).toBe(at);
    }
    // deeper than any call stack
    expect(jsonErrorOffset(`${'['.repeat(200_000)}x`)).toBe(200_000);
    const p = parseJsonBytes(Buffer.from('\ufeff{"a": tru}'));
    expect(p).toEqual({ ok: false, position: 'byte 9 (line 1, column 8)', reason: "not JSON: Unexpected token '}'" });
  });
});
