/**
 * Turns the binary records of one release's indexes into patch objects: one patch per (source
 * package, source version), fixing every binary built from it at that binary's own version
 * (binNMUs such as `+b1` differ from the source version). Successive versions of a source are
 * linked by `supersedes`, so a device is told about the newest one only.
 */
import { compareDebVersions, PatchManifest, type PatchManifest as Manifest, type Platform, type Rule } from '@patchwarden/core';
import type { BinaryRecord } from './packages-index.js';
import type { Problems } from './problems.js';

/** The release (distribution + codename) an index belongs to, and the suite that carries it. */
export interface IndexOrigin {
  /** Origin as written in the Release file (Debian) */
  originName: string;
  /** lowercase slug of Origin: the id namespace and the platform's distribution */
  distribution: string;
  /** codename of the release (bookworm for bookworm-security too) */
  release: string;
  /** what the title names: bookworm-security */
  suite: string;
  /** the Release file's Date, YYYY-MM-DD */
  date?: string;
  /** the suite carries security updates */
  security: boolean;
  /** the repository's base URL, where Filename paths lie (http://deb.debian.org/debian) */
  repository?: string;
}

interface Fix {
  name: string;
  /** as in the index, `all` included */
  arch: string;
  version: string;
  fetch?: { repository: string; path: string; size: number; sha256: string };
}

interface SourceVersion {
  source: string;
  version: string;
  fixes: Map<string, Fix>;
  suites: Set<string>;
  date?: string;
}

interface Group {
  originName: string;
  distribution: string;
  release: string;
  archs: Set<string>;
  security: boolean;
  sources: Map<string, Map<string, SourceVersion>>;
}

/** Limits of the rule schema: a combinator holds at most 1024 rules. */
const MAX_CHILDREN = 1024;

function combine(kind: 'all' | 'any', rules: Rule[]): Rule {
  if (rules.length <= MAX_CHILDREN) return kind === 'all' ? { all: rules } : { any: rules };
  const parts: Rule[] = [];
  for (let i = 0; i < rules.length; i += MAX_CHILDREN) parts.push(combine(kind, rules.slice(i, i + MAX_CHILDREN)));
  return combine(kind, parts);
}

/** `1:2.0-1` → `1_2.0-1`: a patch id has no ':' and no capitals. */
export function versionForId(version: string): string {
  return version.replace(':', '_').toLowerCase();
}

export function aptPatchId(distribution: string, release: string, source: string, version: string): string {
  return `${distribution}/${release}/${source}-${versionForId(version)}`;
}

function isKernel(sv: SourceVersion): boolean {
  if (sv.source === 'linux' || sv.source.startsWith('linux-signed-')) return true;
  for (const f of sv.fixes.values()) if (f.name.startsWith('linux-image-')) return true;
  return false;
}

/** `newer` replaces `older` only if it fixes each of older's binaries at a version at least as high. */
function covers(newer: SourceVersion, older: SourceVersion): boolean {
  for (const [k, f] of older.fixes) {
    const g = newer.fixes.get(k);
    if (!g || compareDebVersions(g.version, f.version) < 0) return false;
  }
  return true;
}

export class AptCatalogBuilder {
  private readonly groups = new Map<string, Group>();
  /** how often a newer version did not carry all binaries of the previous one */
  chainBreaks = 0;

  constructor(private readonly problems: Problems) {}

  addIndex(origin: IndexOrigin, indexArch: string, records: readonly BinaryRecord[]): void {
    const key = `${origin.distribution}/${origin.release}`;
    let g = this.groups.get(key);
    if (!g) {
      g = { originName: origin.originName, distribution: origin.distribution, release: origin.release, archs: new Set(), security: false, sources: new Map() };
      this.groups.set(key, g);
    }
    g.archs.add(indexArch);
    if (origin.security) g.security = true;
    for (const r of records) {
      let versions = g.sources.get(r.source);
      if (!versions) g.sources.set(r.source, (versions = new Map()));
      let sv = versions.get(r.sourceVersion);
      if (!sv) versions.set(r.sourceVersion, (sv = { source: r.source, version: r.sourceVersion, fixes: new Map(), suites: new Set() }));
      sv.suites.add(origin.suite);
      // the suite that carried it first is the best date we have
      if (origin.date && (!sv.date || origin.date < sv.date)) sv.date = origin.date;
      const fk = `${r.name}\t${r.arch}`;
      const known = sv.fixes.get(fk);
      if (!known || compareDebVersions(r.version, known.version) > 0) {
        const fix: Fix = { name: r.name, arch: r.arch, version: r.version };
        if (r.file && origin.repository) fix.fetch = { repository: origin.repository, ...r.file };
        sv.fixes.set(fk, fix);
      }
    }
  }

