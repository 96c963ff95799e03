/** Fuzzing the deb822 scanner: whatever the text, it visits paragraphs and never throws. */
import { describe, expect, it } from 'vitest';
import { scanParagraphs } from './deb822.js';
import { formatFuzzStats, fuzz, fuzzSettings, mutateLatin1, passedShare } from './testing/fuzz.js';

const { seed: SEED, scale } = fuzzSettings(process.env, 0x0de8822);

const CORPUS = [
  'Package: a\nDescription: x\n more\n .\nVersion:  1.0 \n\n  \nPackage: b\r\nVersion: 2\r\n',
  '\ufeffPackage: libc6\nStatus: install ok installed\nArchitecture: amd64\nSource: glibc (2.36-9)\nVersion: 2.36-9+deb12u10\nDepends: libgcc-s1\n\n',
  'Package: foo\nVersion: 1.2-3+b1\nSource: foo (1.2-3)\nFilename: pool/main/f/foo/foo_1.2-3+b1_amd64.deb\nSize: 1234\nSHA256: 5b72d419dc0fdaaf3765268e9b5edba6f545cd63f926d3c4d807fc3e33b86cdd\n\nPackage: bar\nVersion: 2\n',
];
const DICTIONARY = ['\n', '\n\n', '\r\n', ' ', '\t', ':', 'Package:', 'Version:', 'package: x\n', ' continued\n', '\ufeff', '\u00ff'];
const FIELDS = ['Package', 'Version', 'Source'];

describe('deb822 scanner under fuzzing', () => {
  it(`never throws, keeps its paragraphs in order and its values within bounds (seed ${SEED})`, async () => {
    const stats = await fuzz({
      label: 'deb822 scanParagraphs',
      corpus: CORPUS,
      seed: SEED,
      iterations: 6000 * scale,
      budgetMs: 1500 * scale,
      minIterations: 501,
      now: () => performance.now(),
      mutate: (s, rng, corpus) => mutateLatin1(s, rng, corpus, { dictionary: DICTIONARY }),
      codes: [],
      run: (text, reached) => {
        let last = 0;
        scanParagraphs(
          text,
          FIELDS,
          (p) => {
            if (!(p.line > last)) throw new Error(`paragraph at line ${p.line} after ${last}`);
            last = p.line;
            for (const v of p.values) if (v !== undefined && (typeof v !== 'string' || v.length > 64)) throw new Error('value beyond maxValue');
            if (p.issue === null && p.values[0] !== undefined) reached();
          },
          { maxValue: 64 },
        );
      },
    });
    console.log(formatFuzzStats(stats));
    expect(stats.iterations).toBeGreaterThan(500);
    expect(passedShare(stats)).toBeGreaterThanOrEqual(30);
  });
});
