/**
 * The Debian security tracker's JSON (https://security-tracker.debian.org/tracker/data/json):
 *
 *   { "<source>": { "CVE-2023-5363": { "description", "scope", "debianbug",
 *       "releases": { "bookworm": { "status": "resolved" | "open" | "undetermined",
 *                                   "fixed_version", "urgency", "repositories": {…} } } } } }
 *
 * resolved with a version → a fix (a patch per release, source and version); resolved with
 * `fixed_version` "0" → the release was never affected; open → affected, no fix (scan lists it
 * with `fixed: null`); undetermined → the tracker does not know, which scan says as it is. Every
 * entry is checked where it stands; a bad one is reported with its JSON path and skipped.
 */
import { z } from 'zod';
import { PatchwardenError, type Severity } from '@patchwarden/core';
import { isCodename, sourceNameProblem, versionProblem } from '../osv/debian.js';
import { jsonPath, quote, type FeedProblems } from '../osv/problems.js';
import type { FeedTally } from '../osv/result.js';
import { DEFAULT_SEVERITY, UNRATED_URGENCIES, wordSeverity } from '../osv/severity.js';
import type { SourcePatchBuilder } from '../osv/source-patches.js';

const CVE_RE = /^CVE-\d{4}-\d{4,}$/;
/** the tracker's names for issues that have no CVE yet */
const TEMP_RE = /^TEMP-\d{7}-[0-9A-F]{6}$/;

const Entry = z.object({
  description: z.string().max(20_000).optional(),
  scope: z.string().max(32).optional(),
  debianbug: z.number().int().nonnegative().optional(),
  releases: z.record(z.string(), z.unknown()),
});

const Release = z.object({
  status: z.enum(['resolved', 'open', 'undetermined']),
  fixed_version: z.string().max(256).optional(),
  urgency: z.string().max(64).optional(),
  repositories: z.record(z.string().max(64), z.string().max(256)).optional(),
  nodsa: z.string().max(1000).optional(),
  nodsa_reason: z.string().max(1000).optional(),
});

export interface TrackerOptions {
  /** only these releases (codenames); default all */
  releases?: string[];
}

interface Context {
  where: string;
  builder: SourcePatchBuilder;
  problems: FeedProblems;
  tally: FeedTally;
  opts: TrackerOptions;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function firstIssue(e: z.ZodError): { path: (string | number)[]; message: string } {
  const i = e.issues[0]!;
  return { path: i.path as (string | number)[], message: i.message };
}

function severityOf(urgency: string | undefined, at: (string | number)[], source: string, ctx: Context): Severity {
  if (urgency === undefined) return DEFAULT_SEVERITY;
  const s = wordSeverity(urgency);
  if (s) return s;
  const plain = urgency.replace(/\*+$/, '').trim().toLowerCase();
  if (!UNRATED_URGENCIES.has(plain)) ctx.problems.warn(ctx.where, jsonPath([...at, 'urgency']), `unknown urgency ${quote(urgency)}; taken as ${DEFAULT_SEVERITY}`, source);
  return DEFAULT_SEVERITY;
}

function summaryOf(issue: string, description: string | undefined): string {
  const line = (description ?? '').trim().split('\n')[0]!.trim();
  return line ? `${issue}: ${line.length > 200 ? `${line.slice(0, 199)}…` : line}` : issue;
}

function importRelease(source: string, issue: string, summary: string, name: string, value: unknown, at: (string | number)[], ctx: Context): void {
  if (!isCodename(name)) {
    ctx.problems.error(ctx.where, jsonPath(at), `${quote(name)} is not a release codename; skipped`, source);
    return;
  }
  const r = Release.safeParse(value);
  if (!r.success) {
    const i = firstIssue(r.error);
    ctx.problems.error(ctx.where, jsonPath([...at, ...i.path]), `${i.message}; ${issue} for ${name} skipped`, source);
    return;
  }
  const ref = { distribution: 'debian', release: name };
  ctx.builder.release(ref);
  const rel = r.data;
  const severity = severityOf(rel.urgency, at, source, ctx);
  const ids = CVE_RE.test(issue) ? { cves: [issue], advisories: [] } : { cves: [], advisories: [issue] };
  const common = { ...ref, source, ...ids, severity, summary };
  if (rel.status !== 'resolved') {
    ctx.builder.addOpen({ ...common, status: rel.status, bounds: {} });
    return;
  }
  if (rel.fixed_version === undefined) {
    ctx.problems.error(ctx.where, jsonPath([...at, 'fixed_version']), `resolved without a fixed_version; ${issue} for ${name} skipped`, source);
    return;
  }
  if (rel.fixed_version === '0') {
    ctx.builder.notAffected(ref);
    return;
  }
  const why = versionProblem(rel.fixed_version, 'fixed_version');
  if (why) {
    ctx.problems.error(ctx.where, jsonPath([...at, 'fixed_version']), `${why}; ${issue} for ${name} skipped`, source);
    return;
  }
  ctx.builder.addFix({ ...common, fixed: rel.fixed_version, introduced: '0' });
}

function importIssue(source: string, issue: string, value: unknown, ctx: Context): void {
  const at = [source, issue];
  ctx.tally.records++;
  if (!CVE_RE.test(issue) && !TEMP_RE.test(issue)) {
    ctx.problems.error(ctx.where, jsonPath(at), `${quote(issue)} is neither a CVE nor a TEMP id; skipped`, source);
    return;
  }
  const e = Entry.safeParse(value);
  if (!e.success) {
    const i = firstIssue(e.error);
    ctx.problems.error(ctx.where, jsonPath([...at, ...i.path]), `${i.message}; ${issue} skipped`, source);
    return;
  }
  const summary = summaryOf(issue, e.data.description);
  for (const [name, rel] of Object.entries(e.data.releases)) {
    if (ctx.opts.releases && !ctx.opts.releases.includes(name)) continue;
    importRelease(source, issue, summary, name, rel, [...at, 'releases', name], ctx);
  }
}

/** Walks the parsed document; `where` names it in problems. */
export function importTrackerDocument(doc: unknown, where: string, builder: SourcePatchBuilder, problems: FeedProblems, tally: FeedTally, opts: TrackerOptions = {}): void {
  if (!isObject(doc)) {
    throw new PatchwardenError('E_FEED_INVALID', `${where} is not the Debian security tracker's JSON: expected an object of source packages at $`, {
      hint: 'fetch https://security-tracker.debian.org/tracker/data/json',
    });
  }
  const ctx: Context = { where, builder, problems, tally, opts };
  for (const [source, issues] of Object.entries(doc)) {
    const bad = sourceNameProblem(source);
    const count = isObject(issues) ? Object.keys(issues).length : 0;
    if (bad || !isObject(issues)) {
      tally.records += count;
      problems.error(where, jsonPath([source]), `${bad ?? 'expected an object of issues'}; ${count} ${count === 1 ? 'entry' : 'entries'} skipped`);
      continue;
    }
    for (const [issue, value] of Object.entries(issues)) importIssue(source, issue, value, ctx);
  }
}
