/**
 * File facts for the paths the server asked for (the paths verified catalog rules name):
 * existence, size, SHA-256 and modification time, read below the device root. Nothing else
 * on the device is read.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat } from 'node:fs/promises';
import type { SystemFacts } from '@patchwarden/core';
import { isMissing, resolveInRoot } from './rootfs.js';

type FileFacts = NonNullable<SystemFacts['files']>;

async function sha256(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

export async function collectFiles(root: string, paths: readonly string[]): Promise<FileFacts> {
  const out: FileFacts = {};
  for (const p of paths) {
    try {
      const real = await resolveInRoot(root, p);
      const st = await lstat(real);
      if (!st.isFile()) {
        out[p] = { exists: false };
        continue;
      }
      out[p] = { exists: true, size: st.size, sha256: await sha256(real), mtime: st.mtime.toISOString() };
    } catch (err) {
      // unreadable is not absent: leave it out, so rules reading it stay unknown
      if (isMissing(err)) out[p] = { exists: false };
    }
  }
  return out;
}
