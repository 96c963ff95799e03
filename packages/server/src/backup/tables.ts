/**
 * What backup and restore ask a database about itself, asked generically (SQLite's catalog,
 * PostgreSQL's information_schema for the current schema), so a table added by a later
 * migration is carried without code here knowing it.
 */
import { sql, type Kysely } from 'kysely';
import { PatchwardenError } from '@patchwarden/core';
import type { Dialect } from '../db/database.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyDb = Kysely<any>;

/** Kysely's bookkeeping: not data; the schema version is read from it and recorded apart. */
export const MIGRATION_TABLES = new Set(['kysely_migration', 'kysely_migration_lock']);

export interface Column {
  name: string;
  binary: boolean;
}

export interface ForeignKey {
  table: string;
  ref: string;
  columns: string[];
  refColumns: string[];
}

async function rows<T>(db: AnyDb, q: ReturnType<typeof sql>): Promise<T[]> {
  return (await q.execute(db)).rows as T[];
}

/** Every base table of the schema but the migration bookkeeping, by name. */
export async function listTables(db: AnyDb, dialect: Dialect): Promise<string[]> {
  const r =
    dialect === 'sqlite'
      ? await rows<{ name: string }>(db, sql`select name from sqlite_master where type = 'table' and name not like 'sqlite\\_%' escape '\\' order by name`)
      : await rows<{ name: string }>(db, sql`select table_name as name from information_schema.tables where table_schema = current_schema() and table_type = 'BASE TABLE' order by table_name`);
  return r.map((x) => x.name).filter((n) => !MIGRATION_TABLES.has(n));
}

/** Tables and views: a restore target must have none. */
export async function listRelations(db: AnyDb, dialect: Dialect): Promise<{ name: string; view: boolean }[]> {
  const r =
    dialect === 'sqlite'
      ? await rows<{ name: string; type: string }>(db, sql`select name, type from sqlite_master where type in ('table', 'view') and name not like 'sqlite\\_%' escape '\\'`)
      : await rows<{ name: string; type: string }>(db, sql`select table_name as name, table_type as type from information_schema.tables where table_schema = current_schema()`);
  return r.map((x) => ({ name: x.name, view: x.type.toLowerCase() === 'view' }));
}

export async function columnsOf(db: AnyDb, dialect: Dialect, table: string): Promise<Column[]> {
  const r =
    dialect === 'sqlite'
      ? await rows<{ name: string; type: string }>(db, sql`select name, type from pragma_table_info(${table}) order by cid`)
      : await rows<{ name: string; type: string }>(
          db,
          sql`select column_name as name, data_type as type from information_schema.columns where table_schema = current_schema() and table_name = ${table} order by ordinal_position`,
        );
  return r.map((c) => ({ name: c.name, binary: /blob|bytea/i.test(c.type) }));
}

export async function primaryKeyOf(db: AnyDb, dialect: Dialect, table: string): Promise<string[]> {
  if (dialect === 'sqlite') {
    const r = await rows<{ name: string; pk: number }>(db, sql`select name, pk from pragma_table_info(${table}) where pk > 0 order by pk`);
    return r.map((c) => c.name);
  }
  const r = await rows<{ name: string }>(
    db,
    sql`select a.attname as name
          from pg_index i
          join pg_class c on c.oid = i.indrelid
          join pg_namespace n on n.oid = c.relnamespace and n.nspname = current_schema()
          join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)
         where c.relname = ${table} and i.indisprimary
         order by array_position(i.indkey::int2[], a.attnum)`,
  );
  return r.map((c) => c.name);
}

export async function foreignKeys(db: AnyDb, dialect: Dialect, tables: string[]): Promise<ForeignKey[]> {
  if (dialect === 'sqlite') {
    const out: ForeignKey[] = [];
    for (const t of tables) {
      const r = await rows<{ id: number; seq: number; table: string; from: string; to: string | null }>(db, sql`select id, seq, "table", "from", "to" from pragma_foreign_key_list(${t}) order by id, seq`);
      const byId = new Map<number, ForeignKey>();
      for (const x of r) {
        const fk = byId.get(x.id) ?? { table: t, ref: x.table, columns: [], refColumns: [] };
        fk.columns.push(x.from);
        fk.refColumns.push(x.to ?? x.from);
        byId.set(x.id, fk);
      }
      out.push(...byId.values());
    }
    return out;
  }
  const r = await rows<{ table: string; ref: string; columns: string[]; ref_columns: string[] }>(
    db,
    sql`select c1.relname as "table", c2.relname as ref,
               array(select a.attname::text from unnest(k.conkey) with ordinality u(n, o) join pg_attribute a on a.attrelid = k.conrelid and a.attnum = u.n order by u.o) as columns,
               array(select a.attname::text from unnest(k.confkey) with ordinality u(n, o) join pg_attribute a on a.attrelid = k.confrelid and a.attnum = u.n order by u.o) as ref_columns
          from pg_constraint k
          join pg_class c1 on c1.oid = k.conrelid
          join pg_class c2 on c2.oid = k.confrelid
          join pg_namespace n on n.oid = c1.relnamespace and n.nspname = current_schema()
         where k.contype = 'f'`,
  );
  return r.map((x) => ({ table: x.table, ref: x.ref, columns: x.columns, refColumns: x.ref_columns }));
}

