import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { downloadToFile } from './transport.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('downloadToFile: resumable, length and hash checked', () => {
  const body = Buffer.from(Array.from({ length: 300_000 }, (_, i) => i % 251));
  let server: http.Server;
  let url: string;
  let dir: string;
  /** what the next request gets: the whole file cut after N bytes, or served properly (with Range) */
  let mode: { cutAt?: number; ignoreRange?: boolean; serve?: Buffer } = {};
  const ranges: (string | undefined)[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pw-dl-'));
    server = http.createServer((req, res) => {
      ranges.push(req.headers.range);
      const data = mode.serve ?? body;
      const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
      if (m && !mode.ignoreRange) {
        const from = Number(m[1]);
        res.writeHead(206, { 'content-length': data.length - from, 'content-range': `bytes ${from}-${data.length - 1}/${data.length}` });
        res.end(data.subarray(from));
        return;
      }
      res.writeHead(200, { 'content-length': data.length });
      if (mode.cutAt !== undefined) {
        res.write(data.subarray(0, mode.cutAt), () => res.destroy());
        return;
      }
      res.end(data);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(async () => {
    await new Promise<void>((r) => server.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('resumes a download cut off mid-way with a Range request, and checks the whole file', async () => {
    const dest = join(dir, 'a.deb');
    mode = { cutAt: 120_000 };
    await expect(downloadToFile(url, '/f', dest, { size: body.length, sha256: sha(body) })).rejects.toMatchObject({ code: 'E_SERVER_UNREACHABLE' });
    expect(existsSync(dest)).toBe(false);
    const partial = readFileSync(`${dest}.part`).length;
    expect(partial).toBeGreaterThan(0);
    expect(partial).toBeLessThan(body.length);
    mode = {};
    ranges.length = 0;
    const r = await downloadToFile(url, '/f', dest, { size: body.length, sha256: sha(body) });
    expect(r.resumedFrom).toBe(partial);
    expect(ranges).toEqual([`bytes=${partial}-`]);
    expect(readFileSync(dest).equals(body)).toBe(true);
    expect(existsSync(`${dest}.part`)).toBe(false);
  });

  it('starts over when the server ignores the range', async () => {
    const dest = join(dir, 'b.deb');
    writeFileSync(`${dest}.part`, body.subarray(0, 1000));
    mode = { ignoreRange: true };
    await downloadToFile(url, '/f', dest, { size: body.length, sha256: sha(body) });
    expect(readFileSync(dest).equals(body)).toBe(true);
  });

  it('refuses a file whose bytes differ from the signed hash, or that is longer than stated, keeping nothing', async () => {
    const dest = join(dir, 'c.deb');
    const evil = Buffer.from(body);
    evil[5000] = evil[5000]! ^ 0xff;
    mode = { serve: evil };
    await expect(downloadToFile(url, '/f', dest, { size: body.length, sha256: sha(body) })).rejects.toMatchObject({ code: 'E_DIGEST_MISMATCH' });
    expect(existsSync(dest) || existsSync(`${dest}.part`)).toBe(false);
    mode = { serve: Buffer.concat([body, Buffer.alloc(10)]) };
    await expect(downloadToFile(url, '/f', join(dir, 'd.deb'), { size: body.length, sha256: sha(body) })).rejects.toMatchObject({ code: 'E_DIGEST_MISMATCH' });
    expect(existsSync(join(dir, 'd.deb'))).toBe(false);
  });
});
