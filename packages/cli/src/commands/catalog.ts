/**
 * `patchwarden catalog import-apt`: builds patch objects from Debian/Ubuntu repository indexes
 * (a machine's apt lists, or a mirror) and uploads them to the server, or writes them to a
 * catalog file that `patchwarden scan --catalog` reads. `import-osv` and
 * `import-debian-tracker` do the same from advisory feeds (OSV records, the Debian security
 * tracker's JSON), whose patches carry the CVEs and advisory ids they close.
 */
import { createReadStream, createWriteStream, existsSync, readFileSync, statSync } from 'node:fs';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import type { Command } from 'commander';
import { ADMIN_TOKEN_FILE, DEFAULT_DATA_DIR, errorFromBody, type ErrorCode, PatchManifest, PatchwardenError, Platform, type PatchManifest as Manifest } from '@patchwarden/core';
import type { AptImport, AptRelease, FeedImport, FeedProblem } from '@patchwarden/server';
import { ApiClient, cliFetch, withClient, type ClientOptions } from '../client.js';
import { printJson, table } from '../output.js';

/** The catalog file: what `--out` writes and `scan --catalog` reads. */
export interface CatalogFile {
  coverage: Platform[];
  patches: Manifest[];
}

/** Writes a catalog file next to its target and renames it, so a reader never sees half a file. */
async function writeCatalogFile(out: string, coverage: Platform[], patches: Manifest[]): Promise<string> {
  const body: CatalogFile = { coverage, patches };
  await writeFile(`${out}.tmp`, JSON.stringify(body));
  await rename(`${out}.tmp`, out);
  return out;
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

/**
 * Uploads groups of patches (one source and coverage each) in batches, with a progress bar:
 * the server records where each group came from.
 */
async function uploadGroups(
  f: ClientOptions & { json?: boolean },
  total: number,
  groups: { patches: Manifest[]; coverage: Platform[]; source: Record<string, unknown> }[],
  batchSize: number,
): Promise<UploadResult> {
  const client = ApiClient.from(f);
  const sum: UploadResult = { created: 0, updated: 0, unchanged: 0 };
  const { SingleBar, Presets } = await import('cli-progress');
  const bar = !f.json && process.stderr.isTTY ? new SingleBar({ format: 'uploading {bar} {value}/{total} patches', stream: process.stderr }, Presets.shades_classic) : null;
  bar?.start(total, 0);
  try {
    for (const g of groups) {
      for (let i = 0; i < g.patches.length; i += batchSize) {
        const patches = g.patches.slice(i, i + batchSize);
        const res = await client.call<UploadResult>('POST', '/api/v1/catalog/patches', { patches, coverage: g.coverage, source: g.source });
        sum.created += res.created;
        sum.updated += res.updated;
        sum.unchanged += res.unchanged;
        bar?.increment(patches.length);
      }
    }
  } finally {
    bar?.stop();
  }
  return sum;
}

async function upload(r: AptImport, f: ImportFlags, batchSize: number): Promise<UploadResult> {
  return uploadGroups(
    f,
    r.patches.length,
    groups(r).map((g) => {
      const rel = g.releases[0]!;
      return {
        patches: g.patches,
        coverage: g.coverage,
        source: {
          kind: 'apt',
          origin: rel.origin,
          codename: rel.release,
          suites: g.releases.map((x) => x.codename ?? x.suite!),
          verified: g.releases.every((x) => x.verified),
        },
      };
    }),
    batchSize,
  );
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

/** Problems of a feed import on stderr, so that --json output stays clean. */
export function reportFeedProblems(r: FeedImport, formatFeedProblem: (p: FeedProblem) => string, max = 20): void {
  for (const p of r.problems.slice(0, max)) console.error(formatFeedProblem(p));
  if (r.problemCount > max) console.error(`… and ${r.problemCount - max} more problems (--json lists up to ${r.problems.length})`);
}

/** Only the patches, open vulnerabilities and coverage of these releases (codenames). */
export function onlyReleases(r: FeedImport, releases: string[] | undefined): FeedImport {
  if (!releases) return r;
  const keep = (release: string | undefined) => release !== undefined && releases.includes(release);
  return {
    ...r,
    releases: r.releases.filter((x) => keep(x.release)),
    coverage: r.coverage.filter((c) => keep(c.release)),
    patches: r.patches.filter((p) => p.platforms.some((pl) => keep(pl.release))),
    open: r.open.filter((o) => keep(o.release)),
  };
}

/** Loads OSV folders/files or the tracker's JSON, for `catalog import-*` and `scan`. */
export async function loadFeed(kind: 'osv' | 'debian-tracker', paths: string[], releases?: string[], onFile?: (what: string) => void): Promise<FeedImport> {
  const server = await import('@patchwarden/server');
  if (kind === 'osv') return onlyReleases(await server.importOsv(paths, onFile ? { onFile } : {}), releases);
  if (paths.length !== 1) throw new PatchwardenError('E_VALIDATION', 'give one tracker file or URL', { hint: server.TRACKER_URL });
  return server.importDebianTracker(paths[0]!, { ...(releases ? { releases } : {}), ...(onFile ? { onFile } : {}) });
}

type FeedFlags = ClientOptions & { out?: string; json?: boolean; batchSize: string; release?: string[] };

/** One upload per release: the server records which feed and release the patches came from. */
async function uploadFeed(r: FeedImport, f: FeedFlags, batchSize: number): Promise<UploadResult> {
  const groups = r.releases.map((rel) => {
    const ofRelease = (pl: Platform) => pl.distribution === rel.distribution && pl.release === rel.release;
    return {
      patches: r.patches.filter((p) => p.platforms.some(ofRelease)),
      coverage: r.coverage.filter(ofRelease),
      source: { kind: r.kind, release: `${rel.distribution}/${rel.release}`, inputs: r.inputs.map((i) => i.location) },
    };
  });
  return uploadGroups(f, r.patches.length, groups.filter((g) => g.patches.length > 0), batchSize);
}

function printFeedSummary(r: FeedImport, result: { upload?: UploadResult; out?: string }, formatFeedProblem: (p: FeedProblem) => string): void {
  if (r.releases.length) {
    console.log(
      table(r.releases, [
        { header: 'release', get: (x) => `${x.distribution}/${x.release}` },
        { header: 'patches', get: (x) => x.patches, align: 'right' },
        { header: 'CVEs fixed', get: (x) => x.cves, align: 'right' },
        { header: 'open (no fix)', get: (x) => x.open, align: 'right' },
        { header: 'not affected', get: (x) => x.notAffected, align: 'right' },
      ]),
    );
    console.log('');
  }
  const files = r.inputs.reduce((n, i) => n + i.files, 0);
  console.log(`${r.patches.length} patches from ${r.records} ${r.kind === 'osv' ? `records in ${files} files` : 'entries'}; covers ${r.coverage.map((c) => `${c.distribution}/${c.release}`).join(', ') || 'nothing'}`);
  const skipped = Object.entries(r.unhandled);
  if (skipped.length) console.log(`not handled, counted and skipped: ${skipped.map(([e, n]) => `${n} ${e}`).join(', ')}`);
  if (r.withdrawn) console.log(`${r.withdrawn} withdrawn records not imported`);
  if (r.open.length) console.log(`${r.open.length} vulnerabilities without a fix are no patches: \`patchwarden scan --${r.kind} …\` lists those of a machine`);
  if (result.upload) console.log(`uploaded: ${result.upload.created} created, ${result.upload.updated} updated, ${result.upload.unchanged} unchanged`);
  if (result.out) console.log(`wrote ${result.out}`);
  if (r.problemCount > 0) {
    console.log(`${r.problemCount} problems (${r.errorCount} skipped something):`);
    for (const p of r.problems.slice(0, 20)) console.log(`  ${formatFeedProblem(p)}`);
    if (r.problemCount > 20) console.log(`  … and ${r.problemCount - 20} more (--json lists up to ${r.problems.length})`);
  }
}

/** The shared body of `import-osv` and `import-debian-tracker`. */
async function importFeed(kind: 'osv' | 'debian-tracker', paths: string[], f: FeedFlags): Promise<void> {
  const batchSize = Number(f.batchSize);
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > MAX_BATCH) throw new PatchwardenError('E_VALIDATION', `--batch-size must be 1 to ${MAX_BATCH}`);
  const { formatFeedProblem } = await import('@patchwarden/server');
  const quiet = f.json || !process.stderr.isTTY;
  let n = 0;
  // a folder holds tens of thousands of records: say how far it got, not every file
  const r = await loadFeed(kind, paths, f.release, quiet ? undefined : (what) => ++n % 1000 === 1 && process.stderr.write(`reading ${what}\n`));
  if (r.patches.length === 0) {
    reportFeedProblems(r, formatFeedProblem);
    const skipped = Object.entries(r.unhandled).map(([e, c]) => `${c} ${e}`).join(', ');
    throw new PatchwardenError('E_VALIDATION', `no patches: ${r.records} records read, none with a fixed Debian version${skipped ? ` (not handled: ${skipped})` : ''}${r.open.length ? `; ${r.open.length} without a fix` : ''}`, {
      hint: kind === 'osv' ? 'give records of Debian ecosystems (Debian:12 …), e.g. osv.dev\'s Debian export unpacked' : 'check the file and --release',
    });
  }
  const result: { upload?: UploadResult; out?: string } = {};
  if (f.out) result.out = await writeCatalogFile(f.out, r.coverage, r.patches);
  else result.upload = await uploadFeed(r, f, batchSize);
  if (f.json) {
    const { patches, open, ...rest } = r;
    printJson({ ...rest, patches: patches.length, open: open.length, ...result });
  } else printFeedSummary(r, result, formatFeedProblem);
}

function feedOptions(cmd: Command): Command {
  return cmd
    .option('--release <codename>', 'only this release, e.g. bookworm (repeatable)', collect)
    .option('--out <file>', 'write the catalog to this JSON file instead of uploading')
    .option('--batch-size <n>', `patches per upload request (max ${MAX_BATCH})`, String(MAX_BATCH))
    .option('--server <url>', 'server URL (default $PATCHWARDEN_SERVER or http://127.0.0.1:8060)')
    .option('--token <token>', 'admin token (default $PATCHWARDEN_TOKEN or <data-dir>/admin-token)')
    .option('--data-dir <dir>', "the server's data directory, to find its admin-token file")
    .option('--json', 'print JSON instead of a summary');
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
      if (f.out) result.out = await writeCatalogFile(f.out, r.coverage, r.patches);
      else result.upload = await upload(r, f, batchSize);
      if (f.json) {
        printJson({ releases: r.releases, coverage: r.coverage, patches: r.patches.length, records: r.records, problemCount: r.problemCount, problems: r.problems, ...result });
      } else printSummary(r, result, formatProblem);
    });

  feedOptions(
    catalog
      .command('import-osv')
      .description('build patches from OSV records of Debian releases (a folder, searched recursively, or files) and upload them (or write a catalog file)')
      .argument('<path...>', 'folders of OSV records (*.json) or record files'),
  )
    .addHelpText(
      'after',
      `
Examples:
  patchwarden catalog import-osv ./osv/Debian
  patchwarden catalog import-osv ./osv/Debian --release bookworm --out osv-catalog.json

One patch per release, source package and fixed version, with every CVE and advisory id it
closes; it applies where a binary built from that source is installed, and is installed when
every such binary has the fixed source version. Records of other ecosystems are counted and
skipped; records that cannot be read are listed with their file and position and skipped.`,
    )
    .action(async (paths: string[], f: FeedFlags) => importFeed('osv', paths, f));

  feedOptions(
    catalog
      .command('import-debian-tracker')
      .description("build patches from the Debian security tracker's JSON (a file or URL) and upload them (or write a catalog file)")
      .argument('<file-or-url>', 'e.g. https://security-tracker.debian.org/tracker/data/json'),
  )
    .addHelpText(
      'after',
      `
Examples:
  patchwarden catalog import-debian-tracker https://security-tracker.debian.org/tracker/data/json --release bookworm
  patchwarden catalog import-debian-tracker tracker.json --out tracker-catalog.json

Resolved issues become patches (fixed_version "0": the release was never affected); open and
undetermined ones have no fix and are listed by \`patchwarden scan --debian-tracker FILE\`. Urgencies
map to severities (high, medium, low; unimportant: none; not yet assigned: medium).`,
    )
    .action(async (location: string, f: FeedFlags) => importFeed('debian-tracker', [location], f));

  mirrorCommands(catalog);
}

