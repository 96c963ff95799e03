/**
 * Webhook subscriptions and the durable outbox of their deliveries. `enqueueEvent` writes one
 * delivery row per subscribed webhook with the exact body to send; it takes any Kysely executor,
 * so a caller's transaction makes the event as durable as the change it reports. The worker
 * (`worker.ts`) sends the rows; nothing here talks HTTP.
 */
import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import { PatchwardenError, type WebhookBody, type WebhookEventKind } from '@patchwarden/core';
import type { DB, WebhookDeliveriesTable } from '../db/schema.js';
import { newId } from '../auth/tokens.js';

type Db = Kysely<DB>;
const iso = (t: number) => new Date(t).toISOString();

/** A server-made secret: 256 random bits. */
export function newWebhookSecret(): string {
  return `pwh_${randomBytes(32).toString('base64url')}`;
}

export interface WebhookInfo {
  id: string;
  url: string;
  events: WebhookEventKind[];
  createdAt: string;
}

export interface DeliveryInfo {
  id: string;
  event: string;
  status: WebhookDeliveriesTable['status'];
  attempts: number;
  lastStatus: number | null;
  lastError: string | null;
  createdAt: string;
  lastAttemptAt: string | null;
  nextAttemptAt: string | null;
  deliveredAt: string | null;
}

const info = (r: { id: string; url: string; events_json: string; created_at: number }): WebhookInfo => ({
  id: r.id,
  url: r.url,
  events: JSON.parse(r.events_json) as WebhookEventKind[],
  createdAt: iso(r.created_at),
});

/** Creates a webhook; the answer holds the secret, the only time it is shown. */
export async function createWebhook(db: Db, now: number, body: { url: string; events: WebhookEventKind[]; secret?: string | undefined }): Promise<WebhookInfo & { secret: string }> {
  const row = { id: newId(), url: body.url, events_json: JSON.stringify([...new Set(body.events)]), secret: body.secret ?? newWebhookSecret(), created_at: now };
  await db.insertInto('webhooks').values(row).execute();
  return { ...info(row), secret: row.secret };
}

/** Every webhook, oldest first, without secrets. */
export async function listWebhooks(db: Db): Promise<{ items: WebhookInfo[] }> {
  const rows = await db.selectFrom('webhooks').select(['id', 'url', 'events_json', 'created_at']).orderBy('created_at').orderBy('id').execute();
  return { items: rows.map(info) };
}

async function requireWebhook(db: Db, id: string) {
  const row = await db.selectFrom('webhooks').select(['id', 'url', 'events_json', 'created_at']).where('id', '=', id).executeTakeFirst();
  if (!row) throw new PatchwardenError('E_NOT_FOUND', `no webhook '${id}'`, { hint: 'list webhooks with `patchwarden webhooks list`' });
  return row;
}

/** Removes a webhook and its deliveries (pending ones are never sent). */
export async function deleteWebhook(db: Db, id: string): Promise<WebhookInfo> {
  const row = await requireWebhook(db, id);
  await db.transaction().execute(async (tx) => {
    await tx.deleteFrom('webhook_deliveries').where('webhook_id', '=', id).execute();
    await tx.deleteFrom('webhooks').where('id', '=', id).execute();
  });
  return info(row);
}

export async function listDeliveries(db: Db, id: string, q: { limit: number; offset: number }): Promise<{ items: DeliveryInfo[]; total: number }> {
  await requireWebhook(db, id);
  const base = db.selectFrom('webhook_deliveries').where('webhook_id', '=', id);
  const [rows, n] = await Promise.all([
    base
      .select(['id', 'event', 'status', 'attempts', 'last_status', 'last_error', 'created_at', 'last_attempt_at', 'next_attempt_at', 'delivered_at'])
      .orderBy('created_at', 'desc')
      .orderBy('id')
      .limit(q.limit)
      .offset(q.offset)
      .execute(),
    base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow(),
  ]);
  return {
    items: rows.map((r) => ({
      id: r.id,
      event: r.event,
      status: r.status,
      attempts: Number(r.attempts),
      lastStatus: r.last_status === null ? null : Number(r.last_status),
      lastError: r.last_error,
      createdAt: iso(Number(r.created_at)),
      lastAttemptAt: r.last_attempt_at === null ? null : iso(Number(r.last_attempt_at)),
      nextAttemptAt: r.status === 'pending' ? iso(Number(r.next_attempt_at)) : null,
      deliveredAt: r.delivered_at === null ? null : iso(Number(r.delivered_at)),
    })),
    total: Number(n.n),
  };
}

function deliveryRow(webhookId: string, now: number, kind: WebhookEventKind, data: unknown): WebhookDeliveriesTable {
  const id = newId();
  const body: WebhookBody = { id, event: kind, createdAt: iso(now), data };
  return {
    id,
    webhook_id: webhookId,
    event: kind,
    body: JSON.stringify(body),
    status: 'pending',
    attempts: 0,
    next_attempt_at: now,
    last_attempt_at: null,
    last_status: null,
    last_error: null,
    last_response: null,
    created_at: now,
    delivered_at: null,
  };
}

/** The ids of the webhooks subscribed to an event. */
export async function subscribers(db: Db, kind: WebhookEventKind): Promise<string[]> {
  const rows = await db.selectFrom('webhooks').select(['id', 'events_json']).orderBy('created_at').orderBy('id').execute();
  return rows.filter((r) => (JSON.parse(r.events_json) as string[]).includes(kind)).map((r) => r.id);
}

/**
 * The outbox: one pending delivery per webhook subscribed to `kind`, sent by the worker. Pass a
 * transaction to make the event part of the change it reports. Answers the delivery ids.
 */
export async function enqueueEvent(db: Db, now: number, kind: WebhookEventKind, payload: unknown, only?: readonly string[]): Promise<string[]> {
  const ids = only ?? (await subscribers(db, kind));
  if (!ids.length) return [];
  const rows = ids.map((w) => deliveryRow(w, now, kind, payload));
  await db.insertInto('webhook_deliveries').values(rows).execute();
  return rows.map((r) => r.id);
}

/** A `ping` to one webhook, whatever it subscribed to. */
export async function pingWebhook(db: Db, now: number, id: string): Promise<{ deliveryId: string; event: 'ping' }> {
  await requireWebhook(db, id);
  const [deliveryId] = await enqueueEvent(db, now, 'ping', { webhookId: id, message: 'a test delivery from Patchwarden' }, [id]);
  return { deliveryId: deliveryId!, event: 'ping' };
}
