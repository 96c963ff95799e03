/**
 * `patchwarden scan`: what this machine (or a root directory) needs, decided locally by the same
 * engine the server uses (core's decideStates), from feeds named on the command line. No server.
 * With advisory feeds (`--osv`, `--debian-tracker`) it lists the machine's open CVEs instead: those
 * of the patches it still needs, and those no fix exists for yet.
 */
import { join } from 'node:path';
import type { Command } from 'commander';
import {
  CatalogIndex,
  decideStates,
  evaluateRule,
  makeEvalFacts,
  MANAGER_SCHEME,
  PatchwardenError,
  platformMatches,
  traceRule,
  VERSION_SCHEMES,
  type EvalFacts,
  type PatchDecision,
  type InstalledPackage,
  type PatchManifest,
  type Platform,
  type Rule,
  type RuleManager,
  type TraceNode,
} from '@patchwarden/core';
import type { OpenVulnerability } from '@patchwarden/server';
import { aptSourceOptions, loadApt, loadFeed, parseCatalogFile, readCatalogFile, reportFeedProblems, reportProblems, type AptSourceFlags } from './catalog.js';
import { printJson, table } from '../output.js';

interface ScanFlags extends AptSourceFlags {
  root: string;
  server?: string;
  token?: string;
  dataDir?: string;
  dpkgStatus?: string;
  aptLists?: string[];
  catalog?: string[];
  osv?: string[];
  debianTracker?: string[];
  explain?: string[];
  json?: boolean;
}

/** One installed package to update: the JSON item of `scan --json`. */
export interface ScanItem {
  package: string | null;
  arch: string | null;
  installed: string | null;
  /** the version that fixes it */
  version: string | null;
  patch: string;
  state: 'needed';
  severity: string;
  title: string;
}

/** One open CVE of one installed package: the JSON item of `scan --osv/--debian-tracker --json`. */
export interface CveItem {
  /** the CVE; the feed's own id (DSA-…, TEMP-…) when it names no CVE */
  cve: string;
  /** the installed binary package */
  package: string;
  arch: string;
  source: string;
  /** the binary's version */
  installed: string;
  /** its source version, which is what the fix is compared with */
  sourceVersion: string;
  /** the source version that fixes it; null: no fix (yet) */
  fixed: string | null;
  /** needed: a fix exists and is not installed; open: no fix; undetermined: the feed does not know */
  state: 'needed' | 'open' | 'undetermined';
  severity: string;
  /** the patch that fixes it */
  patch: string | null;
  advisories: string[];
}

interface Catalog {
  patches: Map<string, PatchManifest>;
  coverage: Platform[];
  feeds: string[];
  /** vulnerabilities without a fix (advisory feeds only) */
  open: OpenVulnerability[];
}

const collect = (v: string, prev: string[] | undefined) => [...(prev ?? []), v];
/** advisory feeds make scan list CVEs, and leave out the default apt lists */
const advisoryMode = (f: ScanFlags) => Boolean(f.osv || f.debianTracker);

