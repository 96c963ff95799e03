/**
 * Random credentials. Device tokens, admin tokens and enrollment secrets are 256-bit random
 * values, so a plain SHA-256 is enough to store them (a slow hash protects guessable secrets,
 * and these are not guessable).
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';

export type TokenKind = 'device' | 'admin' | 'enroll';
const PREFIX: Record<TokenKind, string> = { device: 'pwd_', admin: 'pwa_', enroll: 'pwe_' };

export function newToken(kind: TokenKind): string {
  return PREFIX[kind] + randomBytes(32).toString('base64url');
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export function newId(): string {
  return randomUUID();
}

/** Reads `Authorization: Bearer <token>`; anything else is no credential at all. */
export function bearerToken(header: string | undefined): string | null {
  if (!header) return null;
  const m = /^Bearer ([A-Za-z0-9_-]{8,200})$/.exec(header.trim());
  return m ? m[1]! : null;
}
