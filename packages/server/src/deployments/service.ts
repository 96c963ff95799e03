/**
 * Approvals, group schedules, deployments and their jobs. Everything that decides (ring
 * assignment, verdicts, install slots) is core's `schedule/`; this module loads rows, calls it
 * and writes the outcome. The time is always the context's clock.
 */
import type { Kysely } from 'kysely';
import {
  assignRings,
  FreezePeriod,
  isTimeZone,
  MaintenanceWindow,
  nextInstallSlot,
  PatchwardenError,
  RebootPolicy,
  rebootAt,
  undoLimits,
  type AgentJob,
  type JobReport,
  type PatchManifest,
  type Ring,
} from '@patchwarden/core';
import type { DB, JobsTable } from '../db/schema.js';
import { newId } from '../auth/tokens.js';
import { findGroup, getGroup } from '../groups/store.js';
import { computeMembership, textList } from '../groups/membership.js';
import { evaluate, currentRing, type Evaluation } from './progress.js';
import { notPassedError, parseTarget, passedTestRing } from './testring.js';
import { requireApproved, resolveTarget, type TargetSpec } from './targets.js';
import { targetPathOf } from '../catalog/tuf/repo.js';
import { notifyDeploymentHalted, notifyJobReport } from '../notifications/events.js';

type Db = Kysely<DB>;
const iso = (t: number) => new Date(t).toISOString();

// ───────────────────────── approvals ─────────────────────────

export interface ApprovalInfo {
  patch: string;
  group: string;
  decision: 'approve' | 'decline';
  decidedAt: string;
  /** manual: an administrator decided; rule: approval rule `ruleId` did */
  source: 'manual' | 'rule';
  ruleId: string | null;
}

async function requirePatches(db: Db, ids: readonly string[]) {
  const rows = ids.length ? await db.selectFrom('patches').select(['id', 'revision', 'source_kind']).where('id', 'in', [...ids]).execute() : [];
  const found = new Set(rows.map((r) => r.id));
  const missing = ids.filter((id) => !found.has(id));
  if (missing.length) throw new PatchwardenError('E_NOT_FOUND', `no patch ${missing.map((m) => `'${m}'`).join(', ')} in the catalog`, { hint: 'list patches with `patchwarden patch list`' });
  return rows;
}

/**
 * Approval decides only what may be deployed; compliance states are never touched. A group that
 * requires a test-ring pass refuses a manual approval until the patch passed (a decline is
 * always accepted).
 */
export async function setApproval(db: Db, now: number, patch: string, groupRef: string, decision: 'approve' | 'decline'): Promise<ApprovalInfo> {
  await requirePatches(db, [patch]);
  const g = await getGroup(db, groupRef);
  if (decision === 'approve' && g.requireTestPass && !(await passedTestRing(db, now, [patch])).has(patch)) {
    throw await notPassedError(db, patch, `group '${g.name}' requires a test-ring pass`);
  }
  await db.transaction().execute(async (tx) => {
    await tx.deleteFrom('approvals').where('patch_id', '=', patch).where('group_id', '=', g.id).execute();
    await tx.insertInto('approvals').values({ patch_id: patch, group_id: g.id, decision, decided_at: now, rule_id: null }).execute();
  });
  return { patch, group: g.name, decision, decidedAt: iso(now), source: 'manual', ruleId: null };
}

export async function listApprovals(db: Db, q: { patch?: string | undefined; group?: string | undefined; limit: number; offset: number }) {
  let base = db.selectFrom('approvals as a').innerJoin('groups as g', 'g.id', 'a.group_id');
  if (q.patch) base = base.where('a.patch_id', '=', q.patch);
  if (q.group) base = base.where('g.name', '=', q.group);
  const [rows, n] = await Promise.all([
    base.select(['a.patch_id', 'g.name', 'a.decision', 'a.decided_at', 'a.rule_id']).orderBy('a.patch_id').orderBy('g.name').limit(q.limit).offset(q.offset).execute(),
    base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow(),
  ]);
  return {
    items: rows.map(
      (r): ApprovalInfo => ({ patch: r.patch_id, group: r.name, decision: r.decision, decidedAt: iso(r.decided_at), source: r.rule_id === null ? 'manual' : 'rule', ruleId: r.rule_id }),
    ),
    total: Number(n.n),
  };
}