async function loadCatalog(f: ScanFlags): Promise<Catalog> {
  const cat: Catalog = { patches: new Map(), coverage: [], feeds: [], open: [] };
  const add = (patches: PatchManifest[], coverage: Platform[]) => {
    for (const p of patches) {
      const known = cat.patches.get(p.id);
      // a higher revision replaces a lower one, as in the server's catalog
      if (!known || p.revision > known.revision) cat.patches.set(p.id, p);
    }
    cat.coverage.push(...coverage);
  };
  const lists = f.aptLists ?? (f.catalog || f.server || advisoryMode(f) ? [] : [join(f.root, 'var/lib/apt/lists')]);
  if (f.server) {
    // the server's catalog, as its agents are evaluated against it
    const { ApiClient } = await import('../client.js');
    const client = ApiClient.from({ server: f.server, ...(f.token ? { token: f.token } : {}), ...(f.dataDir ? { dataDir: f.dataDir } : {}) });
    const c = parseCatalogFile(await client.call<unknown>('GET', '/api/v1/catalog/export'), `${client.server}/api/v1/catalog/export`);
    add(c.patches, c.coverage);
    cat.feeds.push(`${client.server}: ${c.patches.length} patches`);
  }
  if (lists.length > 0) {
    const { formatProblem } = await import('@patchwarden/server');
    for (const dir of lists) {
      const r = await loadApt({ lists: dir }, f);
      reportProblems(r, formatProblem, 5);
      add(r.patches, r.coverage);
      const unverified = r.releases.filter((x) => !x.verified).length;
      cat.feeds.push(`${dir}: ${r.releases.map((x) => x.codename ?? x.suite).join(', ') || 'no releases'}${unverified ? ` (${unverified} NOT VERIFIED)` : ''}`);
    }
  }
  for (const file of f.catalog ?? []) {
    const c = await readCatalogFile(file);
    add(c.patches, c.coverage);
    cat.feeds.push(`${file}: ${c.patches.length} patches`);
  }
  const feeds: ['osv' | 'debian-tracker', string[]][] = [];
  if (f.osv) feeds.push(['osv', f.osv]);
  for (const t of f.debianTracker ?? []) feeds.push(['debian-tracker', [t]]);
  for (const [kind, paths] of feeds) {
    const { formatFeedProblem } = await import('@patchwarden/server');
    const r = await loadFeed(kind, paths);
    reportFeedProblems(r, formatFeedProblem, 5);
    add(r.patches, r.coverage);
    cat.open.push(...r.open);
    const skipped = Object.entries(r.unhandled).map(([e, n]) => `${n} ${e}`).join(', ');
    cat.feeds.push(`${paths.join(', ')}: ${r.records} records, ${r.patches.length} patches, ${r.open.length} without a fix${skipped ? ` (skipped: ${skipped})` : ''}`);
  }
  return cat;
}

async function deviceFacts(f: ScanFlags): Promise<{ facts: EvalFacts; label: string }> {
  const { collectFacts } = await import('@patchwarden/agent');
  const { system, packages } = await collectFacts({ root: f.root, ...(f.dpkgStatus ? { dpkgStatus: f.dpkgStatus } : {}) });
  const dpkg = system.collectors.find((c) => c.name === 'dpkg');
  if (!dpkg || dpkg.status !== 'ok') {
    const why = system.collectors.map((c) => `${c.name}: ${c.status}${c.message ? ` (${c.message})` : ''}`).join('; ');
    throw new PatchwardenError('E_NOT_FOUND', `cannot read the installed packages: ${why || 'no package database'}`, {
      hint: 'scan reads dpkg databases: pass --root DIR or --dpkg-status FILE',
    });
  }
  if (dpkg.message) console.error(`warning: dpkg status: ${dpkg.message}`);
  const os = system.os;
  const facts = makeEvalFacts({ os, kernelRelease: system.kernel.release, rebootRequired: system.rebootRequired, managers: ['dpkg'], packages });
  const label = [os.distribution ?? os.family, os.version, os.versionCodename && `(${os.versionCodename})`, os.packageArch ?? os.machine].filter(Boolean).join(' ');
  return { facts, label };
}

function compareFor(manager: string): ((a: string, b: string) => number) | null {
  const scheme = VERSION_SCHEMES[MANAGER_SCHEME[manager as RuleManager] ?? ''];
  return scheme ? scheme.compare : null;
}

/**
 * The installed packages each needed patch updates, one item per installed (package, arch):
 * when several needed patches fix one package (a binary moved between source packages), the
 * highest fixed version is what it needs.
 */
export function neededItems(decisions: Map<string, PatchDecision>, patches: Map<string, PatchManifest>, facts: EvalFacts): ScanItem[] {
  const byPackage = new Map<string, ScanItem>();
  const bare: ScanItem[] = [];
  for (const [id, d] of decisions) {
    if (d.state !== 'needed') continue;
    const p = patches.get(id)!;
    let found = false;
    for (const fix of p.fixes) {
      const cmp = compareFor(fix.manager);
      for (const inst of facts.packages.get(`${fix.manager}\t${fix.name}`) ?? []) {
        if (fix.arch !== undefined && fix.arch !== 'all' && inst.arch !== fix.arch) continue;
        if (!cmp || cmp(inst.version, fix.version) >= 0) continue;
        found = true;
        const key = `${inst.name}\t${inst.arch}`;
        const known = byPackage.get(key);
        if (known && cmp(known.version!, fix.version) >= 0) continue;
        byPackage.set(key, { package: inst.name, arch: inst.arch, installed: inst.version, version: fix.version, patch: id, state: 'needed', severity: p.severity, title: p.title });
      }
    }
    // a needed patch whose rules name no package to update (a custom patch) still shows
    if (!found) bare.push({ package: null, arch: null, installed: null, version: null, patch: id, state: 'needed', severity: p.severity, title: p.title });
  }
  const items = [...byPackage.values(), ...bare];
  return items.sort((a, b) => (a.package ?? '\uffff').localeCompare(b.package ?? '\uffff') || (a.arch ?? '').localeCompare(b.arch ?? '') || a.patch.localeCompare(b.patch));
}

