/**
 * Every change a person makes is written to the audit log before its answer leaves: who (user or
 * token, and from where), what (method and route, the route's parameters), the request as sent,
 * the state before when the route recorded it, and the answer (the state after). Secrets never
 * reach the log. Device and site traffic (check-ins, job reports) is machine work with its own
 * history and is not audited here; enrollment and sign-ins are.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AuditActor } from './chain.js';
import type { AuditLog } from './log.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** the state a route is about to change, for the audit entry's "before" */
    auditBefore?: unknown;
    /** set by a route that writes its own audit entry */
    audited?: boolean;
  }
}

const SECRET_KEY = /token|secret|password|private|^key$|csrf|cookie|authorization|enrollmentString/i;
const MAX_DETAIL = 8 * 1024;

/** A copy with secret-looking fields replaced, strings and arrays cut to a readable size. */
export function redact(value: unknown, depth = 0): unknown {
  if (depth > 8) return '[…]';
  if (typeof value === 'string') return value.length > 512 ? `${value.slice(0, 512)}… (${value.length} characters)` : value;
  if (Array.isArray(value)) {
    const head = value.slice(0, 50).map((v) => redact(v, depth + 1));
    return value.length > 50 ? [...head, `… ${value.length - 50} more`] : head;
  }
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, SECRET_KEY.test(k) && v !== null && typeof v !== 'boolean' ? '[redacted]' : redact(v, depth + 1)]));
  }
  return value;
}

function bounded(value: unknown): unknown {
  const r = redact(value);
  const size = JSON.stringify(r ?? null).length;
  return size > MAX_DETAIL ? { omitted: `${size} bytes` } : r;
}

export function actorOf(req: FastifyRequest): AuditActor {
  const a = req.admin;
  if (a) return a.via === 'session' ? { kind: 'user', id: a.userId, name: a.name } : { kind: 'token', id: a.id, name: a.userName ? `${a.userName} (token ${a.name})` : a.name };
  if (req.device) return { kind: 'device', id: req.device.id, name: `device ${req.device.id}` };
  return { kind: 'anonymous', id: null, name: 'anonymous' };
}

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);

export function registerAuditTrail(app: FastifyInstance, audit: AuditLog, now: () => number): void {
  app.addHook('onSend', async (req, reply, payload) => {
    const auth = req.routeOptions.config.auth;
    if (SAFE.has(req.method) || reply.statusCode >= 400 || req.audited || auth === 'device' || auth === 'site' || auth === 'reader') return payload;
    if (!req.routeOptions.url?.startsWith('/api/')) return payload;
    let after: unknown = null;
    if (typeof payload === 'string' && payload.length <= 64 * 1024 && String(reply.getHeader('content-type') ?? '').includes('json')) {
      try {
        after = JSON.parse(payload);
      } catch {
        after = null;
      }
    }
    const params = req.params as Record<string, string> | undefined;
    await audit.append({
      at: now(),
      actor: actorOf(req),
      action: `${req.method} ${req.routeOptions.url}`,
      target: params && Object.keys(params).length ? Object.values(params).join('/') : null,
      detail: { status: reply.statusCode, request: bounded(req.body ?? null), ...(req.auditBefore !== undefined ? { before: bounded(req.auditBefore) } : {}), after: bounded(after) },
      ip: req.ip,
    });
    return payload;
  });
}
