import type { Kysely } from 'kysely';
import type { DB } from '../db/schema.js';
import { hashToken, newId, newToken } from './tokens.js';

export interface AdminIdentity {
  kind: 'admin';
  id: string;
  name: string;
}

export async function createAdminToken(db: Kysely<DB>, name: string, now: number): Promise<{ id: string; token: string }> {
  const token = newToken('admin');
  const id = newId();
  await db.insertInto('admin_tokens').values({ id, name, token_hash: hashToken(token), created_at: now }).execute();
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

export async function findAdminByToken(db: Kysely<DB>, token: string): Promise<AdminIdentity | null> {
  const row = await db
    .selectFrom('admin_tokens')
    .select(['id', 'name'])
    .where('token_hash', '=', hashToken(token))
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  return row ? { kind: 'admin', id: row.id, name: row.name } : null;
}
