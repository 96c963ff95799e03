/**
 * One job as DESIGN.md's state machine: download → verify → preflight → snapshot → install →
 * verify the install → report, each state written to the journal before the agent acts in it.
 * On start after a crash or reboot, `runJob` reads where the job stood: before the snapshot
 * nothing on the device changed, so it starts again; during the install it rolls back to the
 * snapshot; after it, it verifies and reports. A rollback that fails ends in needs-attention
 * with dpkg's audit. Exactly one report is stored: the server keeps the first and answers
 * repeats as duplicates, and the journal remembers that it was sent.
 */
import { mkdirSync, readFileSync, statfsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import {
  CatalogIndex,
  decideStates,
  makeEvalFacts,
  PatchwardenError,
  ruleFactKeys,
  type AgentJob,
  type FinalJobState,
  type JobState,
  type PatchManifest,
} from '@patchwarden/core';
import { collectFacts, type CollectOptions } from '../collectors/index.js';
import { fetchVerifiedTarget } from '../catalog.js';
import { downloadToFile, request } from '../transport.js';
import type { AgentState } from '../state.js';
import { Journal, writeDurable } from './journal.js';
import { targetPathOf, verifyPatchObject, type VerifiedObject } from './verify.js';
import { applyPlan, installerFor, planActions, preflightPlan, rollbackPlan, snapshotPlan, undoPlan, type Plan } from './plan.js';

export interface JobContext {
  dataDir: string;
  /** The root the agent installs into: a sandbox or image; '/' needs allowHost. */
  root: string;
  allowHost?: boolean;
  agent: Pick<AgentState, 'server' | 'token'>;
  collect: CollectOptions;
  now?: () => Date;
  log?: (line: string) => void;
  /**
   * Test hook: called on entering each state (and at named points inside them). The crash tests
   * make it stop the process there; it does nothing otherwise.
   */
  barrier?: (point: string) => Promise<void>;
}

type Outcome = NonNullable<Journal['record']['outcome']>;

const now = (ctx: JobContext) => (ctx.now ?? (() => new Date()))();
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Jobs the agent put back to wait (outside its window, prerequisite not yet installed). */
export class Deferred extends Error {}

async function enter(ctx: JobContext, j: Journal, state: JobState, message?: string): Promise<void> {
  j.enter(state, message, now(ctx));
  ctx.log?.(`job ${j.job.id}: ${state}${message ? ` — ${message}` : ''}`);
  await ctx.barrier?.(state);
}

function decide(j: Journal, state: FinalJobState, message: string, detail: Outcome['detail'] = {}): Outcome {
  j.record.outcome = { state, message, detail };
  return j.record.outcome;
}

// ───────────────────────── facts and rules ─────────────────────────

async function evalFacts(ctx: JobContext, manifests: PatchManifest[]) {
  const files = new Set<string>();
  for (const m of manifests) {
    for (const k of [...ruleFactKeys(m.applicability), ...ruleFactKeys(m.installed)]) if (k.startsWith('file:')) files.add(k.slice(5));
  }
  // these files come from manifests verified here, and an undo must not need the catalog: no vouching
  const { vouch: _vouch, ...collect } = ctx.collect;
  const { system, packages } = await collectFacts({ ...collect, ...(files.size ? { files: [...files] } : {}) });
  const managers = system.collectors.filter((c) => c.status === 'ok').map((c) => c.name);
  return {
    system,
    packages,
    facts: makeEvalFacts({
      os: system.os,
      kernelRelease: system.kernel.release,
      rebootRequired: system.rebootRequired,
      managers,
      packages,
      files: new Map(Object.entries(system.files ?? {})),
    }),
  };
}

/** The patch's state on this device, by the same function the server uses. */
async function stateHere(ctx: JobContext, m: PatchManifest, related: PatchManifest[] = []) {
  const { facts, system } = await evalFacts(ctx, [m, ...related]);
  const d = decideStates(new CatalogIndex([m, ...related]), facts, { covered: true }, [m.id]).get(m.id)!;
  return { decision: d, system };
}

// ───────────────────────── the patch object ─────────────────────────

function objectKind(job: AgentJob): 'json' | 'bundle' {
  return job.target.endsWith('.bundle') ? 'bundle' : 'json';
}

function loadObject(ctx: JobContext, j: Journal): VerifiedObject {
  const o = j.record.object;
  if (!o) throw new PatchwardenError('E_INTERNAL', `job ${j.job.id} has no downloaded patch object`);
  const bytes = readFileSync(path.join(j.dir, o.file));
  if (sha256(bytes) !== o.sha256) throw new PatchwardenError('E_DIGEST_MISMATCH', `the kept patch object of job ${j.job.id} changed on disk`);
  // an undo restores what its install job verified: the object is checked against that job
  const job = j.job.kind === 'undo' ? Journal.load(ctx.dataDir, j.job.undoes).job : j.job;
  return verifyPatchObject(ctx.dataDir, job, o.kind, bytes);
}

/** Fetches the patch object through TUF and every package file its install actions fetch. */
async function download(ctx: JobContext, j: Journal): Promise<void> {
  await enter(ctx, j, 'downloading', `fetching ${j.job.target}`);
  const kind = objectKind(j.job);
  const bytes = await fetchVerifiedTarget(ctx.dataDir, ctx.agent, j.job.target);
  const file = kind === 'bundle' ? 'patch.bundle' : 'patch.json';
  writeDurable(path.join(j.dir, file), bytes);
  j.record.object = { file, sha256: sha256(bytes), kind };
  j.save();
  const { manifest } = verifyPatchObject(ctx.dataDir, j.job, kind, bytes);
  mkdirSync(path.join(j.dir, 'files'), { recursive: true });
  for (const a of manifest.install) {
    if (a.type !== 'package' || !a.fetch) continue;
    await ctx.barrier?.('downloading-payload');
    const r = await downloadToFile(ctx.agent.server, `/api/v1/content/${a.fetch.sha256}`, path.join(j.dir, 'files', a.fetch.sha256), { size: a.fetch.size, sha256: a.fetch.sha256 }, { token: ctx.agent.token });
    if (r.resumedFrom > 0 && r.resumedFrom < a.fetch.size) j.event('downloading', `resumed ${a.name} at byte ${r.resumedFrom}`, now(ctx));
  }
}

function extractPayload(j: Journal, v: VerifiedObject): string {
  const dir = path.join(j.dir, 'payload');
  for (const [p, data] of v.payload) {
    const f = path.join(dir, p);
    mkdirSync(path.dirname(f), { recursive: true });
    writeFileSync(f, data, { mode: 0o600 });
  }
  return dir;
}

// ───────────────────────── install ─────────────────────────

async function runInstall(ctx: JobContext, j: Journal): Promise<Outcome> {
  const st = j.record.state;
  // Where a crash left it: before the snapshot nothing changed, so those steps run again.
  if (st === 'installing') return recoverInstall(ctx, j, 'the agent stopped during the install (crash or reboot)');
  if (st === 'verifying-install') return verifyInstall(ctx, j, loadObject(ctx, j));

  await download(ctx, j);
  await enter(ctx, j, 'verifying');
  const v = loadObject(ctx, j);
  const plan = await planActions(ctx, j, v, extractPayload(j, v));
  for (const f of plan.fetched) {
    const got = readFileSync(f.file);
    if (got.length !== f.size || sha256(got) !== f.sha256) throw new PatchwardenError('E_DIGEST_MISMATCH', `${f.file} does not match the signed manifest`);
  }

  await enter(ctx, j, 'preflight');
  const t = now(ctx).getTime();
  if (t < Date.parse(j.job.notBefore)) throw new Deferred(`not before ${j.job.notBefore}`);
  const related: PatchManifest[] = [];
  for (const req of v.manifest.requires) {
    const r = await fetchRequired(ctx, req);
    if (!r) return decide(j, 'failed', `the prerequisite ${req} is not in the signed catalog`);
    related.push(r);
  }
  const here = await stateHere(ctx, v.manifest, related);
  for (const r of related) {
    const s = (await stateHere(ctx, r)).decision.state;
    if (s !== 'installed' && s !== 'installed_pending_restart') {
      if (s === 'needed') throw new Deferred(`waiting for the prerequisite ${r.id}, which is needed here and not installed yet`);
      return decide(j, 'failed', `the prerequisite ${r.id} is ${s} on this device, so ${v.manifest.id} cannot be installed`);
    }
  }
  const d = here.decision;
  if (d.state === 'installed' || d.state === 'installed_pending_restart') return decide(j, 'done', `${v.manifest.id} is installed already; nothing was changed`);
  if (d.state !== 'needed' && d.state !== 'blocked') {
    const why = d.state === 'unknown' ? `the rules need facts this agent does not collect (${(d.missing ?? []).join(', ')})` : `it is ${d.state.replace('_', ' ')} here${d.reason ? ` (${d.reason})` : ''}`;
    return decide(j, 'failed', `${v.manifest.id} is not needed on this device any more: ${why}`);
  }
  const problems = await preflightPlan(ctx, plan, here.system.heldPackages ?? []);
  const need = plan.bytes * 2 + 32 * 1024 * 1024;
  const free = freeBytes(ctx.root);
  if (free !== null && free < need) problems.push(`${ctx.root} has ${Math.floor(free / 1048576)} MiB free, ${Math.ceil(need / 1048576)} MiB needed for the packages and their snapshot`);
  if (problems.length) return decide(j, 'failed', `preflight refused the patch: ${problems.join('; ')}`);

  await enter(ctx, j, 'snapshotting');
  await snapshotPlan(ctx, j, plan);
  j.save();

  await enter(ctx, j, 'installing');
  const applied = await applyPlan(ctx, j, plan);
  if (!applied.ok) {
    const back = await rollbackPlan(ctx, j);
    return back.ok
      ? decide(j, 'rolled-back', `${applied.reason}; rolled back to the snapshot, proven by a re-scan`, { before: applied.before, after: applied.after })
      : decide(j, 'needs-attention', `${applied.reason}; the rollback failed too: ${back.reason}`, { audit: back.audit });
  }
  return verifyInstall(ctx, j, v);
}

async function fetchRequired(ctx: JobContext, id: string): Promise<PatchManifest | null> {
  for (const kind of ['json', 'bundle'] as const) {
    try {
      const target = targetPathOf(id, kind);
      const bytes = await fetchVerifiedTarget(ctx.dataDir, ctx.agent, target);
      const fake = { id: 'prereq00', kind: 'install', deploymentId: 'prereq00', patch: { id, revision: 0 }, target, notBefore: new Date(0).toISOString(), deadline: null } as const;
      // the revision is whatever the catalog lists now
      const v = verifyPatchObject(ctx.dataDir, { ...fake, patch: { id, revision: peekRevision(kind, bytes) } }, kind, bytes);
      return v.manifest;
    } catch (err) {
      if (err instanceof PatchwardenError && err.code === 'E_NOT_FOUND') continue;
      throw err;
    }
  }
  return null;
}

function peekRevision(kind: 'json' | 'bundle', bytes: Buffer): number {
  if (kind === 'json') return Number((JSON.parse(bytes.toString('utf8')) as { revision?: unknown }).revision) || 0;
  // a bundle's manifest is its first entry; verifyPatchObject reads it properly
  const m = /"revision":(\d+)/.exec(bytes.subarray(0, 1 << 20).toString('latin1'));
  return m ? Number(m[1]) : 0;
}

function freeBytes(root: string): number | null {
  try {
    const s = statfsSync(root);
    return Number(s.bavail) * Number(s.bsize);
  } catch {
    return null;
  }
}

async function recoverInstall(ctx: JobContext, j: Journal, why: string): Promise<Outcome> {
  j.event('installing', `${why}; rolling back to the snapshot`, now(ctx));
  j.save();
  const back = await rollbackPlan(ctx, j);
  return back.ok
    ? decide(j, 'rolled-back', `${why}; rolled back to the snapshot, proven by a re-scan`)
    : decide(j, 'needs-attention', `${why}; the rollback failed: ${back.reason}`, { audit: back.audit });
}

async function verifyInstall(ctx: JobContext, j: Journal, v: VerifiedObject): Promise<Outcome> {
  await enter(ctx, j, 'verifying-install');
  const { decision } = await stateHere(ctx, v.manifest);
  if (decision.state !== 'installed' && decision.state !== 'installed_pending_restart') {
    const back = await rollbackPlan(ctx, j);
    const why = `after the install the patch's installed rule does not hold (${decision.state}${decision.reason ? `: ${decision.reason}` : ''})`;
    return back.ok ? decide(j, 'rolled-back', `${why}; rolled back to the snapshot`) : decide(j, 'needs-attention', `${why}; the rollback failed: ${back.reason}`, { audit: back.audit });
  }
  const reboot = v.manifest.restart.reboot === 'required';
  if (reboot) {
    // counted on this device's clock from when the job arrived, so clock skew does not move it
    const after = j.job.reboot?.afterSeconds;
    j.record.rebootAt = after === null || after === undefined ? null : new Date(Date.parse(j.record.events[0]!.at) + after * 1000).toISOString();
    markRebootRequired(ctx.root, v.manifest.id);
  }
  return decide(j, 'done', `${v.manifest.id} r${v.manifest.revision} installed and verified${reboot ? '; a reboot is pending' : ''}`, {
    ...summary(j),
    ...(reboot ? { rebootPending: true } : {}),
  });
}

function markRebootRequired(root: string, patchId: string): void {
  const dir = path.join(root, 'run');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'reboot-required'), '*** System restart required ***\n');
  writeFileSync(path.join(dir, 'reboot-required.pkgs'), `${patchId}\n`, { flag: 'a' });
}

