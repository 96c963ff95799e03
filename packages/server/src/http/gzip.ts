/**
 * Accepts gzip-compressed request bodies (agents compress full inventories). Fastify counts the
 * bytes read from the stream returned here against the route's bodyLimit, so a compression
 * bomb stops at the same limit as a plain body.
 */
import { createGunzip } from 'node:zlib';
import type { FastifyInstance } from 'fastify';
import { PatchwardenError } from '@patchwarden/core';

export function registerGzipBodies(app: FastifyInstance): void {
  app.addHook('preParsing', async (req, _reply, payload) => {
    const enc = req.headers['content-encoding'];
    if (!enc || enc === 'identity') return payload;
    if (enc !== 'gzip') {
      throw new PatchwardenError('E_UNSUPPORTED_MEDIA', `unsupported Content-Encoding '${enc}'`, { hint: 'send gzip or no encoding' });
    }
    const gunzip = createGunzip();
    gunzip.on('error', () => {
      /* surfaced by Fastify's body reader as a parse error */
    });
    const out = payload.pipe(gunzip) as typeof gunzip & { receivedEncodedLength?: number };
    out.receivedEncodedLength = 0;
    payload.on('data', (chunk: Buffer) => {
      out.receivedEncodedLength! += chunk.length;
    });
    // the decoded length is unknown in advance
    delete req.headers['content-length'];
    return out;
  });
}
