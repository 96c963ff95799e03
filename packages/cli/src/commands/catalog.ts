/**
 * `patchwarden catalog import-apt`: builds patch objects from Debian/Ubuntu repository indexes
 * (a machine's apt lists, or a mirror) and uploads them to the server, or writes them to a
 * catalog file that `patchwarden scan --catalog` reads.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { PatchManifest, PatchwardenError, Platform, type PatchManifest as Manifest } from '@patchwarden/core';
import type { AptImport, AptRelease } from '@patchwarden/server';
import { ApiClient, type ClientOptions } from '../client.js';
import { printJson, table } from '../output.js';

/** The catalog file: what `--out` writes and `scan --catalog` reads. */
export interface CatalogFile {
  coverage: Platform[];
  patches: Manifest[];
}

/** Every patch and platform is checked with core's schemas: a catalog file is outside input. */
export function parseCatalogFile(json: unknown, path: string): CatalogFile {
  const bad = (where: string, message: string) =>
    new PatchwardenError('E_VALIDATION', `${path} is not a catalog file: ${where}: ${message}`, {
      hint: 'a catalog file is { coverage, patches }, as `patchwarden catalog import-apt --out FILE` writes it',
    });
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw bad('(top)', 'expected an object');
  const o = json as Record<string, unknown>;
  for (const k of Object.keys(o)) if (k !== 'coverage' && k !== 'patches') throw bad(k, 'unknown field');
  if (!Array.isArray(o.coverage)) throw bad('coverage', 'expected an array of platforms');
  if (!Array.isArray(o.patches)) throw bad('patches', 'expected an array of patches');
  const coverage = o.coverage.map((c, i) => {
    const r = Platform.safeParse(c);
    if (!r.success) throw bad(`coverage.${i}.${r.error.issues[0]!.path.join('.')}`, r.error.issues[0]!.message);
    return r.data;
  });
  const patches = o.patches.map((p, i) => {
    const r = PatchManifest.safeParse(p);
    if (!r.success) throw bad(`patches.${i}.${r.error.issues[0]!.path.join('.')}`, r.error.issues[0]!.message);
    return r.data;
  });
  return { coverage, patches };
}

