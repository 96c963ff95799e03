/**
 * Users: a name, a scrypt password, a role, and for operators optionally the groups they may act
 * on. Failed sign-ins count per user; five in a row lock the account for a while that doubles
 * with every further failure (15 minutes, then 30, … at most a day).
 */
import type { Kysely } from 'kysely';
import { PatchwardenError, type Role } from '@patchwarden/core';
import type { DB } from '../db/schema.js';
import { findGroup } from '../groups/store.js';
import { decoyHash, hashPassword, verifyPassword } from './passwords.js';
import { asRole, parseList } from './store.js';
import { newId } from './tokens.js';

type Db = Kysely<DB>;

export const LOCKOUT = { after: 5, firstMs: 15 * 60_000, maxMs: 24 * 3600_000 };

export interface UserInfo {
  id: string;
  name: string;
  role: Role;
  /** group names an operator is limited to (null: the whole fleet) */
  groups: string[] | null;
  createdAt: string;
  lastLoginAt: string | null;
  disabled: boolean;
  lockedUntil: string | null;
}

const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());

async function groupIds(db: Db, refs: string[] | null | undefined): Promise<string | null> {
  if (refs === null || refs === undefined) return null;
  const ids: string[] = [];
  for (const ref of [...new Set(refs)]) ids.push((await findGroup(db, ref)).id);
  return JSON.stringify(ids);
}

/** Group ids as names, sorted (null stays null: the whole fleet). */
export async function groupNamesOf(db: Db, ids: string[] | null): Promise<string[] | null> {
  if (ids === null) return null;
  if (ids.length === 0) return [];
  const rows = await db.selectFrom('groups').select(['id', 'name']).where('id', 'in', ids).execute();
  return rows.map((r) => r.name).sort();
}

interface UserRow {
  id: string;
  name: string;
  role: string;
  groups_json: string | null;
  created_at: number;
  last_login_at: number | null;
  disabled_at: number | null;
  locked_until: number | null;
}

async function info(db: Db, r: UserRow, now: number): Promise<UserInfo> {
  return {
    id: r.id,
    name: r.name,
    role: asRole(r.role),
    groups: await groupNamesOf(db, parseList(r.groups_json)),
    createdAt: iso(r.created_at)!,
    lastLoginAt: iso(r.last_login_at),
    disabled: r.disabled_at !== null,
    lockedUntil: r.locked_until !== null && r.locked_until > now ? iso(r.locked_until) : null,
  };
}

const COLUMNS = ['id', 'name', 'role', 'groups_json', 'created_at', 'last_login_at', 'disabled_at', 'locked_until'] as const;

export async function countUsers(db: Db): Promise<number> {
  const r = await db.selectFrom('users').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
  return Number(r.n);
}

export async function createUser(db: Db, now: number, u: { name: string; password: string; role: Role; groups?: string[] | null }): Promise<UserInfo> {
  if (u.groups && u.role !== 'operator') throw new PatchwardenError('E_VALIDATION', 'only operators are limited to groups', { hint: 'drop --groups, or make the user an operator' });
  const exists = await db.selectFrom('users').select('id').where('name', '=', u.name).executeTakeFirst();
  if (exists) throw new PatchwardenError('E_CONFLICT', `a user '${u.name}' exists`);
  const id = newId();
  await db
    .insertInto('users')
    .values({ id, name: u.name, password_hash: await hashPassword(u.password), role: u.role, groups_json: await groupIds(db, u.groups), created_at: now, password_changed_at: now, disabled_at: null, locked_until: null, last_login_at: null })
    .execute();
  return getUser(db, id, now);
}

export async function findUserRow(db: Db, ref: string) {
  const row = await db.selectFrom('users').select(COLUMNS).where((eb) => eb.or([eb('id', '=', ref), eb('name', '=', ref)])).executeTakeFirst();
  if (!row) throw new PatchwardenError('E_NOT_FOUND', `no user '${ref}'`, { hint: 'list users with `patchwarden users list`' });
  return row;
}

export async function getUser(db: Db, ref: string, now: number): Promise<UserInfo> {
  return info(db, await findUserRow(db, ref), now);
}

