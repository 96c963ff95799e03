/**
 * Keeps the sparse patch-state table current. States belong to evaluation contexts (a package
 * set with the OS facts rules read); devices point to theirs. A check-in that changes a few
 * packages re-evaluates only the patches whose rules read them (and those linked by supersedes
 * and requires); a catalog change re-evaluates only the changed patches, in every context.
 */
import { sql, type Kysely } from 'kysely';
import {
  canonicalDigest,
  decideStates,
  makeEvalFacts,
  packageLine,
  platformMatches,
  type EvalFacts,
  type PackageFact,
  type PatchDecision,
  type SystemFacts,
} from '@patchwarden/core';
import type { DB } from '../db/schema.js';
import type { Dialect } from '../db/database.js';
import { loadCatalog, generation, type LoadedCatalog } from '../catalog/store.js';
import { loadSetPackages } from '../inventory/store.js';

/** The part of a device's system facts that rules read. */
export interface EvalSystem {
  os: SystemFacts['os'];
  kernelRelease: string;
  rebootRequired: boolean;
  managers: string[];
  files?: SystemFacts['files'];
}

export function evalSystemOf(system: SystemFacts): EvalSystem {
  return {
    os: system.os,
    kernelRelease: system.kernel.release,
    rebootRequired: system.rebootRequired,
    managers: system.collectors.filter((c) => c.status === 'ok').map((c) => c.name).sort(),
    ...(system.files ? { files: system.files } : {}),
  };
}

export function contextKey(setHash: string, sys: EvalSystem): string {
  return canonicalDigest({ set: setHash, sys });
}

export class ComplianceEngine {
  private cached: LoadedCatalog | null = null;
  private readonly facts = new Map<number, { packages: PackageFact[] }>();
  /** rule evaluations, for tests and benchmarks */
  readonly counter = { rules: 0 };

  constructor(
    private readonly db: Kysely<DB>,
    private readonly dialect: Dialect,
    private readonly now: () => number,
  ) {}

  async catalog(): Promise<LoadedCatalog> {
    const gen = await generation(this.db);
    if (!this.cached || this.cached.generation !== gen) this.cached = await loadCatalog(this.db, this.cached ?? undefined);
    this.checkedAt = performance.now();
    return this.cached;
  }

  private checkedAt = 0;
  /** The catalog, re-checked at most once a second: check-ins ask on every request. */
  async recentCatalog(): Promise<LoadedCatalog> {
    if (this.cached && performance.now() - this.checkedAt < 1000) return this.cached;
    return this.catalog();
  }

  private async setPackages(setId: number): Promise<PackageFact[]> {
    const hit = this.facts.get(setId);
    if (hit) return hit.packages;
    const packages = await loadSetPackages(this.db, setId);
    this.remember(setId, packages);
    return packages;
  }

  private remember(setId: number, packages: PackageFact[]): void {
    // a set of 1,500 packages is about 0.5 MB of objects: keep the most recent 64
    if (this.facts.size >= 64) this.facts.delete(this.facts.keys().next().value!);
    this.facts.set(setId, { packages });
  }

  private evalFacts(sys: EvalSystem, packages: PackageFact[]): EvalFacts {
    return makeEvalFacts({
      os: sys.os,
      kernelRelease: sys.kernelRelease,
      rebootRequired: sys.rebootRequired,
      managers: sys.managers,
      packages,
      files: new Map(Object.entries(sys.files ?? {})),
    });
  }

  private covered(cat: LoadedCatalog, facts: EvalFacts): boolean {
    return cat.coverage.some((p) => platformMatches(p, facts));
  }