// ─── Local patch servers and air-gapped sites ────────────────────────────────

type MirrorFlags = ClientOptions & { json?: boolean };

interface SyncReport {
  source: string;
  changed: boolean;
  root: number;
  timestamp: number;
  snapshot: number;
  expires: string;
  metadata: { changedRoles: number; files: number; bytes: number };
  targets: { listed: number; fetched: number; bytes: number; alreadyHeld: number };
  payloads?: { referenced: number; fetched: number; bytes: number; unavailable: number };
  patches: { created: number; updated: number; removed: number; unreadable: { path: string; reason: string }[] };
  transfer: { requests: number; bytes: number };
  seconds: number;
}

interface MirrorStatus {
  running: { progress: { phase: string; targets: { total: number; done: number }; bytes: number } | null } | null;
  lastError: { code: string; message: string; hint?: string } | null;
  last: SyncReport | null;
}

/** The server and admin token, as ApiClient finds them (files are streamed here; ApiClient speaks JSON). */
function endpoint(f: ClientOptions): { server: string; token: string } {
  const server = ApiClient.from(f).server;
  let token = f.token ?? process.env.PATCHWARDEN_TOKEN;
  if (!token) {
    const file = join(f.dataDir ?? process.env.PATCHWARDEN_DATA_DIR ?? DEFAULT_DATA_DIR, ADMIN_TOKEN_FILE);
    if (existsSync(file)) token = readFileSync(file, 'utf8').trim();
  }
  return { server, token: token! };
}

