import type { Kysely } from 'kysely';
import { PatchwardenError, type GroupInfo } from '@patchwarden/core';
import type { DB } from '../db/schema.js';
import { newId } from '../auth/tokens.js';

type Group = GroupInfo;

export async function listGroups(db: Kysely<DB>): Promise<Group[]> {
  const rows = await db
    .selectFrom('groups as g')
    .leftJoin('devices as d', 'd.group_id', 'g.id')
    .select(['g.id', 'g.name', 'g.description', 'g.created_at'])
    .select((eb) => eb.fn.count<number>('d.id').as('n'))
    .groupBy(['g.id', 'g.name', 'g.description', 'g.created_at'])
    .orderBy('g.name')
    .execute();
  return rows.map((r) => ({
    id: r.id,
    name: r.name,
    description: r.description,
    createdAt: new Date(r.created_at).toISOString(),
    deviceCount: Number(r.n),
  }));
}

export async function findGroup(db: Kysely<DB>, ref: string): Promise<{ id: string; name: string }> {
  const g = await db
    .selectFrom('groups')
    .select(['id', 'name'])
    .where((eb) => eb.or([eb('name', '=', ref), eb('id', '=', ref)]))
    .executeTakeFirst();
  if (!g) throw new PatchwardenError('E_NOT_FOUND', `no group '${ref}'`, { hint: 'list groups with `patchwarden groups list`' });
  return g;
}

export async function createGroup(db: Kysely<DB>, name: string, description: string, now: number): Promise<Group> {
  const exists = await db.selectFrom('groups').select('id').where('name', '=', name).executeTakeFirst();
  if (exists) throw new PatchwardenError('E_CONFLICT', `a group named '${name}' exists already`);
  const id = newId();
  await db.insertInto('groups').values({ id, name, description, created_at: now }).execute();
  return { id, name, description, createdAt: new Date(now).toISOString(), deviceCount: 0 };
}

export async function deleteGroup(db: Kysely<DB>, ref: string): Promise<void> {
  const g = await findGroup(db, ref);
  await db.transaction().execute(async (tx) => {
    // devices and secrets of the group stay, without a group
    await tx.updateTable('devices').set({ group_id: null }).where('group_id', '=', g.id).execute();
    await tx.updateTable('enrollment_secrets').set({ group_id: null }).where('group_id', '=', g.id).execute();
    await tx.deleteFrom('groups').where('id', '=', g.id).execute();
  });
}
