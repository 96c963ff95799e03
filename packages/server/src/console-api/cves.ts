/**
 * The open-CVEs report (GET /api/v1/reports/cves and its CSV): every CVE named by the manifest
 * (`cves`) of a patch that at least one active device needs, with the patches, the highest of
 * their severities, the active devices needing at least one of them, and the exploited flag
 * (table `exploited_cves`).
 *
 * As in the needed-patches report (compliance/routes.ts `neededReport`), states are read per
 * evaluation context and devices are counted per context: a few queries whatever the fleet size,
 * never one per device.
 */
import type { Kysely } from 'kysely';
import { z } from 'zod';
import { SEVERITIES } from '@patchwarden/core';
import type { DB } from '../db/schema.js';
import type { ReportTable } from './reports.js';

type Db = Kysely<DB>;
type Severity = (typeof SEVERITIES)[number];

export const CveReportQuery = z.strictObject({
  /** the CVE's severity: the highest of its needed patches */
  severity: z.enum(SEVERITIES).optional(),
  limit: z.coerce.number().int().min(1).max(10_000).default(100),
  offset: z.coerce.number().int().min(0).max(10_000_000).default(0),
});
export type CveReportQuery = z.infer<typeof CveReportQuery>;

/** The CSV export: the same rows, at most 10,000 (the default). */
export const CveExportQuery = z.strictObject({
  severity: z.enum(SEVERITIES).optional(),
  limit: z.coerce.number().int().min(1).max(10_000).default(10_000),
});

export interface OpenCve {
  cve: string;
  exploited: boolean;
  /** the highest severity of `patches` */
  severity: string;
  /** the patches fixing it that at least one active device needs, by id */
  patches: { id: string; title: string; severity: string }[];
  /** active devices needing at least one of `patches` */
  devices: number;
}
export interface OpenCveReport {
  total: number;
  items: OpenCve[];
}

const rank = (s: string) => {
  const i = SEVERITIES.indexOf(s as Severity);
  return i < 0 ? SEVERITIES.length : i;
};

export async function openCves(db: Db, query: { severity?: Severity | undefined; limit: number; offset?: number | undefined }): Promise<OpenCveReport> {
  // active devices per evaluation context
  const perContext = await db
    .selectFrom('devices')
    .select('context_id')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('status', '=', 'active')
    .where('context_id', 'is not', null)
    .groupBy('context_id')
    .execute();
  const devicesIn = new Map<number, number>(perContext.map((r) => [r.context_id!, Number(r.n)]));
  if (!devicesIn.size) return { total: 0, items: [] };

  // needed states of patches naming a CVE (a cheap text filter; the manifest's list decides below)
  const states = await db
    .selectFrom('effective_states as s')
    .innerJoin('patches as p', 'p.pk', 's.patch_pk')
    .select(['s.context_id', 's.patch_pk'])
    .where('s.state', '=', 'needed')
    .where('p.manifest_json', 'like', '%"CVE-%')
    .where('s.context_id', 'in', (eb) => eb.selectFrom('devices').select('context_id').distinct().where('status', '=', 'active').where('context_id', 'is not', null))
    .execute();
  const contextsOf = new Map<number, number[]>();
  for (const r of states) {
    let list = contextsOf.get(r.patch_pk);
    if (!list) contextsOf.set(r.patch_pk, (list = []));
    list.push(r.context_id);
  }
  if (!contextsOf.size) return { total: 0, items: [] };

  const pks = [...contextsOf.keys()];
  const byCve = new Map<string, { pk: number; id: string; title: string; severity: string }[]>();
  for (let i = 0; i < pks.length; i += 500) {
    const rows = await db
      .selectFrom('patches')
      .select(['pk', 'id', 'title', 'severity', 'manifest_json'])
      .where('pk', 'in', pks.slice(i, i + 500))
      .execute();
    for (const r of rows) {
      const cves = (JSON.parse(r.manifest_json) as { cves?: unknown }).cves;
      if (!Array.isArray(cves)) continue;
      for (const cve of new Set(cves.filter((c): c is string => typeof c === 'string'))) {
        let list = byCve.get(cve);
        if (!list) byCve.set(cve, (list = []));
        list.push({ pk: r.pk, id: r.id, title: r.title, severity: r.severity });
      }
    }
  }

  const exploited = new Set((await db.selectFrom('exploited_cves').select('cve').execute()).map((r) => r.cve));
  const all: OpenCve[] = [];
  for (const [cve, patches] of byCve) {
    patches.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const severity = patches.reduce((best, p) => (rank(p.severity) < rank(best) ? p.severity : best), patches[0]!.severity);
    if (query.severity && severity !== query.severity) continue;
    let devices = 0;
    if (patches.length === 1) {
      for (const c of contextsOf.get(patches[0]!.pk)!) devices += devicesIn.get(c) ?? 0;
    } else {
      const seen = new Set<number>();
      for (const p of patches) for (const c of contextsOf.get(p.pk)!) seen.add(c);
      for (const c of seen) devices += devicesIn.get(c) ?? 0;
    }
    all.push({ cve, exploited: exploited.has(cve), severity, patches: patches.map((p) => ({ id: p.id, title: p.title, severity: p.severity })), devices });
  }
  all.sort(
    (a, b) =>
      Number(b.exploited) - Number(a.exploited) ||
      rank(a.severity) - rank(b.severity) ||
      b.devices - a.devices ||
      (a.cve < b.cve ? -1 : a.cve > b.cve ? 1 : 0),
  );
  const from = query.offset ?? 0;
  return { total: all.length, items: all.slice(from, from + query.limit) };
}

/** The rows of the CSV export, in the order of the report. */
export function cveTable(report: OpenCveReport): ReportTable {
  return {
    title: 'Open CVEs',
    columns: [
      { name: 'cve', width: 0.16 },
      { name: 'exploited', width: 0.08 },
      { name: 'severity', width: 0.1 },
      { name: 'devices', width: 0.08 },
      { name: 'patch ids', width: 0.28 },
      { name: 'patch titles', width: 0.3 },
    ],
    rows: report.items.map((c) => [
      c.cve,
      c.exploited ? 'yes' : 'no',
      c.severity,
      String(c.devices),
      c.patches.map((p) => p.id).join(', '),
      c.patches.map((p) => p.title).join('; '),
    ]),
  };
}