function summary(j: Journal): { before?: string; after?: string } {
  const dir = j.record.dpkgSnapshot;
  if (!dir) return {};
  try {
    const s = JSON.parse(readFileSync(path.join(dir, 'snapshot.json'), 'utf8')) as { packages: { name: string; before: { version: string } | null; after?: { version: string } | null }[] };
    const line = (v: { version: string } | null | undefined) => v?.version ?? 'absent';
    return { before: s.packages.map((p) => `${p.name} ${line(p.before)}`).join('\n'), after: s.packages.map((p) => `${p.name} ${line(p.after)}`).join('\n') };
  } catch {
    return {};
  }
}

// ───────────────────────── undo ─────────────────────────

async function runUndo(ctx: JobContext, j: Journal): Promise<Outcome> {
  const job = j.job;
  if (job.kind !== 'undo') throw new PatchwardenError('E_INTERNAL', 'not an undo job');
  // once the restore began, a resume restores again without the drift check (the device is half-way back by design)
  const resumed = j.record.state === 'installing';
  if (j.record.state === 'verifying-install') return verifyUndo(ctx, j);
  if (!resumed) {
    await enter(ctx, j, 'downloading', `the undo uses the snapshot of job ${job.undoes}; nothing is downloaded`);
    await enter(ctx, j, 'verifying');
  }
  if (!Journal.exists(ctx.dataDir, job.undoes)) return decide(j, 'failed', `this device has no record of job ${job.undoes}, so there is no snapshot to undo`);
  const install = Journal.load(ctx.dataDir, job.undoes);
  if (install.record.outcome?.state !== 'done') return decide(j, 'failed', `job ${job.undoes} did not install the patch (it ended ${install.record.outcome?.state ?? 'unfinished'}), so there is nothing to undo`);
  if (!install.record.dpkgSnapshot && !install.record.fileSnapshot) return decide(j, 'failed', `job ${job.undoes} changed nothing (${install.record.outcome.message}), so there is nothing to undo`);
  j.record.dpkgSnapshot = install.record.dpkgSnapshot;
  j.record.fileSnapshot = install.record.fileSnapshot;
  j.record.object = install.record.object ? { ...install.record.object, file: path.relative(j.dir, path.join(install.dir, install.record.object.file)) } : undefined;
  j.save();
  // the object was verified when it was installed; an undo never depends on catalog freshness
  const v = loadObject(ctx, j);

  if (!resumed) {
    await enter(ctx, j, 'preflight');
    await enter(ctx, j, 'snapshotting', 'the install snapshot is the one restored');
    await enter(ctx, j, 'installing');
  }
  const r = await undoPlan(ctx, j, v, extractPayload(j, v), resumed);
  if (r.status === 'refused') return decide(j, 'failed', `undo refused: ${r.reason}`);
  if (r.status === 'needs-attention') return decide(j, 'needs-attention', `undo failed: ${r.reason}`, { audit: r.audit });
  return verifyUndo(ctx, j);
}

