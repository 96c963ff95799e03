/**
 * `patchwarden scan`: what this machine (or a root directory) needs, decided locally by the same
 * engine the server uses (core's decideStates), from feeds named on the command line. No server.
 */
import { join } from 'node:path';
import type { Command } from 'commander';
import {
  CatalogIndex,
  decideStates,
  makeEvalFacts,
  MANAGER_SCHEME,
  PatchwardenError,
  platformMatches,
  traceRule,
  VERSION_SCHEMES,
  type EvalFacts,
  type PatchDecision,
  type PatchManifest,
  type Platform,
  type RuleManager,
  type TraceNode,
} from '@patchwarden/core';
import { aptSourceOptions, loadApt, parseCatalogFile, readCatalogFile, reportProblems, type AptSourceFlags } from './catalog.js';
import { printJson, table } from '../output.js';

interface ScanFlags extends AptSourceFlags {
  root: string;
  server?: string;
  token?: string;
  dataDir?: string;
  dpkgStatus?: string;
  aptLists?: string[];
  catalog?: string[];
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

interface Catalog {
  patches: Map<string, PatchManifest>;
  coverage: Platform[];
  feeds: string[];
}

const collect = (v: string, prev: string[] | undefined) => [...(prev ?? []), v];

async function loadCatalog(f: ScanFlags): Promise<Catalog> {
  const cat: Catalog = { patches: new Map(), coverage: [], feeds: [] };
  const add = (patches: PatchManifest[], coverage: Platform[]) => {
    for (const p of patches) {
      const known = cat.patches.get(p.id);
      // a higher revision replaces a lower one, as in the server's catalog
      if (!known || p.revision > known.revision) cat.patches.set(p.id, p);
    }
    cat.coverage.push(...coverage);
  };
  const lists = f.aptLists ?? (f.catalog || f.server ? [] : [join(f.root, 'var/lib/apt/lists')]);
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
      .option('--server <url>', "evaluate against this server's catalog (with --token, or the admin-token file of --data-dir)")
      .option('--token <token>', 'admin token for --server (default $PATCHWARDEN_TOKEN)')
      .option('--data-dir <dir>', "the server's data directory, to find its admin-token file")
      .option('--explain <patch...>', 'print the state of these patches and the trace of their rules')
      .option('--json', 'print JSON: one item per installed package to update'),
  )
    .addHelpText(
      'after',
      `
Examples:
  patchwarden scan                                   this machine against its own apt lists
  patchwarden scan --json | jq -r '.[].package'      the packages to update
  patchwarden scan --explain debian/bookworm/openssl-3.0.17-1~deb12u1
  patchwarden scan --root /srv/images/web1 --catalog catalog.json

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
          hint: 'this is not "fully patched": give a feed for this release, e.g. --apt-lists DIR with its lists or --catalog FILE',
        });
      }
      const decisions = decideStates(index, facts, { covered });
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
