/**
 * Fuzzing the dpkg status parser: a damaged or hostile status file yields packages and
 * problems, never an exception (the contract: parseDpkgStatus does not throw), and every package
 * it returns is a valid PackageFact.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { formatFuzzStats, fuzz, fuzzSettings, mutateText, PackageFact, passedShare } from '@patchwarden/core';
import { MAX_PROBLEMS, parseDpkgStatus } from './parse.js';

const { seed: SEED, scale } = fuzzSettings(process.env, 0xd9c6);

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const FIXTURES = here('../../../testdata/dpkg/');
/** a slice of a real /var/lib/dpkg/status (Debian 12), see testdata/ */
const CORPUS = [
  readFileSync(here('./testdata/status.slice'), 'utf8'),
  ...readdirSync(FIXTURES)
    .filter((n) => n.endsWith('.status'))
    .sort()
    .map((n) => readFileSync(`${FIXTURES}${n}`, 'utf8')),
];
const DICTIONARY = ['\n', '\n\n', 'Status: install ok installed\n', 'Status: hold ok installed\n', 'Status: deinstall ok config-files\n', 'Package: ', 'Version: ', 'Source: x (1.0)\n', 'Architecture: amd64\n', ' ', ':', '('];

describe('dpkg status parser under fuzzing', () => {
  it(`returns packages and problems for any text, never throws (seed ${SEED})`, async () => {
    const stats = await fuzz({
      label: 'parseDpkgStatus',
      corpus: CORPUS,
      seed: SEED,
      iterations: 4000 * scale,
      budgetMs: 1500 * scale,
      minIterations: 301,
      now: () => performance.now(),
      mutate: (s, rng, corpus) => mutateText(s, rng, corpus, { dictionary: DICTIONARY }),
      codes: [],
      run: (text, reached) => {
        const r = parseDpkgStatus(text);
        if (r.problems.length > MAX_PROBLEMS || r.skipped < r.problems.length) throw new Error('problem bookkeeping broken');
        for (const p of r.packages) PackageFact.parse(p);
        if (r.packages.length > 0) reached();
      },
    });
    console.log(formatFuzzStats(stats));
    expect(stats.iterations).toBeGreaterThan(300);
    expect(passedShare(stats)).toBeGreaterThanOrEqual(50);
  });
});