  /**
   * Writes decisions for a context. `replace`: the context's whole state (it becomes a flat
   * context with no parent). `merge`: only these patches' rows are replaced; in an overlay
   * context a `not_applicable` decision is written too, to override the parent's row.
   */
  private async writeStates(
    contextId: number,
    cat: LoadedCatalog,
    decisions: Map<string, PatchDecision>,
    w: { mode: 'replace' | 'merge'; covered: boolean; overlay: boolean; move?: { key: string; setId: number }; parentId?: number | null },
    alsoPoint?: string,
  ) {
    const pks: number[] = [];
    const states: string[] = [];
    const details: (string | null)[] = [];
    const touched: number[] = [];
    for (const [id, d] of decisions) {
      const pk = cat.pkOf.get(id);
      if (pk === undefined) continue;
      touched.push(pk);
      if (d.state === 'not_assessed' || (d.state === 'not_applicable' && !w.overlay)) continue;
      pks.push(pk);
      states.push(d.state);
      details.push(d.missing || d.by || d.reason ? JSON.stringify({ missing: d.missing, by: d.by, reason: d.reason }) : null);
    }
    const ctxSet = {
      generation: cat.generation,
      covered: w.covered ? 1 : 0,
      ...(w.mode === 'replace' ? { parent_id: null } : {}),
      ...(w.parentId !== undefined ? { parent_id: w.parentId } : {}),
      ...(w.move ? { key: w.move.key, package_set_id: w.move.setId } : {}),
    };
    if (this.dialect === 'postgres' && w.mode === 'merge') {
      // One statement, so one round trip and atomic on its own: the rows that stay are upserted,
      // the touched rows that are gone are deleted (the two sets never meet, so the parts of the
      // statement cannot conflict), the context and the device are updated.
      const gone = touched.filter((pk) => !pks.includes(pk));
      await sql`with
          del as (delete from context_states where context_id = ${contextId} and patch_pk = any(${gone}::int[])),
          ins as (insert into context_states (context_id, patch_pk, state, detail)
                  select ${contextId}::int, unnest(${pks}::int[]), unnest(${states}::text[]), unnest(${details}::text[])
                  on conflict (context_id, patch_pk) do update set state = excluded.state, detail = excluded.detail),
          ctx as (${this.db.updateTable('eval_contexts').set(ctxSet).where('id', '=', contextId)}),
          dev as (update devices set context_id = ${contextId} where id = ${alsoPoint ?? null})
        -- states are derived data (a recompute rebuilds them, and a device whose context lags
        -- its inventory is re-evaluated at its next check-in), so this commit need not wait
        -- for the disk
        select set_config('synchronous_commit', 'off', true)`.execute(this.db);
      return;
    }
    await this.db.transaction().execute(async (tx) => {
      if (w.mode === 'replace') await tx.deleteFrom('context_states').where('context_id', '=', contextId).execute();
      else if (touched.length) {
        const list = this.dialect === 'postgres' ? sql`(select unnest(${touched}::int[]))` : sql`(select value from json_each(${JSON.stringify(touched)}))`;
        await sql`delete from context_states where context_id = ${contextId} and patch_pk in ${list}`.execute(tx);
      }
      if (pks.length) {
        const rows =
          this.dialect === 'postgres'
            ? sql`select ${contextId}::int, unnest(${pks}::int[]), unnest(${states}::text[]), unnest(${details}::text[])`
            : sql`select ${contextId}, json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]')
                  from json_each(${JSON.stringify(pks.map((pk, i) => [pk, states[i], details[i]]))})`;
        // two devices with the same new inventory fill the same context at once: on PostgreSQL the
        // second one's delete cannot see the first one's rows, so its insert meets them (the same
        // states: both evaluated the same facts) and updates them instead of failing
        const upsert = this.dialect === 'postgres' ? sql`on conflict (context_id, patch_pk) do update set state = excluded.state, detail = excluded.detail` : sql``;
        await sql`insert into context_states (context_id, patch_pk, state, detail) ${rows} ${upsert}`.execute(tx);
      }
      await tx.updateTable('eval_contexts').set(ctxSet).where('id', '=', contextId).execute();
      if (alsoPoint) await tx.updateTable('devices').set({ context_id: contextId }).where('id', '=', alsoPoint).execute();
    });
  }

