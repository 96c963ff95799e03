/**
 * Approval rules: per group, conditions on a patch (minimum severity, vendors, a cool-down from
 * its release date, a fixed CVE flagged as exploited, a passed test ring) under which the server
 * approves it for the group, marked with the rule as source. A rule only ever adds approvals: an
 * administrator's decision (approve or decline) for the patch and group is never replaced, and
 * neither is an earlier rule's. Rules look at patches that at least one active device needs.
 */
import type { Kysely } from 'kysely';
import { z } from 'zod';
import { PatchwardenError, SEVERITIES, type Severity } from '@patchwarden/core';
import type { DB } from '../db/schema.js';
import { newId } from '../auth/tokens.js';
import { findGroup } from '../groups/store.js';
import { intList, textList } from '../groups/membership.js';
import { passedTestRing } from '../deployments/testring.js';

type Db = Kysely<DB>;
const DAY = 24 * 60 * 60_000;
const CHUNK = 500;

export const RULE_SEVERITIES = ['critical', 'high', 'medium', 'low'] as const;
const RANK: Record<Severity, number> = { critical: 4, high: 3, medium: 2, low: 1, none: 0, unknown: -1 };

export const ApprovalRuleInput = z.strictObject({
  group: z.string().min(1).max(200),
  /** the patch's severity is at least this (unknown never is) */
  minSeverity: z.enum(RULE_SEVERITIES).optional(),
  /** the patch's vendor (its manifest's `vendor`, else its id's namespace: `debian/…`), any case */
  vendors: z.array(z.string().min(1).max(100)).min(1).max(50).optional(),
  /** cool-down: days since the patch's release date (or its import, when it has none) */
  minAgeDays: z.number().int().min(0).max(3650).optional(),
  /** the patch fixes a CVE flagged as exploited */
  exploitedOnly: z.boolean().default(false),
  /** the patch passed the test ring */
  requireTestPass: z.boolean().default(false),
});
export type ApprovalRuleInput = z.input<typeof ApprovalRuleInput>;

export interface ApprovalRuleInfo {
  id: string;
  group: string;
  minSeverity: (typeof RULE_SEVERITIES)[number] | null;
  vendors: string[] | null;
  minAgeDays: number | null;
  exploitedOnly: boolean;
  requireTestPass: boolean;
  createdAt: string;
}

export async function createApprovalRule(db: Db, now: number, input: ApprovalRuleInput): Promise<ApprovalRuleInfo> {
  const r = ApprovalRuleInput.parse(input);
  const g = await findGroup(db, r.group);
  const id = newId();
  await db
    .insertInto('approval_rules')
    .values({
      id,
      group_id: g.id,
      min_severity: r.minSeverity ?? null,
      vendors_json: r.vendors ? JSON.stringify(r.vendors) : null,
      min_age_days: r.minAgeDays ?? null,
      exploited_only: r.exploitedOnly ? 1 : 0,
      require_test_pass: r.requireTestPass ? 1 : 0,
      created_at: now,
    })
    .execute();
  return (await listApprovalRules(db)).find((x) => x.id === id)!;
}

export async function listApprovalRules(db: Db): Promise<ApprovalRuleInfo[]> {
  const rows = await db.selectFrom('approval_rules as r').innerJoin('groups as g', 'g.id', 'r.group_id').selectAll('r').select('g.name').orderBy('g.name').orderBy('r.created_at').orderBy('r.id').execute();
  return rows.map((r) => ({
    id: r.id,
    group: r.name,
    minSeverity: r.min_severity as ApprovalRuleInfo['minSeverity'],
    vendors: r.vendors_json === null ? null : (JSON.parse(r.vendors_json) as string[]),
    minAgeDays: r.min_age_days,
    exploitedOnly: Boolean(r.exploited_only),
    requireTestPass: Boolean(r.require_test_pass),
    createdAt: new Date(r.created_at).toISOString(),
  }));
}