/** Tables in an order where every table comes after the tables it references (self-references aside). */
export function insertOrder(tables: string[], fks: ForeignKey[]): string[] {
  const deps = new Map(tables.map((t) => [t, new Set<string>()]));
  for (const fk of fks) if (fk.ref !== fk.table && deps.has(fk.table) && deps.has(fk.ref)) deps.get(fk.table)!.add(fk.ref);
  const out: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (t: string, chain: string[]) => {
    const s = state.get(t);
    if (s === 'done') return;
    if (s === 'visiting') throw new PatchwardenError('E_INTERNAL', `the schema's foreign keys form a cycle: ${[...chain, t].join(' → ')}`);
    state.set(t, 'visiting');
    for (const d of [...deps.get(t)!].sort()) visit(d, [...chain, t]);
    state.set(t, 'done');
    out.push(t);
  };
  for (const t of [...tables].sort()) visit(t, []);
  return out;
}

/** The migrations applied, oldest first. */
export async function appliedMigrations(db: AnyDb): Promise<string[]> {
  const r = await rows<{ name: string }>(db, sql`select name from kysely_migration order by name`);
  return r.map((x) => x.name);
}

/** The high-water mark of each table's auto-increment key. */
export async function readSequences(db: AnyDb, dialect: Dialect): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  if (dialect === 'sqlite') {
    const has = await rows<{ n: number }>(db, sql`select count(*) as n from sqlite_master where name = 'sqlite_sequence'`);
    if (!has[0]?.n) return out;
    for (const r of await rows<{ name: string; seq: number }>(db, sql`select name, seq from sqlite_sequence`)) out[r.name] = Number(r.seq);
    return out;
  }
  for (const s of await serialColumns(db)) {
    const r = await rows<{ last_value: number | string; is_called: boolean }>(db, sql`select last_value, is_called from ${sql.raw(s.sequence)}`);
    const v = Number(r[0]?.last_value ?? 0);
    out[s.table] = Math.max(out[s.table] ?? 0, r[0]?.is_called ? v : v - 1);
  }
  return out;
}

async function serialColumns(db: AnyDb): Promise<{ table: string; column: string; sequence: string }[]> {
  const r = await rows<{ table: string; column: string; sequence: string | null }>(
    db,
    sql`select table_name as "table", column_name as "column", pg_get_serial_sequence(quote_ident(table_name), column_name) as sequence
          from information_schema.columns
         where table_schema = current_schema() and column_default like 'nextval(%'`,
  );
  return r.filter((x): x is { table: string; column: string; sequence: string } => !!x.sequence && !MIGRATION_TABLES.has(x.table));
}

/**
 * After a restore: every auto-increment key continues above both the restored rows and the
 * origin's high-water mark.
 */
export async function writeSequences(db: AnyDb, dialect: Dialect, marks: Record<string, number>): Promise<void> {
  if (dialect === 'sqlite') {
    const has = await rows<{ n: number }>(db, sql`select count(*) as n from sqlite_master where name = 'sqlite_sequence'`);
    if (!has[0]?.n) return;
    const autoinc = new Set((await rows<{ name: string }>(db, sql`select name from sqlite_master where type = 'table' and sql like '%autoincrement%'`)).map((r) => r.name));
    for (const [table, mark] of Object.entries(marks)) {
      if (!autoinc.has(table)) continue;
      const cur = await rows<{ seq: number }>(db, sql`select seq from sqlite_sequence where name = ${table}`);
      if (cur.length) await sql`update sqlite_sequence set seq = ${Math.max(Number(cur[0]!.seq), mark)} where name = ${table}`.execute(db);
      else if (mark > 0) await sql`insert into sqlite_sequence (name, seq) values (${table}, ${mark})`.execute(db);
    }
    return;
  }
  for (const s of await serialColumns(db)) {
    const max = await rows<{ m: number | string | null }>(db, sql`select max(${sql.ref(s.column)}) as m from ${sql.table(s.table)}`);
    const v = Math.max(Number(max[0]?.m ?? 0), marks[s.table] ?? 0);
    await sql`select setval(${s.sequence}::regclass, ${Math.max(v, 1)}, ${v > 0})`.execute(db);
  }
}

/** Drops every table and view of the schema (a failed restore into a database that was empty). */
export async function dropAll(db: AnyDb, dialect: Dialect): Promise<void> {
  const rels = await listRelations(db, dialect);
  for (const r of rels.filter((x) => x.view)) await sql`drop view if exists ${sql.table(r.name)}`.execute(db);
  for (const r of rels.filter((x) => !x.view)) await sql`drop table if exists ${sql.table(r.name)}${dialect === 'postgres' ? sql` cascade` : sql``}`.execute(db);
}
