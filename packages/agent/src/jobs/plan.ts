/**
 * A patch's actions turned into steps this agent can take on its root: dpkg installs and
 * removals (package files from the bundle or fetched from the server's content store), file
 * operations and scripts. The same plan is checked in preflight, snapshotted, applied, rolled
 * back and undone. Package managers other than dpkg are refused in preflight, with the reason.
 */
import path from 'node:path';
import { PatchwardenError, compareDebVersions, type FileAction, type ScriptAction } from '@patchwarden/core';
import { DpkgInstaller, loadSnapshot, recordAfter, restoreSnapshot, takeSnapshot, undoSnapshot } from '../installers/index.js';
import { describeRun } from '../installers/dpkg.js';
import {
  applyFileActions,
  loadFileSnapshot,
  preflightFileActions,
  rollbackFiles,
  takeFileSnapshot,
  undoFiles,
} from '../installers/files.js';
import { runScript } from '../installers/scripts.js';
import type { Journal } from './journal.js';
import type { JobContext } from './runner.js';
import type { VerifiedObject } from './verify.js';

type Step =
  | { kind: 'dpkg-install'; items: { file: string; name: string; version?: string | undefined; op: 'install' | 'upgrade' }[] }
  | { kind: 'dpkg-remove'; names: string[] }
  | { kind: 'files'; actions: FileAction[] }
  | { kind: 'script'; action: ScriptAction };

export interface Plan {
  steps: Step[];
  /** package files fetched from the content store, with what the signed manifest says */
  fetched: { file: string; size: number; sha256: string }[];
  /** bytes of package files to install */
  bytes: number;
  payloadDir: string;
  /** actions this agent cannot take, found while planning */
  problems: string[];
}

const DPKG_MANAGERS = new Set(['dpkg', 'apt']);

const hostOpt = (ctx: JobContext) => (ctx.allowHost ? { allowHost: true } : {});

export function installerFor(ctx: JobContext): DpkgInstaller {
  return new DpkgInstaller({ root: ctx.root, ...(ctx.allowHost ? { allowHost: true } : {}) });
}

export async function planActions(_ctx: JobContext, j: Journal, v: VerifiedObject, payloadDir: string): Promise<Plan> {
  const plan: Plan = { steps: [], fetched: [], bytes: 0, payloadDir, problems: [] };
  const last = () => plan.steps[plan.steps.length - 1];
  for (const a of v.manifest.install) {
    if (a.type === 'package') {
      if (!DPKG_MANAGERS.has(a.manager)) {
        plan.problems.push(`${a.manager} actions are not supported by this agent (it drives dpkg)`);
        continue;
      }
      if (a.op === 'remove') {
        const l = last();
        if (l?.kind === 'dpkg-remove') l.names.push(a.name);
        else plan.steps.push({ kind: 'dpkg-remove', names: [a.name] });
        continue;
      }
      let file: string;
      if (a.file !== undefined) {
        file = path.join(payloadDir, a.file);
        plan.bytes += v.manifest.payload.find((p) => p.path === a.file)?.size ?? 0;
      } else if (a.fetch) {
        file = path.join(j.dir, 'files', a.fetch.sha256);
        plan.fetched.push({ file, size: a.fetch.size, sha256: a.fetch.sha256 });
        plan.bytes += a.fetch.size;
      } else {
        plan.problems.push(`${a.op} of ${a.name} from the device's own repositories needs apt, which this agent does not drive yet; ship the package file in the bundle or import the patch from its feed`);
        continue;
      }
      const item = { file, name: a.name, version: a.version, op: a.op };
      const l = last();
      if (l?.kind === 'dpkg-install') l.items.push(item);
      else plan.steps.push({ kind: 'dpkg-install', items: [item] });
    } else if (a.type === 'file') {
      const l = last();
      if (l?.kind === 'files') l.actions.push(a);
      else plan.steps.push({ kind: 'files', actions: [a] });
    } else {
      plan.steps.push({ kind: 'script', action: a });
    }
  }
  return plan;
}

