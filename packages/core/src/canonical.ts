import { createHash } from 'node:crypto';
import { canonicalize } from '@tufjs/canonical-json';

/** OLPC canonical JSON, the form TUF signs: the one byte form for digests and signatures. */
export function canonicalJson(value: unknown): Buffer {
  return Buffer.from(canonicalize(value), 'utf8');
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

export function canonicalDigest(value: unknown): string {
  return sha256Hex(canonicalJson(value));
}
