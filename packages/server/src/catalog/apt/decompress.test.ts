import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { decompress } from './decompress.js';
import { lz4Decode } from './lz4.js';
import { parseRelease, splitClearSigned } from './release.js';
import { HOST_LISTS, hostInReleases, TESTDATA } from './testing.js';
import { xxh32 } from './xxh32.js';

const sample = readFileSync(`${TESTDATA}Packages.sample`);

describe('xxh32', () => {
  it('matches the reference values', () => {
    expect(xxh32(Buffer.alloc(0))).toBe(0x02cc5d05);
    expect(xxh32(Buffer.from('a'))).toBe(0x550d7456);
    expect(xxh32(Buffer.from('Nobody inspects the spammish repetition'))).toBe(0xe2293b2f);
  });
});

describe('LZ4 frames', () => {
  it('decodes linked blocks (as apt writes them) and checksummed independent blocks', () => {
    for (const f of ['Packages.sample.lz4', 'Packages.sample.checked.lz4']) {
      const r = lz4Decode(readFileSync(`${TESTDATA}${f}`));
      expect(r.error, f).toBeUndefined();
      expect(r.data.equals(sample), f).toBe(true);
    }
  });

  it("decodes this machine's apt lists to exactly what their Release files sign", () => {
    const releases = hostInReleases();
    const lists = readdirSync(HOST_LISTS).filter((n) => n.endsWith('_Packages.lz4'));
    expect(lists.length).toBeGreaterThan(0);
    for (const name of lists) {
      const prefix = name.slice(0, name.indexOf('_dists_') + 7) + name.slice(name.indexOf('_dists_') + 7).split('_')[0];
      const release = releases.find((r) => r.endsWith(`${prefix}_InRelease`))!;
      const rel = parseRelease(splitClearSigned(readFileSync(release, 'utf8'), release).text, release);
      const path = name.slice(prefix.length + 1).replace(/_/g, '/').replace(/\.lz4$/, '');
      const r = lz4Decode(readFileSync(`${HOST_LISTS}/${name}`));
      expect(r.error, name).toBeUndefined();
      expect(createHash('sha256').update(r.data).digest('hex'), name).toBe(rel.files.get(path)!.sha256);
    }
  });

  it('keeps the bytes before a truncation and says where it stopped', () => {
    const src = readFileSync(`${TESTDATA}Packages.sample.checked.lz4`);
    for (const cut of [3, 10, 30, src.length - 9, src.length - 2]) {
      const r = lz4Decode(src.subarray(0, cut));
      expect(r.error, `cut at ${cut}`).toBeDefined();
      expect(r.error!.offset).toBeLessThanOrEqual(cut);
      expect(sample.subarray(0, r.data.length).equals(r.data)).toBe(true);
    }
  });

  it('refuses bad magic, damaged blocks and offsets that point before the data', () => {
    expect(lz4Decode(Buffer.from('not lz4 at all')).error?.message).toMatch(/bad magic/);
    const bad = Buffer.from(readFileSync(`${TESTDATA}Packages.sample.checked.lz4`));
    bad[200] = bad[200]! ^ 0x55;
    expect(lz4Decode(bad).error?.message).toMatch(/checksum/);
    // a hand-made frame: one literal 'A', then a match 1024 bytes back, before the output
    const desc = Buffer.from([0x60, 0x40]);
    const block = Buffer.from([0x10, 0x41, 0x00, 0x04]);
    const frame = Buffer.concat([
      Buffer.from([0x04, 0x22, 0x4d, 0x18]),
      desc,
      Buffer.from([(xxh32(desc) >>> 8) & 0xff]),
      Buffer.from([block.length, 0, 0, 0]),
      block,
      Buffer.alloc(4),
    ]);
    expect(lz4Decode(frame).error?.message).toMatch(/match offset 1024 points before the start/);
    // the same frame with a stored (uncompressed) block decodes
    const stored = Buffer.concat([frame.subarray(0, 7), Buffer.from([1, 0, 0, 0x80, 0x41]), Buffer.alloc(4)]);
    expect(lz4Decode(stored)).toEqual({ data: Buffer.from('A') });
  });

  it('stops at the output limit (decompression bombs)', () => {
    const r = lz4Decode(readFileSync(`${TESTDATA}Packages.sample.lz4`), 1000);
    expect(r.error?.message).toMatch(/exceed the limit of 1000 bytes/);
    expect(r.data.length).toBeLessThanOrEqual(1000);
  });
});

describe('decompress', () => {
  it('reads gzip, xz and lz4 alike', async () => {
    const xz = execFileSync('xz', ['-c'], { input: sample });
    for (const [kind, data] of [['gz', gzipSync(sample)], ['xz', xz], ['lz4', readFileSync(`${TESTDATA}Packages.sample.lz4`)], ['none', sample]] as const) {
      const r = await decompress(data, kind);
      expect(r.error, kind).toBeUndefined();
      expect(r.data.equals(sample), kind).toBe(true);
    }
  });

  it('returns what precedes damage in gzip and xz, with an error', async () => {
    const big = Buffer.concat(Array.from({ length: 400 }, () => sample));
    const gz = gzipSync(big);
    const xz = execFileSync('xz', ['-c'], { input: big });
    for (const [kind, data] of [['gz', gz], ['xz', xz]] as const) {
      const r = await decompress(data.subarray(0, Math.floor(data.length / 2)), kind);
      expect(r.error, kind).toBeDefined();
      expect(big.subarray(0, r.data.length).equals(r.data), kind).toBe(true);
    }
    const garbage = await decompress(Buffer.from('garbage, not gzip'), 'gz');
    expect(garbage.error?.message).toMatch(/gzip/);
  });
});
