/**
 * The parser against dpkg itself on this machine's real status file (copied first: the host's
 * database may change while the tests run), and against damaged copies of it.
 */
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PackageFact, packageLine } from '@patchwarden/core';
import type { PackageFact as PackageFactT } from '@patchwarden/core';
import { MAX_PROBLEMS, parseDpkgStatus } from './parse.js';
import { dpkgQuery, makeAdmindir } from './dpkg-query.testutil.js';

/** Recorded so that a failing cut can be replayed: PW_FUZZ_SEED=<seed> npx vitest run … */
const SEED = Number(process.env.PW_FUZZ_SEED ?? 0x5eed2024);

/** mulberry32: small, seedable, good enough to pick offsets. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

let admindir: string;
let bytes: Buffer;
let text: string;
let full: ReturnType<typeof parseDpkgStatus>;

beforeAll(() => {
  admindir = makeAdmindir({ file: '/var/lib/dpkg/status' });
  bytes = readFileSync(path.join(admindir, 'status'));
  text = bytes.toString('utf8');
  full = parseDpkgStatus(text);
});
afterAll(() => rmSync(admindir, { recursive: true, force: true }));

describe('parseDpkgStatus on the host status file', () => {
  it('gives exactly the set dpkg-query gives', () => {
    const expected = dpkgQuery(admindir);
    expect(expected.length).toBeGreaterThan(0);
    expect(full.problems).toEqual([]);
    expect(full.packages.map(packageLine).sort()).toEqual(expected.map(packageLine).sort());
  });

  it('finds packages built from a differently named source', () => {
    const withSource = full.packages.filter((p) => p.source !== undefined && p.source !== p.name);
    expect(withSource.length).toBeGreaterThan(0);
  });
});

describe('parseDpkgStatus on damaged copies of the host status file', () => {
  it(`never throws on a file cut at a random byte offset (seed ${SEED})`, () => {
    const next = rng(SEED);
    let cutParagraphsKept = 0;
    for (let n = 0; n < 150; n++) {
      const cut = Math.floor(next() * bytes.length);
      const where = `seed ${SEED}, cut ${n} at byte ${cut}`;
      // a cut may split a UTF-8 sequence: that is part of the test
      const partial = bytes.subarray(0, cut).toString('utf8');
      const r = parseDpkgStatus(partial);
      const kept = r.packages;
      const complete = partial.split('\n\n').length - 1;
      expect(kept.length, where).toBeGreaterThanOrEqual(complete);
      if (kept.length > complete) cutParagraphsKept++;
      // every complete paragraph gives the package the full parse gave
      expect(kept.slice(0, -1), where).toEqual(full.packages.slice(0, Math.max(0, kept.length - 1)));
      const last = kept.at(-1);
      if (last && !isDeepEqual(last, full.packages[kept.length - 1])) {
        // …and only the cut paragraph may differ, with fields that are still valid
        const finalPara = partial.slice(partial.lastIndexOf('\n\n') + 2);
        expect(PackageFact.safeParse(last).success, where).toBe(true);
        expect(finalPara, where).toContain(`Package: ${last.name}\n`);
      }
      expect(r.problems.length, where).toBeLessThanOrEqual(1);
    }
    // the cuts must also land after the fields we read, or the check above proves little
    expect(cutParagraphsKept).toBeGreaterThan(0);
  });

  it(`never throws on binary garbage (seed ${SEED})`, () => {
    const next = rng(SEED);
    const garbage = Buffer.from(Array.from({ length: 1 << 20 }, () => Math.floor(next() * 256)));
    const inputs = [
      garbage.toString('utf8'),
      garbage.toString('latin1'),
      // valid paragraphs with garbage spliced in
      text.slice(0, 100_000) + garbage.subarray(0, 5000).toString('latin1') + text.slice(100_000, 200_000),
      garbage.toString('utf16le'),
      '\0'.repeat(1 << 20),
    ];
    for (const input of inputs) {
      const r = parseDpkgStatus(input);
      for (const p of r.packages) expect(PackageFact.safeParse(p).success).toBe(true);
      expect(r.problems.length).toBeLessThanOrEqual(MAX_PROBLEMS);
      expect(r.skipped).toBeGreaterThanOrEqual(r.problems.length);
    }
  });
});

function isDeepEqual(a: PackageFactT, b: PackageFactT | undefined): boolean {
  return b !== undefined && packageLine(a) === packageLine(b);
}
