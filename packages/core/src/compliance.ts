/**
 * The one function that decides a patch's state on a device, in DESIGN.md's order:
 * not_assessed, unknown, not_applicable, installed (pending restart), superseded, blocked,
 * needed. Agent, server and `scan` all call it.
 */
import type { PatchManifest, Platform } from './patch.js';
import type { EvalFacts } from './rules/facts.js';
import { evaluateRule, ruleFactKeys, type Evaluation } from './rules/evaluate.js';
import type { PatchState } from './states.js';
import { compareDebVersions } from './version/deb.js';

export type EvalPatch = Pick<PatchManifest, 'id' | 'platforms' | 'applicability' | 'installed' | 'requires' | 'supersedes' | 'conflicts' | 'restart'>;

export interface PatchDecision {
  state: PatchState;
  /** unknown: the facts it lacks */
  missing?: string[];
  /** superseded: by which patch; blocked: which patch blocks it */
  by?: string;
  reason?: string;
}

/** Coverage: which OS releases and architectures the catalog's feeds speak for. */
export function platformMatches(p: Platform, facts: EvalFacts): boolean {
  const os = facts.os;
  if (!os || os.family !== p.family) return false;
  if (p.distribution !== undefined && os.distribution !== p.distribution) return false;
  if (p.release !== undefined && os.version !== p.release && os.versionCodename !== p.release) return false;
  if (p.arch !== undefined && !p.arch.includes(os.packageArch ?? os.machine) && !p.arch.includes(os.machine)) return false;
  return true;
}

/** The running kernel is older than an installed one (dpkg: linux-image-<release> packages). */
export function runningKernelOutdated(facts: EvalFacts): boolean {
  if (!facts.kernelRelease) return false;
  const running = facts.packages.get(`dpkg\tlinux-image-${facts.kernelRelease}`)?.[0];
  if (!running) return false;
  for (const [key, list] of facts.packages) {
    if (!key.startsWith('dpkg\tlinux-image-') || !/^dpkg\tlinux-image-\d/.test(key)) continue;
    for (const p of list) if (compareDebVersions(p.version, running.version) > 0) return true;
  }
  return false;
}

/** Everything the evaluator needs to know about a catalog, built once per catalog version. */
export class CatalogIndex {
  readonly byId = new Map<string, EvalPatch>();
  readonly supersededBy = new Map<string, string[]>();
  /** fact key → patches whose rules read it; `os`-only patches in osOnly */
  readonly byFactKey = new Map<string, Set<string>>();
  readonly osOnly = new Set<string>();

  constructor(patches: Iterable<EvalPatch>) {
    for (const p of patches) this.add(p);
  }

  add(p: EvalPatch): void {
    this.byId.set(p.id, p);
    for (const s of p.supersedes) {
      const l = this.supersededBy.get(s) ?? [];
      l.push(p.id);
      this.supersededBy.set(s, l);
    }
    const keys = ruleFactKeys(p.applicability);
    ruleFactKeys(p.installed, keys);
    keys.delete('os');
    if (keys.size === 0) this.osOnly.add(p.id);
    for (const k of keys) {
      let s = this.byFactKey.get(k);
      if (!s) this.byFactKey.set(k, (s = new Set()));
      s.add(p.id);
    }
  }

  /**
   * The patches to re-evaluate when these fact keys changed: those reading them, those reading
   * no indexed key at all, and the patches linked to them by supersedes and requires (whose
   * state depends on theirs).
   */
  affectedBy(changedKeys: Iterable<string>): Set<string> {
    const out = new Set<string>(this.osOnly);
    for (const k of changedKeys) for (const id of this.byFactKey.get(k) ?? []) out.add(id);
    for (const id of [...out]) {
      const p = this.byId.get(id);
      for (const s of p?.supersedes ?? []) out.add(s);
      for (const r of this.requiredBy(id)) out.add(r);
    }
    return out;
  }

  private requiredByMap: Map<string, string[]> | null = null;
  requiredBy(id: string): string[] {
    if (!this.requiredByMap) {
      this.requiredByMap = new Map();
      for (const p of this.byId.values()) {
        for (const r of [...p.requires, ...p.conflicts]) {
          const l = this.requiredByMap.get(r) ?? [];
          l.push(p.id);
          this.requiredByMap.set(r, l);
        }
      }
    }
    return this.requiredByMap.get(id) ?? [];
  }
}

export interface DecideOptions {
  /** false: no feed covers this device's OS release and architecture */
  covered: boolean;
  /** counts evaluator calls (tests and benchmarks) */
  counter?: { rules: number };
}

const PRESENT: ReadonlySet<PatchState> = new Set(['installed', 'installed_pending_restart']);

/**
 * Decides the states of `ids` (default: every patch) on one device. Patches these depend on
 * (superseding, required, conflicting) are evaluated as needed, without being returned.
 */
export function decideStates(index: CatalogIndex, facts: EvalFacts, opts: DecideOptions, ids?: Iterable<string>): Map<string, PatchDecision> {
  const base = new Map<string, PatchDecision>();
  const kernelPending = facts.rebootRequired || runningKernelOutdated(facts);
  const evalRule = (r: EvalPatch['applicability']): Evaluation => {
    if (opts.counter) opts.counter.rules++;
    return evaluateRule(r, facts);
  };
  const baseOf = (id: string): PatchDecision => {
    const known = base.get(id);
    if (known) return known;
    const p = index.byId.get(id);
    let d: PatchDecision;
    if (!p) d = { state: 'not_applicable', reason: 'not in the catalog' };
    else if (!opts.covered) d = { state: 'not_assessed', reason: "no feed covers this device's OS release and architecture" };
    else if (!p.platforms.some((pl) => platformMatches(pl, facts))) d = { state: 'not_applicable', reason: 'for other platforms' };
    else {
      const a = evalRule(p.applicability);
      if (a.result === 'unknown') d = { state: 'unknown', missing: a.missing };
      else if (a.result === 'false') d = { state: 'not_applicable' };
      else {
        const i = evalRule(p.installed);
        if (i.result === 'unknown') d = { state: 'unknown', missing: i.missing };
        else if (i.result === 'true') {
          const pending = (p.restart.kernel && kernelPending) || (p.restart.reboot === 'required' && facts.rebootRequired);
          d = { state: pending ? 'installed_pending_restart' : 'installed' };
        } else d = { state: 'needed' };
      }
    }
    base.set(id, d);
    return d;
  };

  const out = new Map<string, PatchDecision>();
  for (const id of ids ?? index.byId.keys()) {
    const d = baseOf(id);
    if (d.state !== 'needed') {
      out.set(id, d);
      continue;
    }
    const p = index.byId.get(id)!;
    const sup = (index.supersededBy.get(id) ?? []).find((q) => {
      const s = baseOf(q).state;
      return s === 'needed' || PRESENT.has(s);
    });
    if (sup) {
      out.set(id, { state: 'superseded', by: sup });
      continue;
    }
    const missingReq = p.requires.find((r) => {
      const s = baseOf(r).state;
      return !(s === 'needed' || PRESENT.has(s));
    });
    if (missingReq) {
      out.set(id, { state: 'blocked', by: missingReq, reason: `requires ${missingReq}, which is ${baseOf(missingReq).state} here` });
      continue;
    }
    const conflict = p.conflicts.find((c) => PRESENT.has(baseOf(c).state));
    if (conflict) {
      out.set(id, { state: 'blocked', by: conflict, reason: `conflicts with ${conflict}, which is installed` });
      continue;
    }
    out.set(id, d);
  }
  return out;
}