const packageNames = (plan: Plan) => [
  ...new Set(plan.steps.flatMap((s) => (s.kind === 'dpkg-install' ? s.items.map((i) => i.name) : s.kind === 'dpkg-remove' ? s.names : []))),
];
const fileActions = (plan: Plan) => plan.steps.flatMap((s) => (s.kind === 'files' ? s.actions : []));

/**
 * What stops the plan on this device, changing nothing: unsupported actions, held packages,
 * package files that are not what the action names, downgrades, file states other than the
 * manifest expects. `upgrade` of a package that is not installed is dropped (a security update
 * never adds packages).
 */
export async function preflightPlan(ctx: JobContext, plan: Plan, held: readonly string[]): Promise<string[]> {
  const problems = [...plan.problems];
  const installer = installerFor(ctx);
  const names = packageNames(plan);
  const heldHere = names.filter((n) => held.includes(n));
  if (heldHere.length) problems.push(`${heldHere.join(', ')} ${heldHere.length === 1 ? 'is' : 'are'} held on this device (apt-mark hold); release the hold or exclude the device`);
  const current = names.length ? await installer.installed(names) : new Map();
  for (const s of plan.steps) {
    if (s.kind !== 'dpkg-install') continue;
    s.items = s.items.filter((i) => i.op !== 'upgrade' || current.get(i.name));
    for (const i of s.items) {
      let info;
      try {
        info = await installer.debInfo(i.file);
      } catch (err) {
        problems.push(`${path.basename(i.file)} is not a readable package: ${(err as Error).message}`);
        continue;
      }
      if (info.name !== i.name || (i.version !== undefined && info.version !== i.version)) {
        problems.push(`the package file for ${i.name}${i.version ? ` ${i.version}` : ''} is ${info.name} ${info.version}`);
      }
      const cur = current.get(i.name);
      if (cur && compareDebVersions(info.version, cur.version) < 0) problems.push(`${i.name} ${cur.version} is installed; ${info.version} would be a downgrade, which only an undo may do`);
    }
  }
  plan.steps = plan.steps.filter((s) => s.kind !== 'dpkg-install' || s.items.length > 0);
  const files = fileActions(plan);
  if (files.length) problems.push(...(await preflightFileActions(ctx.root, files, plan.payloadDir, hostOpt(ctx))).map((p) => p.message));
  if (!problems.length) {
    const audit = await installer.audit();
    if (audit) problems.push(`the dpkg database of ${ctx.root} is not clean (dpkg --audit): ${audit.split('\n').slice(0, 5).join(' ')}`);
  }
  return problems;
}

/** Records what the plan touches: dpkg packages (kept as rebuilt .deb files) and files. */
export async function snapshotPlan(ctx: JobContext, j: Journal, plan: Plan): Promise<void> {
  const names = packageNames(plan);
  if (names.length) {
    const s = await takeSnapshot(installerFor(ctx), names, ctx.dataDir);
    j.record.dpkgSnapshot = s.dir;
  }
  const files = fileActions(plan);
  if (files.length) {
    const dir = path.join(j.dir, 'files-snapshot');
    await takeFileSnapshot(ctx.root, files, dir, hostOpt(ctx));
    j.record.fileSnapshot = dir;
  }
}

export type Applied = { ok: true } | { ok: false; reason: string; before?: string; after?: string };

export async function applyPlan(ctx: JobContext, j: Journal, plan: Plan): Promise<Applied> {
  const installer = installerFor(ctx);
  for (const s of plan.steps) {
    if (s.kind === 'dpkg-install') {
      const r = await installer.install(s.items.map((i) => i.file));
      if (r.code !== 0) return { ok: false, reason: describeRun('dpkg --install', r) };
    } else if (s.kind === 'dpkg-remove') {
      const r = await installer.purge(s.names);
      if (r.code !== 0) return { ok: false, reason: describeRun('dpkg --purge', r) };
    } else if (s.kind === 'files') {
      const r = await applyFileActions(ctx.root, s.actions, plan.payloadDir, await loadFileSnapshot(j.record.fileSnapshot!), hostOpt(ctx));
      if (r.status !== 'applied') return { ok: false, reason: `file actions failed: ${r.reason}` };
    } else {
      await ctx.barrier?.('script');
      const r = await runScript(ctx.root, s.action, plan.payloadDir, hostOpt(ctx));
      if (!r.ok) {
        const how = r.timedOut ? `timed out after ${s.action.timeoutSeconds} s` : `exited with ${r.exitCode ?? r.signal}`;
        const tail = (r.stderr.trim() || r.stdout.trim()).split('\n').slice(-5).join('\n');
        return { ok: false, reason: `script ${s.action.source} ${how} (expected ${s.action.expectExit.join(', ')})${tail ? `: ${tail}` : ''}` };
      }
    }
  }
  if (j.record.dpkgSnapshot) {
    const audit = await installer.audit();
    if (audit) return { ok: false, reason: `dpkg --audit reports problems after the install: ${audit}` };
    await recordAfter(installer, await loadSnapshot(j.record.dpkgSnapshot));
  }
  return { ok: true };
}

