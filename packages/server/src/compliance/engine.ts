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
    if (!this.cached || this.cached.generation !== gen) this.cached = await loadCatalog(this.db);
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
    if (this.facts.size > 256) this.facts.delete(this.facts.keys().next().value!);
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

  private async writeStates(contextId: number, cat: LoadedCatalog, decisions: Map<string, PatchDecision>, replaceAll: boolean, covered: boolean) {
    const pks: number[] = [];
    const states: string[] = [];
    const details: (string | null)[] = [];
    const touched: number[] = [];
    for (const [id, d] of decisions) {
      const pk = cat.pkOf.get(id);
      if (pk === undefined) continue;
      touched.push(pk);
      if (d.state === 'not_applicable' || d.state === 'not_assessed') continue;
      pks.push(pk);
      states.push(d.state);
      const detail = d.missing || d.by || d.reason ? JSON.stringify({ missing: d.missing, by: d.by, reason: d.reason }) : null;
      details.push(detail);
    }
    await this.db.transaction().execute(async (tx) => {
      if (replaceAll) await tx.deleteFrom('context_states').where('context_id', '=', contextId).execute();
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
        await sql`insert into context_states (context_id, patch_pk, state, detail) ${rows}`.execute(tx);
      }
      await tx.updateTable('eval_contexts').set({ generation: cat.generation, covered: covered ? 1 : 0 }).where('id', '=', contextId).execute();
    });
  }

  /**
   * Points a device at the context of its current package set and system facts, evaluating
   * that context first if it is new: incrementally from the device's previous context when
   * only packages changed, in full otherwise.
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
    const key = contextKey(set.hash, sys);
    let ctx = await this.db.selectFrom('eval_contexts').select(['id', 'generation']).where('key', '=', key).executeTakeFirst();
    if (!ctx && previousContextId !== null && (await this.rekeyAlone(deviceId, previousContextId, key, set, sys, cat, known.changed))) return;
    if (!ctx || ctx.generation !== cat.generation) {
      const packages = await this.setPackages(set.id);
      const facts = this.evalFacts(sys, packages);
      if (!ctx) {
        const inserted = await this.db
          .insertInto('eval_contexts')
          .values({ key, package_set_id: set.id, system_json: JSON.stringify(sys), generation: -1, covered: 1, created_at: this.now() })
          .onConflict((oc) => oc.column('key').doNothing())
          .returning(['id', 'generation'])
          .executeTakeFirst();
        ctx = inserted ?? (await this.db.selectFrom('eval_contexts').select(['id', 'generation']).where('key', '=', key).executeTakeFirstOrThrow());
      }
      const prev = previousContextId === null ? undefined : await this.db.selectFrom('eval_contexts').selectAll().where('id', '=', previousContextId).executeTakeFirst();
      const opts = { covered: this.covered(cat, facts), counter: this.counter };
      if (prev && prev.generation === cat.generation && prev.system_json === JSON.stringify(sys) && prev.id !== ctx.id) {
        // only packages changed: copy the previous states, re-evaluate what reads the changes
        const before = await this.setPackages(prev.package_set_id);
        const ids = cat.index.affectedBy(changedKeys(before, packages));
        await this.copyStates(prev.id, ctx.id);
        await this.writeStates(ctx.id, cat, decideStates(cat.index, facts, opts, ids), false, opts.covered);
      } else {
        await this.writeStates(ctx.id, cat, decideStates(cat.index, facts, opts), true, opts.covered);
      }
    }
    await this.db.updateTable('devices').set({ context_id: ctx.id }).where('id', '=', deviceId).execute();
  }

  /**
   * The common case of a device whose inventory changed: if no other device shares its
   * context, the context itself moves to the new inventory and only the patches that read the
   * changed packages are re-evaluated; nothing is copied.
   */
  private async rekeyAlone(
    deviceId: string,
    contextId: number,
    key: string,
    set: { id: number },
    sys: EvalSystem,
    cat: LoadedCatalog,
    changed?: Set<string>,
  ): Promise<boolean> {
    const prev = await this.db.selectFrom('eval_contexts').selectAll().where('id', '=', contextId).executeTakeFirst();
    if (!prev || prev.generation !== cat.generation || prev.system_json !== JSON.stringify(sys)) return false;
    const shared = await this.db.selectFrom('devices').select('id').where('context_id', '=', contextId).where('id', '!=', deviceId).limit(1).executeTakeFirst();
    if (shared) return false;
    const packages = await this.setPackages(set.id);
    const facts = this.evalFacts(sys, packages);
    const covered = this.covered(cat, facts);
    const ids = cat.index.affectedBy(changed ?? changedKeys(await this.setPackages(prev.package_set_id), packages));
    await this.db.updateTable('eval_contexts').set({ key, package_set_id: set.id }).where('id', '=', contextId).execute();
    await this.writeStates(contextId, cat, decideStates(cat.index, facts, { covered, counter: this.counter }, ids), false, covered);
    return true;
  }

  private async copyStates(from: number, to: number) {
    await this.db.deleteFrom('context_states').where('context_id', '=', to).execute();
    await sql`insert into context_states (context_id, patch_pk, state, detail)
              select ${to}, patch_pk, state, detail from context_states where context_id = ${from}`.execute(this.db);
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
    return this.forEachContext(async (ctxId, facts, wasCovered) => {
      const covered = this.covered(cat, facts);
      // a context that just became covered (or stopped being) needs every patch decided
      const all = covered !== wasCovered;
      await this.writeStates(ctxId, cat, decideStates(cat.index, facts, { covered, counter: this.counter }, all ? undefined : ids), all, covered);
    }, cat);
  }

  /** Full recompute of every context: the repair path. */
  async recomputeAll(): Promise<{ contexts: number }> {
    const cat = await this.catalog();
    return this.forEachContext(async (ctxId, facts) => {
      const covered = this.covered(cat, facts);
      await this.writeStates(ctxId, cat, decideStates(cat.index, facts, { covered, counter: this.counter }), true, covered);
    }, cat);
  }

  private async forEachContext(fn: (id: number, facts: EvalFacts, wasCovered: boolean) => Promise<void>, cat: LoadedCatalog): Promise<{ contexts: number }> {
    // only contexts some device points to are kept current; others are dropped
    await sql`delete from eval_contexts where id not in (select context_id from devices where context_id is not null)`.execute(this.db);
    const contexts = await this.db.selectFrom('eval_contexts').select(['id', 'package_set_id', 'system_json', 'covered']).orderBy('package_set_id').execute();
    for (const c of contexts) {
      const facts = this.evalFacts(JSON.parse(c.system_json) as EvalSystem, await this.setPackages(c.package_set_id));
      await fn(c.id, facts, c.covered === 1);
    }
    void cat;
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