/** The source package and fixed version a source-level patch tests (`not source < fixed`), if it does. */
function sourceFix(rule: Rule): { source: string; fixed: string } | null {
  if ('not' in rule) return sourceFix(rule.not);
  if ('all' in rule || 'any' in rule) {
    for (const r of 'all' in rule ? rule.all : rule.any) {
      const found = sourceFix(r);
      if (found) return found;
    }
    return null;
  }
  if ('package' in rule && rule.package.match === 'source' && rule.package.version?.lt !== undefined) return { source: rule.package.name, fixed: rule.package.version.lt };
  return null;
}

/** A rule decided for one installed binary alone, by core's evaluator: which binaries a finding concerns. */
function holdsFor(rule: Rule, p: InstalledPackage, facts: EvalFacts): boolean {
  return evaluateRule(rule, makeEvalFacts({ os: facts.os, managers: facts.managers, packages: [p] })).result === 'true';
}

const STATE_RANK: Record<CveItem['state'], number> = { needed: 2, open: 1, undetermined: 0 };

/**
 * The open CVEs of this machine, one item per (CVE, installed binary): the CVEs of patches it
 * still lacks (needed, or superseded or blocked, which are not installed either), and those of
 * vulnerabilities without a fix that affect it. Where feeds overlap, a fix wins over none, and the
 * higher fixed version over the lower.
 */
export function cveItems(decisions: Map<string, PatchDecision>, cat: Catalog, facts: EvalFacts, compareIds: (a: string, b: string) => number): CveItem[] {
  const items = new Map<string, CveItem>();
  const put = (item: CveItem) => {
    const key = `${item.cve}\t${item.package}\t${item.arch}`;
    const known = items.get(key);
    const advisories = [...new Set([...(known?.advisories ?? []), ...item.advisories])].sort(compareIds);
    const better =
      !known ||
      STATE_RANK[item.state] > STATE_RANK[known.state] ||
      (item.state === 'needed' && known.state === 'needed' && compareFor('dpkg')!(item.fixed!, known.fixed!) > 0);
    items.set(key, { ...(better ? item : known), advisories });
  };
  const binaries = (source: string) => facts.sources.get(`dpkg\t${source}`) ?? [];
  for (const [id, d] of decisions) {
    if (d.state !== 'needed' && d.state !== 'superseded' && d.state !== 'blocked') continue;
    const p = cat.patches.get(id)!;
    const ids = p.cves.length ? p.cves : p.advisories;
    const fix = sourceFix(p.installed);
    if (!fix || ids.length === 0) continue;
    for (const b of binaries(fix.source)) {
      if (holdsFor(p.installed, b, facts)) continue;
      for (const cve of ids) {
        put({ cve, package: b.name, arch: b.arch, source: fix.source, installed: b.version, sourceVersion: b.sourceVersion ?? b.version, fixed: fix.fixed, state: 'needed', severity: p.severity, patch: id, advisories: p.advisories });
      }
    }
  }
  for (const o of cat.open) {
    if (!platformMatches(o.platform, facts) || evaluateRule(o.affected, facts).result !== 'true') continue;
    const ids = o.cves.length ? o.cves : o.advisories;
    for (const b of binaries(o.source)) {
      if (!holdsFor(o.affected, b, facts)) continue;
      for (const cve of ids) {
        put({ cve, package: b.name, arch: b.arch, source: o.source, installed: b.version, sourceVersion: b.sourceVersion ?? b.version, fixed: null, state: o.status, severity: o.severity, patch: null, advisories: o.advisories });
      }
    }
  }
  return [...items.values()].sort((a, b) => compareIds(a.cve, b.cve) || a.package.localeCompare(b.package) || a.arch.localeCompare(b.arch));
}

