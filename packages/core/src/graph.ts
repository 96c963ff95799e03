/**
 * The dependency graph of patches: which patches an install needs and in what order, and the
 * publish-time checks of `requires`, `supersedes` and `conflicts`. Every walk is iterative:
 * a vendor's chain of cumulative updates can be thousands of patches long, and recursion would
 * overflow the stack long before that.
 */
import { PatchwardenError } from './errors.js';

export interface PatchNode {
  id: string;
  requires: readonly string[];
  conflicts: readonly string[];
}

const byId = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
const sortedUnique = (ids: readonly string[]) => [...new Set(ids)].sort(byId);

/** Long chains are shown by their ends; the full chain is in the error's details. */
const SHOWN = 6;
function elide(parts: string[], sep: string): string {
  if (parts.length <= 2 * SHOWN + 1) return parts.join(sep);
  return [...parts.slice(0, SHOWN), `… ${parts.length - 2 * SHOWN} more …`, ...parts.slice(-SHOWN)].join(sep);
}

/** `[x, y, z]` → `x requires y; y requires z`. */
function requiresText(chain: readonly string[]): string {
  const steps: string[] = [];
  for (let i = 1; i < chain.length; i++) steps.push(`${chain[i - 1]} requires ${chain[i]}`);
  return elide(steps, '; ');
}

const arrowText = (chain: string[]) => elide(chain, ' → ');

function cycleError(chain: string[]): PatchwardenError {
  return new PatchwardenError('E_DEPENDENCY_CYCLE', `requires forms a cycle: ${arrowText(chain)}`, {
    hint: 'a patch cannot require itself, directly or through others; remove one link of the cycle from its requires',
    details: { chain },
  });
}

// ── planning an install ────────────────────────────────────────────────────────────────────

interface Discovery<T> {
  nodes: Map<string, T>;
  /** who first brought each patch in (null for a target): the chain an error message shows */
  parent: Map<string, string | null>;
}

function chainTo(parent: Map<string, string | null>, id: string): string[] {
  const chain = [id];
  for (let p = parent.get(id); p != null; p = parent.get(p)) chain.push(p);
  return chain.reverse();
}

/** Depth-first from the targets along requires, skipping installed patches; stops at the first missing patch or cycle. */
function discover<T extends PatchNode>(targets: string[], lookup: (id: string) => T | undefined, installed: ReadonlySet<string>): Discovery<T> {
  const nodes = new Map<string, T>();
  const parent = new Map<string, string | null>();
  const onStack = new Set<string>();
  const enter = (id: string, stack: { id: string; reqs: string[]; i: number }[]) => {
    const node = lookup(id);
    if (!node) throw missingError([...stack.map((f) => f.id), id]);
    nodes.set(id, node);
    onStack.add(id);
    stack.push({ id, reqs: sortedUnique(node.requires), i: 0 });
  };
  for (const t of targets) {
    if (installed.has(t) || nodes.has(t)) continue;
    parent.set(t, null);
    const stack: { id: string; reqs: string[]; i: number }[] = [];
    enter(t, stack);
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const req = top.reqs[top.i++];
      if (req === undefined) {
        onStack.delete(top.id);
        stack.pop();
      } else if (onStack.has(req)) {
        throw cycleError([...stack.slice(stack.findIndex((f) => f.id === req)).map((f) => f.id), req]);
      } else if (!installed.has(req) && !nodes.has(req)) {
        parent.set(req, top.id);
        enter(req, stack);
      }
    }
  }
  return { nodes, parent };
}

function missingError(chain: string[]): PatchwardenError {
  const id = chain[chain.length - 1]!;
  if (chain.length === 1) return new PatchwardenError('E_VALIDATION', `unknown patch ${id}`, { details: { missing: id, chain } });
  const needer = chain[chain.length - 2]!;
  return new PatchwardenError('E_VALIDATION', `${requiresText(chain)}, which is neither installed nor in the catalog`, {
    hint: `publish or import ${id} first, or remove it from the requires of ${needer}`,
    details: { missing: id, chain },
  });
}

/** A small binary min-heap of ids: the next patch to install is the smallest id that is ready. */
class IdHeap {
  private items: string[] = [];
  get size() {
    return this.items.length;
  }
  push(id: string) {
    const a = this.items;
    a.push(id);
    for (let i = a.length - 1; i > 0; ) {
      const p = (i - 1) >> 1;
      if (a[p]! <= a[i]!) break;
      [a[p], a[i]] = [a[i]!, a[p]!];
      i = p;
    }
  }
  pop(): string {
    const a = this.items;
    const top = a[0]!;
    const last = a.pop()!;
    if (a.length === 0) return top;
    a[0] = last;
    for (let i = 0; ; ) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < a.length && a[l]! < a[m]!) m = l;
      if (r < a.length && a[r]! < a[m]!) m = r;
      if (m === i) break;
      [a[m], a[i]] = [a[i]!, a[m]!];
      i = m;
    }
    return top;
  }
}

