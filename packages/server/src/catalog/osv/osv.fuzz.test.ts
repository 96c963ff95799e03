/**
 * Fuzzing the JSON feed importers through their real entry points (a file each iteration):
 * OSV records (importOsv) and the Debian security tracker (importDebianTracker). Contracts:
 * importOsv reports every bad file or record as a problem and never throws; the tracker import
 * refuses a document it cannot read with E_FEED_INVALID and reports the rest as problems; every
 * patch either produces is a valid manifest.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { formatFuzzStats, fuzz, fuzzSettings, mutateJsonText, PatchManifest, passedShare } from '@patchwarden/core';
import { importDebianTracker } from '../debian-tracker/index.js';
import { importOsv } from './index.js';

const { seed: SEED, scale } = fuzzSettings(process.env, 0x05f);
const now = () => performance.now();
const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'pw-feed-fuzz-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const DEBIAN = here('./testdata/debian/');
const GO = here('./testdata/go-vulndb/');
const OSV_CORPUS = [
  ...readdirSync(DEBIAN)
    .sort()
    .map((n) => readFileSync(`${DEBIAN}${n}`, 'utf8')),
  readFileSync(`${GO}golang.org/x/text.json`, 'utf8'),
  readFileSync(`${GO}ID/GO-2022-0569.json`, 'utf8'),
];
const TRACKER_CORPUS = ['tracker.json', 'tracker-malformed.json'].map((n) => readFileSync(here(`../debian-tracker/testdata/${n}`), 'utf8'));

function checkPatches(patches: readonly unknown[]) {
  for (const p of patches) {
    const r = PatchManifest.safeParse(p);
    if (!r.success) throw new Error(`an imported patch is not a valid manifest: ${r.error.issues[0]!.message}`);
  }
}

describe('OSV and Debian tracker feeds under fuzzing', () => {
  it(`importOsv reports bad files and records as problems and never throws (seed ${SEED})`, async () => {
    const file = join(dir, 'record.json');
    const stats = await fuzz({
      label: 'importOsv',
      corpus: OSV_CORPUS,
      seed: SEED,
      iterations: 1500 * scale,
      budgetMs: 1500 * scale,
      now,
      mutate: (s, rng, corpus) => mutateJsonText(s, rng, corpus, { structural: 0.75 }),
      codes: [],
      run: async (text, reached) => {
        writeFileSync(file, text);
        const r = await importOsv([file]);
        if (r.records > 0) reached();
        checkPatches(r.patches);
      },
    });
    console.log(formatFuzzStats(stats));
    expect(passedShare(stats)).toBeGreaterThanOrEqual(20);
  });

  it(`importDebianTracker imports or refuses with E_FEED_INVALID (seed ${SEED})`, async () => {
    const file = join(dir, 'tracker.json');
    const stats = await fuzz({
      label: 'importDebianTracker',
      corpus: TRACKER_CORPUS,
      seed: SEED,
      iterations: 1500 * scale,
      budgetMs: 1500 * scale,
      now,
      mutate: (s, rng, corpus) => mutateJsonText(s, rng, corpus, { structural: 0.75 }),
      codes: ['E_FEED_INVALID'],
      run: async (text, reached) => {
        writeFileSync(file, text);
        const r = await importDebianTracker(file);
        if (r.records > 0) reached();
        checkPatches(r.patches);
      },
    });
    console.log(formatFuzzStats(stats));
    expect(passedShare(stats)).toBeGreaterThanOrEqual(20);
  });
});
