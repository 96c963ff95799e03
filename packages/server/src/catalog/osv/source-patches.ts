/**
 * Patch objects for advisory feeds that name source packages (OSV's Debian records, the Debian
 * security tracker): one patch per (release, source package, fixed version), carrying every CVE
 * and advisory id that version closes. Its rules read the `source` facts of installed packages:
 * applicable when a binary built from that source is installed (dpkg omits Source when it equals
 * the package name; core falls back to the name), installed when no such binary has a source
 * version below the fix. The source version is what dpkg records in `Source: name (version)`, so
 * binNMUs (`1.2-3+b1`) and binaries with versions of their own (`1:2.38.1-5` from util-linux
 * `2.38.1-5`) compare right. Vulnerabilities without a fix are no patch (nothing to install):
 * they are kept as open vulnerabilities, with a rule that says when a device is affected.
 */
import { PatchManifest, type PatchManifest as Manifest, type Platform, type Rule, type Severity, compareDebVersions } from '@patchwarden/core';
import { versionForId } from '../apt/patches.js';
import type { FeedProblems } from './problems.js';
import { maxSeverity } from './severity.js';

export type FeedNamespace = 'osv' | 'debian-tracker';

export interface ReleaseRef {
  /** lowercase distribution id, as os-release's ID: debian */
  distribution: string;
  /** codename: bookworm */
  release: string;
}

interface Ids {
  cves: readonly string[];
  /** DSA/DLA/DEBIAN-CVE/TEMP ids and other aliases that are no CVE */
  advisories: readonly string[];
}

export interface FixInput extends ReleaseRef, Ids {
  source: string;
  fixed: string;
  /** the first affected version; `0`: every version before the fix */
  introduced: string;
  severity: Severity;
  /** YYYY-MM-DD: when the advisory was published */
  date?: string;
  summary?: string;
}

/** Which versions of the source an open vulnerability affects (all, when empty). */
export interface Bounds {
  introduced?: string;
  /** affected up to and including this version */
  lastAffected?: string;
  /** affected below this version */
  limit?: string;
  /** exactly these versions */
  versions?: string[];
}

export interface OpenInput extends ReleaseRef, Ids {
  source: string;
  severity: Severity;
  status: 'open' | 'undetermined';
  bounds: Bounds;
  summary?: string;
}

/** A vulnerability with no fixed version (yet): what `scan` lists with `fixed: null`. */
export interface OpenVulnerability extends ReleaseRef {
  feed: FeedNamespace;
  source: string;
  cves: string[];
  advisories: string[];
  severity: Severity;
  /** open: affected, no fix; undetermined: the feed does not know whether the release is affected */
  status: 'open' | 'undetermined';
  platform: Platform;
  /** true on a device whose installed binaries of `source` are affected (core's rule language) */
  affected: Rule;
  summary?: string;
}

export interface ReleaseSummary extends ReleaseRef {
  patches: number;
  /** distinct CVEs the patches close */
  cves: number;
  /** open vulnerabilities (no fix), undetermined ones included */
  open: number;
  /** entries that say the release is not affected (the tracker's fixed_version 0) */
  notAffected: number;
}

interface Fix {
  source: string;
  version: string;
  introduced: Set<string>;
  cves: Set<string>;
  advisories: Set<string>;
  severity: Severity;
  date?: string;
  summaries: Set<string>;
}

interface Group {
  ref: ReleaseRef;
  sources: Map<string, Map<string, Fix>>;
  open: OpenVulnerability[];
  notAffected: number;
}

/** Limits of the manifest schema. */
const MAX_IDS = 1000;
const MAX_CHILDREN = 1024;
const MAX_TITLE = 300;
const MAX_DESCRIPTION = 20_000;

export function patchId(namespace: FeedNamespace, ref: ReleaseRef, source: string, version: string): string {
  return `${namespace}/${ref.distribution}/${ref.release}/${source}-${versionForId(version)}`;
}