// ───────────────────────── group schedules ─────────────────────────

export interface GroupSchedule {
  group: string;
  windows: MaintenanceWindow[];
  freezes: FreezePeriod[];
}

export async function setGroupSchedule(db: Db, now: number, groupRef: string, windows: MaintenanceWindow[], freezes: FreezePeriod[]): Promise<GroupSchedule> {
  const g = await findGroup(db, groupRef);
  await db.transaction().execute(async (tx) => {
    await tx.deleteFrom('group_schedules').where('group_id', '=', g.id).execute();
    await tx.insertInto('group_schedules').values({ group_id: g.id, windows_json: JSON.stringify(windows), freezes_json: JSON.stringify(freezes), updated_at: now }).execute();
  });
  return { group: g.name, windows, freezes };
}

export async function getGroupSchedule(db: Db, groupRef: string): Promise<GroupSchedule> {
  const g = await findGroup(db, groupRef);
  const row = await db.selectFrom('group_schedules').selectAll().where('group_id', '=', g.id).executeTakeFirst();
  return { group: g.name, ...parseSchedule(row) };
}

function parseSchedule(row: { windows_json: string; freezes_json: string } | undefined): { windows: MaintenanceWindow[]; freezes: FreezePeriod[] } {
  if (!row) return { windows: [], freezes: [] };
  // stored only after validation; parsed again so a bad row can never widen a schedule silently
  return { windows: MaintenanceWindow.array().parse(JSON.parse(row.windows_json)), freezes: FreezePeriod.array().parse(JSON.parse(row.freezes_json)) };
}

// ───────────────────────── deployments ─────────────────────────

export interface CreateDeployment extends TargetSpec {
  patches: string[];
  start: string;
  deadline?: string | undefined;
  rings?: Ring[] | undefined;
  /** when devices reboot after a patch that needs one (default never: the reboot stays pending and is reported) */
  reboot?: RebootPolicy | undefined;
}

/** Rows per INSERT: 14 columns each, well below both databases' limits on bound parameters. */
const INSERT_CHUNK = 500;

export async function createDeployment(db: Db, now: number, body: CreateDeployment) {
  const start = Date.parse(body.start);
  const deadline = body.deadline === undefined ? null : Date.parse(body.deadline);
  if (deadline !== null && deadline <= start) throw new PatchwardenError('E_VALIDATION', 'the deadline must come after the start');
  const rings: Ring[] = body.rings ?? [{ name: 'all', percent: 100, bakeMinutes: 0, failureThreshold: 0, maxNotReporting: 0 }];
  if (new Set(rings.map((r) => r.name)).size !== rings.length) throw new PatchwardenError('E_VALIDATION', 'ring names must differ');
  const patches = await requirePatches(db, body.patches);
  const target = await resolveTarget(db, body);
  const m = target.membership;

  // devices that need the patches, from compliance: the device list is one bound value
  const needed = target.devices.length
    ? await db
        .selectFrom('devices as d')
        .innerJoin('effective_states as s', 's.context_id', 'd.context_id')
        .innerJoin('patches as p', 'p.pk', 's.patch_pk')
        .select(['d.id as device_id', 'p.id as patch_id'])
        .where('s.state', '=', 'needed')
        .where('d.id', 'in', textList(db, target.devices.map((d) => d.id)))
        .where('p.id', 'in', textList(db, body.patches))
        .execute()
    : [];
  const byDevice = new Map<string, string[]>();
  for (const n of needed) byDevice.set(n.device_id, [...(byDevice.get(n.device_id) ?? []), n.patch_id]);
  const jobDevices = target.devices.filter((d) => byDevice.has(d.id));

  // every device that gets a job must be cleared for each of its patches by its groups
  await requireApproved(
    db,
    m,
    jobDevices.flatMap((d) => byDevice.get(d.id)!.map((patch) => ({ device: d, patch }))),
  );

  const id = newId();
  const ringDevices = jobDevices.map((d) => ({ id: d.id, groups: m.groupsOf(d.id).map((g) => g.name) }));
  const assignment = assignRings(ringDevices, rings, id);
  const testRings = m.groups.filter((g) => g.testRing && jobDevices.some((d) => m.groupsOf(d.id).includes(g))).map((g) => g.name);
  const patchOf = new Map(patches.map((p) => [p.id, p]));
  const jobs: JobsTable[] = [];
  assignment.rings.forEach((ring, ringIndex) => {
    for (const deviceId of ring.devices) {
      for (const patchId of [...byDevice.get(deviceId)!].sort()) {
        const p = patchOf.get(patchId)!;
        jobs.push({
          id: newId(),
          deployment_id: id,
          device_id: deviceId,
          kind: 'install',
          patch_id: p.id,
          revision: p.revision,
          target: targetPathOf(p.id, p.source_kind === 'custom' ? 'bundle' : 'json'),
          ring: ringIndex,
          state: 'queued',
          undoes: null,
          created_at: now,
          handed_at: null,
          finished_at: null,
          report_json: null,
        });
      }
    }
  });
  await db.transaction().execute(async (tx) => {
    await tx
      .insertInto('deployments')
      .values({
        id,
        status: 'active',
        halt_reason: null,
        patches_json: JSON.stringify(body.patches),
        target_json: JSON.stringify({ ...target.stored, testRings }),
        rings_json: JSON.stringify(rings),
        start_at: start,
        deadline_at: deadline,
        created_at: now,
        undone_at: null,
        reboot_policy: body.reboot ?? 'never',
      })
      .execute();
    for (let i = 0; i < jobs.length; i += INSERT_CHUNK) await tx.insertInto('jobs').values(jobs.slice(i, i + INSERT_CHUNK)).execute();
  });
  return { ...(await getDeployment(db, now, id)), unassigned: assignment.unassigned, undoLimits: await undoLimitsOf(db, body.patches) };
}