  build(): { patches: Manifest[]; coverage: Platform[] } {
    const patches: Manifest[] = [];
    const coverage: Platform[] = [];
    for (const g of this.groups.values()) {
      const arch = [...g.archs].sort();
      coverage.push({ family: 'linux', distribution: g.distribution, release: g.release, arch });
      if (!g.security) {
        this.problems.warn(`${g.distribution}/${g.release}`, `no security suite was imported for ${g.release}: devices are checked against the other suites only`);
      }
      const platforms: Platform[] = [{ family: 'linux', distribution: g.distribution, release: g.release, arch }];
      const ids = new Set<string>();
      for (const versions of g.sources.values()) {
        const sorted = [...versions.values()].sort((a, b) => compareDebVersions(a.version, b.version));
        let prev: { sv: SourceVersion; id: string } | null = null;
        for (const sv of sorted) {
          const id = aptPatchId(g.distribution, g.release, sv.source, sv.version);
          if (ids.has(id)) {
            this.problems.add({ level: 'error', file: `${g.distribution}/${g.release}`, package: sv.source, message: `version ${sv.version} maps to the id ${id} of another version; skipped` });
            continue;
          }
          ids.add(id);
          const supersedes: string[] = [];
          if (prev) {
            if (covers(sv, prev.sv)) supersedes.push(prev.id);
            else this.chainBreaks++;
          }
          const m = this.manifest(g, platforms, sv, id, supersedes);
          if (m) {
            patches.push(m);
            prev = { sv, id };
          }
        }
      }
    }
    return { patches, coverage };
  }

  private manifest(g: Group, platforms: Platform[], sv: SourceVersion, id: string, supersedes: string[]): Manifest | null {
    const fixes = [...sv.fixes.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.arch < b.arch ? -1 : a.arch > b.arch ? 1 : 0));
    // arch-specific binaries are tested on their architecture; `all` ones on any
    const test = (f: Fix) => ({ manager: 'dpkg' as const, name: f.name, ...(f.arch === 'all' ? {} : { arch: f.arch }) });
    const kernel = isKernel(sv);
    const title = `${sv.source} ${sv.version} (${[...sv.suites].sort().join(', ')})`;
    const raw = {
      id,
      revision: 1,
      title: title.length > 300 ? `${title.slice(0, 299)}…` : title,
      vendor: g.originName,
      product: sv.source,
      severity: 'unknown',
      ...(sv.date ? { releaseDate: sv.date } : {}),
      platforms,
      applicability: combine('any', fixes.map((f) => ({ package: { ...test(f), installed: true as const } }))),
      installed: combine(
        'all',
        fixes.map((f) => ({ any: [{ package: { ...test(f), absent: true as const } }, { package: { ...test(f), version: { ge: f.version } } }] })),
      ),
      supersedes,
      restart: kernel ? { reboot: 'required', kernel: true } : { reboot: 'never', kernel: false },
      fixes: fixes.map((f) => ({ manager: 'dpkg', name: f.name, arch: f.arch, version: f.version })),
      // installing the patch upgrades the binaries a device has to the fixed versions, from the
      // repository the device already trusts (or the server's cached copy of the same file)
      install: fixes.map((f) => ({
        type: 'package',
        manager: 'apt',
        op: 'upgrade',
        name: f.name,
        version: f.version,
        ...(f.arch === 'all' ? {} : { arch: f.arch }),
        ...(f.fetch ? { fetch: f.fetch } : {}),
      })),
    };
    const r = PatchManifest.safeParse(raw);
    if (r.success) return r.data;
    const i = r.error.issues[0]!;
    this.problems.add({ level: 'error', file: `${g.distribution}/${g.release}`, package: sv.source, message: `patch ${id} is not valid (${i.path.join('.')}: ${i.message}); skipped` });
    return null;
  }
}
