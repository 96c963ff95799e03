import type { Kysely } from 'kysely';
import { PatchwardenError, type EnrollmentSecretInfo } from '@patchwarden/core';
import type { DB } from '../db/schema.js';
import { hashToken, newId, newToken } from '../auth/tokens.js';
import { findGroup } from '../groups/store.js';


const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export async function listSecrets(db: Kysely<DB>): Promise<EnrollmentSecretInfo[]> {
  const rows = await db
    .selectFrom('enrollment_secrets as s')
    .leftJoin('groups as g', 'g.id', 's.group_id')
    .select(['s.id', 's.name', 's.group_id', 'g.name as group_name', 's.created_at', 's.rotated_at', 's.revoked_at', 's.last_used_at', 's.uses', 's.expires_at', 's.max_uses'])
    .orderBy('s.created_at')
    .execute();
  return rows.map((r) => ({
    id: r.id,
    name: r.name,
    group: r.group_id && r.group_name ? { id: r.group_id, name: r.group_name } : null,
    createdAt: iso(r.created_at)!,
    rotatedAt: iso(r.rotated_at),
    revokedAt: iso(r.revoked_at),
    lastUsedAt: iso(r.last_used_at),
    uses: r.uses,
    expiresAt: iso(r.expires_at),
    maxUses: r.max_uses,
  }));
}

async function getSecret(db: Kysely<DB>, id: string): Promise<EnrollmentSecretInfo> {
  const s = (await listSecrets(db)).find((x) => x.id === id);
  if (!s) throw new PatchwardenError('E_NOT_FOUND', `no enrollment secret '${id}'`, { hint: 'list them with `patchwarden secrets list`' });
  return s;
}

/** Creates a secret; the clear value is returned this once and never stored. */
export async function createSecret(
  db: Kysely<DB>,
  name: string,
  group: string | null,
  now: number,
  limits: { expiresAt?: number | null; maxUses?: number | null } = {},
): Promise<EnrollmentSecretInfo & { secret: string }> {
  const groupId = group === null ? null : (await findGroup(db, group)).id;
  const secret = newToken('enroll');
  const id = newId();
  await db
    .insertInto('enrollment_secrets')
    .values({ id, name, secret_hash: hashToken(secret), group_id: groupId, created_at: now, uses: 0, expires_at: limits.expiresAt ?? null, max_uses: limits.maxUses ?? null })
    .execute();
  return { ...(await getSecret(db, id)), secret };
}

/** A new value for the same secret: the old value stops working at once. */
export async function rotateSecret(db: Kysely<DB>, id: string, now: number): Promise<EnrollmentSecretInfo & { secret: string }> {
  const current = await getSecret(db, id);
  if (current.revokedAt) throw new PatchwardenError('E_CONFLICT', `enrollment secret '${id}' is revoked`, { hint: 'create a new one' });
  const secret = newToken('enroll');
  await db.updateTable('enrollment_secrets').set({ secret_hash: hashToken(secret), rotated_at: now }).where('id', '=', id).execute();
  return { ...(await getSecret(db, id)), secret };
}

export async function revokeSecret(db: Kysely<DB>, id: string, now: number): Promise<EnrollmentSecretInfo> {
  await getSecret(db, id);
  await db.updateTable('enrollment_secrets').set({ revoked_at: now }).where('id', '=', id).where('revoked_at', 'is', null).execute();
  return getSecret(db, id);
}

/**
 * The secret's record if the value is valid, not revoked, not expired and not used up; an
 * expired or used-up secret says so (the administrator then knows to make a new one).
 */
export async function useSecret(db: Kysely<DB>, secret: string, now: number): Promise<{ id: string; groupId: string | null; maxUses: number | null } | null> {
  const row = await db
    .selectFrom('enrollment_secrets')
    .select(['id', 'name', 'group_id', 'expires_at', 'max_uses', 'uses'])
    .where('secret_hash', '=', hashToken(secret))
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  if (!row) return null;
  if (row.expires_at !== null && row.expires_at <= now) {
    throw new PatchwardenError('E_ENROLLMENT_SECRET_INVALID', `the enrollment secret '${row.name}' expired on ${new Date(row.expires_at).toISOString()}`, { hint: 'ask an administrator for a current secret' });
  }
  if (row.max_uses !== null && row.uses >= row.max_uses) {
    throw new PatchwardenError('E_ENROLLMENT_SECRET_INVALID', `the enrollment secret '${row.name}' has enrolled its ${row.max_uses} device(s)`, { hint: 'ask an administrator for a new secret' });
  }
  return { id: row.id, groupId: row.group_id, maxUses: row.max_uses };
}