/** Patches whose undo would not restore the exact prior state, and why: said before a deployment starts. */
export async function undoLimitsOf(db: Db, patchIds: readonly string[]): Promise<{ patch: string; reasons: string[] }[]> {
  const rows = patchIds.length ? await db.selectFrom('patches').select(['id', 'manifest_json']).where('id', 'in', textList(db, [...patchIds])).execute() : [];
  return rows
    .map((r) => ({ patch: r.id, reasons: undoLimits(JSON.parse(r.manifest_json) as PatchManifest) }))
    .filter((x) => x.reasons.length > 0)
    .sort((a, b) => a.patch.localeCompare(b.patch));
}

function statusOf(e: Evaluation): { status: string; reason: string | null } {
  if (e.row.status === 'undone') return { status: 'undone', reason: null };
  if (e.row.status === 'halted') return { status: 'halted', reason: e.row.halt_reason };
  // resumed by an administrator while the current ring's verdict still says halted: its jobs go
  // out, the rings after it wait
  if (e.progress.status === 'halted') return { status: 'running', reason: `resumed; ${e.progress.reason ?? 'the current ring is halted'}` };
  return { status: e.progress.status, reason: e.progress.reason ?? null };
}

export async function getDeployment(db: Db, now: number, id: string) {
  const e = await evaluate(db, now, id);
  const counts = await db
    .selectFrom('jobs')
    .select(['kind', 'state'])
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('deployment_id', '=', id)
    .groupBy(['kind', 'state'])
    .execute();
  const byState = (kind: string) => Object.fromEntries(counts.filter((c) => c.kind === kind).map((c) => [c.state, Number(c.n)]));
  const s = statusOf(e);
  return {
    id,
    status: s.status,
    reason: s.reason,
    createdAt: iso(e.row.created_at),
    start: iso(e.row.start_at),
    deadline: e.row.deadline_at === null ? null : iso(e.row.deadline_at),
    patches: JSON.parse(e.row.patches_json) as string[],
    target: parseTarget(e.row.target_json),
    currentRing: e.progress.ring,
    rings: e.rings.map((r, i) => ({
      name: r.name,
      status: e.verdicts[i]!.status,
      reason: e.verdicts[i]!.reason ?? null,
      bakeEndsAt: e.verdicts[i]!.bakeEndsAt === undefined ? null : iso(e.verdicts[i]!.bakeEndsAt!),
      counts: e.verdicts[i]!.counts,
    })),
    jobs: { install: byState('install'), undo: byState('undo') },
  };
}

