import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { signWebhook, verifyWebhook, WEBHOOK_EVENTS, WebhookEventKind } from './webhooks.js';

const secret = 'pwh_0123456789abcdefghijklmnopqrstuvwxyzABCDEFG';
const body = JSON.stringify({ id: 'd1', event: 'ping', createdAt: '2026-11-26T10:00:00.000Z', data: { hello: 'wörld' } });
const now = Date.parse('2026-11-26T10:00:00Z');
const ts = String(now / 1000);

describe('webhook signatures', () => {
  it('signs HMAC-SHA256 over timestamp "." body, hex, as sha256=…', () => {
    const expected = createHmac('sha256', secret).update(`${ts}.${body}`).digest('hex');
    expect(signWebhook(secret, ts, body)).toBe(`sha256=${expected}`);
    expect(signWebhook(secret, Number(ts), Buffer.from(body))).toBe(`sha256=${expected}`);
  });

  it('verifies its own signature, within the tolerance either way', () => {
    const signature = signWebhook(secret, ts, body);
    expect(verifyWebhook({ secret, body, timestamp: ts, signature, now })).toEqual({ ok: true, timestamp: Number(ts) });
    expect(verifyWebhook({ secret, body: Buffer.from(body), timestamp: ts, signature, now: now + 299_000 }).ok).toBe(true);
    expect(verifyWebhook({ secret, body, timestamp: ts, signature, now: now - 299_000 }).ok).toBe(true);
  });

  it('refuses a tampered body, a wrong secret, a stale or future timestamp, a moved timestamp', () => {
    const signature = signWebhook(secret, ts, body);
    const fail = (over: Partial<Parameters<typeof verifyWebhook>[0]>) => verifyWebhook({ secret, body, timestamp: ts, signature, now, ...over });
    expect(fail({ body: body.replace('wörld', 'world') })).toEqual({ ok: false, reason: 'mismatch' });
    expect(fail({ secret: `${secret}x` })).toEqual({ ok: false, reason: 'mismatch' });
    expect(fail({ now: now + 301_000 })).toEqual({ ok: false, reason: 'stale' });
    expect(fail({ now: now - 301_000 })).toEqual({ ok: false, reason: 'stale' });
    expect(fail({ now: now + 60_000, toleranceSeconds: 30 })).toEqual({ ok: false, reason: 'stale' });
    // the signature binds the timestamp: a replay with a fresh timestamp fails
    expect(fail({ timestamp: String(Number(ts) + 1) })).toEqual({ ok: false, reason: 'mismatch' });
  });

  it('refuses missing and malformed headers without comparing', () => {
    const signature = signWebhook(secret, ts, body);
    const fail = (over: Partial<Parameters<typeof verifyWebhook>[0]>) => verifyWebhook({ secret, body, timestamp: ts, signature, now, ...over });
    expect(fail({ signature: undefined })).toEqual({ ok: false, reason: 'missing' });
    expect(fail({ timestamp: undefined })).toEqual({ ok: false, reason: 'missing' });
    expect(fail({ timestamp: '1e9' })).toEqual({ ok: false, reason: 'malformed' });
    expect(fail({ signature: signature.replace('sha256=', 'sha1=') })).toEqual({ ok: false, reason: 'malformed' });
    expect(fail({ signature: signature.slice(0, -2) })).toEqual({ ok: false, reason: 'malformed' });
    expect(fail({ signature: signature.toUpperCase() })).toEqual({ ok: false, reason: 'malformed' });
  });

  it('has a fixed list of events', () => {
    expect(WEBHOOK_EVENTS).toEqual(['deployment.halted', 'job.failed', 'job.needs-attention', 'patch.exploited-needed', 'ping']);
    expect(WebhookEventKind.safeParse('job.done').success).toBe(false);
  });
});