async function rawCall(f: ClientOptions, method: string, path: string, init: { body?: ReadableStream<Uint8Array>; contentType?: string } = {}): Promise<Response> {
  const { server, token } = endpoint(f);
  let res: Response;
  try {
    res = await cliFetch(server + path, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(init.contentType ? { 'content-type': init.contentType } : {}) },
      ...(init.body ? { body: init.body, duplex: 'half' } : {}),
    } as RequestInit, f);
  } catch (err) {
    throw new PatchwardenError('E_SERVER_UNREACHABLE', `cannot reach ${server}: ${(err as Error).cause ?? (err as Error).message}`, { hint: 'is the server running? Pass --server URL' });
  }
  if (!res.ok) {
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    throw errorFromBody(res.status, parsed);
  }
  return res;
}

const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;
const day = (iso: string) => `${iso.slice(0, 16).replace('T', ' ')} UTC (in ${Math.round((Date.parse(iso) - Date.now()) / 86_400_000)} days)`;

/**
 * Follows a sync or import the server runs (started with wait=false, so no HTTP request has to
 * outlast it): a progress bar on stderr from its status, then its report, or its error.
 */
async function followMirror(f: MirrorFlags, start: () => Promise<unknown>): Promise<SyncReport> {
  const client = ApiClient.from(f);
  await start();
  const tty = !f.json && process.stderr.isTTY;
  const { SingleBar, Presets } = await import('cli-progress');
  const bar = tty ? new SingleBar({ format: '{phase} {bar} {value}/{total} targets, {mib}', stream: process.stderr }, Presets.shades_classic) : null;
  let started = false;
  try {
    for (;;) {
      const s = await client.call<MirrorStatus>('GET', '/api/v1/mirror/status');
      if (!s.running) {
        if (s.lastError) throw new PatchwardenError(s.lastError.code as ErrorCode, s.lastError.message, s.lastError.hint ? { hint: s.lastError.hint } : {});
        if (!s.last) throw new PatchwardenError('E_INTERNAL', 'the server reports no result');
        return s.last;
      }
      const p = s.running.progress;
      if (bar && p) {
        const payload = { phase: p.phase.padEnd(8), mib: mib(p.bytes) };
        if (!started) bar.start(Math.max(p.targets.total, 1), p.targets.done, payload);
        started = true;
        bar.setTotal(Math.max(p.targets.total, 1));
        bar.update(p.targets.done, payload);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  } finally {
    if (started) bar?.stop();
  }
}

function printSyncReport(r: SyncReport, verb: string): void {
  console.log(`${verb} from ${r.source}: ${r.changed ? 'catalog updated' : 'nothing new'} (root v${r.root}, snapshot v${r.snapshot}, timestamp v${r.timestamp})`);
  console.log(`  metadata: ${r.metadata.files} file(s), ${mib(r.metadata.bytes)}; targets: ${r.targets.fetched} fetched (${mib(r.targets.bytes)}), ${r.targets.alreadyHeld} already held, ${r.targets.listed} listed`);
  console.log(`  patches:  ${r.patches.created} new, ${r.patches.updated} updated, ${r.patches.removed} removed; ${r.seconds} s`);
  if (r.payloads?.referenced) {
    console.log(`  package files: ${r.payloads.fetched} fetched (${mib(r.payloads.bytes)}), ${r.payloads.unavailable} not cached upstream, of ${r.payloads.referenced} the changed patches install`);
  }
  for (const u of r.patches.unreadable.slice(0, 10)) console.log(`  not read by this server's compliance: ${u.path}: ${u.reason}`);
  console.log(`  valid until ${day(r.expires)}`);
}

function mirrorCommands(catalog: Command): void {
  withClient(catalog.command('sync').description('on a local patch server: sync the catalog from the central server now (only what changed is fetched)'))
    .addHelpText(
      'after',
      `
A local server runs with --upstream URL --upstream-token pws_… --upstream-root root.json and syncs
every few minutes by itself; this syncs now and shows the progress. Every file is verified from the
pinned central root on; an interrupted sync keeps what it fetched, and agents see the new catalog
only once all of it is there.`,
    )
    .action(async (f: MirrorFlags) => {
      const client = ApiClient.from(f);
      const r = await followMirror(f, () => client.call('POST', '/api/v1/mirror/sync?wait=false'));
      if (f.json) return printJson(r);
      printSyncReport(r, 'synced');
    });

  withClient(catalog.command('export').description('on the central server: write the signed catalog to one file for an air-gapped site'))
    .requiredOption('--out <file>', 'the file to write (a tar archive)')
    .option('--expires-days <n>', 'how long the exported metadata stays valid; longer than your import cycle (default 45)', '45')
    .addHelpText(
      'after',
      `
The file holds every root, the current metadata, every patch object and bundle (vulnerability data
included: OSV and tracker records are patch objects) and the coverage. Snapshot and timestamp are
signed again to last --expires-days (new versions; online clients get a normal one again within
hours). Carry the file across, then on the local server: patchwarden catalog import FILE`,
    )
    .action(async (f: MirrorFlags & { out: string; expiresDays: string }) => {
      const days = Number(f.expiresDays);
      if (!Number.isInteger(days) || days < 1 || days > 365) throw new PatchwardenError('E_VALIDATION', '--expires-days must be 1 to 365');
      const res = await rawCall(f, 'GET', `/api/v1/catalog/export-file?expiresDays=${days}`);
      const tmp = `${f.out}.tmp`;
      try {
        await pipeline(Readable.fromWeb(res.body! as WebReadableStream<Uint8Array>), createWriteStream(tmp, { mode: 0o644 }));
        await rename(tmp, f.out);
      } catch (err) {
        await rm(tmp, { force: true });
        throw err;
      }
      const index = JSON.parse(res.headers.get('x-patchwarden-export') ?? '{}') as { expires: string; snapshot: number; targets: number; root: { version: number; sha256: string }; limitedBy: string | null };
      const bytes = statSync(f.out).size;
      if (f.json) return printJson({ file: f.out, bytes, ...index });
      console.log(`wrote ${f.out}: ${index.targets} targets, root v${index.root.version}, snapshot v${index.snapshot}, ${mib(bytes)}`);
      console.log(`  valid until ${day(index.expires)}: import it before then`);
      if (index.limitedBy) console.log(`  (the ${index.limitedBy} role expires before ${days} days: only its key holders can sign a new version)`);
      console.log(`  the local server pins root sha256:${index.root.sha256}`);
    });

  withClient(catalog.command('import').description('on a local (air-gapped) server: import an export file, verified like an online sync'))
    .argument('<file>', 'the file `patchwarden catalog export` wrote')
    .action(async (file: string, f: MirrorFlags) => {
      let size: number;
      try {
        size = statSync(file).size;
      } catch (err) {
        throw new PatchwardenError('E_NOT_FOUND', `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
      let sent = 0;
      const counter = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          sent += chunk.length;
          cb(null, chunk);
        },
      });
      const quiet = f.json || !process.stderr.isTTY;
      const ticker = quiet ? null : setInterval(() => process.stderr.write(`\ruploading ${mib(sent)} of ${mib(size)}`), 250);
      const body = Readable.toWeb(createReadStream(file).pipe(counter)) as unknown as ReadableStream<Uint8Array>;
      const r = await followMirror(f, async () => {
        try {
          await rawCall(f, 'POST', `/api/v1/mirror/import?wait=false&name=${encodeURIComponent(basename(file))}`, { body, contentType: 'application/x-tar' });
        } finally {
          if (ticker) {
            clearInterval(ticker);
            process.stderr.write('\n');
          }
        }
      });
      if (f.json) return printJson(r);
      printSyncReport(r, 'imported');
    });
}