async function verifyUndo(ctx: JobContext, j: Journal): Promise<Outcome> {
  await enter(ctx, j, 'verifying-install');
  const v = loadObject(ctx, j);
  const { decision } = await stateHere(ctx, v.manifest);
  if (decision.state === 'installed' || decision.state === 'installed_pending_restart') {
    return decide(j, 'needs-attention', `the snapshot was restored, but ${v.manifest.id}'s installed rule still holds`);
  }
  return decide(j, 'done', `${v.manifest.id} undone: the device is back at the snapshot, proven by a re-scan (${decision.state.replace('_', ' ')})`, summary(j));
}

// ───────────────────────── report ─────────────────────────

async function report(ctx: JobContext, j: Journal): Promise<void> {
  if (j.record.state !== 'reporting') {
    const o = j.record.outcome!;
    j.event(o.state, o.message, now(ctx));
    await enter(ctx, j, 'reporting');
  } else {
    await ctx.barrier?.('reporting');
  }
  try {
    await request(ctx.agent.server, 'POST', `/api/v1/agent/jobs/${j.job.id}/report`, { token: ctx.agent.token, body: j.report() });
  } catch (err) {
    // the server does not know the job (deleted with its deployment): nothing more to send
    if (!(err instanceof PatchwardenError && err.code === 'E_NOT_FOUND')) throw err;
    j.event('reporting', `the server has no job ${j.job.id} any more; the report was dropped`, now(ctx));
  }
  j.record.state = j.record.outcome!.state;
  j.record.reportedAt = now(ctx).toISOString();
  j.save();
  ctx.log?.(`job ${j.job.id}: reported ${j.record.outcome!.state}`);
}