/** CVE-2023-5363 before CVE-2023-38545: by year, then by number. */
export function compareIds(a: string, b: string): number {
  const ma = /^CVE-(\d{4})-(\d+)$/.exec(a);
  const mb = /^CVE-(\d{4})-(\d+)$/.exec(b);
  if (ma && mb) return Number(ma[1]) - Number(mb[1]) || Number(ma[2]) - Number(mb[2]);
  if (ma || mb) return ma ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

function combine(kind: 'all' | 'any', rules: Rule[]): Rule {
  if (rules.length === 1) return rules[0]!;
  if (rules.length <= MAX_CHILDREN) return kind === 'all' ? { all: rules } : { any: rules };
  const parts: Rule[] = [];
  for (let i = 0; i < rules.length; i += MAX_CHILDREN) parts.push(combine(kind, rules.slice(i, i + MAX_CHILDREN)));
  return combine(kind, parts);
}

const sourceTest = (source: string) => ({ manager: 'dpkg' as const, name: source, match: 'source' as const });

/** When an open vulnerability affects a device: a binary of the source in the bounds. */
export function affectedRule(source: string, b: Bounds): Rule {
  const t = sourceTest(source);
  if (b.versions?.length) return combine('any', b.versions.map((v) => ({ package: { ...t, version: { eq: v } } })));
  const parts: Rule[] = [];
  if (b.introduced !== undefined && b.introduced !== '0') parts.push({ package: { ...t, version: { ge: b.introduced } } });
  if (b.lastAffected !== undefined) parts.push({ package: { ...t, version: { le: b.lastAffected } } });
  if (b.limit !== undefined) parts.push({ package: { ...t, version: { lt: b.limit } } });
  return parts.length ? combine('all', parts) : { package: { ...t, installed: true } };
}

function isKernel(source: string): boolean {
  return source === 'linux' || source.startsWith('linux-signed-');
}

const clip = (s: string, max: number) => (s.length > max ? `${s.slice(0, max - 1)}…` : s);

export class SourcePatchBuilder {
  private readonly groups = new Map<string, Group>();

  constructor(
    private readonly namespace: FeedNamespace,
    private readonly vendor: string,
    private readonly problems: FeedProblems,
  ) {}

  /** The release is covered by this feed, even if it brings no patch for it. */
  release(ref: ReleaseRef): Group {
    const key = `${ref.distribution}/${ref.release}`;
    let g = this.groups.get(key);
    if (!g) this.groups.set(key, (g = { ref: { distribution: ref.distribution, release: ref.release }, sources: new Map(), open: [], notAffected: 0 }));
    return g;
  }

  addFix(f: FixInput): void {
    const g = this.release(f);
    let versions = g.sources.get(f.source);
    if (!versions) g.sources.set(f.source, (versions = new Map()));
    let fix = versions.get(f.fixed);
    if (!fix) {
      versions.set(f.fixed, (fix = { source: f.source, version: f.fixed, introduced: new Set(), cves: new Set(), advisories: new Set(), severity: f.severity, summaries: new Set() }));
    }
    fix.introduced.add(f.introduced);
    for (const c of f.cves) fix.cves.add(c);
    for (const a of f.advisories) fix.advisories.add(a);
    fix.severity = maxSeverity(fix.severity, f.severity);
    if (f.date && (!fix.date || f.date < fix.date)) fix.date = f.date;
    if (f.summary) fix.summaries.add(f.summary);
  }

  addOpen(o: OpenInput): void {
    const g = this.release(o);
    g.open.push({
      feed: this.namespace,
      distribution: o.distribution,
      release: o.release,
      source: o.source,
      cves: [...new Set(o.cves)].sort(compareIds),
      advisories: [...new Set(o.advisories)].sort(compareIds),
      severity: o.severity,
      status: o.status,
      platform: { family: 'linux', distribution: o.distribution, release: o.release },
      affected: affectedRule(o.source, o.bounds),
      ...(o.summary ? { summary: o.summary } : {}),
    });
  }

  notAffected(ref: ReleaseRef): void {
    this.release(ref).notAffected++;
  }

  build(): { patches: Manifest[]; coverage: Platform[]; open: OpenVulnerability[]; releases: ReleaseSummary[] } {
    const patches: Manifest[] = [];
    const coverage: Platform[] = [];
    const open: OpenVulnerability[] = [];
    const releases: ReleaseSummary[] = [];
    for (const g of [...this.groups.values()].sort((a, b) => (`${a.ref.distribution}/${a.ref.release}` < `${b.ref.distribution}/${b.ref.release}` ? -1 : 1))) {
      const platform: Platform = { family: 'linux', distribution: g.ref.distribution, release: g.ref.release };
      coverage.push(platform);
      const ids = new Set<string>();
      const cves = new Set<string>();
      let count = 0;
      for (const [source, versions] of [...g.sources].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
        let prev: string | null = null;
        for (const fix of [...versions.values()].sort((a, b) => compareDebVersions(a.version, b.version))) {
          const id = patchId(this.namespace, g.ref, source, fix.version);
          if (ids.has(id)) {
            this.problems.error(`${this.namespace}:${g.ref.distribution}/${g.ref.release}`, undefined, `version ${fix.version} maps to the id ${id} of another version; skipped`, source);
            continue;
          }
          ids.add(id);
          const m = this.manifest(g.ref, platform, fix, id, prev ? [prev] : []);
          if (!m) continue;
          patches.push(m);
          for (const c of m.cves) cves.add(c);
          count++;
          // a later fix of the same source also closes what the earlier one closed
          prev = id;
        }
      }
      open.push(...g.open);
      releases.push({ ...g.ref, patches: count, cves: cves.size, open: g.open.length, notAffected: g.notAffected });
    }
    return { patches, coverage, open, releases };
  }

  private manifest(ref: ReleaseRef, platform: Platform, fix: Fix, id: string, supersedes: string[]): Manifest | null {
    const where = `${this.namespace}:${ref.distribution}/${ref.release}`;
    let cves = [...fix.cves].sort(compareIds);
    let advisories = [...fix.advisories].sort(compareIds);
    if (cves.length > MAX_IDS || advisories.length > MAX_IDS) {
      this.problems.warn(where, undefined, `patch ${id} closes ${cves.length} CVEs and ${advisories.length} advisories; its manifest lists the first ${MAX_IDS} of each`, fix.source);
      cves = cves.slice(0, MAX_IDS);
      advisories = advisories.slice(0, MAX_IDS);
    }
    const t = sourceTest(fix.source);
    const introduced = [...fix.introduced].sort(compareDebVersions);
    const named = [...advisories.filter((a) => !a.startsWith('DEBIAN-CVE-')), ...cves];
    const raw = {
      id,
      revision: 1,
      title: clip(`${fix.source} ${fix.version}${named.length ? ` (${named.join(', ')})` : ''}`, MAX_TITLE),
      ...(fix.summaries.size ? { description: clip([...fix.summaries].sort().join('\n'), MAX_DESCRIPTION) } : {}),
      vendor: this.vendor,
      product: fix.source,
      severity: fix.severity,
      cves,
      advisories,
      ...(fix.date ? { releaseDate: fix.date } : {}),
      platforms: [platform],
      applicability: introduced.includes('0')
        ? { package: { ...t, installed: true as const } }
        : combine('any', introduced.map((v) => ({ package: { ...t, version: { ge: v } } }))),
      // every installed binary of the source must be at the fix: one left behind is still vulnerable
      installed: { not: { package: { ...t, version: { lt: fix.version } } } },
      supersedes,
      restart: isKernel(fix.source) ? { reboot: 'required', kernel: true } : { reboot: 'never', kernel: false },
      // fixes name binary packages; these feeds know only the source, which the rules test
      fixes: [],
    };
    const r = PatchManifest.safeParse(raw);
    if (r.success) return r.data;
    const i = r.error.issues[0]!;
    this.problems.error(where, undefined, `patch ${id} is not valid (${i.path.join('.')}: ${i.message}); skipped`, fix.source);
    return null;
  }
}