/** Kahn's algorithm: prerequisites first, and among the patches ready at once the smallest id. */
function topoOrder<T extends PatchNode>(nodes: Map<string, T>): T[] {
  const waiting = new Map<string, number>();
  const dependents = new Map<string, string[]>();
  const ready = new IdHeap();
  for (const [id, node] of nodes) {
    const reqs = sortedUnique(node.requires).filter((r) => nodes.has(r));
    waiting.set(id, reqs.length);
    for (const r of reqs) {
      const list = dependents.get(r);
      if (list) list.push(id);
      else dependents.set(r, [id]);
    }
    if (reqs.length === 0) ready.push(id);
  }
  const out: T[] = [];
  while (ready.size > 0) {
    const id = ready.pop();
    out.push(nodes.get(id)!);
    for (const d of dependents.get(id) ?? []) {
      const n = waiting.get(d)! - 1;
      waiting.set(d, n);
      if (n === 0) ready.push(d);
    }
  }
  return out;
}

export interface ConflictFound {
  /** the patch whose conflicts list names the other */
  patch: string;
  with: string;
  /** which of the two is installed already (neither, when both are planned) */
  installed: string | null;
  /** how each planned patch came into the plan: target first */
  chains: Record<string, string[]>;
}

function findConflicts<T extends PatchNode>(plan: T[], d: Discovery<T>, lookup: (id: string) => T | undefined, installed: ReadonlySet<string>): ConflictFound[] {
  const out: ConflictFound[] = [];
  const seen = new Set<string>();
  const add = (patch: string, other: string, inst: string | null) => {
    const key = [patch, other].sort(byId).join('\n');
    if (seen.has(key)) return;
    seen.add(key);
    const chains: Record<string, string[]> = {};
    for (const id of [patch, other]) if (id !== inst) chains[id] = chainTo(d.parent, id);
    out.push({ patch, with: other, installed: inst, chains });
  };
  for (const p of plan) {
    for (const c of sortedUnique(p.conflicts)) {
      if (c !== p.id && d.nodes.has(c)) add(p.id, c, null);
      else if (installed.has(c)) add(p.id, c, c);
    }
  }
  // an installed patch may name a planned one in its own conflicts list
  for (const i of [...installed].sort(byId)) {
    for (const c of lookup(i)?.conflicts ?? []) if (c !== i && d.nodes.has(c)) add(i, c, i);
  }
  return out;
}

function conflictText(c: ConflictFound): string {
  const mark = (id: string) => (id === c.installed ? `${id} (installed)` : id);
  const parts = [c.patch, c.with].filter((id) => id !== c.installed).map((id) => requiresText(c.chains[id]!));
  const [a, b] = [parts[0] ?? '', parts[1] ?? ''];
  return [a, `${mark(c.patch)} conflicts with ${mark(c.with)}`, b].filter((s) => s !== '').join('; ');
}

function conflictError(found: ConflictFound[]): PatchwardenError {
  const more = found.length > 1 ? ` (and ${found.length - 1} more conflict${found.length > 2 ? 's' : ''})` : '';
  return new PatchwardenError('E_PATCH_CONFLICT', `patches conflict: ${conflictText(found[0]!)}${more}`, {
    hint: 'leave one of the conflicting patches out, or undo the installed one first',
    details: { conflicts: found },
  });
}

/**
 * The patches to install for `targets`, prerequisites first: the targets and their transitive
 * requires, less what is installed (an installed patch's own requires are its business).
 * Deterministic: among patches that could go next, the smallest id goes first.
 * Throws E_VALIDATION for a patch that is missing, E_DEPENDENCY_CYCLE for a cycle in requires,
 * E_PATCH_CONFLICT when two planned patches, or a planned and an installed one, conflict.
 */
export function planInstallOrder<T extends PatchNode>(
  targets: readonly string[],
  lookup: (id: string) => T | undefined,
  opts: { installed?: ReadonlySet<string> } = {},
): T[] {
  const installed = opts.installed ?? new Set<string>();
  const d = discover(sortedUnique(targets), lookup, installed);
  const plan = topoOrder(d.nodes);
  const conflicts = findConflicts(plan, d, lookup, installed);
  if (conflicts.length > 0) throw conflictError(conflicts);
  return plan;
}

// ── publish-time checks ────────────────────────────────────────────────────────────────────

export interface GraphManifest {
  id: string;
  revision?: number;
  requires: readonly string[];
  supersedes: readonly string[];
  conflicts: readonly string[];
}

