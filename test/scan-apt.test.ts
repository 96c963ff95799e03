/**
 * The proof of `patchwarden scan` on real data: this machine's apt lists and a sandbox copy of
 * its dpkg status in which more than 100 packages are set back to older versions the archive
 * still serves. What scan reports must be exactly what apt itself calls upgradable.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareDebVersions } from '@patchwarden/core';
import { api, assertBuilt, cli, startServerProcess } from './support/processes.js';

const LISTS = '/var/lib/apt/lists';
const HOST_STATUS = '/var/lib/dpkg/status';
const MIN_RECORDS = 10_000;
const MIN_SET_BACK = 100;

interface Offer {
  version: string;
  /** the Source field as the index gives it (binNMUs: `src (version)`) */
  source?: string;
  suites: Set<string>;
}

const field = (para: string, name: string) => new RegExp(`^${name}: *(.*)$`, 'mi').exec(para)?.[1];

/** Every (package:arch) the lists offer, and in which versions and suites; read with apt's own helper. */
function readLists(): { offers: Map<string, Offer[]>; records: number } {
  const names = readdirSync(LISTS).filter((n) => /_binary-[^_]+_Packages(\.(gz|xz|lz4))?$/.test(n));
  const offers = new Map<string, Offer[]>();
  let records = 0;
  for (const name of names) {
    const suite = /_dists_([^_]+)_/.exec(name)?.[1] ?? name;
    const text = execFileSync('/usr/lib/apt/apt-helper', ['cat-file', join(LISTS, name)], { encoding: 'latin1', maxBuffer: 1 << 30 });
    for (const para of text.split(/\n\n+/)) {
      const pkg = field(para, 'Package');
      const version = field(para, 'Version');
      if (!pkg || !version) continue;
      records++;
      const key = `${pkg}:${field(para, 'Architecture')}`;
      const list = offers.get(key) ?? [];
      offers.set(key, list);
      let o = list.find((x) => x.version === version);
      if (!o) list.push((o = { version, ...(field(para, 'Source') ? { source: field(para, 'Source')! } : {}), suites: new Set() }));
      o.suites.add(suite);
    }
  }
  for (const list of offers.values()) list.sort((a, b) => compareDebVersions(a.version, b.version));
  return { offers, records };
}

const isBinNmu = (o: Offer) => /\(.+\)/.test(o.source ?? '');

interface SetBack {
  key: string;
  from: string;
  to: string;
  binNmu: boolean;
  /** its versions come from two suites (bookworm and bookworm-security) */
  twoSuites: boolean;
  /** one of its versions is offered by two suites at once */
  sharedVersion: boolean;
}

const suitesOf = (list: Offer[]) => new Set(list.flatMap((o) => [...o.suites]));
const shared = (list: Offer[]) => list.some((o) => o.suites.size > 1);

/** The sandbox status: the host's, with packages set back one version, plus added ones. */
function sandboxStatus(offers: Map<string, Offer[]>, nativeArch: string): { text: string; setBack: SetBack[] } {
  const setBack: SetBack[] = [];
  const installed = new Set<string>();
  const olderOf = (list: Offer[]) => list[list.length - 2]!;
  const note = (key: string, from: string, list: Offer[]) => {
    const to = olderOf(list);
    setBack.push({ key, from, to: to.version, binNmu: list.some(isBinNmu), twoSuites: suitesOf(list).size > 1, sharedVersion: shared(list) });
    return to;
  };
  const withSource = (para: string, o: Offer) => {
    const rest = para.replace(/^Source: .*\n/m, '');
    return o.source ? rest.replace(/^(Version: .*)$/m, `Source: ${o.source}\n$1`) : rest;
  };
  const paras = readFileSync(HOST_STATUS, 'utf8').split(/\n\n+/).filter((p) => p.trim() !== '');
  const out = paras.map((para) => {
    const key = `${field(para, 'Package')}:${field(para, 'Architecture')}`;
    installed.add(field(para, 'Package')!);
    const list = offers.get(key);
    if (field(para, 'Status') !== 'install ok installed' || !list || list.length < 2) return para;
    const from = field(para, 'Version')!;
    // only packages at the newest version: set back to the one before it
    if (compareDebVersions(from, list[list.length - 1]!.version) < 0) return para;
    const to = note(key, from, list);
    return withSource(para.replace(/^Version: .*$/m, `Version: ${to.version}`), to);
  });
  // packages the host does not have: binNMUs and versions offered twice first, then up to the minimum
  const extra = [...offers].filter(([key, list]) => {
    const [name, arch] = key.split(':');
    return list.length >= 2 && !installed.has(name!) && (arch === nativeArch || arch === 'all');
  });
  const wanted = [
    ...extra.filter(([, l]) => l.some(isBinNmu)).slice(0, 15),
    ...extra.filter(([, l]) => shared(l)).slice(0, 15),
    ...extra.slice(0, Math.max(0, MIN_SET_BACK + 10 - setBack.length)),
  ];
  const added = new Set<string>();
  for (const [key, list] of wanted) {
    const [name, arch] = key.split(':');
    if (added.has(name!)) continue;
    added.add(name!);
    const to = note(key, '(added)', list);
    const para = [
      `Package: ${name}`,
      'Status: install ok installed',
      'Priority: optional',
      'Section: misc',
      'Installed-Size: 1',
      'Maintainer: Patchwarden tests <tests@patchwarden.invalid>',
      `Architecture: ${arch}`,
      `Version: ${to.version}`,
      'Description: added by test/scan-apt.test.ts',
    ].join('\n');
    out.push(withSource(para, to));
  }
  return { text: `${out.join('\n\n')}\n`, setBack };
}