  /**
   * Points a device at the context of its current package set and system facts, evaluating
   * what is needed. When only packages changed since its previous context, only the patches
   * that read them are evaluated: in that context itself if the device had it alone, or in a
   * new overlay of it if other devices share it. Otherwise the new context is evaluated in full.
   */
  async assignDevice(
    deviceId: string,
    set: { id: number; hash: string },
    system: SystemFacts,
    previousContextId: number | null,
    /** what the check-in already holds: the new inventory, and what changed since the last one */
    known: { packages?: PackageFact[]; changed?: Set<string> } = {},
  ): Promise<void> {
    if (known.packages) this.remember(set.id, known.packages);
    const cat = await this.recentCatalog();
    const sys = evalSystemOf(system);
    const sysJson = JSON.stringify(sys);
    const key = contextKey(set.hash, sys);
    // one round trip for both: the context this inventory maps to, and the device's previous one
    const rows = await this.db
      .selectFrom('eval_contexts as c')
      .select(['c.id', 'c.key', 'c.parent_id', 'c.package_set_id', 'c.system_json', 'c.generation', 'c.covered'])
      .select((eb) =>
        eb
          .selectFrom('devices as o')
          .select((e2) => e2.fn.countAll<number>().as('n'))
          .whereRef('o.context_id', '=', 'c.id')
          .where('o.id', '!=', deviceId)
          .as('others'),
      )
      .where((eb) => eb.or([eb('c.key', '=', key), eb('c.id', '=', previousContextId ?? -1)]))
      .execute();
    const ctx = rows.find((r) => r.key === key);
    if (ctx && ctx.generation === cat.generation) {
      if (ctx.id !== previousContextId) await this.db.updateTable('devices').set({ context_id: ctx.id }).where('id', '=', deviceId).execute();
      return;
    }
    const covered = cat.coverage.some((p) => platformMatches(p, { os: sys.os } as EvalFacts));
    const opts = { covered, counter: this.counter };
    // the device's facts, built only when some patch must be evaluated
    const factsNow = async () => this.evalFacts(sys, await this.setPackages(set.id));

    if (!ctx && previousContextId !== null) {
      const prev = rows.find((r) => r.id === previousContextId);
      if (prev && prev.generation === cat.generation && prev.system_json === sysJson && (prev.covered === 1) === covered) {
        // which packages changed matters only if some rule reads packages at all
        const changed =
          cat.index.byFactKey.size === 0
            ? new Set<string>()
            : (known.changed ?? changedKeys(await this.setPackages(prev.package_set_id), await this.setPackages(set.id)));
        const ids = cat.index.affectedBy(changed);
        const decisions = ids.size === 0 ? new Map<string, PatchDecision>() : decideStates(cat.index, await factsNow(), opts, ids);
        if (Number(prev.others ?? 0) === 0) {
          // the device had this context alone: it moves along, nothing is copied
          await this.writeStates(prev.id, cat, decisions, { mode: 'merge', covered, overlay: prev.parent_id !== null, move: { key, setId: set.id } });
          return;
        }
        // shared: an overlay of the previous context's base keeps only what differs
        const parentId = prev.parent_id ?? prev.id;
        const created = await this.newContext(key, set.id, sysJson);
        if (prev.parent_id !== null) {
          await sql`insert into context_states (context_id, patch_pk, state, detail)
                    select ${created}, patch_pk, state, detail from context_states where context_id = ${prev.id}`.execute(this.db);
        }
        await this.writeStates(created, cat, decisions, { mode: 'merge', covered, overlay: true, parentId }, deviceId);
        return;
      }
    }
    const id = ctx?.id ?? (await this.newContext(key, set.id, sysJson));
    const decisions = cat.index.byId.size === 0 ? new Map<string, PatchDecision>() : decideStates(cat.index, await factsNow(), opts);
    await this.writeStates(id, cat, decisions, { mode: 'replace', covered, overlay: false }, deviceId);
  }

