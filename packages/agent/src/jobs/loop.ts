/**
 * The agent's job side: resume what a crash interrupted, ask the server for jobs (a long poll:
 * the server answers at once when it has one, or after `wait` seconds with none), run them one
 * at a time, report. Report-only agents (installs off, the default) never ask for jobs.
 */
import { spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import path from 'node:path';
import { AgentJobList, PatchwardenError, type FinalJobState } from '@patchwarden/core';
import type { CollectOptions } from '../collectors/index.js';
import { loadState } from '../state.js';
import { request } from '../transport.js';
import { Journal } from './journal.js';
import { Deferred, runJob, type JobContext } from './runner.js';

export interface JobOptions {
  dataDir: string;
  collect: CollectOptions;
  /** The root installs act on; default the collect root. '/' needs allowHost. */
  root?: string;
  allowHost?: boolean;
  log?: (line: string) => void;
  barrier?: (point: string) => Promise<void>;
  /** Runs when a patch's reboot is due (argv; PATCHWARDEN_ROOT is set). None: the reboot stays pending and is reported. */
  rebootCommand?: string[];
  now?: () => Date;
  /** ends a waiting job request when the agent stops */
  signal?: AbortSignal;
}

export interface JobPass {
  /** false: this agent is report-only */
  installs: boolean;
  ran: { id: string; kind: string; patch: string; state: FinalJobState }[];
  waiting: { id: string; reason: string }[];
  /** of those waiting, the jobs stopped by the network or the server (a download cut off, a 5xx): retried with backoff */
  retrying?: { id: string; reason: string }[];
  /** reboots run in this pass */
  rebooted: string[];
  /** an administrator asked for a scan: check in now */
  scanRequested: boolean;
}

function contextOf(opts: JobOptions): JobContext {
  const s = loadState(opts.dataDir);
  return {
    dataDir: opts.dataDir,
    root: opts.root ?? opts.collect.root,
    ...(opts.allowHost ? { allowHost: true } : {}),
    agent: { server: s.server, token: s.token },
    collect: opts.collect,
    ...(opts.log ? { log: opts.log } : {}),
    ...(opts.barrier ? { barrier: opts.barrier } : {}),
    ...(opts.now ? { now: opts.now } : {}),
  };
}

/** Asks the server for jobs; the answer is checked like any outside input. */
export async function fetchJobs(opts: JobOptions, waitSeconds = 0, installs = true) {
  const s = loadState(opts.dataDir);
  const params = new URLSearchParams();
  if (waitSeconds > 0) params.set('wait', String(Math.floor(waitSeconds)));
  if (!installs) params.set('installs', 'false');
  const q = params.size ? `?${params}` : '';
  const res = await request<unknown>(s.server, 'GET', `/api/v1/agent/jobs${q}`, { token: s.token, timeoutMs: (waitSeconds + 30) * 1000, ...(opts.signal ? { signal: opts.signal } : {}) });
  const parsed = AgentJobList.safeParse(res.body);
  if (!parsed.success) throw new PatchwardenError('E_VALIDATION', `the server's job list is malformed: ${parsed.error.issues[0]?.message}`);
  return parsed.data;
}

/**
 * One pass: resume unfinished journals, fetch new jobs (waiting up to `waitSeconds` for one),
 * run every job that can run now. A job waiting for a prerequisite runs after the others.
 */
export async function processJobs(opts: JobOptions, waitSeconds = 0): Promise<JobPass> {
  const pass: JobPass = { installs: true, ran: [], waiting: [], retrying: [], rebooted: [], scanRequested: false };
  if (!loadState(opts.dataDir).installs) {
    // a report-only agent takes no job, but hears "scan now"
    const answer = await fetchJobs(opts, waitSeconds, false);
    return { ...pass, installs: false, scanRequested: answer.scanNow === true };
  }
  const ctx = contextOf(opts);
  const hasUnfinished = () => Journal.all(opts.dataDir).some((j) => !j.finished);
  const answer = await fetchJobs(opts, hasUnfinished() ? 0 : waitSeconds);
  pass.scanRequested = answer.scanNow === true;
  for (const job of answer.jobs) {
    if (!Journal.exists(opts.dataDir, job.id)) Journal.create(opts.dataDir, job, (opts.now ?? (() => new Date()))());
  }
  let progress = true;
  const deferred = new Map<string, string>();
  const transient = new Set<string>();
  while (progress) {
    progress = false;
    for (const j of Journal.all(opts.dataDir)) {
      if (j.finished || deferred.has(j.job.id)) continue;
      try {
        const state = await runJob(ctx, j);
        pass.ran.push({ id: j.job.id, kind: j.job.kind, patch: j.job.patch.id, state });
        progress = true;
      } catch (err) {
        if (!(err instanceof Deferred)) throw err;
        deferred.set(j.job.id, err.message);
        // the runner journals a transient stop (server or network trouble, nothing changed) as "will retry"
        if (j.record.events[j.record.events.length - 1]?.message?.startsWith('will retry:')) transient.add(j.job.id);
        else transient.delete(j.job.id);
      }
    }
    // a prerequisite may have been installed in this round: let the waiting ones try again
    if (progress && deferred.size) deferred.clear();
  }
  pass.waiting = [...deferred].map(([id, reason]) => ({ id, reason }));
  pass.retrying = pass.waiting.filter((w) => transient.has(w.id));
  pass.rebooted = await rebootIfDue(opts, ctx);
  return pass;
}

/** Runs the reboot command once for jobs whose reboot time came; the reboot marker stays until the device really restarted. */
async function rebootIfDue(opts: JobOptions, ctx: JobContext): Promise<string[]> {
  const now = (opts.now ?? (() => new Date()))().getTime();
  const due = Journal.all(opts.dataDir).filter((j) => j.finished && j.record.rebootAt && Date.parse(j.record.rebootAt) <= now && !j.record.events.some((e) => e.message?.startsWith('reboot started')));
  if (!due.length || !opts.rebootCommand?.length) return [];
  const [cmd, ...args] = opts.rebootCommand;
  for (const j of due) {
    j.event(j.record.state, `reboot started by ${cmd} (policy ${j.job.reboot?.policy ?? 'deadline'})`, new Date(now));
    j.save();
  }
  await new Promise<void>((resolve) => {
    const child = spawn(cmd!, args, { stdio: 'ignore', env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', PATCHWARDEN_ROOT: ctx.root } });
    child.on('error', () => resolve());
    child.on('close', () => resolve());
  });
  return due.map((j) => j.job.id);
}

/** Removes journals of reported jobs older than `days`, keeping those whose snapshot an undo may still need. */
export function pruneJournals(dataDir: string, days: number, now = Date.now()): number {
  let n = 0;
  for (const j of Journal.all(dataDir)) {
    if (!j.finished || Date.parse(j.record.reportedAt!) > now - days * 86_400_000) continue;
    if (j.job.kind === 'install' && j.record.outcome?.state === 'done' && (j.record.dpkgSnapshot || j.record.fileSnapshot)) continue;
    rmSync(j.dir, { recursive: true, force: true });
    n++;
  }
  return n;
}

export function listJournals(dataDir: string) {
  return Journal.all(dataDir).map((j) => ({
    id: j.job.id,
    kind: j.job.kind,
    patch: `${j.job.patch.id} r${j.job.patch.revision}`,
    state: j.record.state,
    outcome: j.record.outcome?.message ?? null,
    reported: j.record.reportedAt ?? null,
    runs: j.record.runs,
    snapshot: j.record.dpkgSnapshot && existsSync(path.join(j.record.dpkgSnapshot, 'snapshot.json')) ? j.record.dpkgSnapshot : null,
  }));
}
