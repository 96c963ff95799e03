import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { existsIn, readTextIn, readlinkIn, resolveInRoot } from './rootfs.js';

const root = mkdtempSync(path.join(os.tmpdir(), 'pw-rootfs-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
mkdirSync(path.join(root, 'etc'));
mkdirSync(path.join(root, 'usr/lib'), { recursive: true });
writeFileSync(path.join(root, 'usr/lib/os-release'), 'ID=inside\n');
symlinkSync('/usr/lib/os-release', path.join(root, 'etc/absolute'));
symlinkSync('../../../../../../usr/lib/os-release', path.join(root, 'etc/climbing'));
symlinkSync('/usr', path.join(root, 'etc/usr-dir'));
symlinkSync('loop-b', path.join(root, 'etc/loop-a'));
symlinkSync('loop-a', path.join(root, 'etc/loop-b'));
symlinkSync('/nowhere/at/all', path.join(root, 'etc/dangling'));

describe('resolveInRoot', () => {
  const inside = path.join(root, 'usr/lib/os-release');

  it('follows absolute and climbing links without leaving the root', async () => {
    expect(await resolveInRoot(root, '/etc/absolute')).toBe(inside);
    expect(await resolveInRoot(root, '/etc/climbing')).toBe(inside);
    expect(await resolveInRoot(root, '/etc/usr-dir/lib/os-release')).toBe(inside);
    expect(await resolveInRoot(root, '/../../etc/../usr/./lib/os-release')).toBe(inside);
    expect(await readTextIn(root, '/etc/climbing')).toBe('ID=inside\n');
  });

  it('leaves the last link alone when asked', async () => {
    expect(await resolveInRoot(root, '/etc/absolute', false)).toBe(path.join(root, 'etc/absolute'));
    expect(await readlinkIn(root, '/etc/dangling')).toBe('/nowhere/at/all');
  });

  it('treats missing paths as missing and refuses link loops', async () => {
    expect(await existsIn(root, '/etc/dangling')).toBe(false);
    expect(await existsIn(root, '/no/such/file')).toBe(false);
    expect(await readTextIn(root, '/etc/dangling')).toBeNull();
    await expect(resolveInRoot(root, '/etc/loop-a')).rejects.toMatchObject({ code: 'ELOOP' });
  });

  it('refuses to read what is not a regular file', async () => {
    await expect(readTextIn(root, '/etc')).rejects.toThrow(/not a regular file/);
  });

  it('reads at most the limit', async () => {
    expect(await readTextIn(root, '/usr/lib/os-release', 3)).toBe('ID=');
  });

  it('is the plain path for the host root', async () => {
    expect(await resolveInRoot('/', '/etc/../etc/os-release')).toBe('/etc/os-release');
  });
});
