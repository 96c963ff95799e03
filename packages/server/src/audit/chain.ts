/**
 * The audit log is a hash chain: each entry's hash covers the previous hash and the entry's
 * canonical JSON. Rewriting a row and every later hash keeps the chain consistent, so each link
 * is also sealed with an HMAC under a key the database does not hold (`keys/audit.key` in the
 * data directory), and the newest link is written to an anchor file beside it, so cutting the
 * log short is seen too.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { PatchwardenError } from '@patchwarden/core';

export const GENESIS = '0'.repeat(64);
export const AUDIT_KEY_FILE = join('keys', 'audit.key');
export const AUDIT_ANCHOR_FILE = 'audit-anchor.json';

export interface AuditActor {
  kind: 'user' | 'token' | 'device' | 'system' | 'anonymous';
  id: string | null;
  name: string;
}

/** What an entry says: who, when, what, to what, and the detail (request, before, after). */
export interface AuditFields {
  at: number;
  actor: AuditActor;
  action: string;
  target: string | null;
  detail: unknown;
  ip: string | null;
}

export interface AuditEntry extends AuditFields {
  seq: number;
  prevHash: string;
  hash: string;
  mac: string;
}

/**
 * JSON with keys sorted at every level. Unlike the catalog's canonical JSON it takes any number
 * a request may carry (a failure threshold of 0.2): JavaScript prints each number one way only.
 */
export function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((v) => stableJson(v ?? null)).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}

export function entryHash(prevHash: string, seq: number, f: AuditFields): string {
  const body = stableJson({ seq, at: f.at, actor: f.actor, action: f.action, target: f.target, detail: f.detail ?? null, ip: f.ip });
  return createHash('sha256').update(prevHash).update('\n').update(body).digest('hex');
}

/** The HMAC of a link (`entry`) or of the anchor (`anchor`): the domains differ, so one cannot stand for the other. */
export function seal(key: Buffer, seq: number, hash: string, domain: 'entry' | 'anchor' = 'entry'): string {
  return createHmac('sha256', key).update(`${domain}:${seq}:${hash}`).digest('hex');
}

export function sealMatches(key: Buffer, seq: number, hash: string, mac: string, domain: 'entry' | 'anchor' = 'entry'): boolean {
  const want = Buffer.from(seal(key, seq, hash, domain), 'hex');
  const got = Buffer.from(/^[0-9a-f]{64}$/.test(mac) ? mac : '', 'hex');
  return got.length === want.length && timingSafeEqual(got, want);
}

/** The audit key of a data directory, made on first use (32 random bytes, owner-only). */
export function loadOrCreateAuditKey(dataDir: string): Buffer {
  const file = join(dataDir, AUDIT_KEY_FILE);
  if (existsSync(file)) return readAuditKey(dataDir);
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  writeFileSync(file, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
  return readAuditKey(dataDir);
}

export function readAuditKey(dataDir: string): Buffer {
  const file = join(dataDir, AUDIT_KEY_FILE);
  if (!existsSync(file)) throw new PatchwardenError('E_KEY_INVALID', `no audit key at ${file}`, { hint: 'the audit key is made by the server on its first start in this data directory; pass --data-dir' });
  const hex = readFileSync(file, 'utf8').trim();
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new PatchwardenError('E_KEY_INVALID', `${file} is not an audit key (64 hex digits)`);
  return Buffer.from(hex, 'hex');
}

export interface Anchor {
  seq: number;
  hash: string;
  mac: string;
}

export function writeAnchor(file: string, key: Buffer, seq: number, hash: string): void {
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, `${JSON.stringify({ seq, hash, mac: seal(key, seq, hash, 'anchor') })}\n`, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
}

/** The anchor file, checked against the key; null when there is none yet. */
export function readAnchor(file: string, key: Buffer): Anchor | null {
  if (!existsSync(file)) return null;
  let a: Anchor;
  try {
    a = JSON.parse(readFileSync(file, 'utf8')) as Anchor;
  } catch {
    throw new PatchwardenError('E_DIGEST_MISMATCH', `the audit anchor ${file} is not readable JSON`);
  }
  if (!Number.isInteger(a.seq) || a.seq < 0 || typeof a.hash !== 'string' || typeof a.mac !== 'string' || !sealMatches(key, a.seq, a.hash, a.mac, 'anchor')) {
    throw new PatchwardenError('E_DIGEST_MISMATCH', `the audit anchor ${file} is not sealed by the audit key`, { hint: 'the anchor file was altered or comes from another server' });
  }
  return a;
}