export type RolledBack = { ok: true } | { ok: false; reason: string; audit: string };

/** Back to the snapshot, files first (the reverse of a typical install), proven by re-scans. */
export async function rollbackPlan(ctx: JobContext, j: Journal): Promise<RolledBack> {
  const installer = installerFor(ctx);
  const reasons: string[] = [];
  if (j.record.fileSnapshot) {
    const r = await rollbackFiles(ctx.root, await loadFileSnapshot(j.record.fileSnapshot), hostOpt(ctx));
    if (r.status !== 'restored') reasons.push(r.reason);
  }
  if (j.record.dpkgSnapshot) {
    const r = await restoreSnapshot(installer, await loadSnapshot(j.record.dpkgSnapshot));
    if (!r.ok) return { ok: false, reason: [...reasons, r.reason].join('; '), audit: r.audit };
  }
  if (reasons.length) return { ok: false, reason: reasons.join('; '), audit: await installer.audit().catch((e: unknown) => String(e)) };
  return { ok: true };
}

export type Undone = { status: 'undone' } | { status: 'refused'; reason: string } | { status: 'needs-attention'; reason: string; audit: string };

/**
 * The undo of an install: refuses when the device drifted from the recorded post-install state
 * (unless `resumed`: the restore had begun before a crash, so the device is half-way by design),
 * restores files and packages, then runs the manifest's undo scripts.
 */
export async function undoPlan(ctx: JobContext, j: Journal, v: VerifiedObject, payloadDir: string, resumed: boolean): Promise<Undone> {
  const installer = installerFor(ctx);
  const dpkg = j.record.dpkgSnapshot ? await loadSnapshot(j.record.dpkgSnapshot) : null;
  const files = j.record.fileSnapshot ? await loadFileSnapshot(j.record.fileSnapshot) : null;
  if (files) {
    const r = resumed ? await rollbackFiles(ctx.root, files, hostOpt(ctx)) : await undoFiles(ctx.root, files, hostOpt(ctx));
    if (r.status === 'refused') return { status: 'refused', reason: r.reason };
    if (r.status === 'needs-attention') return { status: 'needs-attention', reason: r.reason, audit: await installer.audit().catch((e: unknown) => String(e)) };
  }
  if (dpkg) {
    if (resumed) {
      const r = await restoreSnapshot(installer, dpkg);
      if (!r.ok) return { status: 'needs-attention', reason: r.reason, audit: r.audit };
    } else {
      const r = await undoSnapshot(installer, dpkg);
      if (r.status === 'refused') return { status: 'refused', reason: r.reason };
      if (r.status === 'needs-attention') return { status: 'needs-attention', reason: r.reason, audit: r.audit };
    }
  }
  for (const a of v.manifest.undo) {
    if (a.type !== 'script') continue;
    const r = await runScript(ctx.root, a, payloadDir, hostOpt(ctx));
    if (!r.ok) return { status: 'needs-attention', reason: `undo script ${a.source} exited with ${r.exitCode ?? r.signal}`, audit: r.stderr.slice(-4000) };
  }
  return { status: 'undone' };
}

export function unsupported(what: string): PatchwardenError {
  return new PatchwardenError('E_VALIDATION', `${what} is not supported by this agent`);
}
