/**
 * Signed device requests. Each device makes its own Ed25519 key pair; the server keeps only the
 * public half, so neither a stolen database nor a stolen bearer token lets anyone speak as the
 * device. Every request of a device with a key carries three headers: the device's clock (ms),
 * a fresh nonce, and a signature over method, path with query, clock, nonce and the SHA-256 of
 * the body exactly as sent (compressed or not). The server accepts a clock within
 * `SIGNATURE_SKEW_MS` of its own and each nonce once; an agent whose clock is further off learns
 * the server's time from the refusal and signs with that offset.
 */
import { createPrivateKey, createPublicKey, sign as edSign, verify as edVerify, type KeyObject } from 'node:crypto';
import { z } from 'zod';
import { sha256Hex } from './canonical.js';

export const DEVICE_SIGNATURE_HEADERS = {
  date: 'x-patchwarden-date',
  nonce: 'x-patchwarden-nonce',
  signature: 'x-patchwarden-signature',
} as const;

/** How far a device's clock may be from the server's (either way) before a request is refused. */
export const SIGNATURE_SKEW_MS = 5 * 60_000;

/** An Ed25519 public key as 64 lower-case hex digits (the raw 32 bytes). */
export const DevicePublicKey = z.string().regex(/^[0-9a-f]{64}$/, 'a device public key is 64 lower-case hex digits (raw Ed25519)');
export const DeviceNonce = z.string().regex(/^[A-Za-z0-9_-]{16,64}$/, 'a nonce is 16 to 64 base64url characters');

export interface SignedRequestParts {
  method: string;
  /** path and query, as on the request line */
  path: string;
  /** the device's clock when signing, ms since the epoch */
  date: number;
  nonce: string;
  /** SHA-256 (hex) of the body bytes as sent; of nothing for a request without a body */
  bodySha256: string;
}

export const EMPTY_BODY_SHA256 = sha256Hex(new Uint8Array(0));

/** The exact bytes a device signs; one line per part, with a version tag first. */
export function deviceRequestMessage(p: SignedRequestParts): Buffer {
  return Buffer.from(['patchwarden-device-request-v1', p.method.toUpperCase(), p.path, String(p.date), p.nonce, p.bodySha256].join('\n'), 'utf8');
}

export interface DeviceKeyPair {
  /** 64 hex digits: the Ed25519 seed */
  privateKey: string;
  /** 64 hex digits: the raw public key */
  publicKey: string;
}

function privateKeyObject(pair: DeviceKeyPair): KeyObject {
  return createPrivateKey({
    key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(pair.publicKey, 'hex').toString('base64url'), d: Buffer.from(pair.privateKey, 'hex').toString('base64url') },
    format: 'jwk',
  });
}

function publicKeyObject(publicKey: string): KeyObject {
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(publicKey, 'hex').toString('base64url') }, format: 'jwk' });
}

/** A signer for one key pair (the key object is made once, not per request). */
export function deviceSigner(pair: DeviceKeyPair): (p: SignedRequestParts) => string {
  const key = privateKeyObject(pair);
  return (p) => edSign(null, deviceRequestMessage(p), key).toString('base64url');
}

/** The public half a seed gives (to check a stored pair). */
export function devicePublicKeyOf(privateKeyHex: string): string {
  const pub = createPublicKey(createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), Buffer.from(privateKeyHex, 'hex')]), format: 'der', type: 'pkcs8' }));
  const x = pub.export({ format: 'jwk' }).x ?? '';
  return Buffer.from(x, 'base64url').toString('hex');
}

const verifiers = new Map<string, KeyObject>();

/** True when `signature` (base64url) is the device key's signature over these parts. */
export function verifyDeviceRequest(publicKey: string, p: SignedRequestParts, signature: string): boolean {
  try {
    let key = verifiers.get(publicKey);
    if (!key) {
      key = publicKeyObject(publicKey);
      if (verifiers.size > 10_000) verifiers.clear();
      verifiers.set(publicKey, key);
    }
    const sig = Buffer.from(signature, 'base64url');
    if (sig.length !== 64) return false;
    return edVerify(null, deviceRequestMessage(p), key, sig);
  } catch {
    return false;
  }
}
