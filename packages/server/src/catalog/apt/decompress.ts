/**
 * Index files come plain, `.gz`, `.xz` or `.lz4`. gzip is node:zlib; LZ4 is our own decoder;
 * xz has no small pure-JS decoder, so it goes to the `xz` command (always on Debian), spawned
 * with arguments and no shell. A damaged file yields what was decoded before the damage and an
 * error: the caller keeps the complete records and reports where the rest was lost.
 */
import { spawn } from 'node:child_process';
import { createGunzip } from 'node:zlib';
import { PatchwardenError } from '@patchwarden/core';
import { lz4Decode, type Decoded } from './lz4.js';

export type Compression = 'none' | 'gz' | 'xz' | 'lz4';

/** A Packages file is about 50 MB; this leaves room and stops decompression bombs. */
export const MAX_INDEX_BYTES = 512 * 1024 * 1024;

export function compressionOf(name: string): Compression | null {
  if (name.endsWith('.gz')) return 'gz';
  if (name.endsWith('.xz')) return 'xz';
  if (name.endsWith('.lz4')) return 'lz4';
  if (/\.(bz2|lzma|zst)$/.test(name)) return null;
  return 'none';
}

/** Streamed, so that a damaged file still yields the bytes before the damage. */
function gunzip(src: Buffer, limit: number): Promise<Decoded> {
  return new Promise((resolve) => {
    const z = createGunzip();
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (error?: string) => {
      if (done) return;
      done = true;
      const data = Buffer.concat(chunks);
      resolve(error === undefined ? { data } : { data, error: { offset: z.bytesWritten, message: error } });
    };
    z.on('data', (d: Buffer) => {
      size += d.length;
      if (size > limit) {
        z.destroy();
        finish(`decompressed data exceed the limit of ${limit} bytes`);
        return;
      }
      chunks.push(d);
    });
    z.on('error', (err) => finish(`gzip: ${err.message}`));
    z.on('end', () => finish());
    z.end(src);
  });
}

function unxz(src: Buffer, limit: number): Promise<Decoded> {
  return new Promise((resolve, reject) => {
    const child = spawn('xz', ['--decompress', '--stdout', '--quiet', '--'], { stdio: ['pipe', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    let size = 0;
    let stderr = '';
    let over = false;
    child.stdout.on('data', (d: Buffer) => {
      if (over) return;
      size += d.length;
      if (size > limit) {
        over = true;
        child.kill('SIGKILL');
        return;
      }
      chunks.push(d);
    });
    child.stderr.on('data', (d: Buffer) => {
      if (stderr.length < 4096) stderr += d.toString();
    });
    // xz exits early on damaged input; the pipe error that follows is expected
    child.stdin.on('error', () => {});
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') {
        reject(new PatchwardenError('E_VALIDATION', 'the xz command is needed to read .xz indexes and was not found', { hint: 'install it: apt-get install xz-utils' }));
      } else reject(err);
    });
    child.on('close', (code) => {
      const data = Buffer.concat(chunks);
      if (over) resolve({ data, error: { offset: 0, message: `decompressed data exceed the limit of ${limit} bytes` } });
      else if (code !== 0) resolve({ data, error: { offset: src.length, message: `xz: ${stderr.trim().replace(/^xz: /, '') || `exit status ${code}`}` } });
      else resolve({ data });
    });
    child.stdin.end(src);
  });
}

export async function decompress(src: Buffer, kind: Compression, limit = MAX_INDEX_BYTES): Promise<Decoded> {
  switch (kind) {
    case 'none':
      return src.length > limit ? { data: src.subarray(0, limit), error: { offset: limit, message: `the file exceeds the limit of ${limit} bytes` } } : { data: src };
    case 'gz':
      return gunzip(src, limit);
    case 'lz4':
      return lz4Decode(src, limit);
    case 'xz':
      return unxz(src, limit);
  }
}