  private async newContext(key: string, setId: number, systemJson: string): Promise<number> {
    const inserted = await this.db
      .insertInto('eval_contexts')
      .values({ key, package_set_id: setId, system_json: systemJson, generation: -1, covered: 1, created_at: this.now(), parent_id: null })
      .onConflict((oc) => oc.column('key').doNothing())
      .returning('id')
      .executeTakeFirst();
    return inserted?.id ?? (await this.db.selectFrom('eval_contexts').select('id').where('key', '=', key).executeTakeFirstOrThrow()).id;
  }

  /** Re-evaluates the changed patches (and those linked to them) in every context. */
  async catalogChanged(changedIds: string[]): Promise<{ contexts: number }> {
    const cat = await this.catalog();
    const ids = new Set<string>();
    for (const id of changedIds) {
      ids.add(id);
      const p = cat.index.byId.get(id);
      for (const s of p?.supersedes ?? []) ids.add(s);
      for (const r of cat.index.requiredBy(id)) ids.add(r);
    }
    return this.forEachContext(async (c, facts) => {
      const covered = this.covered(cat, facts);
      // a context that just became covered (or stopped being) needs every patch decided
      const all = covered !== c.covered;
      const decisions = decideStates(cat.index, facts, { covered, counter: this.counter }, all ? undefined : ids);
      await this.writeStates(c.id, cat, decisions, { mode: all ? 'replace' : 'merge', covered, overlay: !all && c.overlay });
    });
  }

  /** Full recompute of every context: the repair path. Every context becomes flat. */
  async recomputeAll(): Promise<{ contexts: number }> {
    const cat = await this.catalog();
    return this.forEachContext(async (c, facts) => {
      const covered = this.covered(cat, facts);
      await this.writeStates(c.id, cat, decideStates(cat.index, facts, { covered, counter: this.counter }), { mode: 'replace', covered, overlay: false });
    });
  }

  private async forEachContext(fn: (c: { id: number; covered: boolean; overlay: boolean }, facts: EvalFacts) => Promise<void>): Promise<{ contexts: number }> {
    // contexts no device points to are dropped, unless an overlay still builds on them
    for (let pass = 0; pass < 2; pass++) {
      await sql`delete from eval_contexts
                 where id not in (select context_id from devices where context_id is not null)
                   and id not in (select parent_id from eval_contexts where parent_id is not null)`.execute(this.db);
    }
    const contexts = await this.db.selectFrom('eval_contexts').select(['id', 'package_set_id', 'system_json', 'covered', 'parent_id']).orderBy('package_set_id').execute();
    for (const c of contexts) {
      const facts = this.evalFacts(JSON.parse(c.system_json) as EvalSystem, await this.setPackages(c.package_set_id));
      await fn({ id: c.id, covered: c.covered === 1, overlay: c.parent_id !== null }, facts);
    }
    return { contexts: contexts.length };
  }

  /** Facts of a device's context, for `explain`. */
  async deviceFacts(contextId: number): Promise<{ facts: EvalFacts; covered: boolean }> {
    const cat = await this.catalog();
    const c = await this.db.selectFrom('eval_contexts').select(['package_set_id', 'system_json']).where('id', '=', contextId).executeTakeFirstOrThrow();
    const facts = this.evalFacts(JSON.parse(c.system_json) as EvalSystem, await this.setPackages(c.package_set_id));
    return { facts, covered: this.covered(cat, facts) };
  }
}

/** The fact keys whose values differ between two inventories (by binary and by source name). */
export function changedKeys(before: readonly PackageFact[], after: readonly PackageFact[]): Set<string> {
  const lines = new Map<string, string>();
  for (const p of before) lines.set(packageLine(p), p.name);
  const keys = new Set<string>();
  const add = (p: PackageFact) => {
    keys.add(`package:${p.manager}:${p.name}`);
    keys.add(`source:${p.manager}:${p.source ?? p.name}`);
  };
  const afterLines = new Set<string>();
  for (const p of after) {
    const l = packageLine(p);
    afterLines.add(l);
    if (!lines.has(l)) add(p);
  }
  for (const p of before) if (!afterLines.has(packageLine(p))) add(p);
  return keys;
}
