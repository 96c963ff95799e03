/**
 * Long-poll wake-ups for agents waiting on `GET /api/v1/agent/jobs?wait=N`. Whatever can make a
 * job runnable (a new deployment, resume, undo, a ring that completed) wakes exactly the devices
 * concerned, which then ask the database again; a fleet of waiting agents is never woken as a
 * herd by one device's report. In one process this is in memory; several server processes
 * would need PostgreSQL's LISTEN/NOTIFY here.
 */
import type { Kysely } from 'kysely';
import type { DB } from '../db/schema.js';

export class JobWakeups {
  private readonly waiters = new Map<string, Set<() => void>>();

  /** Resolves on a wake-up of `deviceId`, after `ms`, or when `signal` aborts, whichever is first. */
  wait(deviceId: string, ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      let set = this.waiters.get(deviceId);
      if (!set) this.waiters.set(deviceId, (set = new Set()));
      const mine = set;
      const done = () => {
        clearTimeout(timer);
        mine.delete(done);
        if (mine.size === 0 && this.waiters.get(deviceId) === mine) this.waiters.delete(deviceId);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      mine.add(done);
      if (signal?.aborted) done();
      else signal?.addEventListener('abort', done, { once: true });
    });
  }

  wake(deviceIds: Iterable<string>): void {
    for (const id of deviceIds) for (const w of [...(this.waiters.get(id) ?? [])]) w();
  }

  wakeAll(): void {
    for (const set of [...this.waiters.values()]) for (const w of [...set]) w();
  }

  /** Devices of a deployment that have jobs not handed out yet (optionally only of `kind`). */
  async wakeDeployment(db: Kysely<DB>, deploymentId: string, kind?: 'install' | 'undo'): Promise<void> {
    if (this.waiters.size === 0) return;
    let q = db.selectFrom('jobs').select('device_id').distinct().where('deployment_id', '=', deploymentId).where('handed_at', 'is', null);
    if (kind) q = q.where('kind', '=', kind);
    const rows = await q.execute();
    this.wake(rows.map((r) => r.device_id));
  }

  get waiting(): number {
    let n = 0;
    for (const s of this.waiters.values()) n += s.size;
    return n;
  }
}
