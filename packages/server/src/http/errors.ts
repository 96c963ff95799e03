/** Turns every failure into `{ error: { code, message, hint? } }` with the code's HTTP status. */
import type { FastifyError, FastifyInstance } from 'fastify';
import { PatchwardenError, type ErrorCode } from '@patchwarden/core';
import { databaseUnavailable, isLostConnection } from '../db/database.js';

function fromFastify(err: FastifyError): PatchwardenError | null {
  if (err.validation) {
    const details = err.validation.slice(0, 20).map((v) => ({
      path: (v.instancePath || '/') as string,
      message: v.message ?? 'invalid',
    }));
    const first = details[0];
    return new PatchwardenError('E_VALIDATION', `invalid request ${err.validationContext ?? 'body'}${first ? `: ${first.path} ${first.message}` : ''}`, {
      details,
    });
  }
  const map: Record<string, [ErrorCode, string]> = {
    FST_ERR_CTP_BODY_TOO_LARGE: ['E_PAYLOAD_TOO_LARGE', 'the request body is larger than this endpoint accepts'],
    FST_ERR_CTP_INVALID_MEDIA_TYPE: ['E_UNSUPPORTED_MEDIA', 'unsupported Content-Type: send application/json'],
    FST_ERR_CTP_INVALID_JSON_BODY: ['E_BAD_REQUEST', 'the request body is not valid JSON'],
    FST_ERR_CTP_EMPTY_JSON_BODY: ['E_BAD_REQUEST', 'the request body is empty'],
    FST_ERR_CTP_INVALID_CONTENT_LENGTH: ['E_BAD_REQUEST', 'Content-Length does not match the body'],
    FST_ERR_BAD_URL: ['E_BAD_REQUEST', 'malformed URL'],
  };
  const hit = err.code ? map[err.code] : undefined;
  if (hit) return new PatchwardenError(hit[0], hit[1]);
  if (err instanceof SyntaxError || err.statusCode === 400) {
    return new PatchwardenError('E_BAD_REQUEST', `malformed request: ${err.message}`);
  }
  if (err.statusCode === 415) return new PatchwardenError('E_UNSUPPORTED_MEDIA', err.message);
  if (err.statusCode === 413) return new PatchwardenError('E_PAYLOAD_TOO_LARGE', err.message);
  return null;
}

/**
 * PostgreSQL refuses a NUL character in text ("invalid byte sequence for encoding UTF8: 0x00",
 * SQLSTATE 22021): whatever parameter carried it, that is the request's fault, not the server's.
 */
function fromDatabase(err: FastifyError): PatchwardenError | null {
  const code = (err as { code?: unknown }).code;
  if (code === '22021' && /0x00/.test(err.message)) {
    return new PatchwardenError('E_VALIDATION', 'text in this request holds a NUL character, which is not allowed', { hint: 'remove the \\0 character' });
  }
  if (isLostConnection(err) || connectionLost(code, err.message)) return databaseUnavailable(err);
  return null;
}

/**
 * PostgreSQL went away under a query: shut down or restarting (SQLSTATE 57P01-57P03), a
 * connection exception (class 08), too many connections (53300), or the driver's own words for
 * a connection that ended. The answer is 503: check-ins and job reports are idempotent, so agents send them again.
 */
function connectionLost(code: unknown, message: string): boolean {
  if (typeof code === 'string' && (/^57P0[123]$/.test(code) || /^08...$/.test(code) || code === '53300')) return true;
  return /^(Connection terminated( unexpectedly)?|Client has encountered a connection error and is not queryable|Client was closed and is not queryable)$/.test(message);
}

export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, req, reply) => {
    let pw = err instanceof PatchwardenError ? err : (fromFastify(err) ?? fromDatabase(err));
    if (!pw) {
      req.log.error({ err }, 'unhandled error');
      pw = new PatchwardenError('E_INTERNAL', 'internal server error', { hint: 'see the server log for details' });
    } else if (pw.code === 'E_DATABASE') {
      // an outage fails every request alike: one line each, without the stack
      req.log.warn({ code: pw.code }, pw.message);
    } else if (pw.httpStatus >= 500) {
      req.log.error({ err }, pw.message);
    }
    return reply.status(pw.httpStatus).send(pw.toBody());
  });

  app.setNotFoundHandler((req, reply) => {
    const err = new PatchwardenError('E_NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`, {
      hint: 'the API is described at /api/docs',
    });
    return reply.status(404).send(err.toBody());
  });
}