/** Deletes a rule; the approvals it made stay (they show its id as their source). */
export async function deleteApprovalRule(db: Db, id: string): Promise<void> {
  const r = await db.deleteFrom('approval_rules').where('id', '=', id).executeTakeFirst();
  if (Number(r.numDeletedRows) !== 1) throw new PatchwardenError('E_NOT_FOUND', `no approval rule '${id}'`, { hint: 'list rules with `patchwarden approve rules list`' });
}

interface Candidate {
  id: string;
  severity: Severity;
  vendor: string;
  releasedAt: number;
  cves: string[];
}

/** Patches that at least one active device needs, with what the rules test. */
async function neededPatches(db: Db): Promise<Candidate[]> {
  const rows = await db
    .selectFrom('patches as p')
    .select(['p.id', 'p.severity', 'p.release_date', 'p.created_at', 'p.manifest_json'])
    .where('p.pk', 'in', (eb) =>
      eb
        .selectFrom('effective_states as s')
        .innerJoin('devices as d', 'd.context_id', 's.context_id')
        .select('s.patch_pk')
        .where('s.state', '=', 'needed')
        .where('d.status', '=', 'active'),
    )
    .orderBy('p.id')
    .execute();
  return rows.map((r) => {
    const m = JSON.parse(r.manifest_json) as { vendor?: string; cves?: string[] };
    const released = r.release_date ? Date.parse(`${r.release_date}T00:00:00Z`) : NaN;
    return {
      id: r.id,
      severity: ((SEVERITIES as readonly string[]).includes(r.severity) ? r.severity : 'unknown') as Severity,
      vendor: (m.vendor ?? r.id.split('/')[0]!).toLowerCase(),
      releasedAt: Number.isNaN(released) ? r.created_at : released,
      cves: m.cves ?? [],
    };
  });
}

async function exploitedSet(db: Db): Promise<Set<string>> {
  return new Set((await db.selectFrom('exploited_cves').select('cve').execute()).map((r) => r.cve));
}

export interface RuleApproval {
  patch: string;
  group: string;
  ruleId: string;
}

/**
 * Applies every rule now: approvals for each needed patch that meets all of a rule's conditions
 * and has no decision for the rule's group yet. A group that requires a test-ring pass waits for
 * it here too. Returns what it approved. Meant for a schedule (and `approve rules apply`).
 */
export async function applyApprovalRules(db: Db, now: number): Promise<RuleApproval[]> {
  const rules = await db.selectFrom('approval_rules as r').innerJoin('groups as g', 'g.id', 'r.group_id').selectAll('r').select(['g.name', 'g.require_test_pass as group_requires']).orderBy('r.created_at').orderBy('r.id').execute();
  if (!rules.length) return [];
  const candidates = await neededPatches(db);
  if (!candidates.length) return [];
  const decided = new Set(
    (await db.selectFrom('approvals').select(['patch_id', 'group_id']).where('group_id', 'in', textList(db, [...new Set(rules.map((r) => r.group_id))])).execute()).map((a) => `${a.patch_id}\0${a.group_id}`),
  );
  const exploited = rules.some((r) => r.exploited_only) ? await exploitedSet(db) : new Set<string>();
  let passed: Set<string> | undefined;
  const out: RuleApproval[] = [];
  const rows: DB['approvals'][] = [];
  for (const rule of rules) {
    const vendors = rule.vendors_json === null ? null : (JSON.parse(rule.vendors_json) as string[]).map((v) => v.toLowerCase());
    const fits = candidates.filter(
      (p) =>
        !decided.has(`${p.id}\0${rule.group_id}`) &&
        (rule.min_severity === null || RANK[p.severity] >= RANK[rule.min_severity as Severity]) &&
        (vendors === null || vendors.includes(p.vendor)) &&
        (rule.min_age_days === null || now - p.releasedAt >= rule.min_age_days * DAY) &&
        (!rule.exploited_only || p.cves.some((c) => exploited.has(c))),
    );
    if (!fits.length) continue;
    if (rule.require_test_pass || rule.group_requires) passed ??= await passedTestRing(db, now);
    for (const p of fits) {
      if ((rule.require_test_pass || rule.group_requires) && !passed!.has(p.id)) continue;
      decided.add(`${p.id}\0${rule.group_id}`);
      rows.push({ patch_id: p.id, group_id: rule.group_id, decision: 'approve', decided_at: now, rule_id: rule.id });
      out.push({ patch: p.id, group: rule.name, ruleId: rule.id });
    }
  }
  const inserted = new Set<string>();
  for (let i = 0; i < rows.length; i += CHUNK) {
    // a decision an administrator made meanwhile is kept: on conflict nothing is written
    const res = await db
      .insertInto('approvals')
      .values(rows.slice(i, i + CHUNK))
      .onConflict((oc) => oc.columns(['patch_id', 'group_id']).doNothing())
      .returning(['patch_id', 'group_id'])
      .execute();
    for (const r of res) inserted.add(`${r.patch_id}\0${r.group_id}`);
  }
  return out.filter((a, i) => inserted.has(`${a.patch}\0${rows[i]!.group_id}`));
}

