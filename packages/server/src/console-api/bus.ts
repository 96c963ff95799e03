/**
 * The in-process event bus the console's live view reads (`GET /api/v1/events/stream`). Features
 * emit after their work is stored; a listener that throws is logged away and never fails the
 * request that emitted. Events live in this process only: a second server process has its own.
 */
import type { Kysely } from 'kysely';
import type { AgentJob } from '@patchwarden/core';
import type { DB } from '../db/schema.js';

export interface CheckinEvent {
  deviceId: string;
  /** null when the check-in carried no system facts (unchanged): the stream fills it in */
  hostname: string | null;
  at: string;
}
export interface JobEvent {
  jobId: string;
  deploymentId: string;
  deviceId: string;
  kind: 'install' | 'undo';
  /** `handed` when an agent received it, else the state its report gave (done, failed, …) */
  state: string;
  at: string;
}
export type DeploymentChange = 'created' | 'halted' | 'resumed' | 'undone' | 'complete';
export interface DeploymentEvent {
  id: string;
  /** the deployment's status after the change (running, baking, halted, undone, complete) */
  status: string;
  /** what happened */
  change: DeploymentChange;
  /** the halt reason, when there is one */
  reason: string | null;
}

export interface BusEvents {
  checkin: CheckinEvent;
  job: JobEvent;
  deployment: DeploymentEvent;
}
export type BusEventName = keyof BusEvents;
type Listener<K extends BusEventName> = (payload: BusEvents[K]) => void;

export class EventBus {
  private readonly listeners: { [K in BusEventName]: Set<Listener<K>> } = { checkin: new Set(), job: new Set(), deployment: new Set() };
  /** where a failing listener is reported (the app's logger) */
  onListenerError: (err: unknown) => void = () => {};

  /** Subscribes; the answer unsubscribes. */
  on<K extends BusEventName>(name: K, listener: Listener<K>): () => void {
    const set = this.listeners[name] as Set<Listener<K>>;
    set.add(listener);
    return () => set.delete(listener);
  }

  emit<K extends BusEventName>(name: K, payload: BusEvents[K]): void {
    for (const l of this.listeners[name] as Set<Listener<K>>) {
      try {
        l(payload);
      } catch (err) {
        this.onListenerError(err);
      }
    }
  }

  listenerCount(name: BusEventName): number {
    return this.listeners[name].size;
  }
}

const iso = (t: number) => new Date(t).toISOString();

/** One `job` event per job handed to an agent (a job handed again on the next poll is sent again). */
export function emitJobsHanded(bus: EventBus | undefined, deviceId: string, jobs: readonly AgentJob[], now: number): void {
  if (!bus) return;
  for (const j of jobs) bus.emit('job', { jobId: j.id, deploymentId: j.deploymentId, deviceId, kind: j.kind, state: 'handed', at: iso(now) });
}

/** What routes know after a job report: the job event, and a deployment event when the report halted or completed it. */
export async function emitJobReported(
  bus: EventBus | undefined,
  db: Kysely<DB>,
  deviceId: string,
  answer: { jobId: string; state: string; duplicate: boolean; deployment: { id: string; status: string; reason: string | null } },
  now: number,
): Promise<void> {
  if (!bus || answer.duplicate) return;
  if (bus.listenerCount('job') > 0) {
    const job = await db.selectFrom('jobs').select('kind').where('id', '=', answer.jobId).executeTakeFirst();
    bus.emit('job', { jobId: answer.jobId, deploymentId: answer.deployment.id, deviceId, kind: job?.kind ?? 'install', state: answer.state, at: iso(now) });
  }
  const d = answer.deployment;
  if (d.status === 'halted' || d.status === 'complete') bus.emit('deployment', { id: d.id, status: d.status, change: d.status, reason: d.reason });
}

/** A deployment event from an answer of the deployment service (create, halt, resume, undo). */
export function emitDeployment(bus: EventBus | undefined, change: DeploymentChange, d: { id: string; status: string; reason: string | null }): void {
  bus?.emit('deployment', { id: d.id, status: d.status, change, reason: d.reason });
}
