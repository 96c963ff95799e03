import { describe, expect, it } from 'vitest';
import { applyDelta, diffInventories, inventoryHash, rawInventoryHash, sortInventory } from './inventory.js';
import type { PackageFact } from './facts.js';

const p = (name: string, version: string, arch = 'amd64'): PackageFact => ({ manager: 'dpkg', name, version, arch, state: 'installed' });

describe('inventories', () => {
  it('hashes the same packages the same whatever their order', () => {
    const a = [p('b', '1'), p('a', '2'), p('a', '2', 'i386')];
    const b = [p('a', '2', 'i386'), p('b', '1'), p('a', '2')];
    sortInventory(a);
    sortInventory(b);
    expect(inventoryHash(a)).toBe(inventoryHash(b));
    expect(inventoryHash(a)).not.toBe(inventoryHash([p('a', '2'), p('b', '1')]));
    expect(inventoryHash([{ ...p('a', '1'), source: 'x' }])).not.toBe(inventoryHash([p('a', '1')]));
  });

  it('finds duplicated keys', () => {
    expect(sortInventory([p('a', '1'), p('a', '2')])).toBe('dpkg\ta\tamd64');
    expect(sortInventory([p('a', '1'), p('a', '1', 'i386')])).toBeNull();
  });

  it('turns one inventory into another with a delta', () => {
    const before = [p('a', '1'), p('b', '1'), p('c', '1')];
    const after = [p('a', '1'), p('b', '2'), p('d', '1')];
    const d = diffInventories(before, after);
    expect(d).toEqual({ add: [p('b', '2'), p('d', '1')], remove: [{ manager: 'dpkg', name: 'c', arch: 'amd64' }] });
    const rebuilt = applyDelta(before, d);
    sortInventory(after);
    expect(inventoryHash(rebuilt)).toBe(inventoryHash(after));
  });

  it('hashes raw JSON items like checked ones, and declines anything unusual', () => {
    const pk = [p('b', '1'), { ...p('a', '2'), source: 'src', sourceVersion: '2+b1' }];
    sortInventory(pk);
    const raw = JSON.parse(JSON.stringify(pk)) as unknown[];
    expect(rawInventoryHash(raw)).toBe(inventoryHash(pk));
    expect(rawInventoryHash([raw[1], raw[0]])).toBeNull(); // not sorted
    expect(rawInventoryHash([raw[0], raw[0]])).toBeNull(); // duplicate
    expect(rawInventoryHash([{ ...(raw[0] as object), extra: 'x' }])).toBeNull();
    expect(rawInventoryHash([{ ...(raw[0] as object), source: '' }])).toBeNull();
    expect(rawInventoryHash([{ ...(raw[0] as object), version: 1 }])).toBeNull();
    expect(rawInventoryHash([{ name: 'a', version: '1', arch: 'all', state: 'installed' }])).toBeNull();
    expect(rawInventoryHash(['a', null, []])).toBeNull();
  });
});