export async function listDeployments(db: Db, now: number, q: { limit: number; offset: number }) {
  const [rows, n] = await Promise.all([
    db.selectFrom('deployments').select('id').orderBy('created_at', 'desc').orderBy('id').limit(q.limit).offset(q.offset).execute(),
    db.selectFrom('deployments').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow(),
  ]);
  const items = [];
  for (const r of rows) {
    const d = await getDeployment(db, now, r.id);
    const counts = d.rings.reduce((a, x) => ({ total: a.total + x.counts.total, succeeded: a.succeeded + x.counts.succeeded, failed: a.failed + x.counts.failed }), { total: 0, succeeded: 0, failed: 0 });
    items.push({ id: d.id, status: d.status, reason: d.reason, createdAt: d.createdAt, start: d.start, deadline: d.deadline, patches: d.patches, currentRing: d.currentRing, rings: d.rings.length, jobs: counts });
  }
  return { items, total: Number(n.n) };
}

export async function haltDeployment(db: Db, now: number, id: string, reason: string) {
  const e = await evaluate(db, now, id);
  if (e.row.status !== 'active') throw new PatchwardenError('E_CONFLICT', `deployment ${id} is ${e.row.status}, not running`);
  await db.transaction().execute(async (tx) => {
    const upd = await tx.updateTable('deployments').set({ status: 'halted', halt_reason: reason }).where('id', '=', id).where('status', '=', 'active').executeTakeFirst();
    if (Number(upd.numUpdatedRows) === 1) await notifyDeploymentHalted(tx, now, id, reason, 'manual');
  });
  return getDeployment(db, now, id);
}

/**
 * Lets a halted deployment go on: the current ring's jobs are handed out again; a ring whose
 * verdict is halted never becomes healthy, so later rings still wait, and the next failure
 * report that keeps the ring above its threshold halts it again.
 */
export async function resumeDeployment(db: Db, now: number, id: string) {
  const e = await evaluate(db, now, id);
  if (e.row.status !== 'halted') throw new PatchwardenError('E_CONFLICT', `deployment ${id} is ${e.row.status}, not halted`);
  await db.updateTable('deployments').set({ status: 'active', halt_reason: null }).where('id', '=', id).where('status', '=', 'halted').execute();
  return getDeployment(db, now, id);
}

/** What an undo covers: the whole deployment (it stops, installs that have not run never will), one ring, or some devices. */
export interface UndoScope {
  ring?: number | undefined;
  devices?: string[] | undefined;
}

/**
 * Creates one undo job per install job in scope that succeeded and was not undone yet. Undoing
 * the whole deployment also stops it; undoing a ring or devices leaves the rest running.
 */
