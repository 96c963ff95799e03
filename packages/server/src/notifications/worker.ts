/**
 * Sends the outbox: every pending delivery whose time has come is claimed (a lease on its next
 * attempt time, so two servers on one database never send it twice at once), POSTed with its
 * signature, and recorded. 2xx delivers; anything else (3xx included: redirects are not
 * followed), a timeout or a network error schedules the next attempt with exponential backoff,
 * until `maxAttempts`, then `failed`. The time is the app's clock, so tests drive it and call
 * `tick()` instead of sleeping. Logs name the webhook, delivery and host, never the secret,
 * the path or query of the URL (receivers often keep a token there) or the body.
 */
import type { Kysely } from 'kysely';
import { signWebhook } from '@patchwarden/core';
import type { DB } from '../db/schema.js';

type Db = Kysely<DB>;

export interface WorkerLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface WebhookWorkerOptions {
  /** attempts before a delivery is `failed` (default 8: about an hour of retries at the defaults) */
  maxAttempts?: number;
  /** delay after the first failed attempt; doubled after each (default 30 s) */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** per attempt, answer body included (default 10 s) */
  timeoutMs?: number;
  /** deliveries claimed per pass (default 20) */
  batch?: number;
  /** how often a started worker looks for due deliveries (default 2 s) */
  pollMs?: number;
  userAgent?: string;
}

/** At most this much of an answer's body is read and stored. */
export const RESPONSE_LIMIT = 1024;

const silent: WorkerLog = { info() {}, warn() {}, error() {} };

export function backoffMs(attempt: number, base: number, max: number): number {
  return Math.min(max, base * 2 ** Math.max(0, attempt - 1));
}

async function readStart(res: Response, max: number): Promise<string> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let n = 0;
  try {
    while (n < max) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      n += value.length;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  return Buffer.concat(chunks).subarray(0, max).toString('utf8');
}

function describeError(err: unknown, timeoutMs: number): string {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  if (e?.name === 'TimeoutError') return `timed out after ${timeoutMs / 1000} s`;
  const cause = e?.cause?.code ?? e?.cause?.message;
  return (cause ? `${e.message}: ${cause}` : (e?.message ?? String(err))).slice(0, 500);
}

const hostOf = (url: string) => {
  try {
    return new URL(url).host;
  } catch {
    return '?';
  }
};

export class WebhookWorker {
  log: WorkerLog = silent;
  readonly maxAttempts: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly timeoutMs: number;
  private readonly batch: number;
  private readonly pollMs: number;
  private readonly userAgent: string;
  private timer: NodeJS.Timeout | null = null;
  private chain: Promise<unknown> = Promise.resolve();
  private busy = false;
  private closing = new AbortController();

  constructor(
    private readonly db: Db,
    private readonly now: () => number,
    opts: WebhookWorkerOptions = {},
  ) {
    this.maxAttempts = opts.maxAttempts ?? 8;
    this.baseDelayMs = opts.baseDelayMs ?? 30_000;
    this.maxDelayMs = opts.maxDelayMs ?? 30 * 60_000;
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.batch = opts.batch ?? 20;
    this.pollMs = opts.pollMs ?? 2_000;
    this.userAgent = opts.userAgent ?? 'Patchwarden-Webhooks';
  }

  get running(): boolean {
    return this.timer !== null;
  }

  /** Polls for due deliveries until `stop()`; pending ones from before a restart go first. */
  start(): void {
    if (this.timer) return;
    this.closing = new AbortController();
    this.timer = setInterval(() => this.kick(), this.pollMs);
    this.timer.unref();
    this.kick();
  }

  /** A pass soon, when started (a new delivery need not wait for the next poll). */
  kick(): void {
    if (!this.timer || this.busy) return;
    void this.tick().catch((err: unknown) => this.log.error({ err }, 'webhook delivery pass failed'));
  }

