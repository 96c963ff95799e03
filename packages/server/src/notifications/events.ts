/**
 * The events other features raise, each with its payload (the `data` of the delivery body). Each
 * takes a Kysely executor, so it can run inside the transaction of the change it reports, and
 * reads nothing when no webhook is subscribed.
 */
import type { Kysely } from 'kysely';
import type { JobReport } from '@patchwarden/core';
import type { DB } from '../db/schema.js';
import { enqueueEvent, subscribers } from './store.js';

type Db = Kysely<DB>;

export interface JobEventData {
  jobId: string;
  kind: 'install' | 'undo';
  deploymentId: string;
  device: { id: string; hostname: string };
  patch: { id: string; revision: number };
  state: string;
  /** the message of the last event in the report that had one */
  message: string | null;
}

/** `job.failed` (failed, rolled-back) or `job.needs-attention` for a stored report; nothing for `done`. */
export async function notifyJobReport(db: Db, now: number, jobId: string, report: Pick<JobReport, 'state' | 'events'>): Promise<void> {
  const kind = report.state === 'needs-attention' ? 'job.needs-attention' : report.state === 'failed' || report.state === 'rolled-back' ? 'job.failed' : null;
  if (!kind) return;
  const to = await subscribers(db, kind);
  if (!to.length) return;
  const j = await db
    .selectFrom('jobs as j')
    .innerJoin('devices as d', 'd.id', 'j.device_id')
    .select(['j.id', 'j.kind', 'j.deployment_id', 'j.patch_id', 'j.revision', 'd.id as device_id', 'd.hostname'])
    .where('j.id', '=', jobId)
    .executeTakeFirst();
  if (!j) return;
  const message = [...report.events].reverse().find((e) => e.message)?.message ?? null;
  const data: JobEventData = {
    jobId: j.id,
    kind: j.kind,
    deploymentId: j.deployment_id,
    device: { id: j.device_id, hostname: j.hostname },
    patch: { id: j.patch_id, revision: Number(j.revision) },
    state: report.state,
    message,
  };
  await enqueueEvent(db, now, kind, data, to);
}

/** `deployment.halted`: by a crossed threshold (`threshold`) or an administrator (`manual`). */
export async function notifyDeploymentHalted(db: Db, now: number, deploymentId: string, reason: string, by: 'threshold' | 'manual'): Promise<void> {
  const to = await subscribers(db, 'deployment.halted');
  if (!to.length) return;
  const d = await db.selectFrom('deployments').select(['patches_json']).where('id', '=', deploymentId).executeTakeFirst();
  await enqueueEvent(db, now, 'deployment.halted', { deploymentId, reason, by, patches: d ? (JSON.parse(d.patches_json) as string[]) : [] }, to);
}

export interface ExploitedNeededData {
  patch: { id: string; revision: number; title: string; severity: string };
  cves: string[];
  /** devices whose compliance state for the patch is `needed` now */
  devicesNeeding: number;
}

/**
 * `patch.exploited-needed`: a patch that fixes an exploited vulnerability is needed somewhere.
 * The caller decides when (its trigger); this reads the patch and counts the devices needing it,
 * and raises nothing for an unknown patch or when no device needs it.
 */
export async function notifyPatchExploitedNeeded(db: Db, now: number, patchId: string): Promise<ExploitedNeededData | null> {
  const to = await subscribers(db, 'patch.exploited-needed');
  if (!to.length) return null;
  const p = await db.selectFrom('patches').select(['pk', 'id', 'revision', 'title', 'severity', 'manifest_json']).where('id', '=', patchId).executeTakeFirst();
  if (!p) return null;
  const n = await db
    .selectFrom('devices as d')
    .innerJoin('effective_states as s', 's.context_id', 'd.context_id')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('s.patch_pk', '=', p.pk)
    .where('s.state', '=', 'needed')
    .where('d.status', '=', 'active')
    .executeTakeFirstOrThrow();
  const devicesNeeding = Number(n.n);
  if (devicesNeeding === 0) return null;
  const cves = (JSON.parse(p.manifest_json) as { cves?: string[] }).cves ?? [];
  const data: ExploitedNeededData = { patch: { id: p.id, revision: Number(p.revision), title: p.title, severity: p.severity }, cves, devicesNeeding };
  await enqueueEvent(db, now, 'patch.exploited-needed', data, to);
  return data;
}
