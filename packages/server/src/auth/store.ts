/**
 * API tokens (`pwa_…`): a name, a role or the user they act for, optional scopes that narrow
 * the role, an optional expiry. Stored as SHA-256 (they are 256-bit random values).
 */
import type { Kysely } from 'kysely';
import { effectivePermissions, PatchwardenError, type Permission, type Role, ROLE_NAMES } from '@patchwarden/core';
import type { DB } from '../db/schema.js';
import { hashToken, newId, newToken } from './tokens.js';

/** A person (signed in, or through one of their tokens) or a service token: what it may do. */
export interface AdminIdentity {
  kind: 'admin';
  via: 'token' | 'session';
  /** the token id, or the session's user id */
  id: string;
  /** the token's name, or the user's */
  name: string;
  userId: string | null;
  userName: string | null;
  role: Role;
  permissions: Permission[];
  /** group ids an operator is limited to (null: the whole fleet) */
  groups: string[] | null;
  expiresAt: number | null;
  /** sessions only: the value every change must carry as X-CSRF-Token */
  csrf?: string;
}

export function asRole(s: string): Role {
  if (!(ROLE_NAMES as string[]).includes(s)) throw new PatchwardenError('E_INTERNAL', `unknown role '${s}' stored`);
  return s as Role;
}

export function parseList(json: string | null): string[] | null {
  if (json === null) return null;
  const v: unknown = JSON.parse(json);
  return Array.isArray(v) ? v.map(String) : null;
}

export interface TokenSpec {
  name: string;
  /** a service token's role; ignored when the token acts for a user */
  role?: Role;
  userId?: string | null;
  scopes?: Permission[] | null;
  expiresAt?: number | null;
}

export async function createAdminToken(db: Kysely<DB>, name: string, now: number, spec: Omit<TokenSpec, 'name'> = {}): Promise<{ id: string; token: string }> {
  const token = newToken('admin');
  const id = newId();
  await db
    .insertInto('admin_tokens')
    .values({
      id,
      name,
      token_hash: hashToken(token),
      created_at: now,
      user_id: spec.userId ?? null,
      role: spec.role ?? 'administrator',
      scopes_json: spec.scopes ? JSON.stringify(spec.scopes) : null,
      expires_at: spec.expiresAt ?? null,
    })
    .execute();
  return { id, token };
}

export async function countAdminTokens(db: Kysely<DB>): Promise<number> {
  const r = await db
    .selectFrom('admin_tokens')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('revoked_at', 'is', null)
    .executeTakeFirstOrThrow();
  return Number(r.n);
}

/**
 * The identity behind a token, or null when there is none. An expired token, or one whose user is
 * disabled, is refused with its reason so the caller knows what to do.
 */
export async function findAdminByToken(db: Kysely<DB>, token: string, now: number): Promise<AdminIdentity | null> {
  const row = await db
    .selectFrom('admin_tokens as t')
    .leftJoin('users as u', 'u.id', 't.user_id')
    .select(['t.id', 't.name', 't.role', 't.scopes_json', 't.expires_at', 't.user_id', 't.last_used_at', 'u.name as user_name', 'u.role as user_role', 'u.groups_json', 'u.disabled_at'])
    .where('t.token_hash', '=', hashToken(token))
    .where('t.revoked_at', 'is', null)
    .executeTakeFirst();
  if (!row) return null;
  if (row.expires_at !== null && row.expires_at <= now) {
    throw new PatchwardenError('E_UNAUTHENTICATED', `the token '${row.name}' expired on ${new Date(row.expires_at).toISOString()}`, { hint: 'create a new token (`patchwarden token create`)' });
  }
  if (row.user_id !== null && (row.user_name === null || row.disabled_at !== null)) {
    throw new PatchwardenError('E_UNAUTHENTICATED', `the user of the token '${row.name}' is disabled`, { hint: 'an administrator can enable the user again' });
  }
  // last use, at most once a minute per token: a busy script must not write on every call
  if (row.last_used_at === null || now - row.last_used_at > 60_000) {
    await db.updateTable('admin_tokens').set({ last_used_at: now }).where('id', '=', row.id).execute();
  }
  const role = asRole(row.user_id !== null ? row.user_role! : row.role);
  return {
    kind: 'admin',
    via: 'token',
    id: row.id,
    name: row.name,
    userId: row.user_id,
    userName: row.user_name,
    role,
    permissions: effectivePermissions(role, parseList(row.scopes_json) as Permission[] | null),
    groups: row.user_id !== null && role === 'operator' ? parseList(row.groups_json) : null,
    expiresAt: row.expires_at,
  };
}

export interface TokenInfo {
  id: string;
  name: string;
  user: string | null;
  role: Role;
  scopes: Permission[] | null;
  createdAt: string;
  expiresAt: string | null;
  lastUsedAt: string | null;
  revoked: boolean;
}

const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());

/** Tokens, newest first: all of them, or a user's own. */
export async function listTokens(db: Kysely<DB>, userId?: string): Promise<TokenInfo[]> {
  let q = db
    .selectFrom('admin_tokens as t')
    .leftJoin('users as u', 'u.id', 't.user_id')
    .select(['t.id', 't.name', 't.role', 't.scopes_json', 't.created_at', 't.expires_at', 't.last_used_at', 't.revoked_at', 'u.name as user_name', 'u.role as user_role'])
    .orderBy('t.created_at', 'desc')
    .orderBy('t.id');
  if (userId !== undefined) q = q.where('t.user_id', '=', userId);
  return (await q.execute()).map((r) => ({
    id: r.id,
    name: r.name,
    user: r.user_name,
    role: asRole(r.user_role ?? r.role),
    scopes: parseList(r.scopes_json) as Permission[] | null,
    createdAt: iso(r.created_at)!,
    expiresAt: iso(r.expires_at),
    lastUsedAt: iso(r.last_used_at),
    revoked: r.revoked_at !== null,
  }));
}

/** Revokes a token; `ownerId` limits it to that user's own tokens. */
export async function revokeToken(db: Kysely<DB>, id: string, now: number, ownerId?: string): Promise<void> {
  let q = db.updateTable('admin_tokens').set({ revoked_at: now }).where('id', '=', id).where('revoked_at', 'is', null);
  if (ownerId !== undefined) q = q.where('user_id', '=', ownerId);
  const r = await q.executeTakeFirst();
  if (Number(r.numUpdatedRows) === 0) throw new PatchwardenError('E_NOT_FOUND', `no active token '${id}'${ownerId !== undefined ? ' of yours' : ''}`);
}