async function printCves(decisions: Map<string, PatchDecision>, cat: Catalog, facts: EvalFacts, label: string, json: boolean): Promise<void> {
  const { compareIds } = await import('@patchwarden/server');
  const items = cveItems(decisions, cat, facts, compareIds);
  if (json) return printJson(items);
  if (items.length > 0) {
    console.log(
      table(items, [
        { header: 'CVE', get: (i) => i.cve },
        { header: 'package', get: (i) => (i.arch !== 'all' && i.arch !== facts.os?.packageArch ? `${i.package}:${i.arch}` : i.package) },
        { header: 'source', get: (i) => `${i.source} ${i.sourceVersion}` },
        { header: 'installed', get: (i) => i.installed },
        { header: 'fixed', get: (i) => i.fixed ?? (i.state === 'undetermined' ? '(undetermined)' : '(no fix yet)') },
        { header: 'severity', get: (i) => i.severity },
      ]),
    );
    console.log('');
  }
  const cves = (state: CveItem['state']) => new Set(items.filter((i) => i.state === state).map((i) => i.cve)).size;
  const all = new Set(items.map((i) => i.cve)).size;
  const packages = new Set(items.map((i) => `${i.package}:${i.arch}`)).size;
  const summary =
    all === 0
      ? `no open CVEs on ${label}`
      : `${all} CVEs affect ${label} (${packages} packages): ${cves('needed')} with a fix to install, ${cves('open')} without a fix${cves('undetermined') ? `, ${cves('undetermined')} undetermined` : ''}`;
  console.log(`${summary}; feeds: ${cat.feeds.join('; ')}`);
}

const MARK: Record<string, string> = { true: '✓', false: '✗', unknown: '?' };

function traceLines(node: TraceNode, depth: number, out: string[]): void {
  out.push(`${'  '.repeat(depth)}${MARK[node.result]} ${node.rule}${node.detail ? ` — ${node.detail}` : ''}`);
  for (const c of node.children ?? []) traceLines(c, depth + 1, out);
}

function explain(ids: string[], cat: Catalog, index: CatalogIndex, facts: EvalFacts, covered: boolean, json: boolean): void {
  for (const id of ids) {
    if (!cat.patches.has(id)) {
      throw new PatchwardenError('E_NOT_FOUND', `patch ${id} is not in the catalog`, { hint: 'scan --json lists the ids of the patches needed; the id is namespace/release/source-version' });
    }
  }
  const decisions = decideStates(index, facts, { covered }, ids);
  const out = ids.map((id) => {
    const p = cat.patches.get(id)!;
    return {
      id,
      title: p.title,
      ...decisions.get(id)!,
      supersedes: p.supersedes,
      supersededBy: index.supersededBy.get(id) ?? [],
      trace: { applicability: traceRule(p.applicability, facts), installed: traceRule(p.installed, facts) },
    };
  });
  if (json) return printJson(out);
  for (const e of out) {
    const lines = [`${e.id}: ${e.state}${e.by ? ` (by ${e.by})` : ''}${e.reason ? ` — ${e.reason}` : ''}`, `  ${e.title}`];
    if (e.missing?.length) lines.push(`  missing facts: ${e.missing.join(', ')}`);
    if (e.supersedes.length) lines.push(`  supersedes ${e.supersedes.join(', ')}`);
    if (e.supersededBy.length) lines.push(`  superseded by ${e.supersededBy.join(', ')}`);
    lines.push('  applicability:');
    traceLines(e.trace.applicability, 2, lines);
    lines.push('  installed:');
    traceLines(e.trace.installed, 2, lines);
    console.log(`${lines.join('\n')}\n`);
  }
}

