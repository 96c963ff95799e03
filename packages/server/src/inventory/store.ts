/**
 * Content-addressed package sets. A package row (one name, arch, version, source and state) is
 * stored once for all devices; a set is the list of package rows of one inventory, written once
 * and shared by every device whose inventory hashes the same.
 */
import { createHash } from 'node:crypto';
import { sql, type Kysely, type Selectable, type Transaction } from 'kysely';
import { packageLine, type PackageFact } from '@patchwarden/core';
import type { DB, PackagesTable } from '../db/schema.js';
import type { Dialect } from '../db/database.js';

type Q = Kysely<DB> | Transaction<DB>;

// Both SQLite (32,766) and PostgreSQL (65,535) allow this many bound parameters per statement.
const CHUNK = 500;

export interface SetRef {
  id: number;
  hash: string;
  packageCount: number;
}

function keyHash(p: PackageFact): string {
  return createHash('sha256').update(packageLine(p)).digest('hex').slice(0, 40);
}

/** Sets never change once written, so hash → id can be cached for the process's life. */
export class SetCache {
  private readonly map = new Map<string, SetRef>();
  constructor(private readonly max = 20_000) {}
  get(hash: string): SetRef | undefined {
    return this.map.get(hash);
  }
  put(ref: SetRef): void {
    if (this.map.size >= this.max) this.map.delete(this.map.keys().next().value!);
    this.map.set(ref.hash, ref);
  }
}

export async function findSet(db: Q, hash: string): Promise<SetRef | null> {
  const row = await db.selectFrom('package_sets').select(['id', 'hash', 'package_count']).where('hash', '=', hash).executeTakeFirst();
  return row ? { id: row.id, hash: row.hash, packageCount: row.package_count } : null;
}

export async function loadSetPackages(db: Q, setId: number): Promise<PackageFact[]> {
  const rows = await db
    .selectFrom('package_set_members as m')
    .innerJoin('packages as p', 'p.id', 'm.package_id')
    .select(['p.manager', 'p.name', 'p.arch', 'p.version', 'p.source', 'p.source_version', 'p.state'])
    .where('m.set_id', '=', setId)
    .execute();
  return rows.map(rowToFact);
}

export function rowToFact(r: Pick<Selectable<PackagesTable>, 'manager' | 'name' | 'arch' | 'version' | 'source' | 'source_version' | 'state'>): PackageFact {
  const p: PackageFact = {
    manager: r.manager as PackageFact['manager'],
    name: r.name,
    version: r.version,
    arch: r.arch,
    state: r.state as PackageFact['state'],
  };
  if (r.source !== null) p.source = r.source;
  if (r.source_version !== null) p.sourceVersion = r.source_version;
  return p;
}

/**
 * A whole array as one bound parameter, so a 1,500-item list is one short statement that
 * stays prepared, instead of 1,500 placeholders compiled anew each time.
 */
function textList(dialect: Dialect, values: readonly string[]) {
  return dialect === 'postgres'
    ? sql<string>`(select unnest(${values as string[]}::text[]))`
    : sql<string>`(select value from json_each(${JSON.stringify(values)}))`;
}

/** Ids of the package rows, inserting those not stored yet. */
async function packageIds(db: Q, dialect: Dialect, packages: readonly PackageFact[]): Promise<number[]> {
  const hashes = packages.map(keyHash);
  const ids = new Map<string, number>();
  const rows = await db.selectFrom('packages').select(['id', 'key_hash']).where('key_hash', 'in', textList(dialect, hashes)).execute();
  for (const r of rows) ids.set(r.key_hash, r.id);
  const missing: number[] = [];
  hashes.forEach((h, i) => {
    if (!ids.has(h)) missing.push(i);
  });
  for (let i = 0; i < missing.length; i += CHUNK) {
    const part = missing.slice(i, i + CHUNK);
    await db
      .insertInto('packages')
      .values(
        part.map((idx) => {
          const p = packages[idx]!;
          return {
            key_hash: hashes[idx]!,
            manager: p.manager,
            name: p.name,
            arch: p.arch,
            version: p.version,
            source: p.source ?? null,
            source_version: p.sourceVersion ?? null,
            state: p.state,
          };
        }),
      )
      .onConflict((oc) => oc.column('key_hash').doNothing())
      .execute();
    // re-read: a concurrent writer may have inserted some of them first
    const rows = await db
      .selectFrom('packages')
      .select(['id', 'key_hash'])
      .where('key_hash', 'in', part.map((idx) => hashes[idx]!))
      .execute();
    for (const r of rows) ids.set(r.key_hash, r.id);
  }
  return hashes.map((h) => ids.get(h)!);
}

/**
 * Returns the set with this hash, writing it first if it is new. The caller has checked that
 * `hash` is the inventory hash of `sorted`; run inside a transaction so a set is never seen
 * half-written.
 */
export async function ensureSet(db: Q, dialect: Dialect, sorted: readonly PackageFact[], hash: string, now: number): Promise<SetRef> {
  const existing = await findSet(db, hash);
  if (existing) return existing;
  const ids = await packageIds(db, dialect, sorted);
  const inserted = await db
    .insertInto('package_sets')
    .values({ hash, package_count: sorted.length, created_at: now })
    .onConflict((oc) => oc.column('hash').doNothing())
    .returning('id')
    .executeTakeFirst();
  if (!inserted) {
    // written by a concurrent check-in of an identical inventory
    return (await findSet(db, hash))!;
  }
  const unique = [...new Set(ids)];
  const list =
    dialect === 'postgres'
      ? sql`select ${inserted.id}::int, unnest(${unique}::int[])`
      : sql`select ${inserted.id}, value from json_each(${JSON.stringify(unique)})`;
  await sql`insert into package_set_members (set_id, package_id) ${list}`.execute(db);
  return { id: inserted.id, hash, packageCount: sorted.length };
}
