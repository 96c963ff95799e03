/**
 * The job journal: one file per job in the agent's data directory (`jobs/<id>/journal.json`),
 * written before every step that changes anything, so that an agent killed at any instant (or a
 * reboot) finds out on start where each job stood and resumes it or rolls it back. Writes are
 * write-tmp, fsync, rename, fsync-directory: a crash leaves the old record or the new one.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, writeSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { AgentJob, FinalJobState, JOB_REPORT_LIMITS, JobEvent, JobState, PatchwardenError, type JobReport } from '@patchwarden/core';

export const JournalRecord = z.object({
  format: z.literal(1),
  job: AgentJob,
  state: JobState,
  events: z.array(JobEvent),
  /** How many times a run of this job started (a resume after a crash counts one more). */
  runs: z.number().int().min(0),
  /** The verified patch object, kept beside the journal (`patch.json` or `patch.bundle`). */
  object: z.object({ file: z.string(), sha256: z.string(), kind: z.enum(['json', 'bundle']) }).optional(),
  /** Snapshot directories, recorded before the snapshot is taken. */
  dpkgSnapshot: z.string().optional(),
  fileSnapshot: z.string().optional(),
  /** The outcome, decided before it is reported. */
  outcome: z
    .object({
      state: FinalJobState,
      message: z.string(),
      detail: z.object({ audit: z.string().optional(), before: z.string().optional(), after: z.string().optional(), rebootPending: z.boolean().optional() }),
    })
    .optional(),
  /** Set once the server stored the report (or answered that it had it). */
  reportedAt: z.string().optional(),
  /** The patch needs a reboot; set when the install succeeded. */
  rebootAt: z.string().nullable().optional(),
});
export type JournalRecord = z.infer<typeof JournalRecord>;

export function jobsDir(dataDir: string): string {
  return path.join(dataDir, 'jobs');
}

export function jobDir(dataDir: string, jobId: string): string {
  // job ids are checked by AgentJob's schema ([A-Za-z0-9_-]); this keeps a bad one out of the path anyway
  if (!/^[A-Za-z0-9_-]{8,64}$/.test(jobId)) throw new PatchwardenError('E_VALIDATION', `'${jobId}' is not a job id`);
  return path.join(jobsDir(dataDir), jobId);
}

function fsyncDir(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // some file systems refuse fsync on directories; the rename is still atomic there
  }
}

/** Writes `data` to `file` durably and atomically. */
export function writeDurable(file: string, data: string | Buffer): void {
  const tmp = `${file}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  fsyncDir(path.dirname(file));
}

export class Journal {
  private constructor(
    readonly dir: string,
    public record: JournalRecord,
  ) {}

  static exists(dataDir: string, jobId: string): boolean {
    return existsSync(path.join(jobDir(dataDir, jobId), 'journal.json'));
  }

  static create(dataDir: string, job: AgentJob, now: Date): Journal {
    const dir = jobDir(dataDir, job.id);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const j = new Journal(dir, { format: 1, job, state: 'queued', events: [{ at: now.toISOString(), state: 'queued', message: `received ${job.kind} of ${job.patch.id} r${job.patch.revision}` }], runs: 0 });
    j.save();
    return j;
  }

  static load(dataDir: string, jobId: string): Journal {
    const dir = jobDir(dataDir, jobId);
    const file = path.join(dir, 'journal.json');
    let parsed;
    try {
      parsed = JournalRecord.safeParse(JSON.parse(readFileSync(file, 'utf8')));
    } catch (err) {
      throw new PatchwardenError('E_INTERNAL', `the journal of job ${jobId} cannot be read: ${(err as Error).message}`, { hint: `inspect ${file}` });
    }
    if (!parsed.success) throw new PatchwardenError('E_INTERNAL', `the journal of job ${jobId} is not one this agent wrote: ${parsed.error.issues[0]?.message}`, { hint: `inspect ${file}` });
    return new Journal(dir, parsed.data);
  }

  /** Every job with a journal, oldest first by id order of creation (directory listing sorted). */
  static all(dataDir: string): Journal[] {
    const dir = jobsDir(dataDir);
    if (!existsSync(dir)) return [];
    const out: Journal[] = [];
    for (const name of readdirSync(dir).sort()) {
      if (!existsSync(path.join(dir, name, 'journal.json'))) continue;
      out.push(Journal.load(dataDir, name));
    }
    return out.sort((a, b) => a.record.events[0]!.at.localeCompare(b.record.events[0]!.at));
  }

  get job(): AgentJob {
    return this.record.job;
  }

  get finished(): boolean {
    return this.record.reportedAt !== undefined;
  }

  save(): void {
    writeDurable(path.join(this.dir, 'journal.json'), JSON.stringify(this.record, null, 1) + '\n');
  }

  /** Moves to `state` and writes the journal before the caller acts in it. */
  enter(state: JobState, message: string | undefined, now: Date): void {
    this.record.state = state;
    this.event(state, message, now);
    this.save();
  }

  event(state: JobState, message: string | undefined, now: Date): void {
    const ev: JobEvent = { at: now.toISOString(), state, ...(message ? { message: message.slice(0, JOB_REPORT_LIMITS.message) } : {}) };
    this.record.events.push(ev);
    // a job resumed many times keeps its first events and the latest ones
    const max = JOB_REPORT_LIMITS.events;
    if (this.record.events.length > max) this.record.events.splice(20, this.record.events.length - max);
  }

  /** The report as it goes to the server, built from the journal alone. */
  report(): JobReport {
    const o = this.record.outcome;
    if (!o) throw new PatchwardenError('E_INTERNAL', `job ${this.job.id} has no outcome to report`);
    const clip = (s: string | undefined) => (s === undefined ? undefined : s.length > JOB_REPORT_LIMITS.detail ? s.slice(s.length - JOB_REPORT_LIMITS.detail) : s);
    const detail: JobReport['detail'] = {};
    for (const k of ['audit', 'before', 'after'] as const) {
      const v = clip(o.detail[k]);
      if (v) detail[k] = v;
    }
    if (o.detail.rebootPending) detail.rebootPending = true;
    return { jobId: this.job.id, state: o.state, events: this.record.events, detail };
  }
}
