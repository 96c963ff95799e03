/**
 * The job protocol between agent and server: what a device is asked to run (`AgentJob`) and what
 * it answers when the job ended (`JobReport`). States follow DESIGN.md ("Job").
 */
import { z } from 'zod';

export const JOB_KINDS = ['install', 'undo'] as const;
export const JobKind = z.enum(JOB_KINDS);
export type JobKind = z.infer<typeof JobKind>;

/** Every state of a job, in the order the agent passes them; the last four are final. */
export const JOB_STATES = [
  'queued',
  'downloading',
  'verifying',
  'preflight',
  'snapshotting',
  'installing',
  'verifying-install',
  'reporting',
  'done',
  'failed',
  'rolled-back',
  'needs-attention',
] as const;
export const JobState = z.enum(JOB_STATES);
export type JobState = z.infer<typeof JobState>;

export const FINAL_JOB_STATES = ['done', 'failed', 'rolled-back', 'needs-attention'] as const;
export const FinalJobState = z.enum(FINAL_JOB_STATES);
export type FinalJobState = z.infer<typeof FinalJobState>;

export function isFinalJobState(s: string): s is FinalJobState {
  return (FINAL_JOB_STATES as readonly string[]).includes(s);
}

/** Job and deployment ids: the server's random ids. */
export const JobId = z.string().regex(/^[A-Za-z0-9_-]{8,64}$/, 'not a job id');

export const PatchRef = z.strictObject({
  id: z.string().min(1).max(200),
  revision: z.number().int().min(1),
});
export type PatchRef = z.infer<typeof PatchRef>;

const TargetPath = z
  .string()
  .min(3)
  .max(300)
  .regex(/^[a-z0-9][a-z0-9._+~-]*\/[^/\0]+\.(json|bundle)$/, 'a target path is namespace/name.json or .bundle')
  .refine((p) => !p.includes('..'), 'a target path has no ..');

const Instant = z.iso.datetime();

/** When a device reboots after a patch that needs it: never, at its window's end, or at the deadline. */
export const REBOOT_POLICIES = ['never', 'window-end', 'deadline'] as const;
export const RebootPolicy = z.enum(REBOOT_POLICIES);
export type RebootPolicy = z.infer<typeof RebootPolicy>;

/**
 * The deployment's reboot decision for this job: the policy, the instant it names (null: never),
 * and the same as seconds after the job was handed out, which the agent counts on its own clock
 * (so a device whose clock is off still reboots at the right moment).
 */
export const JobReboot = z.strictObject({ policy: RebootPolicy, at: Instant.nullable(), afterSeconds: z.number().int().min(0).nullable() });
export type JobReboot = z.infer<typeof JobReboot>;

export const AgentJob = z.union([
  z.strictObject({
    id: JobId,
    kind: z.literal('install'),
    deploymentId: JobId,
    patch: PatchRef,
    /** The patch object's path in the signed catalog (`namespace/name.json`, custom patches `.bundle`). */
    target: TargetPath,
    notBefore: Instant,
    deadline: Instant.nullable(),
    reboot: JobReboot.optional(),
  }),
  z.strictObject({
    id: JobId,
    kind: z.literal('undo'),
    deploymentId: JobId,
    patch: PatchRef,
    target: TargetPath,
    notBefore: Instant,
    deadline: Instant.nullable(),
    reboot: JobReboot.optional(),
    /** The install job whose snapshot this undoes. */
    undoes: JobId,
  }),
]);
export type AgentJob = z.infer<typeof AgentJob>;

export const AgentJobList = z.strictObject({
  jobs: z.array(AgentJob),
  /** an administrator asked for a fresh scan: the agent collects and checks in at once */
  scanNow: z.boolean().optional(),
});
export type AgentJobList = z.infer<typeof AgentJobList>;

/** Bounds of a report, so one device cannot fill the server's database. */
export const JOB_REPORT_LIMITS = { events: 200, message: 2000, detail: 64 * 1024 } as const;

const DetailText = z.string().max(JOB_REPORT_LIMITS.detail);

export const JobEvent = z.strictObject({
  at: Instant,
  state: JobState,
  message: z.string().max(JOB_REPORT_LIMITS.message).optional(),
});
export type JobEvent = z.infer<typeof JobEvent>;

export const JobReport = z.strictObject({
  jobId: JobId,
  state: FinalJobState,
  events: z.array(JobEvent).max(JOB_REPORT_LIMITS.events),
  detail: z
    .strictObject({
      /** The package manager's audit output (`dpkg --audit`), for needs-attention. */
      audit: DetailText.optional(),
      /** What the patch touched, before and after (package versions, one per line). */
      before: DetailText.optional(),
      after: DetailText.optional(),
      /** The patch needs a reboot that has not happened yet. */
      rebootPending: z.boolean().optional(),
    })
    .default({}),
});
export type JobReport = z.infer<typeof JobReport>;
export type JobReportInput = z.input<typeof JobReport>;
