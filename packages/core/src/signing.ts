/**
 * Ed25519 keys and signatures in TUF's form: a public key is
 * `{keytype:'ed25519', scheme:'ed25519', keyval:{public: hex}}`, its key id the sha256 of that
 * object's canonical JSON, a signature `{keyid, sig: hex}` over canonical JSON bytes. Key
 * generation (randomness) happens in the CLI and server; here keys are only read and used.
 */
import { createPrivateKey, createPublicKey, sign as edSign, verify as edVerify, type KeyObject } from 'node:crypto';
import { z } from 'zod';
import { canonicalJson, sha256Hex } from './canonical.js';
import { PatchwardenError } from './errors.js';

const HEX64 = /^[0-9a-f]{64}$/;

export const TufPublicKey = z.strictObject({
  keytype: z.literal('ed25519'),
  scheme: z.literal('ed25519'),
  keyval: z.strictObject({ public: z.string().regex(HEX64, 'an Ed25519 public key is 64 hex digits') }),
});
export type TufPublicKey = z.infer<typeof TufPublicKey>;

export const Signature = z.strictObject({
  keyid: z.string().regex(HEX64),
  sig: z.string().regex(/^[0-9a-f]{128}$/, 'an Ed25519 signature is 128 hex digits'),
});
export type Signature = z.infer<typeof Signature>;

export const KEY_ROLES = ['root', 'targets', 'online', 'author'] as const;
export type KeyRole = (typeof KEY_ROLES)[number];

/** A key file as `patchwarden keys create` writes it: the private half is the 32-byte seed. */
export const PrivateKeyFile = z.strictObject({
  type: z.literal('patchwarden-private-key'),
  name: z.string().min(1).max(100),
  role: z.enum(KEY_ROLES),
  keyid: z.string().regex(HEX64),
  public: TufPublicKey,
  private: z.string().regex(HEX64, 'the private key is a 64-hex-digit Ed25519 seed'),
  created: z.string().max(40).optional(),
});
export type PrivateKeyFile = z.infer<typeof PrivateKeyFile>;

export const PublicKeyFile = z.strictObject({
  type: z.literal('patchwarden-public-key'),
  name: z.string().min(1).max(100),
  role: z.enum(KEY_ROLES),
  keyid: z.string().regex(HEX64),
  public: TufPublicKey,
});
export type PublicKeyFile = z.infer<typeof PublicKeyFile>;

export function keyIdOf(key: TufPublicKey): string {
  return sha256Hex(canonicalJson(key));
}

export function tufKeyFromRaw(raw: Uint8Array): TufPublicKey {
  return { keytype: 'ed25519', scheme: 'ed25519', keyval: { public: Buffer.from(raw).toString('hex') } };
}

function publicKeyObject(key: TufPublicKey): KeyObject {
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(key.keyval.public, 'hex').toString('base64url') }, format: 'jwk' });
}

function privateKeyObject(file: PrivateKeyFile): KeyObject {
  return createPrivateKey({
    key: {
      kty: 'OKP',
      crv: 'Ed25519',
      x: Buffer.from(file.public.keyval.public, 'hex').toString('base64url'),
      d: Buffer.from(file.private, 'hex').toString('base64url'),
    },
    format: 'jwk',
  });
}

/** Reads a private key file's JSON, checking that the halves belong together. */
export function parsePrivateKeyFile(json: unknown, where: string): PrivateKeyFile {
  const r = PrivateKeyFile.safeParse(json);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new PatchwardenError('E_KEY_INVALID', `${where} is not a Patchwarden private key: ${i.path.join('.') || '(top)'}: ${i.message}`, {
      hint: 'create one with `patchwarden keys create NAME --role author`',
    });
  }
  const f = r.data;
  if (keyIdOf(f.public) !== f.keyid) throw new PatchwardenError('E_KEY_INVALID', `${where}: the key id does not match the public key`);
  // the seed must give the stated public key, or signatures would never verify
  const derived = createPublicKey(privateKeyObject(f)).export({ format: 'jwk' }).x;
  if (Buffer.from(derived ?? '', 'base64url').toString('hex') !== f.public.keyval.public) {
    throw new PatchwardenError('E_KEY_INVALID', `${where}: the private key does not belong to its public key`);
  }
  return f;
}

export function parsePublicKeyFile(json: unknown, where: string): PublicKeyFile {
  // a private key file also names its public half: accept it where a public key is asked for
  if (typeof json === 'object' && json !== null && (json as { type?: unknown }).type === 'patchwarden-private-key') {
    const p = parsePrivateKeyFile(json, where);
    return { type: 'patchwarden-public-key', name: p.name, role: p.role, keyid: p.keyid, public: p.public };
  }
  const r = PublicKeyFile.safeParse(json);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new PatchwardenError('E_KEY_INVALID', `${where} is not a Patchwarden public key: ${i.path.join('.') || '(top)'}: ${i.message}`);
  }
  if (keyIdOf(r.data.public) !== r.data.keyid) throw new PatchwardenError('E_KEY_INVALID', `${where}: the key id does not match the public key`);
  return r.data;
}

export function publicFileOf(p: PrivateKeyFile): PublicKeyFile {
  return { type: 'patchwarden-public-key', name: p.name, role: p.role, keyid: p.keyid, public: p.public };
}

export function signBytes(file: PrivateKeyFile, data: Uint8Array): Signature {
  return { keyid: file.keyid, sig: edSign(null, data, privateKeyObject(file)).toString('hex') };
}

export function verifyBytes(key: TufPublicKey, data: Uint8Array, sig: string): boolean {
  try {
    return edVerify(null, data, publicKeyObject(key), Buffer.from(sig, 'hex'));
  } catch {
    return false;
  }
}

/**
 * Counts the distinct trusted keys whose signature over `data` verifies. A key id listed twice
 * counts once, so one key cannot meet a threshold alone.
 */
export function verifiedSigners(data: Uint8Array, signatures: readonly Signature[], trusted: ReadonlyMap<string, TufPublicKey>): string[] {
  const ok = new Set<string>();
  for (const s of signatures) {
    if (ok.has(s.keyid)) continue;
    const key = trusted.get(s.keyid);
    if (key && verifyBytes(key, data, s.sig)) ok.add(s.keyid);
  }
  return [...ok];
}