export interface GraphProblem {
  code: 'E_DEPENDENCY_CYCLE' | 'E_VALIDATION';
  /** the patch named first: the one that lists itself, or the smallest id of a cycle */
  id: string;
  field: 'requires' | 'supersedes' | 'conflicts';
  message: string;
  /** a cycle, `a → b → … → a` */
  chain?: string[];
  /** every patch of the strongly connected group the cycle belongs to */
  members?: string[];
}

/**
 * Problems of a set of manifests being published (the server passes the catalog with the new
 * ones in it): every patch that names itself, and every cycle in requires. Cycles are reported
 * once per strongly connected group, with one concrete cycle and all the group's members, since
 * a group can hold exponentially many distinct cycles. Ids outside the set are not checked here.
 */
export function checkCatalogGraph(manifests: Iterable<GraphManifest>): GraphProblem[] {
  const byIdMap = latestById(manifests);
  const out: GraphProblem[] = [];
  for (const m of byIdMap.values()) {
    for (const field of ['requires', 'supersedes', 'conflicts'] as const) {
      if (m[field].includes(m.id)) out.push({ code: 'E_VALIDATION', id: m.id, field, message: `${m.id} lists itself in ${field}` });
    }
  }
  const edges = new Map<string, string[]>();
  for (const m of byIdMap.values()) edges.set(m.id, sortedUnique(m.requires).filter((r) => r !== m.id && byIdMap.has(r)));
  for (const group of stronglyConnected(edges)) {
    if (group.length < 2) continue;
    const chain = shortestCycle(group, edges);
    out.push({ code: 'E_DEPENDENCY_CYCLE', id: chain[0]!, field: 'requires', message: cycleMessage(chain, group), chain, members: group });
  }
  return out.sort((a, b) => byId(a.id, b.id) || byId(a.field, b.field) || byId(a.code, b.code));
}

function cycleMessage(chain: string[], group: string[]): string {
  const rest = group.length > chain.length - 1 ? ` (${group.length} patches require each other in all: ${elide(group, ', ')})` : '';
  return `requires forms a cycle: ${arrowText(chain)}${rest}`;
}

/** One manifest per id: with several, the highest revision, and of equal ones the last. */
function latestById(manifests: Iterable<GraphManifest>): Map<string, GraphManifest> {
  const out = new Map<string, GraphManifest>();
  for (const m of manifests) {
    const known = out.get(m.id);
    if (!known || (m.revision ?? 0) >= (known.revision ?? 0)) out.set(m.id, m);
  }
  return out;
}

/** Tarjan's algorithm with an explicit stack; groups come out with their ids sorted. */
function stronglyConnected(edges: Map<string, string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const groups: string[][] = [];
  let next = 0;
  for (const root of [...edges.keys()].sort(byId)) {
    if (index.has(root)) continue;
    const work: { v: string; i: number }[] = [{ v: root, i: 0 }];
    index.set(root, next);
    low.set(root, next++);
    stack.push(root);
    onStack.add(root);
    while (work.length > 0) {
      const top = work[work.length - 1]!;
      const w = edges.get(top.v)![top.i++];
      if (w !== undefined) {
        if (!index.has(w)) {
          index.set(w, next);
          low.set(w, next++);
          stack.push(w);
          onStack.add(w);
          work.push({ v: w, i: 0 });
        } else if (onStack.has(w)) {
          low.set(top.v, Math.min(low.get(top.v)!, index.get(w)!));
        }
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent) low.set(parent.v, Math.min(low.get(parent.v)!, low.get(top.v)!));
      if (low.get(top.v) === index.get(top.v)) groups.push(popGroup(stack, onStack, top.v));
    }
  }
  return groups;
}

function popGroup(stack: string[], onStack: Set<string>, root: string): string[] {
  const group: string[] = [];
  for (;;) {
    const w = stack.pop()!;
    onStack.delete(w);
    group.push(w);
    if (w === root) break;
  }
  return group.sort(byId);
}

/** The shortest cycle through the group's smallest id (breadth first, inside the group). */
function shortestCycle(group: string[], edges: Map<string, string[]>): string[] {
  const inGroup = new Set(group);
  const start = group[0]!;
  const from = new Map<string, string>();
  const queue = [start];
  for (let q = 0; q < queue.length; q++) {
    const v = queue[q]!;
    for (const w of edges.get(v)!) {
      if (w === start) return [...chainBack(from, v, start), start];
      if (inGroup.has(w) && !from.has(w)) {
        from.set(w, v);
        queue.push(w);
      }
    }
  }
  throw new PatchwardenError('E_INTERNAL', `no cycle through ${start} in its strongly connected group`);
}

function chainBack(from: Map<string, string>, v: string, start: string): string[] {
  const chain = [v];
  for (let p = v; p !== start; ) {
    p = from.get(p)!;
    chain.push(p);
  }
  return chain.reverse();
}
