/**
 * Rings: a deployment reaches its devices ring after ring; the next ring starts only after the
 * previous one baked healthy.
 */
import { z } from 'zod';
import { sha256Hex } from '../canonical.js';
import { PatchwardenError } from '../errors.js';

const RingCommon = {
  name: z.string().min(1).max(100),
  /** Observation time after the ring's last job ended (or its deadline passed). */
  bakeMinutes: z.number().int().min(0).max(60 * 24 * 90).default(0),
  /** Halt when failed ÷ finished goes above this (0 tolerates no failure). */
  failureThreshold: z.number().min(0).max(1).default(0),
  /** Halt when more devices than this have not reported by the ring's deadline. */
  maxNotReporting: z.number().int().min(0).default(0),
};

export const Ring = z.union([
  z.strictObject({ ...RingCommon, groups: z.array(z.string().min(1).max(200)).min(1) }),
  /** A share of all the deployment's devices, rounded up, at least one. */
  z.strictObject({ ...RingCommon, percent: z.number().gt(0).max(100) }),
]);
export type Ring = z.infer<typeof Ring>;

/** What assignRings needs of a ring. */
export type RingSelector = { name: string; groups: readonly string[] } | { name: string; percent: number };

export interface RingDevice {
  id: string;
  groups: readonly string[];
}

export interface RingAssignment {
  /** Device ids per ring, in ring order; each list sorted by id. */
  rings: { name: string; devices: string[] }[];
  /** Devices that no ring selects (no group matched and the percentages ran out). */
  unassigned: string[];
}

/** How many of `total` devices a percentage ring takes: rounded up, at least one. */
export function ringSize(percent: number, total: number): number {
  if (total === 0) return 0;
  // the small epsilon keeps 7 % of 100 at 7 where floating point gives 7.000000000000001
  return Math.max(1, Math.ceil((percent * total) / 100 - 1e-9));
}

/**
 * Puts each device in exactly one ring, in ring order: a group ring takes the devices of its
 * groups that no earlier ring took; a percentage ring takes its share of all the deployment's
 * devices (capped by those left), chosen by a stable hash of the device id salted with `salt` (the
 * deployment id), so the same deployment always picks the same devices and different deployments
 * pick different ones.
 */
export function assignRings(devices: readonly RingDevice[], rings: readonly RingSelector[], salt: string): RingAssignment {
  const seen = new Set<string>();
  for (const d of devices) {
    if (seen.has(d.id)) throw new PatchwardenError('E_VALIDATION', `device ${d.id} is listed twice for ring assignment`);
    seen.add(d.id);
  }
  const rank = new Map(devices.map((d) => [d.id, sha256Hex(`${salt}\0${d.id}`)]));
  const byHash = [...devices].sort((a, b) => {
    const x = rank.get(a.id)!;
    const y = rank.get(b.id)!;
    return x < y ? -1 : x > y ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
  });
  const left = new Set(devices.map((d) => d.id));
  const out: RingAssignment['rings'] = [];
  for (const ring of rings) {
    const taken: string[] = [];
    if ('groups' in ring) {
      const groups = new Set(ring.groups);
      for (const d of devices) {
        if (left.has(d.id) && d.groups.some((g) => groups.has(g))) taken.push(d.id);
      }
    } else {
      const want = Math.min(ringSize(ring.percent, devices.length), left.size);
      for (const d of byHash) {
        if (taken.length >= want) break;
        if (left.has(d.id)) taken.push(d.id);
      }
    }
    for (const id of taken) left.delete(id);
    out.push({ name: ring.name, devices: taken.sort() });
  }
  return { rings: out, unassigned: [...left].sort() };
}

/** Job states that count as finished (underscores accepted for hyphens). */
export const JOB_SUCCEEDED_STATES = ['done', 'succeeded'] as const;
export const JOB_FAILED_STATES = ['failed', 'rolled-back', 'needs-attention'] as const;

