import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { collectFiles } from './files.js';

describe('file facts', () => {
  it('reports existence, size, sha256 and mtime of the asked paths, below the root only', async () => {
    const root = mkdtempSync(join(tmpdir(), 'pw-files-'));
    mkdirSync(join(root, 'etc/app'), { recursive: true });
    writeFileSync(join(root, 'etc/app/app.conf'), 'key=value\n');
    mkdirSync(join(root, 'etc/dir'));
    // a link that points outside the root resolves inside it, as in a chroot
    symlinkSync('/etc/hostname', join(root, 'etc/escape'));
    const f = await collectFiles(root, ['/etc/app/app.conf', '/etc/missing', '/etc/dir', '/etc/escape']);
    expect(f['/etc/app/app.conf']).toMatchObject({
      exists: true,
      size: 10,
      sha256: createHash('sha256').update('key=value\n').digest('hex'),
    });
    expect(Date.parse(f['/etc/app/app.conf']!.mtime!)).toBeGreaterThan(0);
    expect(f['/etc/missing']).toEqual({ exists: false });
    expect(f['/etc/dir']).toEqual({ exists: false });
    expect(f['/etc/escape']).toEqual({ exists: false });
  });
});
