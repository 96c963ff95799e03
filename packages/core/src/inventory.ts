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

function byKey(a: PackageFact, b: PackageFact): number {
  const ka = packageKey(a);
  const kb = packageKey(b);
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

/** Sorts in place by key; returns the duplicated key if two packages share one. */
export function sortInventory(packages: PackageFact[]): string | null {
  packages.sort(byKey);
  for (let i = 1; i < packages.length; i++) {
    if (packageKey(packages[i - 1]!) === packageKey(packages[i]!)) return packageKey(packages[i]!);
  }
  return null;
}

/** sha256 over the sorted package lines. `packages` must already be sorted (sortInventory). */
export function inventoryHash(sortedPackages: readonly PackageFact[]): string {
  const h = createHash('sha256');
  h.update('patchwarden-inventory-v1\n');
  for (const p of sortedPackages) h.update(packageLine(p));
  return h.digest('hex');
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
  out.sort(byKey);
  return out;
}
