/**
 * Fuzzing the export file reader (`catalog import`: ExportFile.open indexes the tar and reads
 * its index and coverage; get() and rootBySha256() read entries). Half the mutations aim at the
 * tar headers and then make every checksum valid again, so they reach the fields behind it.
 * The contract: open returns or throws E_BUNDLE_INVALID; reads of an opened file never throw.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Header } from 'tar';
import { afterAll, describe, expect, it } from 'vitest';
import { canonicalJson, formatFuzzStats, fuzz, fuzzSettings, mutateBytes, passedShare, sha256Hex, type FuzzRng } from '@patchwarden/core';
import { ExportFile } from './export-file.js';

const { seed: SEED, scale } = fuzzSettings(process.env, 0xe4907);
const dir = mkdtempSync(join(tmpdir(), 'pw-export-fuzz-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function entry(path: string, data: Uint8Array): Buffer[] {
  const h = Buffer.alloc(512);
  new Header({ path, mode: 0o644, uid: 0, gid: 0, size: data.length, mtime: new Date(0), type: 'File', uname: '', gname: '' }).encode(h, 0);
  return [h, Buffer.from(data), Buffer.alloc((512 - (data.length % 512)) % 512)];
}

const root = canonicalJson({ signed: { _type: 'root', version: 1, expires: '2030-01-01T00:00:00Z', keys: {}, roles: {} }, signatures: [] });
const target = canonicalJson({ id: 'debian/bookworm/openssl-3.0.15-1~deb12u1', revision: 1 });
const index = {
  format: 'patchwarden-catalog-export',
  formatVersion: 1,
  createdAt: '2026-01-01T00:00:00.000Z',
  expires: '2026-02-15T00:00:00.000Z',
  root: { version: 1, sha256: sha256Hex(root) },
  timestamp: 3,
  snapshot: 3,
  roles: 4,
  targets: 1,
  payloads: 0,
};
const build = (withTarget: boolean) =>
  new Uint8Array(
    Buffer.concat([
      ...entry('patchwarden-export.json', canonicalJson(index)),
      ...entry('coverage.json', canonicalJson({ coverage: [{ family: 'linux', distribution: 'debian', release: 'bookworm' }] })),
      ...entry('metadata/1.root.json', root),
      ...entry('metadata/timestamp.json', canonicalJson({ signed: { _type: 'timestamp', version: 3 }, signatures: [] })),
      ...entry('metadata/3.snapshot.json', canonicalJson({ signed: { _type: 'snapshot', version: 3 }, signatures: [] })),
      ...(withTarget ? entry(`targets/${sha256Hex(target)}`, target) : []),
      Buffer.alloc(1024),
    ]),
  );
const CORPUS = [build(true), build(false)];

function fixTarChecksums(b: Uint8Array): Uint8Array {
  const out = b.slice();
  for (let off = 0; off + 512 <= out.length; off += 512) {
    if (String.fromCharCode(...out.subarray(off + 257, off + 262)) !== 'ustar') continue;
    out.fill(0x20, off + 148, off + 156);
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += out[off + i]!;
    const text = `${sum.toString(8).padStart(6, '0')}\0 `;
    for (let i = 0; i < 8; i++) out[off + 148 + i] = text.charCodeAt(i);
  }
  return out;
}

function mutate(b: Uint8Array, rng: FuzzRng, corpus: readonly Uint8Array[]): Uint8Array {
  let out: Uint8Array;
  if (rng.chance(0.5)) {
    out = b.slice();
    const headers: number[] = [];
    for (let off = 0; off + 512 <= out.length; off += 512) if (String.fromCharCode(...out.subarray(off + 257, off + 262)) === 'ustar') headers.push(off);
    const h = headers.length ? rng.pick(headers) : 0;
    const [start, len] = rng.pick([
      [0, 100],
      [124, 12],
      [156, 1],
      [345, 155],
    ] as const);
    const at = h + start + rng.int(len);
    const choices = [0x00, 0x80, 0xff, 0x2e, 0x2f, 0x30, 0x37, 0x20, 0x31, 0x4c, 0x78, rng.int(256)];
    if (at < out.length) out[at] = rng.pick(choices);
  } else out = mutateBytes(b, rng, corpus, { maxStack: 2, maxLength: 1 << 20, dictionary: ['{', '"', 'null', '[]', '"coverage"', '"formatVersion":2'] });
  return rng.chance(0.7) ? fixTarChecksums(out) : out;
}

describe('export files under fuzzing', () => {
  it(`ExportFile.open returns or throws E_BUNDLE_INVALID, and an opened file reads (seed ${SEED})`, async () => {
    const file = join(dir, 'catalog.tar');
    const stats = await fuzz({
      label: 'ExportFile.open',
      corpus: CORPUS,
      seed: SEED,
      iterations: 1500 * scale,
      budgetMs: 1500 * scale,
      now: () => performance.now(),
      mutate,
      codes: ['E_BUNDLE_INVALID'],
      run: async (b, reached) => {
        writeFileSync(file, b);
        const f = await ExportFile.open(file);
        reached();
        try {
          await f.get('metadata/timestamp.json', 1 << 20);
          await f.get(`targets/debian/${sha256Hex(target)}.openssl.json`, 1 << 20);
          await f.rootBySha256(index.root.sha256);
          await f.coverage();
        } finally {
          await f.close();
        }
      },
    });
    console.log(formatFuzzStats(stats));
    expect(passedShare(stats)).toBeGreaterThanOrEqual(10);
  });

  it('refuses a header whose base-256 size is beyond 2^53 with E_BUNDLE_INVALID (found by fuzzing)', async () => {
    const b = CORPUS[1]!.slice();
    b.set([0x80, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], 124);
    const file = join(dir, 'huge.tar');
    writeFileSync(file, fixTarChecksums(b));
    await expect(ExportFile.open(file)).rejects.toMatchObject({ code: 'E_BUNDLE_INVALID', message: expect.stringMatching(/cannot be read/) });
  });
});
