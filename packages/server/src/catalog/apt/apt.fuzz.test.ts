/**
 * Fuzzing the apt readers: Packages indexes (plain and LZ4, through readIndex, the path an
 * import takes), the LZ4 decoder alone, and Release/InRelease files (through loadRelease with
 * no keyring, which splits and parses without gpgv). The contracts: an index yields records and
 * problems and never throws; the LZ4 decoder returns data and an error, never throws; a
 * Release file is parsed or refused with E_VALIDATION.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { formatFuzzStats, fuzz, fuzzSettings, mutateBytes, mutateLatin1, passedShare, type FuzzRng } from '@patchwarden/core';
import { lz4Decode } from './lz4.js';
import { Problems } from './problems.js';
import { describeRelease, indexOrigin, loadRelease, readIndex } from './read.js';
import { TESTDATA } from './testing.js';

const { seed: SEED, scale } = fuzzSettings(process.env, 0xa97);
const now = () => performance.now();
const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

/** a slice of the real bookworm-security Packages index, and the repository's fixtures */
const PLAIN = [here('./testdata/Packages.slice'), `${TESTDATA}Packages.sample`, `${TESTDATA}Packages.security`].map((f) => readFileSync(f, 'latin1'));
const LZ4: Uint8Array[] = [`${TESTDATA}Packages.sample.lz4`, `${TESTDATA}Packages.sample.checked.lz4`].map((f) => new Uint8Array(readFileSync(f)));
const INDEX_DICTIONARY = ['\n', '\n\n', 'Package: ', 'Version: ', 'Architecture: amd64\n', 'Architecture: all\n', 'Source: x (1:2.0-1)\n', 'Status: install ok installed\n', 'Filename: pool/a/b.deb\n', 'Size: 12\n', ' ', ':', '(', '..', '~', '+b1'];

describe('apt Packages index under fuzzing', () => {
  it(`reads any plain index into records and problems, never throws (seed ${SEED})`, async () => {
    const stats = await fuzz({
      label: 'readIndex (plain)',
      corpus: PLAIN,
      seed: SEED,
      iterations: 4000 * scale,
      budgetMs: 1500 * scale,
      minIterations: 301,
      now,
      mutate: (s, rng, corpus) => mutateLatin1(s, rng, corpus, { dictionary: INDEX_DICTIONARY }),
      codes: [],
      run: async (text, reached) => {
        const problems = new Problems();
        const r = await readIndex(Buffer.from(text, 'latin1'), 'main/binary-amd64/Packages', 'fuzz', undefined, 'amd64', problems);
        if (!r) throw new Error('a plain index without a Release file was skipped');
        if (r.records.length > 0) reached();
      },
    });
    console.log(formatFuzzStats(stats));
    expect(stats.iterations).toBeGreaterThan(300);
    expect(passedShare(stats)).toBeGreaterThanOrEqual(50);
  });

  it(`reads any LZ4 index, keeping what decodes before damage, never throws (seed ${SEED})`, async () => {
    const stats = await fuzz({
      label: 'readIndex (lz4)',
      corpus: LZ4,
      seed: SEED,
      iterations: 3000 * scale,
      budgetMs: 1500 * scale,
      now,
      mutate: (b, rng, corpus) => mutateBytes(b, rng, corpus, { maxStack: 2, dictionary: [new Uint8Array([0x04, 0x22, 0x4d, 0x18]), new Uint8Array([0, 0, 0, 0]), new Uint8Array([0x50, 0x2a, 0x4d, 0x18])] }),
      codes: [],
      run: async (b, reached) => {
        const problems = new Problems();
        const r = await readIndex(Buffer.from(b), 'main/binary-amd64/Packages.lz4', 'fuzz', undefined, 'amd64', problems);
        if (!r) throw new Error('an lz4 index without a Release file was skipped');
        if (r.records.length > 0) reached();
      },
    });
    console.log(formatFuzzStats(stats));
    expect(passedShare(stats)).toBeGreaterThanOrEqual(5);
  });

  it(`LZ4 decoder: data plus an error for any bytes, within its limit (seed ${SEED})`, async () => {
    const limit = 1 << 20;
    const stats = await fuzz({
      label: 'lz4Decode',
      corpus: LZ4,
      seed: SEED,
      iterations: 5000 * scale,
      budgetMs: 1200 * scale,
      now,
      mutate: (b: Uint8Array, rng: FuzzRng, corpus: readonly Uint8Array[]) => mutateBytes(b, rng, corpus, { maxStack: 2 }),
      codes: [],
      run: (b, reached) => {
        const d = lz4Decode(Buffer.from(b), limit);
        if (d.data.length > limit) throw new Error(`decoded ${d.data.length} bytes past the limit`);
        if (d.error && !(d.error.offset >= 0)) throw new Error('error without an offset');
        if (d.data.length > 0) reached();
      },
    });
    console.log(formatFuzzStats(stats));
    expect(passedShare(stats)).toBeGreaterThanOrEqual(5);
  });
});

/** the real bookworm-security Release (trimmed), and the fixtures' Release and InRelease files */
const RELEASE_SLICE = readFileSync(here('./testdata/Release.slice'), 'utf8');
const INRELEASE_FIXTURE = readFileSync(`${TESTDATA}mirror/dists/bookworm-security/InRelease`, 'utf8');
const SIGNATURE = INRELEASE_FIXTURE.slice(INRELEASE_FIXTURE.indexOf('-----BEGIN PGP SIGNATURE-----'));
const RELEASES = [
  RELEASE_SLICE,
  readFileSync(`${TESTDATA}mirror/dists/bookworm/Release`, 'utf8'),
  readFileSync(`${TESTDATA}mirror/dists/bookworm-security/Release`, 'utf8'),
];
const INRELEASES = [INRELEASE_FIXTURE, `-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n${RELEASE_SLICE.replace(/^-/gm, '- -')}${SIGNATURE}`];
const RELEASE_DICTIONARY = ['\n', '\n\n', ' ', 'SHA256:\n', 'Codename: ', 'Suite: ', 'Date: ', 'Valid-Until: ', '-----BEGIN PGP SIGNATURE-----\n', '- ', 'Hash: SHA512\n', ' 0 ', '../', 'NotAutomatic: yes\n'];

describe('apt Release and InRelease files under fuzzing', () => {
  for (const [kind, corpus] of [
    ['release', RELEASES],
    ['inrelease', INRELEASES],
  ] as const) {
    it(`parses a ${kind === 'release' ? 'Release' : 'InRelease'} file or refuses it with E_VALIDATION (seed ${SEED})`, async () => {
      const stats = await fuzz({
        label: `loadRelease (${kind}, no keyring)`,
        corpus,
        seed: SEED,
        iterations: 3000 * scale,
        budgetMs: 1200 * scale,
        now,
        mutate: (s, rng, c) => mutateLatin1(s, rng, c, { dictionary: RELEASE_DICTIONARY, maxStack: 3 }),
        codes: ['E_VALIDATION'],
        run: async (text, reached) => {
          const problems = new Problems();
          const data = Buffer.from(text, 'latin1');
          const r = await loadRelease(kind === 'inrelease' ? { kind, data } : { kind, data, signature: null }, 'fuzz', [], problems, true);
          if (!r) throw new Error('no release and no error');
          reached();
          const described = describeRelease(r, 'fuzz', problems, new Date(0));
          indexOrigin(described, 'http://example.org/debian');
        },
      });
      console.log(formatFuzzStats(stats));
      expect(passedShare(stats)).toBeGreaterThanOrEqual(10);
    });
  }
});