export async function readCatalogFile(path: string): Promise<CatalogFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new PatchwardenError('E_NOT_FOUND', `cannot read the catalog file ${path}: ${(err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new PatchwardenError('E_VALIDATION', `${path} is not JSON: ${(err as Error).message}`, { hint: 'write one with `patchwarden catalog import-apt --out FILE`' });
  }
  return parseCatalogFile(json, path);
}

export interface AptSourceFlags {
  keyring?: string[];
  arch?: string[];
  component?: string[];
  suite?: string[];
}

const collect = (v: string, prev: string[] | undefined) => [...(prev ?? []), v];

/** The feed options `catalog import-apt` and `scan` share. */
export function aptSourceOptions(cmd: Command): Command {
  return cmd
    .option('--keyring <file>', 'verify Release files with this keyring (repeatable; default: the Debian and Ubuntu archive keyrings installed)', collect)
    .option('--arch <arch>', 'only indexes of this architecture (repeatable)', collect)
    .option('--component <name>', 'only this component, e.g. main (repeatable)', collect);
}

export function importOptions(f: AptSourceFlags, onFile?: (what: string) => void) {
  return {
    ...(f.keyring ? { keyrings: f.keyring } : {}),
    ...(f.arch ? { architectures: f.arch } : {}),
    ...(f.component ? { components: f.component } : {}),
    ...(f.suite ? { suites: f.suite } : {}),
    ...(onFile ? { onFile } : {}),
  };
}

/** Problems go to stderr, so that --json output stays clean. */
export function reportProblems(r: AptImport, formatProblem: (p: AptImport['problems'][number]) => string, max = 20): void {
  for (const p of r.problems.slice(0, max)) console.error(formatProblem(p));
  if (r.problemCount > max) console.error(`… and ${r.problemCount - max} more problems (--json lists up to ${r.problems.length})`);
}

type ImportFlags = ClientOptions &
  AptSourceFlags & {
    lists?: string;
    mirror?: string;
    out?: string;
    json?: boolean;
    batchSize: string;
  };

const MAX_BATCH = 2000;

interface UploadResult {
  created: number;
  updated: number;
  unchanged: number;
}

/** One upload source per release (origin + codename): the server records where patches came from. */
function groups(r: AptImport): { releases: AptRelease[]; patches: Manifest[]; coverage: Platform[] }[] {
  const out = new Map<string, { releases: AptRelease[]; patches: Manifest[]; coverage: Platform[] }>();
  for (const rel of r.releases) {
    const k = `${rel.distribution}/${rel.release}`;
    const g = out.get(k) ?? { releases: [], patches: [], coverage: r.coverage.filter((c) => c.distribution === rel.distribution && c.release === rel.release) };
    g.releases.push(rel);
    out.set(k, g);
  }
  for (const p of r.patches) {
    const k = p.id.split('/').slice(0, 2).join('/');
    out.get(k)?.patches.push(p);
  }
  return [...out.values()].filter((g) => g.patches.length > 0);
}

async function upload(r: AptImport, f: ImportFlags, batchSize: number): Promise<UploadResult> {
  const client = ApiClient.from(f);
  const total: UploadResult = { created: 0, updated: 0, unchanged: 0 };
  const { SingleBar, Presets } = await import('cli-progress');
  const bar = !f.json && process.stderr.isTTY ? new SingleBar({ format: 'uploading {bar} {value}/{total} patches', stream: process.stderr }, Presets.shades_classic) : null;
  bar?.start(r.patches.length, 0);
  try {
    for (const g of groups(r)) {
      const rel = g.releases[0]!;
      const source = {
        kind: 'apt',
        origin: rel.origin,
        codename: rel.release,
        suites: g.releases.map((x) => x.codename ?? x.suite!),
        verified: g.releases.every((x) => x.verified),
      };
      for (let i = 0; i < g.patches.length; i += batchSize) {
        const patches = g.patches.slice(i, i + batchSize);
        const res = await client.call<UploadResult>('POST', '/api/v1/catalog/patches', { patches, coverage: g.coverage, source });
        total.created += res.created;
        total.updated += res.updated;
        total.unchanged += res.unchanged;
        bar?.increment(patches.length);
      }
    }
  } finally {
    bar?.stop();
  }
  return total;
}

function printSummary(r: AptImport, result: { upload?: UploadResult; out?: string }, formatProblem: (p: AptImport['problems'][number]) => string): void {
  console.log(
    table(r.releases, [
      { header: 'suite', get: (x) => x.codename ?? x.suite },
      { header: 'origin', get: (x) => x.origin },
      { header: 'release', get: (x) => `${x.distribution}/${x.release}` },
      { header: 'date', get: (x) => x.date?.slice(0, 10) },
      { header: 'signature', get: (x) => (x.verified ? 'verified' : 'NOT VERIFIED') },
      { header: 'indexes', get: (x) => x.indexes.map((i) => i.path).join(', ') || 'none' },
      { header: 'records', get: (x) => x.indexes.reduce((s, i) => s + i.records, 0), align: 'right' },
    ]),
  );
  console.log('');
  console.log(`${r.patches.length} patches from ${r.records} package records; covers ${r.coverage.map((c) => `${c.distribution}/${c.release} (${(c.arch ?? []).join(', ')})`).join('; ') || 'nothing'}`);
  if (result.upload) console.log(`uploaded: ${result.upload.created} created, ${result.upload.updated} updated, ${result.upload.unchanged} unchanged`);
  if (result.out) console.log(`wrote ${result.out}`);
  if (r.problemCount > 0) {
    console.log(`${r.problemCount} problems (${r.errorCount} skipped something):`);
    for (const p of r.problems.slice(0, 20)) console.log(`  ${formatProblem(p)}`);
    if (r.problemCount > 20) console.log(`  … and ${r.problemCount - 20} more (--json lists up to ${r.problems.length})`);
  }
}

/** Loads apt feeds for `catalog import-apt` and `scan`. */
export async function loadApt(source: { lists?: string; mirror?: string; suite?: string[] }, f: AptSourceFlags, onFile?: (what: string) => void): Promise<AptImport> {
  const { importAptLists, importAptMirror } = await import('@patchwarden/server');
  if (source.mirror) return importAptMirror(source.mirror, source.suite ?? [], importOptions({ ...f, suite: undefined }, onFile));
  return importAptLists(source.lists!, importOptions(f, onFile));
}

export function catalogCommand(program: Command): void {
  const catalog = program.command('catalog').description('the patch catalog: import vendor feeds');

  aptSourceOptions(
    catalog
      .command('import-apt')
      .description('build patches from Debian/Ubuntu repository indexes and upload them (or write a catalog file)')
      .option('--lists <dir>', 'an apt lists directory, e.g. /var/lib/apt/lists')
      .option('--mirror <url>', 'a mirror, e.g. https://deb.debian.org/debian (with --suite)')
      .option('--suite <suite>', 'a suite: from the mirror, or only this one of the lists (repeatable)', collect)
      .option('--out <file>', 'write the catalog to this JSON file instead of uploading')
      .option('--batch-size <n>', `patches per upload request (max ${MAX_BATCH})`, String(MAX_BATCH))
      .option('--server <url>', 'server URL (default $PATCHWARDEN_SERVER or http://127.0.0.1:8060)')
      .option('--token <token>', 'admin token (default $PATCHWARDEN_TOKEN or <data-dir>/admin-token)')
      .option('--data-dir <dir>', "the server's data directory, to find its admin-token file")
      .option('--json', 'print JSON instead of a summary'),
  )
    .addHelpText(
      'after',
      `
Examples:
  patchwarden catalog import-apt --lists /var/lib/apt/lists
  patchwarden catalog import-apt --mirror https://deb.debian.org/debian --suite bookworm --suite bookworm-updates --component main
  patchwarden catalog import-apt --mirror https://security.debian.org/debian-security --suite bookworm-security --component main
  patchwarden catalog import-apt --lists /var/lib/apt/lists --out catalog.json && patchwarden scan --catalog catalog.json

Release files are verified with gpgv; a bad signature or an index that does not match its
Release file stops the import. Records that break the package grammar are skipped and listed.`,
    )
    .action(async (f: ImportFlags) => {
      if (Boolean(f.lists) === Boolean(f.mirror)) throw new PatchwardenError('E_VALIDATION', 'give either --lists DIR or --mirror URL', { hint: 'see patchwarden catalog import-apt --help' });
      if (f.mirror && !f.suite) throw new PatchwardenError('E_VALIDATION', '--mirror needs at least one --suite', { hint: '--suite bookworm --suite bookworm-updates' });
      const batchSize = Number(f.batchSize);
      if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > MAX_BATCH) throw new PatchwardenError('E_VALIDATION', `--batch-size must be 1 to ${MAX_BATCH}`);
      const { formatProblem } = await import('@patchwarden/server');
      const quiet = f.json || !process.stderr.isTTY;
      const r = await loadApt(f, f, quiet ? undefined : (what) => process.stderr.write(`reading ${what}\n`));
      if (r.patches.length === 0) {
        reportProblems(r, formatProblem);
        throw new PatchwardenError('E_VALIDATION', 'no patches: the feeds held no usable package records', { hint: 'check the directory or the mirror and suites' });
      }
      const result: { upload?: UploadResult; out?: string } = {};
      if (f.out) {
        const body: CatalogFile = { coverage: r.coverage, patches: r.patches };
        // written next to the target and renamed, so a reader never sees half a file
        await writeFile(`${f.out}.tmp`, JSON.stringify(body));
        await rename(`${f.out}.tmp`, f.out);
        result.out = f.out;
      } else {
        result.upload = await upload(r, f, batchSize);
      }
      if (f.json) {
        printJson({ releases: r.releases, coverage: r.coverage, patches: r.patches.length, records: r.records, problemCount: r.problemCount, problems: r.problems, ...result });
      } else printSummary(r, result, formatProblem);
    });
}