interface Item {
  package: string;
  arch: string;
  installed: string;
  version: string;
  patch: string;
  state: string;
}

let dir: string;
let statusFile: string;
let setBack: SetBack[];

beforeAll(() => {
  assertBuilt();
  const hint = `run apt-get update (CI does) so that ${LISTS} holds the distribution's indexes`;
  let lists: ReturnType<typeof readLists>;
  try {
    lists = readLists();
  } catch (err) {
    throw new Error(`cannot read ${LISTS}: ${(err as Error).message}; ${hint}`);
  }
  if (lists.records < MIN_RECORDS) throw new Error(`${LISTS} holds ${lists.records} package records, fewer than ${MIN_RECORDS}: ${hint}`);
  const nativeArch = execFileSync('dpkg', ['--print-architecture'], { encoding: 'utf8' }).trim();
  dir = mkdtempSync(join(tmpdir(), 'patchwarden-scan-apt-'));
  statusFile = join(dir, 'status');
  const s = sandboxStatus(lists.offers, nativeArch);
  writeFileSync(statusFile, s.text);
  setBack = s.setBack;
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** apt's own answer on the same lists and the sandbox status; its caches are neither read nor written. */
function aptUpgradable(): Map<string, { version: string; arch: string; from: string }> {
  const out = execFileSync(
    'apt',
    ['list', '--upgradable', '-o', `Dir::State::status=${statusFile}`, '-o', `Dir::State::Lists=${LISTS}`, '-o', 'Dir::Cache::pkgcache=', '-o', 'Dir::Cache::srcpkgcache='],
    { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, stdio: ['ignore', 'pipe', 'ignore'] },
  );
  const res = new Map<string, { version: string; arch: string; from: string }>();
  for (const line of out.split('\n')) {
    const m = /^([^/\s]+)\/\S+ (\S+) (\S+) \[upgradable from: (\S+)\]$/.exec(line);
    if (m) res.set(`${m[1]} ${m[2]}`, { version: m[2]!, arch: m[3]!, from: m[4]! });
  }
  return res;
}

describe('patchwarden scan against apt on real lists', () => {
  let items: Item[];

  it('the sandbox sets back more than 100 packages, binNMUs and packages of two suites among them', () => {
    expect(setBack.length).toBeGreaterThanOrEqual(MIN_SET_BACK);
    expect(setBack.filter((s) => s.binNmu).length).toBeGreaterThanOrEqual(5);
    expect(setBack.filter((s) => s.twoSuites).length).toBeGreaterThanOrEqual(5);
    expect(setBack.filter((s) => s.sharedVersion).length).toBeGreaterThanOrEqual(5);
    expect(setBack.filter((s) => s.from !== '(added)').length).toBeGreaterThan(0);
  });

  it('reports exactly the (package, version) pairs that apt list --upgradable reports', async () => {
    const r = await cli(['scan', '--dpkg-status', statusFile, '--apt-lists', LISTS, '--json']);
    expect(r.status, r.stderr).toBe(0);
    // warnings (a stale Valid-Until) may come; nothing may have been skipped
    expect(r.stderr.split('\n').filter((l) => l.startsWith('error'))).toEqual([]);
    items = JSON.parse(r.stdout) as Item[];
    const apt = aptUpgradable();
    // apt agrees that every package set back is upgradable
    for (const s of setBack) expect([...apt.values()].some((a) => a.from === s.to), s.key).toBe(true);
    const ours = items.map((i) => `${i.package} ${i.version}`).sort();
    expect(ours).toEqual([...apt.keys()].sort());
    expect(ours.length).toBeGreaterThanOrEqual(MIN_SET_BACK);
    for (const i of items) {
      const a = apt.get(`${i.package} ${i.version}`)!;
      expect({ arch: i.arch, installed: i.installed, state: i.state }, i.package).toEqual({ arch: a.arch, installed: a.from, state: 'needed' });
      expect(i.patch).toMatch(/^[a-z0-9][a-z0-9._+~-]*\/[a-z0-9][a-z0-9._+~-]*\/[a-z0-9][a-z0-9._+~-]*$/);
    }
  }, 120_000);

  it('explains every item: its patch is needed, and the trace names the package and its versions', async () => {
    const ids = [...new Set(items.map((i) => i.patch))];
    const r = await cli(['scan', '--dpkg-status', statusFile, '--apt-lists', LISTS, '--json', '--explain', ...ids]);
    expect(r.status, r.stderr).toBe(0);
    type Trace = { rule: string; result: string; detail?: string; children?: Trace[] };
    const explained = new Map((JSON.parse(r.stdout) as { id: string; state: string; trace: { applicability: Trace; installed: Trace } }[]).map((e) => [e.id, e]));
    const flat = (t: Trace): Trace[] => [t, ...(t.children ?? []).flatMap(flat)];
    for (const i of items) {
      const e = explained.get(i.patch)!;
      expect(e, i.patch).toBeDefined();
      expect(e.state).toBe('needed');
      expect(e.trace.applicability.result).toBe('true');
      expect(e.trace.installed.result).toBe('false');
      const leaf = flat(e.trace.installed).find((t) => t.rule.includes(` ${i.package}`) && t.rule.includes(`>= ${i.version}`));
      expect(leaf, `${i.patch} ${i.package}`).toMatchObject({ result: 'false', detail: expect.stringContaining(`${i.package} ${i.installed}`) });
    }
  }, 120_000);

  it('prints the explanation as an indented tree for people', async () => {
    const i = items[0]!;
    const r = await cli(['scan', '--dpkg-status', statusFile, '--apt-lists', LISTS, '--explain', i.patch]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(`${i.patch}: needed`);
    expect(r.stdout).toMatch(/^ {2}applicability:\n {4}✓ any of \d+/m);
    expect(r.stdout).toMatch(new RegExp(`^ {6}✗ any of 2\\n {8}✗ dpkg ${i.package.replace(/[+.]/g, '\\$&')}\\S* absent — installed: ${i.package.replace(/[+.]/g, '\\$&')} `, 'm'));
  }, 120_000);

  it('reads the same catalog back from a catalog file (import-apt --out, scan --catalog)', async () => {
    const file = join(dir, 'catalog.json');
    const w = await cli(['catalog', 'import-apt', '--lists', LISTS, '--out', file, '--json']);
    expect(w.status, w.stderr).toBe(0);
    const summary = JSON.parse(w.stdout) as { patches: number; out: string; releases: { verified: boolean }[] };
    expect(summary.out).toBe(file);
    expect(summary.releases.every((x) => x.verified)).toBe(true);
    const written = JSON.parse(readFileSync(file, 'utf8')) as { coverage: unknown[]; patches: unknown[] };
    expect(Object.keys(written).sort()).toEqual(['coverage', 'patches']);
    expect(written.patches).toHaveLength(summary.patches);
    const r = await cli(['scan', '--dpkg-status', statusFile, '--catalog', file, '--json']);
    expect(r.status, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as Item[]).map((i) => `${i.package} ${i.version} ${i.patch}`)).toEqual(items.map((i) => `${i.package} ${i.version} ${i.patch}`));
  }, 120_000);

  it('says plainly that a machine no feed covers is not assessed, and exits non-zero', async () => {
    const root = join(dir, 'jammy');
    mkdirSync(join(root, 'etc'), { recursive: true });
    writeFileSync(join(root, 'etc/os-release'), 'ID=ubuntu\nVERSION_ID="22.04"\nVERSION_CODENAME=jammy\nNAME="Ubuntu"\n');
    const r = await cli(['scan', '--root', root, '--dpkg-status', statusFile, '--apt-lists', LISTS]);
    expect(r.status).not.toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/not assessed: no feed covers this machine \(ubuntu 22\.04 \(jammy\)/);
    expect(r.stderr).toMatch(/this is not "fully patched"/);
  }, 120_000);

  it('uploads the patches to a server in batches; a second import changes nothing', async () => {
    const server = await startServerProcess(join(dir, 'server'));
    try {
      const suite = readFileSync(readdirSync(LISTS).filter((n) => /-security_InRelease$/.test(n)).map((n) => join(LISTS, n))[0]!, 'utf8');
      const codename = /^Codename: (.*)$/m.exec(suite)![1]!;
      const args = ['catalog', 'import-apt', '--lists', LISTS, '--suite', codename, '--batch-size', '150', '--server', server.url, '--token', server.adminToken, '--json'];
      const first = await cli(args);
      expect(first.status, first.stderr).toBe(0);
      const one = JSON.parse(first.stdout) as { patches: number; upload: { created: number; updated: number; unchanged: number } };
      expect(one.patches).toBeGreaterThan(150);
      expect(one.upload).toEqual({ created: one.patches, updated: 0, unchanged: 0 });
      const listed = await api<{ total: number }>(server, 'GET', '/api/v1/catalog/patches?limit=1');
      expect(listed.body.total).toBe(one.patches);
      const again = await cli(args);
      expect((JSON.parse(again.stdout) as typeof one).upload).toEqual({ created: 0, updated: 0, unchanged: one.patches });
    } finally {
      await server.stop();
    }
  }, 120_000);
  it('decides the same on the server: an agent with the same packages needs the same patches, and scan --server agrees', async () => {
    const server = await startServerProcess(join(dir, 'server-e2e'));
    try {
      const up = await cli(['catalog', 'import-apt', '--lists', LISTS, '--server', server.url, '--token', server.adminToken, '--json']);
      expect(up.status, up.stderr).toBe(0);
      const { secret } = (await api<{ secret: string }>(server, 'POST', '/api/v1/enrollment-secrets', { name: 'e2e' })).body;
      const agent = ['--data-dir', join(dir, 'e2e-agent'), '--dpkg-status', statusFile, '--hostname', 'setback-1'];
      expect((await cli(['agent', 'enroll', '--server', server.url, '--secret', secret, ...agent])).status).toBe(0);
      const run = await cli(['agent', 'run', '--once', ...agent]);
      expect(run.status, run.stderr).toBe(0);

      const env = { PATCHWARDEN_SERVER: server.url, PATCHWARDEN_TOKEN: server.adminToken };
      const report = JSON.parse((await cli(['report', 'needed', '--json'], { env })).stdout) as { items: { device: { hostname: string }; needed: { patch: string }[] }[] };
      const onServer = new Set(report.items.find((i) => i.device.hostname === 'setback-1')!.needed.map((n) => n.patch));
      const local = JSON.parse((await cli(['scan', '--dpkg-status', statusFile, '--apt-lists', LISTS, '--json'])).stdout) as { patch: string }[];
      const fromServer = JSON.parse((await cli(['scan', '--dpkg-status', statusFile, '--server', server.url, '--token', server.adminToken, '--json'])).stdout) as { patch: string }[];
      expect(onServer.size).toBeGreaterThan(50);
      expect([...onServer].sort()).toEqual([...new Set(local.map((i) => i.patch))].sort());
      expect([...new Set(fromServer.map((i) => i.patch))].sort()).toEqual([...onServer].sort());

      const one = [...onServer][0]!;
      const why = await cli(['explain', 'setback-1', one], { env });
      expect(why.status, why.stderr).toBe(0);
      expect(why.stdout).toMatch(new RegExp(`^${one.replace(/[.+~]/g, '\\$&')} on setback-1: needed`));
      expect(why.stdout).toMatch(/installed:\n {2}✗ all of \d+/);
    } finally {
      await server.stop();
    }
  }, 300_000);
});
