/**
 * Reads OSV records as databases publish them: a folder of `*.json` files (osv.dev's per-ecosystem
 * exports hold one record per file; the Go database also keeps arrays of records per module),
 * searched recursively, or single files. A file or record that cannot be read is reported with
 * its position (a byte offset, or the JSON path of the offending field) and skipped; the import
 * goes on. Files that are no records (index.json, aliases.json) are reported the same way.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { PatchwardenError } from '@patchwarden/core';
import { parseJsonBytes } from './json.js';
import { FeedProblems, jsonPath } from './problems.js';
import { importRecord } from './records.js';
import { finishFeedImport, newTally, type FeedImport, type FeedTally } from './result.js';
import { OsvRecord } from './schema.js';
import { SourcePatchBuilder } from './source-patches.js';

export interface OsvImportOptions {
  /** a larger file is refused unread (default 64 MiB) */
  maxFileBytes?: number;
  /** told before each file is read (progress) */
  onFile?: (path: string) => void;
}

export const MAX_OSV_FILE_BYTES = 64 * 1024 * 1024;

/** The `*.json` files below `dir`, sorted; symbolic links to folders are not followed (no loops). */
async function jsonFiles(dir: string, problems: FeedProblems, out: string[]): Promise<void> {
  const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    const path = join(dir, e.name);
    if (e.isDirectory()) await jsonFiles(path, problems, out);
    else if (!/\.json$/i.test(e.name)) continue;
    else if (e.isFile()) out.push(path);
    else if (e.isSymbolicLink()) {
      const target = await stat(path).catch(() => null);
      if (target?.isFile()) out.push(path);
      else problems.warn(path, undefined, 'a symbolic link to no regular file: not followed');
    }
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function readRecord(value: unknown, file: string, at: number[], builder: SourcePatchBuilder, problems: FeedProblems, tally: FeedTally): number {
  if (!isObject(value)) {
    problems.error(file, jsonPath(at), `not an OSV record: ${Array.isArray(value) ? 'an array' : `a ${value === null ? 'null' : typeof value}`}; skipped`);
    return 0;
  }
  const r = OsvRecord.safeParse(value);
  if (!r.success) {
    const i = r.error.issues[0]!;
    const id = typeof value.id === 'string' && value.id.length <= 100 ? ` ${JSON.stringify(value.id)}` : '';
    if (!('id' in value) && !('modified' in value)) {
      problems.error(file, jsonPath(at), 'not an OSV record (no id, no modified: an index or alias file?); skipped');
      return 0;
    }
    problems.error(file, jsonPath([...at, ...(i.path as (string | number)[])]), `${i.message}; record${id} skipped`);
    return 0;
  }
  tally.records++;
  importRecord(r.data, { file, at, builder, problems, tally });
  return 1;
}

async function readOsvFile(file: string, max: number, builder: SourcePatchBuilder, problems: FeedProblems, tally: FeedTally): Promise<number> {
  const size = (await stat(file)).size;
  if (size > max) {
    problems.error(file, undefined, `${size} bytes, more than the limit of ${max}; file skipped`);
    return 0;
  }
  const parsed = parseJsonBytes(await readFile(file));
  if (!parsed.ok) {
    problems.error(file, parsed.position, `${parsed.reason}; file skipped`);
    return 0;
  }
  const v = parsed.value;
  if (!Array.isArray(v)) return readRecord(v, file, [], builder, problems, tally);
  if (v.length > 0 && !v.some(isObject)) {
    problems.error(file, '$', `not OSV records: an array of ${typeof v[0]} (an index file?); skipped`);
    return 0;
  }
  let n = 0;
  for (const [i, item] of v.entries()) n += readRecord(item, file, [i], builder, problems, tally);
  return n;
}

/** Reads records from folders (recursively) and files, and builds patches for Debian releases. */
export async function importOsv(paths: string[], opts: OsvImportOptions = {}): Promise<FeedImport> {
  if (paths.length === 0) throw new PatchwardenError('E_VALIDATION', 'no OSV folder or file given', { hint: 'patchwarden catalog import-osv DIR|FILE…' });
  const problems = new FeedProblems();
  const builder = new SourcePatchBuilder('osv', 'Debian', problems);
  const tally = newTally();
  const max = opts.maxFileBytes ?? MAX_OSV_FILE_BYTES;
  for (const path of paths) {
    const info = await stat(path).catch((err: Error) => {
      throw new PatchwardenError('E_NOT_FOUND', `cannot read ${path}: ${err.message}`, { hint: 'give a folder of OSV records (*.json) or record files' });
    });
    const files: string[] = [];
    if (info.isDirectory()) await jsonFiles(path, problems, files);
    else files.push(path);
    if (files.length === 0) problems.warn(path, undefined, 'no *.json files in this folder');
    let records = 0;
    for (const f of files) {
      opts.onFile?.(f);
      records += await readOsvFile(f, max, builder, problems, tally);
    }
    tally.inputs.push({ location: path, files: files.length, records });
  }
  return finishFeedImport('osv', builder, tally, problems);
}
