import { describe, expect, it } from 'vitest';
import { PatchwardenError } from './errors.js';
import { checkCatalogGraph, planInstallOrder, type GraphManifest, type PatchNode } from './graph.js';

/** `{ a: ['b'] }` → a catalog where a requires b; `conflicts` separately. */
function catalog(requires: Record<string, string[]>, conflicts: Record<string, string[]> = {}) {
  const nodes = new Map<string, PatchNode>();
  for (const id of new Set([...Object.keys(requires), ...Object.keys(conflicts)])) {
    nodes.set(id, { id, requires: requires[id] ?? [], conflicts: conflicts[id] ?? [] });
  }
  return (id: string) => nodes.get(id);
}

const ids = (nodes: PatchNode[]) => nodes.map((n) => n.id);

function thrown(fn: () => unknown): PatchwardenError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(PatchwardenError);
    return e as PatchwardenError;
  }
  throw new Error('expected an error');
}

describe('planInstallOrder', () => {
  it('puts prerequisites first, transitively, and breaks ties by id', () => {
    const lookup = catalog({ t: ['c', 'a'], a: ['b'], b: [], c: ['b'], d: [], unrelated: [] });
    expect(ids(planInstallOrder(['t'], lookup))).toEqual(['b', 'a', 'c', 't']);
    expect(ids(planInstallOrder(['t', 'd'], lookup))).toEqual(['b', 'a', 'c', 'd', 't']);
    // the order of targets and of requires lists does not matter
    expect(ids(planInstallOrder(['d', 't', 't'], catalog({ t: ['a', 'c'], a: ['b'], b: [], c: ['b'], d: [] })))).toEqual(['b', 'a', 'c', 'd', 't']);
  });

  it('leaves out what is installed, and does not walk past it', () => {
    // b is installed: its requires (x, missing from the catalog) are not this plan's business
    const lookup = catalog({ t: ['a', 'b'], a: [], b: ['x'] });
    expect(ids(planInstallOrder(['t'], lookup, { installed: new Set(['b']) }))).toEqual(['a', 't']);
    expect(planInstallOrder(['t'], lookup, { installed: new Set(['t']) })).toEqual([]);
  });

  it('returns the objects lookup gave', () => {
    const m = { id: 'debian/a', requires: [], conflicts: [], title: 'A' };
    expect(planInstallOrder(['debian/a'], (id) => (id === m.id ? m : undefined))[0]).toBe(m);
  });

  it('names the chain that needs a missing prerequisite', () => {
    const e = thrown(() => planInstallOrder(['t'], catalog({ t: ['a'], a: ['b'], b: ['gone'] })));
    expect(e.code).toBe('E_VALIDATION');
    expect(e.message).toBe('t requires a; a requires b; b requires gone, which is neither installed nor in the catalog');
    expect(e.details).toEqual({ missing: 'gone', chain: ['t', 'a', 'b', 'gone'] });
    expect(thrown(() => planInstallOrder(['nope'], catalog({})))).toMatchObject({ code: 'E_VALIDATION', message: 'unknown patch nope' });
  });

  it('reports a cycle of length 3 with its chain', () => {
    const e = thrown(() => planInstallOrder(['t'], catalog({ t: ['a'], a: ['b'], b: ['c'], c: ['a'] })));
    expect(e.code).toBe('E_DEPENDENCY_CYCLE');
    expect(e.message).toBe('requires forms a cycle: a → b → c → a');
    expect(e.details).toEqual({ chain: ['a', 'b', 'c', 'a'] });
  });

  it('reports a patch that requires itself as a cycle of length 1', () => {
    const e = thrown(() => planInstallOrder(['a'], catalog({ a: ['a'] })));
    expect(e.code).toBe('E_DEPENDENCY_CYCLE');
    expect(e.message).toBe('requires forms a cycle: a → a');
    expect(e.details).toEqual({ chain: ['a', 'a'] });
  });

  it('reports a conflict with an installed patch, with the chain that brought it in', () => {
    const lookup = catalog({ x: ['y'], y: [], z: [] }, { y: ['z'] });
    const e = thrown(() => planInstallOrder(['x'], lookup, { installed: new Set(['z']) }));
    expect(e.code).toBe('E_PATCH_CONFLICT');
    expect(e.message).toBe('patches conflict: x requires y; y conflicts with z (installed)');
    expect(e.details).toEqual({ conflicts: [{ patch: 'y', with: 'z', installed: 'z', chains: { y: ['x', 'y'] } }] });
  });

  it('sees a conflict listed by either side', () => {
    // the installed patch is the one that names the planned one
    const lookup = catalog({ x: ['y'], y: [], z: [] }, { z: ['y'] });
    expect(thrown(() => planInstallOrder(['x'], lookup, { installed: new Set(['z']) })).message).toBe(
      'patches conflict: x requires y; z (installed) conflicts with y',
    );
    // two planned patches, each brought in by its own target
    const both = catalog({ s: ['a'], t: ['b'], a: [], b: [] }, { b: ['a'] });
    const e = thrown(() => planInstallOrder(['s', 't'], both));
    expect(e.message).toBe('patches conflict: t requires b; b conflicts with a; s requires a');
    expect(e.details).toEqual({ conflicts: [{ patch: 'b', with: 'a', installed: null, chains: { b: ['t', 'b'], a: ['s', 'a'] } }] });
  });

  it('reports each conflicting pair once, even when both list each other', () => {
    const lookup = catalog({ a: [], b: [] }, { a: ['b'], b: ['a'] });
    const e = thrown(() => planInstallOrder(['a', 'b'], lookup));
    expect(e.message).toBe('patches conflict: a conflicts with b');
    expect((e.details as { conflicts: unknown[] }).conflicts).toHaveLength(1);
    // a conflict with a patch that is neither planned nor installed is no conflict
    expect(ids(planInstallOrder(['a'], catalog({ a: [] }, { a: ['b'] })))).toEqual(['a']);
  });

  it('plans a 10,000-long chain of requires without recursion', () => {
    const n = 10_000;
    // ids sort against the chain's order, so only the requires can put them in order
    const id = (i: number) => `v/p${String(n - 1 - i).padStart(5, '0')}`;
    const nodes = new Map<string, PatchNode>();
    for (let i = 0; i < n; i++) nodes.set(id(i), { id: id(i), requires: i === 0 ? [] : [id(i - 1)], conflicts: [] });
    const plan = planInstallOrder([id(n - 1)], (x) => nodes.get(x));
    expect(plan).toHaveLength(n);
    expect(plan[0]!.id).toBe(id(0));
    expect(plan[n - 1]!.id).toBe(id(n - 1));
    expect(plan.every((p, i) => p.id === id(i))).toBe(true);
    // and the same chain closed into a cycle is reported, its message shortened
    nodes.set(id(0), { id: id(0), requires: [id(n - 1)], conflicts: [] });
    const e = thrown(() => planInstallOrder([id(n - 1)], (x) => nodes.get(x)));
    expect(e.code).toBe('E_DEPENDENCY_CYCLE');
    expect((e.details as { chain: string[] }).chain).toHaveLength(n + 1);
    expect(e.message).toMatch(/^requires forms a cycle: v\/p00000 → v\/p00001 → .* → … 9989 more … → .* → v\/p00000$/);
  });
});

