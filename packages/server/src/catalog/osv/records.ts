/**
 * One checked OSV record onto the patch builder. Debian records name a source package per
 * release (`Debian:12` / openssl); each ECOSYSTEM range gives intervals `[introduced, fixed)`,
 * which become patches, or `[introduced, last_affected]` and `[introduced, …)` with no fix,
 * which become open vulnerabilities. Names and versions must follow dpkg's grammar: an affected
 * entry that breaks it is reported with its JSON path and skipped, the rest of the record stays.
 */
import { compareDebVersions, type Severity } from '@patchwarden/core';
import { debianRelease, sourceNameProblem, versionProblem } from './debian.js';
import { jsonPath, quote, type FeedProblems } from './problems.js';
import type { FeedTally } from './result.js';
import { eventKind, OSV_ID_RE, type OsvAffected, type OsvRange, type OsvRecord } from './schema.js';
import { DEFAULT_SEVERITY, osvSeverity, wordSeverity } from './severity.js';
import type { Bounds, ReleaseRef, SourcePatchBuilder } from './source-patches.js';

const CVE_RE = /^CVE-\d{4}-\d{4,}$/;
/** Debian's advisories: the CVEs under `related` are the ones they fix */
const DEBIAN_ADVISORY_RE = /^(DSA|DLA|DTSA)-/;

export interface RecordContext {
  file: string;
  /** the record's place in its file: [] for a file that is one record, [i] in an array */
  at: (string | number)[];
  builder: SourcePatchBuilder;
  problems: FeedProblems;
  tally: FeedTally;
}

interface Ids {
  cves: string[];
  advisories: string[];
}

function collectIds(rec: OsvRecord, ctx: RecordContext): Ids {
  const cves = new Set<string>();
  const advisories = new Set<string>();
  (CVE_RE.test(rec.id) ? cves : advisories).add(rec.id);
  const lists: ['aliases' | 'upstream' | 'related', readonly string[] | null | undefined][] = [
    ['aliases', rec.aliases],
    ['upstream', rec.upstream],
    ['related', DEBIAN_ADVISORY_RE.test(rec.id) ? rec.related : undefined],
  ];
  for (const [field, list] of lists) {
    for (const [i, id] of (list ?? []).entries()) {
      if (CVE_RE.test(id)) cves.add(id);
      else if (field === 'related') continue;
      else if (OSV_ID_RE.test(id)) advisories.add(id);
      else ctx.problems.warn(ctx.file, jsonPath([...ctx.at, field, i]), `${quote(id)} is not an advisory id; left out`);
    }
  }
  return { cves: [...cves], advisories: [...advisories] };
}

function firstScored(list: readonly { type: string; score: string }[] | null | undefined): Severity | null {
  for (const s of list ?? []) {
    const v = osvSeverity(s);
    if (v) return v;
  }
  return null;
}

function wordOf(o: Record<string, unknown> | undefined, key: string): Severity | null {
  const v = o?.[key];
  return typeof v === 'string' ? wordSeverity(v) : null;
}

/** CVSS first (the entry's, then the record's), then Debian's urgency, then the database's word. */
function severityOf(rec: OsvRecord, a: OsvAffected): Severity {
  return (
    firstScored(a.severity) ??
    firstScored(rec.severity) ??
    wordOf(a.ecosystem_specific, 'urgency') ??
    wordOf(a.database_specific, 'severity') ??
    wordOf(rec.database_specific, 'severity') ??
    DEFAULT_SEVERITY
  );
}

function summaryOf(rec: OsvRecord): string {
  const text = (rec.summary ?? rec.details ?? '').trim().split('\n')[0]!.trim();
  const clipped = text.length > 200 ? `${text.slice(0, 199)}…` : text;
  return clipped ? `${rec.id}: ${clipped}` : rec.id;
}

interface Interval {
  introduced: string;
  fixed?: string;
  lastAffected?: string;
  limit?: string;
}

/** OSV's evaluation: events in version order, `introduced` opens, `fixed`/`last_affected` close. */
export function intervals(range: OsvRange): Interval[] {
  const events = range.events.map((e) => ({ kind: eventKind(e), version: e[eventKind(e)]! }));
  // `introduced: 0` means "from the beginning", below every real version
  const order = (v: { kind: string; version: string }) => (v.kind === 'introduced' && v.version === '0' ? -1 : 0);
  const sorted = events.filter((e) => e.kind !== 'limit').sort((a, b) => order(a) - order(b) || (order(a) === -1 ? 0 : compareDebVersions(a.version, b.version)));
  const limits = events.filter((e) => e.kind === 'limit').map((e) => e.version).sort(compareDebVersions);
  const out: Interval[] = [];
  let open: string | null = null;
  for (const e of sorted) {
    if (e.kind === 'introduced') open ??= e.version;
    else if (open !== null) {
      out.push(e.kind === 'fixed' ? { introduced: open, fixed: e.version } : { introduced: open, lastAffected: e.version });
      open = null;
    }
  }
  if (open !== null) out.push({ introduced: open, ...(limits.length ? { limit: limits[0]! } : {}) });
  return out;
}