// ───────────────────────── exploited CVEs ─────────────────────────

export const CVE_RE = /^CVE-\d{4}-\d{4,}$/;

export async function setExploited(db: Db, now: number, cve: string, exploited: boolean): Promise<{ cve: string; exploited: boolean; markedAt: string | null }> {
  if (!exploited) {
    await db.deleteFrom('exploited_cves').where('cve', '=', cve).execute();
    return { cve, exploited, markedAt: null };
  }
  await db.insertInto('exploited_cves').values({ cve, marked_at: now }).onConflict((oc) => oc.column('cve').doNothing()).execute();
  const row = await db.selectFrom('exploited_cves').select('marked_at').where('cve', '=', cve).executeTakeFirstOrThrow();
  return { cve, exploited, markedAt: new Date(row.marked_at).toISOString() };
}

export async function listExploited(db: Db): Promise<{ items: { cve: string; markedAt: string }[]; total: number }> {
  const rows = await db.selectFrom('exploited_cves').selectAll().orderBy('cve').execute();
  return { items: rows.map((r) => ({ cve: r.cve, markedAt: new Date(r.marked_at).toISOString() })), total: rows.length };
}

export interface ExploitedNeededPatch {
  patch: string;
  title: string;
  severity: string;
  /** the exploited CVEs it fixes */
  cves: string[];
  /** active devices that need it */
  devices: number;
}

/** Patches that fix a CVE flagged as exploited and that at least one active device needs, most devices first. */
export async function exploitedNeededPatches(db: Db): Promise<ExploitedNeededPatch[]> {
  const exploited = [...(await exploitedSet(db))];
  if (!exploited.length) return [];
  const found = new Map<number, { id: string; title: string; severity: string; cves: string[] }>();
  for (let i = 0; i < exploited.length; i += 100) {
    const part = exploited.slice(i, i + 100);
    // a cheap text filter first; the manifest's own list decides
    const rows = await db
      .selectFrom('patches')
      .select(['pk', 'id', 'title', 'severity', 'manifest_json'])
      .where((eb) => eb.or(part.map((c) => eb('manifest_json', 'like', `%"${c}"%`))))
      .execute();
    for (const r of rows) {
      const cves = ((JSON.parse(r.manifest_json) as { cves?: string[] }).cves ?? []).filter((c) => exploited.includes(c));
      if (cves.length) found.set(r.pk, { id: r.id, title: r.title, severity: r.severity, cves });
    }
  }
  if (!found.size) return [];
  const counts = await db
    .selectFrom('effective_states as s')
    .innerJoin('devices as d', 'd.context_id', 's.context_id')
    .select('s.patch_pk')
    .select((eb) => eb.fn.count<number>('d.id').distinct().as('n'))
    .where('s.state', '=', 'needed')
    .where('d.status', '=', 'active')
    .where('s.patch_pk', 'in', intList(db, [...found.keys()]))
    .groupBy('s.patch_pk')
    .execute();
  return counts
    .map((c) => {
      const p = found.get(c.patch_pk)!;
      return { patch: p.id, title: p.title, severity: p.severity, cves: p.cves.sort(), devices: Number(c.n) };
    })
    .filter((p) => p.devices > 0)
    .sort((a, b) => b.devices - a.devices || (a.patch < b.patch ? -1 : 1));
}