describe('checkCatalogGraph', () => {
  const m = (id: string, requires: string[] = [], extra: Partial<GraphManifest> = {}): GraphManifest => ({ id, requires, supersedes: [], conflicts: [], ...extra });

  it('finds nothing in a clean graph, and ignores ids outside the set', () => {
    expect(checkCatalogGraph([m('a', ['b']), m('b', ['elsewhere']), m('c', [], { supersedes: ['a'], conflicts: ['b'] })])).toEqual([]);
  });

  it('reports every self-reference', () => {
    expect(checkCatalogGraph([m('a', ['a'], { supersedes: ['a'], conflicts: ['a'] }), m('b', [], { conflicts: ['b'] })])).toEqual([
      { code: 'E_VALIDATION', id: 'a', field: 'conflicts', message: 'a lists itself in conflicts' },
      { code: 'E_VALIDATION', id: 'a', field: 'requires', message: 'a lists itself in requires' },
      { code: 'E_VALIDATION', id: 'a', field: 'supersedes', message: 'a lists itself in supersedes' },
      { code: 'E_VALIDATION', id: 'b', field: 'conflicts', message: 'b lists itself in conflicts' },
    ]);
  });

  it('reports each cycle with its chain', () => {
    const problems = checkCatalogGraph([m('c', ['a']), m('a', ['b']), m('b', ['c']), m('x', ['y']), m('y', ['x']), m('z', ['a'])]);
    expect(problems).toEqual([
      { code: 'E_DEPENDENCY_CYCLE', id: 'a', field: 'requires', message: 'requires forms a cycle: a → b → c → a', chain: ['a', 'b', 'c', 'a'], members: ['a', 'b', 'c'] },
      { code: 'E_DEPENDENCY_CYCLE', id: 'x', field: 'requires', message: 'requires forms a cycle: x → y → x', chain: ['x', 'y', 'x'], members: ['x', 'y'] },
    ]);
  });

  it('names every member of a group with several cycles', () => {
    // a → b → a and a → c → a: one group, the shortest cycle through a, and all members
    const [p, ...rest] = checkCatalogGraph([m('a', ['b', 'c']), m('b', ['a']), m('c', ['a'])]);
    expect(rest).toEqual([]);
    expect(p).toMatchObject({ chain: ['a', 'b', 'a'], members: ['a', 'b', 'c'] });
    expect(p!.message).toBe('requires forms a cycle: a → b → a (3 patches require each other in all: a, b, c)');
  });

  it('judges the highest revision of an id', () => {
    expect(checkCatalogGraph([m('a', ['b'], { revision: 2 }), m('a', [], { revision: 3 }), m('b', ['a'])])).toEqual([]);
    expect(checkCatalogGraph([m('a', [], { revision: 3 }), m('a', ['b'], { revision: 2 }), m('b', ['a'])])).toEqual([]);
  });

  it('walks a 10,000-long chain and a 10,000-long cycle without recursion', () => {
    const n = 10_000;
    const chain = Array.from({ length: n }, (_, i) => m(`p${i}`, i === 0 ? [] : [`p${i - 1}`]));
    expect(checkCatalogGraph(chain)).toEqual([]);
    chain[0] = m('p0', [`p${n - 1}`]);
    const [p, ...rest] = checkCatalogGraph(chain);
    expect(rest).toEqual([]);
    expect(p!.code).toBe('E_DEPENDENCY_CYCLE');
    expect(p!.chain).toHaveLength(n + 1);
    expect(p!.chain![0]).toBe('p0');
    expect(p!.members).toHaveLength(n);
  });

  it('agrees with a brute-force reachability check on small random graphs', () => {
    // mulberry32, seeded: the same graphs on every run (64 of the 200 have a cycle)
    let seed = 42;
    const rand = (k: number) => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) % k;
    };
    let cyclic = 0;
    for (let round = 0; round < 200; round++) {
      const n = 1 + rand(8);
      const names = Array.from({ length: n }, (_, i) => `n${i}`);
      const reqs = names.map((a) => names.filter((b) => a !== b && rand(5) === 0));
      // reach[i][j]: j is reachable from i in one or more steps
      const reach = names.map((_, i) => names.map((b) => reqs[i]!.includes(b)));
      for (let k = 0; k < n; k++) for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) if (reach[i]![k] && reach[k]![j]) reach[i]![j] = true;
      const problems = checkCatalogGraph(names.map((a, i) => m(a, reqs[i]!)));
      const inCycles = problems.flatMap((p) => p.members!).sort();
      expect(inCycles).toEqual(names.filter((_, i) => reach[i]![i]).sort());
      for (const p of problems) {
        const c = p.chain!;
        expect(c[0]).toBe(c[c.length - 1]);
        for (let i = 1; i < c.length; i++) expect(reqs[names.indexOf(c[i - 1]!)]).toContain(c[i]);
      }
      // the planner agrees: it orders an acyclic graph, and refuses one with a cycle
      const lookup = (id: string) => (names.includes(id) ? { id, requires: reqs[names.indexOf(id)]!, conflicts: [] } : undefined);
      if (problems.length === 0) {
        const order = ids(planInstallOrder(names, lookup));
        expect([...order].sort()).toEqual([...names].sort());
        for (const [i, a] of names.entries()) for (const b of reqs[i]!) expect(order.indexOf(b)).toBeLessThan(order.indexOf(a));
      } else {
        expect(thrown(() => planInstallOrder(names, lookup)).code).toBe('E_DEPENDENCY_CYCLE');
        cyclic++;
      }
    }
    expect(cyclic).toBe(64);
  });
});