/**
 * Runs (or resumes) one job to its report. Throws Deferred when it must wait; any other throw
 * before the snapshot leaves the device untouched and ends the job `failed` with the reason.
 */
export async function runJob(ctx: JobContext, j: Journal): Promise<FinalJobState> {
  if (j.finished) return j.record.outcome!.state;
  j.record.runs++;
  j.save();
  if (!j.record.outcome) {
    try {
      if (j.job.kind === 'install') await runInstall(ctx, j);
      else await runUndo(ctx, j);
    } catch (err) {
      if (err instanceof Deferred) {
        j.enter('queued', `waiting: ${err.message}`, now(ctx));
        throw err;
      }
      const touched = j.record.state === 'installing' || j.record.state === 'verifying-install';
      if (touched && j.job.kind === 'install') await recoverInstall(ctx, j, `the install stopped with an error: ${(err as Error).message}`);
      else if (touched) decide(j, 'needs-attention', `the undo stopped with an error: ${(err as Error).message}`, { audit: await installerFor(ctx).audit().catch((e: unknown) => String(e)) });
      else if (isTransient(err)) {
        // the server or network went away before anything changed: try again on the next pass
        j.enter('queued', `will retry: ${(err as Error).message}`, now(ctx));
        throw new Deferred((err as Error).message);
      } else decide(j, 'failed', err instanceof PatchwardenError ? `${err.code}: ${err.message}` : (err as Error).message);
    }
    j.save();
  }
  await report(ctx, j);
  return j.record.outcome!.state;
}

function isTransient(err: unknown): boolean {
  if (!(err instanceof PatchwardenError)) return false;
  // the server's own trouble (5xx) and an unreachable server say nothing about the patch
  const status = (err as PatchwardenError & { status?: number }).status;
  return err.code === 'E_SERVER_UNREACHABLE' || (status !== undefined && status >= 500);
}

export type { Plan };