export async function undoDeployment(db: Db, now: number, id: string, scope: UndoScope = {}) {
  const e = await evaluate(db, now, id);
  if (e.row.status === 'undone') throw new PatchwardenError('E_CONFLICT', `deployment ${id} is undone already`);
  const whole = scope.ring === undefined && scope.devices === undefined;
  if (scope.ring !== undefined && scope.ring >= e.rings.length) {
    throw new PatchwardenError('E_VALIDATION', `deployment ${id} has ${e.rings.length} ring(s); ring ${scope.ring} does not exist`, { hint: 'rings count from 0' });
  }
  let deviceIds: string[] | undefined;
  if (scope.devices) {
    const rows = await db.selectFrom('devices').select(['id', 'hostname']).where((eb) => eb.or([eb('id', 'in', textList(db, scope.devices!)), eb('hostname', 'in', textList(db, scope.devices!))])).execute();
    const missing = scope.devices.filter((r) => !rows.some((d) => d.id === r || d.hostname === r));
    if (missing.length) throw new PatchwardenError('E_NOT_FOUND', `no device ${missing.map((m) => `'${m}'`).join(', ')}`);
    deviceIds = rows.map((r) => r.id);
  }
  const created = await db.transaction().execute(async (tx) => {
    if (whole) {
      const upd = await tx.updateTable('deployments').set({ status: 'undone', undone_at: now }).where('id', '=', id).where('status', '<>', 'undone').executeTakeFirst();
      if (Number(upd.numUpdatedRows) !== 1) throw new PatchwardenError('E_CONFLICT', `deployment ${id} is undone already`);
    }
    let q = tx
      .selectFrom('jobs as j')
      .selectAll('j')
      .where('j.deployment_id', '=', id)
      .where('j.kind', '=', 'install')
      .where('j.state', '=', 'done')
      // an install undone before (a ring, then the whole deployment) gets no second undo job
      .where(({ not, exists, selectFrom }) => not(exists(selectFrom('jobs as u').select('u.id').whereRef('u.undoes', '=', 'j.id'))));
    if (scope.ring !== undefined) q = q.where('j.ring', '=', scope.ring);
    if (deviceIds) q = q.where('j.device_id', 'in', textList(tx, deviceIds));
    const done = await q.execute();
    const undo: JobsTable[] = done.map((j) => ({ ...j, id: newId(), kind: 'undo', state: 'queued', undoes: j.id, created_at: now, handed_at: null, finished_at: null, report_json: null }));
    for (let i = 0; i < undo.length; i += 500) await tx.insertInto('jobs').values(undo.slice(i, i + 500)).execute();
    return undo.length;
  });
  if (!whole && created === 0) throw new PatchwardenError('E_CONFLICT', `nothing to undo: no install in that ${scope.ring !== undefined ? 'ring' : 'device set'} succeeded without being undone`);
  return { ...(await getDeployment(db, now, id)), undoJobs: created };
}

// ───────────────────────── agent side ─────────────────────────

function deviceTimeZone(systemJson: string | null): string {
  try {
    const tz = systemJson ? (JSON.parse(systemJson) as { timezone?: unknown }).timezone : undefined;
    return typeof tz === 'string' && isTimeZone(tz) ? tz : 'UTC';
  } catch {
    return 'UTC';
  }
}

/**
 * The jobs a device may run now: install jobs of running deployments whose ring has started
 * (earlier rings baked healthy), undo jobs of undone deployments, each only inside the device's
 * maintenance windows and outside freezes (in its own time zone), or once the deadline passed.
 */
export async function jobsForDevice(db: Db, now: number, deviceId: string): Promise<AgentJob[]> {
  const device = await db.selectFrom('devices').select(['system_json']).where('id', '=', deviceId).executeTakeFirstOrThrow();
  const rows = await db
    .selectFrom('jobs as j')
    .innerJoin('deployments as d', 'd.id', 'j.deployment_id')
    .select(['j.id', 'j.kind', 'j.deployment_id', 'j.patch_id', 'j.revision', 'j.target', 'j.ring', 'j.undoes', 'j.created_at', 'd.status', 'd.start_at', 'd.deadline_at', 'd.undone_at', 'd.reboot_policy'])
    .where('j.device_id', '=', deviceId)
    .where('j.report_json', 'is', null)
    // undo jobs go out whatever the deployment's state: a ring or a device can be undone while the rest runs
    .where((eb) => eb.or([eb.and([eb('j.kind', '=', 'install'), eb('d.status', '=', 'active')]), eb('j.kind', '=', 'undo')]))
    .orderBy('j.created_at')
    .orderBy('j.id')
    .execute();
  if (!rows.length) return [];
  // every group of the device, static and dynamic: any of their windows (union), no freeze of any
  const groups = (await computeMembership(db, { deviceIds: [deviceId] })).groupsOf(deviceId);
  const schedules = groups.length
    ? (await db.selectFrom('group_schedules').selectAll().where('group_id', 'in', groups.map((g) => g.id)).execute()).map(parseSchedule)
    : [];
  const windows = schedules.map((s) => s.windows).filter((w) => w.length > 0);
  const freezes = schedules.flatMap((s) => s.freezes);
  const tz = deviceTimeZone(device.system_json);
  const out: AgentJob[] = [];
  for (const r of rows) {
    if (r.kind === 'install' && r.ring > (await currentRing(db, now, r.deployment_id))) continue;
    const start = r.kind === 'undo' ? r.created_at : r.start_at;
    const deadline = r.kind === 'undo' ? undefined : (r.deadline_at ?? undefined);
    const slot = nextInstallSlot({ windows, freezes, tz, from: now, start, ...(deadline === undefined ? {} : { deadline }) });
    if (!slot || slot.at > now) continue;
    const common = {
      id: r.id,
      deploymentId: r.deployment_id,
      patch: { id: r.patch_id, revision: r.revision },
      target: r.target,
      notBefore: iso(start),
      deadline: deadline === undefined ? null : iso(deadline),
    };
    const policy = RebootPolicy.catch('never').parse(r.reboot_policy ?? 'never');
    const at = rebootAt(policy, { windows, tz, now, deadline: r.deadline_at ?? undefined });
    const reboot = { policy, at: at === null ? null : iso(at), afterSeconds: at === null ? null : Math.max(0, Math.round((at - now) / 1000)) };
    out.push(r.kind === 'undo' ? { ...common, kind: 'undo', undoes: r.undoes!, reboot } : { ...common, kind: 'install', reboot });
  }
  if (out.length) {
    await db.updateTable('jobs').set({ handed_at: now }).where('id', 'in', out.map((j) => j.id)).where('handed_at', 'is', null).execute();
  }
  return out;
}

