/**
 * Package inventories as content-addressed sets. The agent and the server compute the same
 * hash from the same packages, so an unchanged inventory travels as 64 hex digits and a
 * changed one as a delta against a set both sides know.
 */
import { createHash } from 'node:crypto';
import type { PackageFact, PackageKey } from './facts.js';

export function packageKey(p: PackageKey): string {
  return `${p.manager}\t${p.name}\t${p.arch}`;
}

/** One line per package; tabs and newlines cannot occur in validated fields. */
export function packageLine(p: PackageFact): string {
  return `${p.manager}\t${p.name}\t${p.arch}\t${p.version}\t${p.source ?? ''}\t${p.sourceVersion ?? ''}\t${p.state}\n`;
}

/**
 * Sorts in place by key; returns the duplicated key if two packages share one. Agents send
 * their inventories sorted, so the common case is one pass that finds nothing to do.
 */
export function sortInventory(packages: PackageFact[]): string | null {
  const keys = packages.map(packageKey);
  let sorted = true;
  for (let i = 1; i < keys.length && sorted; i++) if (keys[i - 1]! >= keys[i]!) sorted = false;
  if (!sorted) {
    const order = keys.map((k, i) => i).sort((a, b) => (keys[a]! < keys[b]! ? -1 : keys[a]! > keys[b]! ? 1 : 0));
    const copy = packages.slice();
    const sortedKeys = order.map((i) => keys[i]!);
    order.forEach((from, to) => {
      packages[to] = copy[from]!;
    });
    for (let i = 1; i < sortedKeys.length; i++) if (sortedKeys[i - 1] === sortedKeys[i]) return sortedKeys[i]!;
  }
  return null;
}

/** sha256 over the sorted package lines. `packages` must already be sorted (sortInventory). */
export function inventoryHash(sortedPackages: readonly PackageFact[]): string {
  let text = 'patchwarden-inventory-v1\n';
  for (const p of sortedPackages) text += packageLine(p);
  return createHash('sha256').update(text).digest('hex');
}

export interface InventoryDelta {
  add: PackageFact[];
  remove: PackageKey[];
}

/** What turns `before` into `after`: changed packages are in `add` (replacing by key). */
export function diffInventories(before: readonly PackageFact[], after: readonly PackageFact[]): InventoryDelta {
  const old = new Map<string, string>();
  for (const p of before) old.set(packageKey(p), packageLine(p));
  const add: PackageFact[] = [];
  const seen = new Set<string>();
  for (const p of after) {
    const k = packageKey(p);
    seen.add(k);
    if (old.get(k) !== packageLine(p)) add.push(p);
  }
  const remove: PackageKey[] = [];
  for (const p of before) {
    if (!seen.has(packageKey(p))) remove.push({ manager: p.manager, name: p.name, arch: p.arch });
  }
  return { add, remove };
}

/** Applies a delta and returns the new inventory, sorted. */
export function applyDelta(base: readonly PackageFact[], delta: InventoryDelta): PackageFact[] {
  const byK = new Map<string, PackageFact>();
  for (const p of base) byK.set(packageKey(p), p);
  for (const k of delta.remove) byK.delete(packageKey(k));
  for (const p of delta.add) byK.set(packageKey(p), p);
  const out = [...byK.values()];
  sortInventory(out);
  return out;
}

const FACT_KEYS = new Set(['manager', 'name', 'version', 'arch', 'source', 'sourceVersion', 'state']);
const REQUIRED = ['manager', 'name', 'version', 'arch', 'state'] as const;

/**
 * The inventory hash of packages straight from JSON, before schema checks, or null when the
 * items are not plain, sorted package objects. When the hash matches a set the server has
 * already stored (and so already checked), the items are that set, byte for byte, and the
 * per-package schema checks can be skipped.
 */
export function rawInventoryHash(items: readonly unknown[]): string | null {
  let text = 'patchwarden-inventory-v1\n';
  let prevKey = '';
  for (const item of items) {
    if (typeof item !== 'object' || item === null || Array.isArray(item)) return null;
    const o = item as Record<string, unknown>;
    for (const k in o) {
      if (!FACT_KEYS.has(k) || typeof o[k] !== 'string' || o[k] === '') return null;
    }
    for (const k of REQUIRED) if (typeof o[k] !== 'string') return null;
    const p = o as unknown as PackageFact;
    const key = packageKey(p);
    if (key <= prevKey) return null;
    prevKey = key;
    text += packageLine(p);
  }
  return createHash('sha256').update(text).digest('hex');
}
