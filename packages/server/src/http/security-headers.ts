/**
 * Security headers on every answer, and a strict Content-Security-Policy for the console: its
 * scripts and styles come from the server itself, nothing is framed, nothing is loaded from
 * elsewhere. Style attributes stay allowed (charts set them). The API documentation (Swagger UI,
 * under /api/) keeps its own policy.
 */
import type { FastifyInstance } from 'fastify';

export const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

export function registerSecurityHeaders(app: FastifyInstance): void {
  app.addHook('onSend', async (req, reply, payload) => {
    reply.header('x-content-type-options', 'nosniff');
    // the document headers go with the console's pages; API answers (JSON, read by agents on every
    // check-in) stay small
    if (!req.url.startsWith('/api/')) {
      reply.header('content-security-policy', CONSOLE_CSP);
      reply.header('x-frame-options', 'DENY');
      reply.header('referrer-policy', 'no-referrer');
      reply.header('cross-origin-opener-policy', 'same-origin');
    }
    return payload;
  });
}