export interface ReportAnswer {
  jobId: string;
  state: string;
  /** true: this job was reported before; the stored result is answered and nothing is stored. */
  duplicate: boolean;
  deployment: { id: string; status: string; reason: string | null };
}

/** Stores a job's final report once, then re-evaluates the deployment (a crossed threshold halts it). */
export async function reportJob(db: Db, now: number, deviceId: string, jobId: string, report: JobReport): Promise<ReportAnswer> {
  if (report.jobId !== jobId) throw new PatchwardenError('E_VALIDATION', `the report is for job ${report.jobId}, not ${jobId}`);
  const job = await db.selectFrom('jobs').select(['id', 'deployment_id', 'kind', 'state', 'report_json']).where('id', '=', jobId).where('device_id', '=', deviceId).executeTakeFirst();
  // another device's job answers as an unknown one: its existence is not this device's business
  if (!job) throw new PatchwardenError('E_NOT_FOUND', `no job '${jobId}' for this device`);
  // the answer names only the deployment's status and reason: those come from `evaluate` alone,
  // so the job counts by kind and state that getDeployment also queries are not asked for (one
  // aggregate over the deployment's jobs less per report; bench/deploy measured it)
  const answer = async (state: string, duplicate: boolean): Promise<ReportAnswer> => {
    const s = statusOf(await evaluate(db, now, job.deployment_id));
    return { jobId, state, duplicate, deployment: { id: job.deployment_id, status: s.status, reason: s.reason } };
  };
  if (job.report_json !== null) return answer(job.state, true);
  const stored = await db.transaction().execute(async (tx) => {
    const upd = await tx
      .updateTable('jobs')
      .set({ state: report.state, finished_at: now, report_json: JSON.stringify(report) })
      .where('id', '=', jobId)
      .where('report_json', 'is', null)
      .executeTakeFirst();
    if (Number(upd.numUpdatedRows) !== 1) return false;
    if (report.events.length) {
      await tx
        .insertInto('job_events')
        .values(report.events.map((e, seq) => ({ job_id: jobId, seq, at: Date.parse(e.at), state: e.state, message: e.message ?? null })))
        .execute();
    }
    await notifyJobReport(tx, now, jobId, report); // job.failed / job.needs-attention webhooks, in the same transaction
    return true;
  });
  if (!stored) {
    const again = await db.selectFrom('jobs').select('state').where('id', '=', jobId).executeTakeFirstOrThrow();
    return answer(again.state, true);
  }
  if (job.kind === 'install' && report.state !== 'done') {
    const e = await evaluate(db, now, job.deployment_id);
    if (e.progress.status === 'halted') {
      const reason = e.progress.reason ?? 'halted';
      await db.transaction().execute(async (tx) => {
        const upd = await tx.updateTable('deployments').set({ status: 'halted', halt_reason: reason }).where('id', '=', job.deployment_id).where('status', '=', 'active').executeTakeFirst();
        if (Number(upd.numUpdatedRows) === 1) await notifyDeploymentHalted(tx, now, job.deployment_id, reason, 'threshold');
      });
    }
  }
  return answer(report.state, false);
}