/** Every name and version of a Debian entry against dpkg's grammar; the first failure, with its path. */
function entryProblem(a: OsvAffected, at: (string | number)[]): { path: string; reason: string } | null {
  const name = sourceNameProblem(a.package!.name);
  if (name) return { path: jsonPath([...at, 'package', 'name']), reason: name };
  for (const [j, r] of (a.ranges ?? []).entries()) {
    if (r.type !== 'ECOSYSTEM') continue;
    for (const [k, e] of r.events.entries()) {
      const kind = eventKind(e);
      const why = versionProblem(e[kind]!, `${kind} version`);
      if (why) return { path: jsonPath([...at, 'ranges', j, 'events', k, kind]), reason: why };
    }
  }
  for (const [j, v] of (a.versions ?? []).entries()) {
    const why = versionProblem(v);
    if (why) return { path: jsonPath([...at, 'versions', j]), reason: why };
  }
  return null;
}

function importDebianEntry(rec: OsvRecord, a: OsvAffected, ref: ReleaseRef, i: number, ids: Ids, ctx: RecordContext): void {
  const at = [...ctx.at, 'affected', i];
  const source = a.package!.name;
  const bad = entryProblem(a, at);
  if (bad) {
    ctx.problems.error(ctx.file, bad.path, `${bad.reason}; ${rec.id} for ${ref.release} skipped`);
    return;
  }
  ctx.builder.release(ref);
  const severity = severityOf(rec, a);
  const summary = summaryOf(rec);
  const date = rec.published?.slice(0, 10);
  const common = { ...ref, source, ...ids, severity, summary };
  let used = false;
  for (const [j, r] of (a.ranges ?? []).entries()) {
    if (r.type !== 'ECOSYSTEM') {
      ctx.problems.warn(ctx.file, jsonPath([...at, 'ranges', j, 'type']), `a ${r.type} range does not order Debian versions; ignored`, source);
      continue;
    }
    used = true;
    for (const iv of intervals(r)) {
      if (iv.fixed !== undefined) {
        if (iv.fixed === '0') ctx.builder.notAffected(ref);
        else ctx.builder.addFix({ ...common, fixed: iv.fixed, introduced: iv.introduced, ...(date ? { date } : {}) });
      } else {
        const bounds: Bounds = { introduced: iv.introduced };
        if (iv.lastAffected !== undefined) bounds.lastAffected = iv.lastAffected;
        if (iv.limit !== undefined) bounds.limit = iv.limit;
        ctx.builder.addOpen({ ...common, status: 'open', bounds });
      }
    }
  }
  if (!used && a.versions?.length) {
    ctx.builder.addOpen({ ...common, status: 'open', bounds: { versions: a.versions } });
    used = true;
  }
  if (!used) ctx.problems.warn(ctx.file, jsonPath(at), `no ECOSYSTEM range and no versions: ${rec.id} says nothing usable for ${ref.release}`, source);
}

/** Imports what the record says about Debian; counts the ecosystems it names that we do not handle. */
export function importRecord(rec: OsvRecord, ctx: RecordContext): void {
  if (rec.withdrawn) {
    ctx.tally.withdrawn++;
    ctx.problems.warn(ctx.file, jsonPath([...ctx.at, 'withdrawn']), `${rec.id} was withdrawn on ${rec.withdrawn.slice(0, 10)}; not imported`);
    return;
  }
  const ids = collectIds(rec, ctx);
  const others = new Set<string>();
  const affected = rec.affected ?? [];
  if (affected.length === 0) others.add('(no affected package)');
  for (const [i, a] of affected.entries()) {
    if (!a.package) {
      others.add('(no package)');
      continue;
    }
    const release = debianRelease(a.package.ecosystem);
    if (release === null) {
      others.add(a.package.ecosystem.split(':')[0]!);
      continue;
    }
    if (release === undefined) {
      others.add('Debian (no release)');
      ctx.problems.warn(ctx.file, jsonPath([...ctx.at, 'affected', i, 'package', 'ecosystem']), `${quote(a.package.ecosystem)} names no Debian release; entry skipped`);
      continue;
    }
    importDebianEntry(rec, a, { distribution: 'debian', release }, i, ids, ctx);
  }
  for (const e of others) ctx.tally.unhandled.set(e, (ctx.tally.unhandled.get(e) ?? 0) + 1);
}
