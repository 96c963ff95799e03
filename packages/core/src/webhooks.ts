/**
 * Webhook notifications: the events a webhook may subscribe to, the body the server POSTs, and
 * the one signature scheme, shared by the server (which signs) and receivers and tests (which
 * verify). The signature is HMAC-SHA256 with the webhook's secret over `timestamp + "." + body`
 * (the exact bytes sent), hex, in `X-Patchwarden-Signature: sha256=<hex>`; the timestamp is Unix
 * seconds in `X-Patchwarden-Timestamp`, so a captured request cannot be replayed later than the
 * receiver's tolerance. No clock here: the caller passes `now`.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';

export const WEBHOOK_EVENTS = ['deployment.halted', 'job.failed', 'job.needs-attention', 'patch.exploited-needed', 'ping'] as const;
export const WebhookEventKind = z.enum(WEBHOOK_EVENTS);
export type WebhookEventKind = z.infer<typeof WebhookEventKind>;

/** Header names, lower case as Node reads them. */
export const WEBHOOK_HEADERS = {
  event: 'x-patchwarden-event',
  delivery: 'x-patchwarden-delivery',
  timestamp: 'x-patchwarden-timestamp',
  signature: 'x-patchwarden-signature',
} as const;

/** The body of every delivery: `data` depends on the event. */
export interface WebhookBody<T = unknown> {
  /** the delivery id, also in `X-Patchwarden-Delivery`: receivers use it to drop duplicates */
  id: string;
  event: WebhookEventKind;
  createdAt: string;
  data: T;
}

/** How far a timestamp may be from the receiver's clock, either way (seconds). */
export const WEBHOOK_TOLERANCE_SECONDS = 300;

function hmacHex(secret: string, timestamp: string, body: string | Uint8Array): string {
  const h = createHmac('sha256', Buffer.from(secret, 'utf8'));
  h.update(`${timestamp}.`, 'utf8');
  h.update(typeof body === 'string' ? Buffer.from(body, 'utf8') : body);
  return h.digest('hex');
}

/** The `X-Patchwarden-Signature` value for a body sent at `timestamp` (Unix seconds). */
export function signWebhook(secret: string, timestamp: number | string, body: string | Uint8Array): string {
  return `sha256=${hmacHex(secret, String(timestamp), body)}`;
}

export interface VerifyWebhookInput {
  secret: string;
  /** the raw body as received, before any JSON parsing */
  body: string | Uint8Array;
  /** header values as received (a missing header fails) */
  timestamp: string | undefined;
  signature: string | undefined;
  /** the receiver's clock, epoch milliseconds */
  now: number;
  toleranceSeconds?: number;
}

export type VerifyWebhookResult = { ok: true; timestamp: number } | { ok: false; reason: 'missing' | 'malformed' | 'stale' | 'mismatch' };

/**
 * Checks a delivery: the timestamp within the tolerance of `now` (either way), then the
 * signature in constant time. The reason says which check failed, never how close it came.
 */
export function verifyWebhook(input: VerifyWebhookInput): VerifyWebhookResult {
  const { timestamp, signature } = input;
  if (timestamp === undefined || signature === undefined) return { ok: false, reason: 'missing' };
  if (!/^\d{1,12}$/.test(timestamp)) return { ok: false, reason: 'malformed' };
  const m = /^sha256=([0-9a-f]{64})$/.exec(signature.trim());
  if (!m) return { ok: false, reason: 'malformed' };
  const ts = Number(timestamp);
  const tolerance = input.toleranceSeconds ?? WEBHOOK_TOLERANCE_SECONDS;
  if (Math.abs(input.now / 1000 - ts) > tolerance) return { ok: false, reason: 'stale' };
  const expected = Buffer.from(hmacHex(input.secret, timestamp, input.body), 'hex');
  const given = Buffer.from(m[1]!, 'hex');
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) return { ok: false, reason: 'mismatch' };
  return { ok: true, timestamp: ts };
}