export async function listUsers(db: Db, now: number): Promise<UserInfo[]> {
  const rows = await db.selectFrom('users').select(COLUMNS).orderBy('name').execute();
  return Promise.all(rows.map((r) => info(db, r, now)));
}

export interface UserChange {
  role?: Role | undefined;
  groups?: string[] | null | undefined;
  password?: string | undefined;
  disabled?: boolean | undefined;
  /** clears a lockout */
  unlock?: boolean | undefined;
}

/** Changes a user; a new password, a disable or a role change ends the user's sessions. */
export async function updateUser(db: Db, now: number, ref: string, c: UserChange): Promise<UserInfo> {
  const row = await findUserRow(db, ref);
  const role = c.role ?? asRole(row.role);
  const groupsJson = c.groups !== undefined ? await groupIds(db, c.groups) : role === 'operator' ? row.groups_json : null;
  if (groupsJson !== null && role !== 'operator') throw new PatchwardenError('E_VALIDATION', 'only operators are limited to groups');
  if ((c.disabled === true || (c.role !== undefined && c.role !== 'administrator')) && row.role === 'administrator' && row.disabled_at === null) {
    const admins = await db.selectFrom('users').select((eb) => eb.fn.countAll<number>().as('n')).where('role', '=', 'administrator').where('disabled_at', 'is', null).executeTakeFirstOrThrow();
    if (Number(admins.n) <= 1) throw new PatchwardenError('E_CONFLICT', `'${row.name}' is the last active administrator`, { hint: 'make another user an administrator first' });
  }
  await db.transaction().execute(async (tx) => {
    await tx
      .updateTable('users')
      .set({
        role,
        groups_json: groupsJson,
        ...(c.password !== undefined ? { password_hash: await hashPassword(c.password), password_changed_at: now } : {}),
        ...(c.disabled !== undefined ? { disabled_at: c.disabled ? now : null } : {}),
        ...(c.unlock ? { failed_logins: 0, locked_until: null } : {}),
      })
      .where('id', '=', row.id)
      .execute();
    if (c.password !== undefined || c.disabled === true || (c.role !== undefined && c.role !== row.role) || c.groups !== undefined) {
      await tx.deleteFrom('sessions').where('user_id', '=', row.id).execute();
    }
  });
  return getUser(db, row.id, now);
}

/**
 * Checks a name and password. Every failure says the same thing (no telling which part was
 * wrong) and costs the same time; a locked account says until when.
 */
export async function authenticate(db: Db, now: number, name: string, password: string): Promise<{ id: string; name: string }> {
  const row = await db.selectFrom('users').select(['id', 'name', 'password_hash', 'disabled_at', 'failed_logins', 'locked_until']).where('name', '=', name).executeTakeFirst();
  const bad = () => new PatchwardenError('E_UNAUTHENTICATED', 'the user name or password is wrong', { hint: 'after 5 failures in a row the account is locked for 15 minutes' });
  if (!row) {
    await verifyPassword(password, await decoyHash());
    throw bad();
  }
  if (row.locked_until !== null && row.locked_until > now) {
    throw new PatchwardenError('E_RATE_LIMITED', `the account '${row.name}' is locked after repeated failed sign-ins until ${new Date(row.locked_until).toISOString()}`, {
      hint: 'wait, or ask an administrator to unlock it (`patchwarden users set NAME --unlock`)',
      details: { lockedUntil: new Date(row.locked_until).toISOString() },
    });
  }
  const ok = await verifyPassword(password, row.password_hash);
  if (!ok || row.disabled_at !== null) {
    if (!ok) {
      const failed = row.failed_logins + 1;
      const over = failed - LOCKOUT.after;
      const lockedUntil = over >= 0 ? now + Math.min(LOCKOUT.maxMs, LOCKOUT.firstMs * 2 ** Math.min(over, 10)) : null;
      await db.updateTable('users').set({ failed_logins: failed, locked_until: lockedUntil }).where('id', '=', row.id).execute();
    }
    throw bad();
  }
  await db.updateTable('users').set({ failed_logins: 0, locked_until: null, last_login_at: now }).where('id', '=', row.id).execute();
  return { id: row.id, name: row.name };
}