export function scanCommand(program: Command): void {
  aptSourceOptions(
    program
      .command('scan')
      .description('list the patches this machine needs, from apt indexes or a catalog file (no server needed)')
      .option('--root <dir>', 'inspect this filesystem root (a sandbox or image); it is only read', '/')
      .option('--dpkg-status <file>', 'read this dpkg status file instead of <root>/var/lib/dpkg/status')
      .option('--apt-lists <dir>', 'an apt lists directory (repeatable; default <root>/var/lib/apt/lists when no --catalog is given)', collect)
      .option('--catalog <file>', 'a catalog file from `patchwarden catalog import-apt --out` (repeatable)', collect)
      .option('--osv <path>', 'OSV records of Debian (a folder or a file, repeatable): list the open CVEs of this machine', collect)
      .option('--debian-tracker <file>', "the Debian security tracker's JSON (a file or URL, repeatable): list the open CVEs", collect)
      .option('--server <url>', "evaluate against this server's catalog (with --token, or the admin-token file of --data-dir)")
      .option('--token <token>', 'admin token for --server (default $PATCHWARDEN_TOKEN)')
      .option('--data-dir <dir>', "the server's data directory, to find its admin-token file")
      .option('--explain <patch...>', 'print the state of these patches and the trace of their rules')
      .option('--json', 'print JSON: one item per installed package to update (with --osv/--debian-tracker: per CVE and package)'),
  )
    .addHelpText(
      'after',
      `
Examples:
  patchwarden scan                                   this machine against its own apt lists
  patchwarden scan --json | jq -r '.[].package'      the packages to update
  patchwarden scan --explain debian/bookworm/openssl-3.0.17-1~deb12u1
  patchwarden scan --root /srv/images/web1 --catalog catalog.json
  patchwarden scan --osv ./osv/Debian                the open CVEs of this machine
  patchwarden scan --debian-tracker tracker.json --json | jq -r '.[] | select(.fixed == null) | .cve'

Exit status: 0 when the scan ran, whether or not patches are needed (the list says which).
Non-zero on errors, and when no feed covers this machine's OS release and architecture: such a
machine is not assessed, which is never the same as fully patched.`,
    )
    .action(async (f: ScanFlags) => {
      const [cat, device] = await Promise.all([loadCatalog(f), deviceFacts(f)]);
      const { facts, label } = device;
      const covered = cat.coverage.some((p) => platformMatches(p, facts));
      const index = new CatalogIndex(cat.patches.values());
      if (f.explain) return explain(f.explain, cat, index, facts, covered, Boolean(f.json));
      if (!covered) {
        const have = [...new Set(cat.coverage.map((c) => `${c.distribution ?? c.family}/${c.release ?? '*'} (${(c.arch ?? ['any']).join(', ')})`))].join('; ');
        throw new PatchwardenError('E_NOT_FOUND', `not assessed: no feed covers this machine (${label}); the feeds cover ${have || 'nothing'}`, {
          hint: 'this is not "fully patched": give a feed for this release, e.g. --apt-lists DIR with its lists, --catalog FILE or --osv DIR with its records',
        });
      }
      const decisions = decideStates(index, facts, { covered });
      if (advisoryMode(f)) return printCves(decisions, cat, facts, label, Boolean(f.json));
      const items = neededItems(decisions, cat.patches, facts);
      if (f.json) return printJson(items);
      const patches = new Set(items.map((i) => i.patch)).size;
      const unknown = [...decisions.values()].filter((d) => d.state === 'unknown').length;
      if (items.length > 0) {
        console.log(
          table(items, [
            { header: 'package', get: (i) => (i.package && i.arch && i.arch !== 'all' && i.arch !== facts.os?.packageArch ? `${i.package}:${i.arch}` : i.package) },
            { header: 'installed', get: (i) => i.installed },
            { header: 'fixed version', get: (i) => i.version },
            { header: 'patch', get: (i) => i.patch },
            { header: 'severity', get: (i) => i.severity },
          ]),
        );
        console.log('');
      }
      const summary =
        items.length === 0
          ? `no patches needed on ${label}`
          : `${items.filter((i) => i.package).length} packages to update, by ${patches} patches, on ${label}`;
      console.log(`${summary}; catalog: ${cat.patches.size} patches from ${cat.feeds.join('; ')}${unknown ? `; ${unknown} patches unknown (facts missing)` : ''}`);
    });
}