export interface RingVerdictInput {
  /** The ring's jobs, or their states with a count each (`n`, default 1): a server counts in SQL. */
  jobs: readonly { state: string; n?: number }[];
  /** Devices in the ring (jobs not yet created count as not reported). */
  total: number;
  /** failed ÷ finished above this halts. */
  failureThreshold: number;
  /** More devices than this without a finished job once the deadline passed halts. */
  maxNotReporting: number;
  /** When the bake began (the last job's end, or the deadline); absent: it begins now. */
  bakeStartedAt?: number;
  bakeMs: number;
  deadlinePassed: boolean;
  now: number;
}

export interface RingVerdict {
  status: 'running' | 'baking' | 'healthy' | 'halted';
  reason?: string;
  /** While baking: when the bake ends. */
  bakeEndsAt?: number;
  counts: { total: number; succeeded: number; failed: number; unfinished: number };
}

function pct(x: number): string {
  return `${Number((x * 100).toFixed(1))}%`;
}

/**
 * A ring's health. The failure ratio is failed ÷ finished. While jobs still run the ring halts
 * only once the threshold is crossed for certain (failed ÷ total above it: even if every other job
 * succeeds the ratio stays above), so one early failure in a large ring does not halt it; when the
 * ring is done (every job finished, or the deadline passed) the ratio itself decides. Devices
 * without a finished job at the deadline count against maxNotReporting. The bake runs from
 * bakeStartedAt for bakeMs; the thresholds keep being checked while it runs (late reports count).
 */
export function ringVerdict(input: RingVerdictInput): RingVerdict {
  const { failureThreshold, maxNotReporting, bakeMs, deadlinePassed, now } = input;
  let succeeded = 0;
  let failed = 0;
  let listed = 0;
  for (const j of input.jobs) {
    const k = j.n ?? 1;
    listed += k;
    const s = j.state.replaceAll('_', '-');
    if ((JOB_SUCCEEDED_STATES as readonly string[]).includes(s)) succeeded += k;
    else if ((JOB_FAILED_STATES as readonly string[]).includes(s)) failed += k;
  }
  const total = Math.max(input.total, listed);
  const finished = succeeded + failed;
  const counts = { total, succeeded, failed, unfinished: total - finished };
  const done = finished === total || deadlinePassed;

  const ratioBase = done ? finished : total;
  if (failed > 0 && failed / ratioBase > failureThreshold) {
    const ratio = failed / finished;
    return {
      status: 'halted',
      reason:
        `${failed} of ${finished} finished jobs failed (${pct(ratio)}), above the failure threshold of ${pct(failureThreshold)}` +
        (done ? '' : ` (certain: at least ${pct(failed / total)} of all ${total} devices)`),
      counts,
    };
  }
  if (!done) return { status: 'running', counts };
  if (deadlinePassed && total - finished > maxNotReporting) {
    return {
      status: 'halted',
      reason: `${total - finished} of ${total} devices did not report by the deadline, above the limit of ${maxNotReporting}`,
      counts,
    };
  }
  if (total === 0) return { status: 'healthy', reason: 'the ring has no devices', counts };
  const bakeEndsAt = (input.bakeStartedAt ?? now) + bakeMs;
  if (now >= bakeEndsAt) return { status: 'healthy', counts };
  return { status: 'baking', bakeEndsAt, counts };
}

export interface DeploymentProgress {
  /** Index of the ring that may run now (the rings after it wait); rings.length when complete. */
  ring: number;
  status: 'running' | 'baking' | 'halted' | 'complete';
  reason?: string;
}

/**
 * Where a deployment stands, from its rings' verdicts in ring order: the first ring that is not
 * healthy is the current one, since a ring starts only after every earlier ring baked healthy. A
 * halted ring halts the deployment.
 */
export function deploymentProgress(verdicts: readonly Pick<RingVerdict, 'status' | 'reason'>[]): DeploymentProgress {
  const i = verdicts.findIndex((v) => v.status !== 'healthy');
  if (i < 0) return { ring: verdicts.length, status: 'complete' };
  const v = verdicts[i]!;
  const status = v.status === 'healthy' ? 'complete' : v.status;
  return v.reason === undefined ? { ring: i, status } : { ring: i, status, reason: `ring ${i + 1}: ${v.reason}` };
}
