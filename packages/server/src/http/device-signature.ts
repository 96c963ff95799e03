/**
 * Signed device requests (core/device-signing.ts): a device that registered a public key must
 * sign every request. The body's SHA-256 is taken from the bytes as they arrive (before gzip is
 * undone), the clock is checked against the server's with `SIGNATURE_SKEW_MS` either way, and
 * each nonce is stored until no clock could pass the check with it again, so a captured request
 * replays nowhere — not even after a restart.
 */
import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import { DEVICE_SIGNATURE_HEADERS, DeviceNonce, EMPTY_BODY_SHA256, PatchwardenError, SIGNATURE_SKEW_MS, verifyDeviceRequest } from '@patchwarden/core';
import type { DB } from '../db/schema.js';

interface PendingSignature {
  publicKey: string;
  deviceId: string;
  date: number;
  nonce: string;
  signature: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** SHA-256 of the body bytes as received, once the body has been read */
    bodySha256?: string;
    /** a device request's signature, checked once its body has been read */
    deviceSignature?: PendingSignature;
  }
}

function header(req: FastifyRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? undefined : v;
}

/** Registered before gzip bodies are undone: hashes the bytes of a signed request as sent. */
export function registerBodyDigest(app: FastifyInstance): void {
  app.addHook('preParsing', async (req, _reply, payload) => {
    if (header(req, DEVICE_SIGNATURE_HEADERS.signature) === undefined) return payload;
    const hash = createHash('sha256');
    const tap = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        hash.update(chunk);
        cb(null, chunk);
      },
      flush(cb) {
        req.bodySha256 = hash.digest('hex');
        cb();
      },
    });
    payload.on('error', (err) => tap.destroy(err));
    return payload.pipe(tap);
  });
}

/**
 * Called once the device is known (onRequest): a device with a key must send the three headers,
 * with a clock near the server's. The signature itself is checked when the body has been read.
 */
export function expectDeviceSignature(req: FastifyRequest, device: { id: string; publicKey: string | null }, now: number): void {
  if (!device.publicKey) return;
  const date = header(req, DEVICE_SIGNATURE_HEADERS.date);
  const nonce = header(req, DEVICE_SIGNATURE_HEADERS.nonce);
  const signature = header(req, DEVICE_SIGNATURE_HEADERS.signature);
  if (date === undefined || nonce === undefined || signature === undefined) {
    throw new PatchwardenError('E_REQUEST_SIGNATURE', 'this device signs its requests with its own key, and this request is not signed', {
      hint: 'requests of an enrolled device come from its agent, which signs them; a copied token alone is not enough',
    });
  }
  if (!/^\d{1,16}$/.test(date)) throw new PatchwardenError('E_REQUEST_SIGNATURE', `the request's ${DEVICE_SIGNATURE_HEADERS.date} is not a time in milliseconds`);
  if (!DeviceNonce.safeParse(nonce).success) throw new PatchwardenError('E_REQUEST_SIGNATURE', `the request's ${DEVICE_SIGNATURE_HEADERS.nonce} is not 16 to 64 base64url characters`);
  const at = Number(date);
  const skew = at - now;
  if (Math.abs(skew) > SIGNATURE_SKEW_MS) {
    throw new PatchwardenError('E_CLOCK_SKEW', `the device's clock is ${Math.round(Math.abs(skew) / 1000)} s ${skew > 0 ? 'ahead of' : 'behind'} the server's (at most ${SIGNATURE_SKEW_MS / 1000} s is accepted)`, {
      hint: 'the agent signs again with the server time given here; set the device clock right (NTP)',
      details: { serverTime: now, deviceTime: at },
    });
  }
  req.deviceSignature = { publicKey: device.publicKey, deviceId: device.id, date: at, nonce, signature };
}

/** How many nonce inserts between sweeps of expired nonces. */
const SWEEP_EVERY = 500;

export function registerSignatureCheck(app: FastifyInstance, db: Kysely<DB>, now: () => number): void {
  let inserts = 0;
  app.addHook('preValidation', async (req) => {
    const s = req.deviceSignature;
    if (!s) return;
    const ok = verifyDeviceRequest(s.publicKey, { method: req.method, path: req.url, date: s.date, nonce: s.nonce, bodySha256: req.bodySha256 ?? EMPTY_BODY_SHA256 }, s.signature);
    if (!ok) {
      throw new PatchwardenError('E_REQUEST_SIGNATURE', "the request's signature does not verify with the device's key", {
        hint: 'the request was changed on the way, or it was not made by this device',
      });
    }
    // kept until a clock could no longer pass the skew check with this date, wherever the server's clock is then
    const expires = Math.max(s.date, now()) + SIGNATURE_SKEW_MS;
    const r = await db.insertInto('device_nonces').values({ device_id: s.deviceId, nonce: s.nonce, expires_at: expires }).onConflict((oc) => oc.doNothing()).executeTakeFirst();
    if (Number(r.numInsertedOrUpdatedRows ?? 0n) !== 1) {
      throw new PatchwardenError('E_REPLAYED', 'this signed request was received before: a request is accepted once', { hint: 'the agent makes a fresh request with a new nonce' });
    }
    if (++inserts % SWEEP_EVERY === 0) await db.deleteFrom('device_nonces').where('expires_at', '<', now()).execute();
  });
}
