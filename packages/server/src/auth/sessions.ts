/**
 * Console sign-in sessions: a random id in an HttpOnly, SameSite=Strict cookie (Secure over
 * TLS), stored as SHA-256; a CSRF token that every change made with the cookie must repeat in
 * the X-CSRF-Token header. Sessions end after 8 idle hours or 7 days in all.
 */
import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import { effectivePermissions, PatchwardenError } from '@patchwarden/core';
import type { DB } from '../db/schema.js';
import { asRole, parseList, type AdminIdentity } from './store.js';
import { hashToken } from './tokens.js';

export const SESSION_COOKIE = 'pw_session';
export const SESSION_LIMITS = { idleMs: 8 * 3600_000, maxMs: 7 * 24 * 3600_000 };

export async function createSession(db: Kysely<DB>, userId: string, now: number): Promise<{ id: string; csrf: string; expiresAt: number }> {
  const id = randomBytes(32).toString('base64url');
  const csrf = randomBytes(24).toString('base64url');
  const expiresAt = now + SESSION_LIMITS.maxMs;
  await db.insertInto('sessions').values({ id_hash: hashToken(id), user_id: userId, csrf, created_at: now, expires_at: expiresAt, last_seen_at: now }).execute();
  // sessions that ended are swept as new ones begin
  await db
    .deleteFrom('sessions')
    .where((eb) => eb.or([eb('expires_at', '<=', now), eb('last_seen_at', '<=', now - SESSION_LIMITS.idleMs)]))
    .execute();
  return { id, csrf, expiresAt };
}

export async function endSession(db: Kysely<DB>, id: string): Promise<void> {
  await db.deleteFrom('sessions').where('id_hash', '=', hashToken(id)).execute();
}

export async function findSession(db: Kysely<DB>, id: string, now: number): Promise<AdminIdentity | null> {
  if (!/^[A-Za-z0-9_-]{20,100}$/.test(id)) return null;
  const row = await db
    .selectFrom('sessions as s')
    .innerJoin('users as u', 'u.id', 's.user_id')
    .select(['s.id_hash', 's.csrf', 's.expires_at', 's.last_seen_at', 'u.id as user_id', 'u.name', 'u.role', 'u.groups_json', 'u.disabled_at'])
    .where('s.id_hash', '=', hashToken(id))
    .executeTakeFirst();
  if (!row) return null;
  if (row.expires_at <= now || row.last_seen_at <= now - SESSION_LIMITS.idleMs || row.disabled_at !== null) {
    await db.deleteFrom('sessions').where('id_hash', '=', row.id_hash).execute();
    throw new PatchwardenError('E_UNAUTHENTICATED', 'the session has ended', { hint: 'sign in again' });
  }
  if (now - row.last_seen_at > 60_000) await db.updateTable('sessions').set({ last_seen_at: now }).where('id_hash', '=', row.id_hash).execute();
  const role = asRole(row.role);
  return {
    kind: 'admin',
    via: 'session',
    id: row.user_id,
    name: row.name,
    userId: row.user_id,
    userName: row.name,
    role,
    permissions: effectivePermissions(role, null),
    groups: role === 'operator' ? parseList(row.groups_json) : null,
    expiresAt: Math.min(row.expires_at, now + SESSION_LIMITS.idleMs),
    csrf: row.csrf,
  };
}
