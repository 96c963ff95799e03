/**
 * Loads the tracker's JSON from a file or a URL (gzip-compressed or plain). The tracker signs
 * nothing, so a download's integrity rests on HTTPS alone: plain http is read with a warning.
 * The document is one JSON value: if it is not JSON (a truncated download), nothing in it can be
 * trusted and the import stops with the byte offset where it broke.
 */
import { readBounded } from '../../http/read-bounded.js';
import { readFile, stat } from 'node:fs/promises';
import { PatchwardenError } from '@patchwarden/core';
import { decompress } from '../apt/decompress.js';
import { parseJsonBytes } from '../osv/json.js';
import { FeedProblems } from '../osv/problems.js';
import { finishFeedImport, newTally, type FeedImport } from '../osv/result.js';
import { SourcePatchBuilder } from '../osv/source-patches.js';
import { importTrackerDocument, type TrackerOptions } from './parse.js';

export const TRACKER_URL = 'https://security-tracker.debian.org/tracker/data/json';
/** the whole tracker is about 100 MB today; this leaves room and stops a bomb */
export const MAX_TRACKER_BYTES = 1024 * 1024 * 1024;

export interface TrackerImportOptions extends TrackerOptions {
  fetch?: typeof globalThis.fetch;
  timeoutMs?: number;
  maxBytes?: number;
  onFile?: (what: string) => void;
}

async function download(url: string, opts: TrackerImportOptions, max: number): Promise<Buffer> {
  const fetchFn = opts.fetch ?? globalThis.fetch;
  let res: Response;
  try {
    res = await fetchFn(url, { signal: AbortSignal.timeout(opts.timeoutMs ?? 300_000), redirect: 'follow' });
  } catch (err) {
    throw new PatchwardenError('E_SERVER_UNREACHABLE', `cannot fetch ${url}: ${(err as Error).cause ?? (err as Error).message}`, { hint: 'check the URL and the network, or download the file and pass its path' });
  }
  if (!res.ok) {
    await res.body?.cancel();
    throw new PatchwardenError(res.status === 404 ? 'E_NOT_FOUND' : 'E_SERVER_UNREACHABLE', `${url}: HTTP ${res.status}`);
  }
  return readBounded(res, max, () => new PatchwardenError('E_FEED_INVALID', `${url} is larger than ${max} bytes`, { hint: 'is it the tracker JSON? It is about 100 MB' }));
}

async function load(location: string, opts: TrackerImportOptions, problems: FeedProblems, max: number): Promise<Buffer> {
  if (/^https?:\/\//i.test(location)) {
    if (/^http:/i.test(location)) problems.warn(location, undefined, 'fetched over plain http: the tracker signs nothing, so nothing vouches for what arrived (use https)');
    return download(location, opts, max);
  }
  const size = await stat(location).then(
    (s) => s.size,
    (err: Error) => {
      throw new PatchwardenError('E_NOT_FOUND', `cannot read ${location}: ${err.message}`, { hint: `download ${TRACKER_URL} and pass its path, or pass the URL` });
    },
  );
  if (size > max) throw new PatchwardenError('E_FEED_INVALID', `${location} is ${size} bytes, more than the limit of ${max}`);
  return readFile(location);
}

/** Imports the tracker's JSON (a file or an http(s) URL). */
export async function importDebianTracker(location: string, opts: TrackerImportOptions = {}): Promise<FeedImport> {
  const problems = new FeedProblems();
  const max = opts.maxBytes ?? MAX_TRACKER_BYTES;
  opts.onFile?.(location);
  let raw = await load(location, opts, problems, max);
  if (raw[0] === 0x1f && raw[1] === 0x8b) {
    const d = await decompress(raw, 'gz', max);
    if (d.error) throw new PatchwardenError('E_FEED_INVALID', `${location}: damaged at byte ${d.error.offset} of the compressed file (${d.error.message})`, { hint: 'download it again' });
    raw = d.data;
  }
  const parsed = parseJsonBytes(raw);
  if (!parsed.ok) {
    throw new PatchwardenError('E_FEED_INVALID', `${location} cannot be read at ${parsed.position}: ${parsed.reason}`, {
      hint: 'the file is damaged or incomplete: download it again (nothing was imported)',
    });
  }
  return importDebianTrackerValue(parsed.value, location, opts, problems);
}

/** The same from a parsed document (tests, and callers that hold it already). */
export function importDebianTrackerValue(doc: unknown, location: string, opts: TrackerOptions = {}, problems = new FeedProblems()): FeedImport {
  const builder = new SourcePatchBuilder('debian-tracker', 'Debian', problems);
  const tally = newTally();
  importTrackerDocument(doc, location, builder, problems, tally, opts);
  tally.inputs.push({ location, files: 1, records: tally.records });
  return finishFeedImport('debian-tracker', builder, tally, problems);
}