  /** Stops polling and aborts attempts in flight (they stay pending and go out after a restart). */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.closing.abort();
    await this.chain.catch(() => {});
  }

  /** One pass: sends every delivery due now (up to the batch size); answers how many were tried. */
  tick(): Promise<number> {
    const run = this.chain.catch(() => {}).then(() => this.pass());
    this.chain = run;
    return run;
  }

  private async pass(): Promise<number> {
    this.busy = true;
    try {
      const now = this.now();
      const due = await this.db
        .selectFrom('webhook_deliveries as d')
        .innerJoin('webhooks as w', 'w.id', 'd.webhook_id')
        .select(['d.id', 'd.webhook_id', 'd.event', 'd.body', 'd.attempts', 'd.next_attempt_at', 'w.url', 'w.secret'])
        .where('d.status', '=', 'pending')
        .where('d.next_attempt_at', '<=', now)
        .orderBy('d.next_attempt_at')
        .orderBy('d.id')
        .limit(this.batch)
        .execute();
      const lease = now + this.timeoutMs + 60_000;
      const claimed: typeof due = [];
      for (const d of due) {
        const upd = await this.db
          .updateTable('webhook_deliveries')
          .set({ next_attempt_at: lease })
          .where('id', '=', d.id)
          .where('status', '=', 'pending')
          .where('next_attempt_at', '=', d.next_attempt_at)
          .executeTakeFirst();
        if (Number(upd.numUpdatedRows) === 1) claimed.push(d);
      }
      await Promise.all(claimed.map((d) => this.attempt(d)));
      return claimed.length;
    } finally {
      this.busy = false;
    }
  }

  private async attempt(d: { id: string; webhook_id: string; event: string; body: string; attempts: number; url: string; secret: string }): Promise<void> {
    const timestamp = String(Math.floor(this.now() / 1000));
    let status: number | null = null;
    let error: string | null = null;
    let response: string | null = null;
    try {
      const res = await fetch(d.url, {
        method: 'POST',
        redirect: 'manual',
        signal: AbortSignal.any([AbortSignal.timeout(this.timeoutMs), this.closing.signal]),
        headers: {
          'content-type': 'application/json',
          'user-agent': this.userAgent,
          'x-patchwarden-event': d.event,
          'x-patchwarden-delivery': d.id,
          'x-patchwarden-timestamp': timestamp,
          'x-patchwarden-signature': signWebhook(d.secret, timestamp, d.body),
        },
        body: d.body,
      });
      status = res.status;
      response = await readStart(res, RESPONSE_LIMIT);
      if (status >= 300 && status < 400) error = `HTTP ${status}: redirects are not followed`;
      else if (status < 200 || status >= 300) error = `HTTP ${status}`;
    } catch (err) {
      if (this.closing.signal.aborted) {
        // shutting down: not an attempt; release the lease so a restart sends it at once
        await this.db.updateTable('webhook_deliveries').set({ next_attempt_at: this.now() }).where('id', '=', d.id).where('status', '=', 'pending').execute().catch(() => {});
        return;
      }
      error = describeError(err, this.timeoutMs);
    }
    const at = this.now();
    const attempts = Number(d.attempts) + 1;
    const delivered = error === null;
    const failed = !delivered && attempts >= this.maxAttempts;
    await this.db
      .updateTable('webhook_deliveries')
      .set({
        status: delivered ? 'delivered' : failed ? 'failed' : 'pending',
        attempts,
        last_attempt_at: at,
        last_status: status,
        last_error: error,
        last_response: response,
        delivered_at: delivered ? at : null,
        next_attempt_at: delivered || failed ? at : at + backoffMs(attempts, this.baseDelayMs, this.maxDelayMs),
      })
      .where('id', '=', d.id)
      .execute();
    const fields = { webhook: d.webhook_id, delivery: d.id, event: d.event, host: hostOf(d.url), attempt: attempts, status };
    if (delivered) this.log.info(fields, 'webhook delivered');
    else if (failed) this.log.error({ ...fields, error }, `webhook delivery failed after ${attempts} attempts`);
    else this.log.warn({ ...fields, error }, 'webhook delivery attempt failed; will retry');
  }
}
