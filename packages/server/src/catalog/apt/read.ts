/**
 * The steps both sources share (a lists directory and a mirror): check a Release file's
 * signature, then check each index against the Release file's SHA256 and size before reading
 * its records. A bad signature or a hash mismatch refuses the whole import: a partial catalog
 * would make devices look patched.
 */
import { createHash } from 'node:crypto';
import { PatchwardenError } from '@patchwarden/core';
import { compressionOf, decompress, MAX_INDEX_BYTES } from './decompress.js';
import { verifyClearSigned, verifyDetached } from './gpgv.js';
import { parsePackagesIndex, type BinaryRecord } from './packages-index.js';
import type { IndexOrigin } from './patches.js';
import { quote, type Problems } from './problems.js';
import { parseRelease, releaseCodename, slug, splitClearSigned, type ReleaseFile } from './release.js';

export interface AptImportOptions {
  /** keyrings for gpgv; default: Debian's and Ubuntu's archive keyrings where installed */
  keyrings?: string[];
  /** only these suites (Suite or Codename, e.g. bookworm-security) */
  suites?: string[];
  /** only indexes of these architectures (default: lists: all present; mirror: this machine's) */
  architectures?: string[];
  /** only these components (default: all) */
  components?: string[];
  /** for Valid-Until */
  now?: Date;
  maxIndexBytes?: number;
  /** told before each file is read (progress) */
  onFile?: (what: string) => void;
}

/** A Release file as the import summary shows it. */
export interface AptRelease extends Pick<ReleaseFile, 'label' | 'suite' | 'codename' | 'version' | 'date' | 'validUntil' | 'architectures' | 'components'> {
  origin: string;
  verified: boolean;
  /** fingerprints of the keys whose signatures were good */
  signers: string[];
  /** the platform the patches are for */
  distribution: string;
  release: string;
  location: string;
  indexes: { path: string; location: string; records: number; checked: boolean }[];
}

export type Signed =
  | { kind: 'inrelease'; data: Buffer }
  | { kind: 'release'; data: Buffer; signature: Buffer | null };

/**
 * Verifies and parses a Release file. `keyrings` empty: nothing to verify with, so it is read
 * unverified (with a warning). `strict`: a signature by no known key throws (the user named
 * this suite); otherwise that release is skipped with a problem and null is returned.
 */
export async function loadRelease(signed: Signed, where: string, keyrings: string[], problems: Problems, strict: boolean): Promise<{ file: ReleaseFile; verified: boolean; signers: string[] } | null> {
  if (keyrings.length === 0) {
    problems.warn(where, 'not verified: no keyring (install debian-archive-keyring or pass --keyring FILE)');
    const text = signed.kind === 'inrelease' ? splitClearSigned(signed.data.toString('utf8'), where).text : signed.data.toString('utf8');
    return { file: parseRelease(text, where), verified: false, signers: [] };
  }
  if (signed.kind === 'release' && signed.signature === null) {
    const message = 'has no signature (no InRelease, no Release.gpg)';
    if (strict) throw new PatchwardenError('E_VALIDATION', `${where} ${message}`, { hint: 'an unsigned repository cannot be imported while a keyring is in use' });
    problems.add({ level: 'error', file: where, message: `${message}; release skipped` });
    return null;
  }
  const check = signed.kind === 'inrelease' ? await verifyClearSigned(signed.data, keyrings) : await verifyDetached(signed.data, signed.signature!, keyrings);
  if (check.status === 'bad') {
    throw new PatchwardenError('E_VALIDATION', `invalid signature on ${where}: ${check.detail}`, {
      hint: 'the file was altered or damaged: fetch it again (apt-get update) and do not import it as it is',
    });
  }
  if (check.status === 'untrusted') {
    const message = `${check.detail}; keyrings: ${keyrings.join(', ')}`;
    if (strict) throw new PatchwardenError('E_VALIDATION', `cannot verify ${where}: ${message}`, { hint: "pass --keyring FILE with the repository's key" });
    problems.add({ level: 'error', file: where, message: `cannot verify: ${message}; release skipped (pass --keyring FILE with its key)` });
    return null;
  }
  const text = signed.kind === 'inrelease' ? check.text! : signed.data.toString('utf8');
  return { file: parseRelease(text, where), verified: true, signers: check.signers };
}

export function describeRelease(r: { file: ReleaseFile; verified: boolean; signers: string[] }, location: string, problems: Problems, now: Date): AptRelease {
  const f = r.file;
  const origin = f.origin ?? f.label ?? 'unknown';
  if (f.validUntil && Date.parse(f.validUntil) < now.getTime()) {
    problems.warn(location, `expired: valid until ${f.validUntil}; its data may be stale (apt refuses it): run apt-get update`);
  }
  const out: AptRelease = {
    origin,
    architectures: f.architectures,
    components: f.components,
    verified: r.verified,
    signers: r.signers,
    distribution: slug(origin),
    release: releaseCodename(f),
    location,
    indexes: [],
  };
  for (const k of ['label', 'suite', 'codename', 'version', 'date', 'validUntil'] as const) if (f[k] !== undefined) out[k] = f[k];
  return out;
}

export function indexOrigin(r: AptRelease, repository?: string): IndexOrigin {
  const suite = r.codename ?? r.suite!;
  const o: IndexOrigin = {
    originName: r.origin,
    distribution: r.distribution,
    release: r.release,
    suite,
    security: /-security$/.test(suite) || /-security$/.test(r.suite ?? '') || /security/i.test(r.label ?? ''),
  };
  if (r.date) o.date = r.date.slice(0, 10);
  if (repository) o.repository = repository;
  return o;
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function mismatch(where: string, path: string, what: string): PatchwardenError {
  return new PatchwardenError('E_VALIDATION', `${where}: ${what} does not match the Release file's entry for ${path}`, {
    hint: 'the index was altered or is incomplete: fetch it again (apt-get update) before importing',
  });
}

/**
 * Checks and reads one Packages index. `path` is its name relative to dists/<suite>/ (with
 * the compression suffix); the Release file may list it, its uncompressed form, or both.
 */
export async function readIndex(
  raw: Buffer,
  path: string,
  where: string,
  /** undefined: a lone index file, with nothing to check it against */
  release: { file: ReleaseFile; verified: boolean } | undefined,
  arch: string | undefined,
  problems: Problems,
  maxBytes = MAX_INDEX_BYTES,
  /** downloads: the compressed file itself must match its entry when the Release lists it */
  exactFile = false,
): Promise<{ records: BinaryRecord[]; checked: boolean } | null> {
  const kind = compressionOf(path);
  if (kind === null) {
    problems.add({ level: 'error', file: where, message: 'compression not supported (use .gz, .xz, .lz4 or plain); index skipped' });
    return null;
  }
  const plainPath = path.replace(/\.(gz|xz|lz4)$/, '');
  const packed = kind === 'none' ? undefined : release?.file.files.get(path);
  const plain = release?.file.files.get(plainPath);
  if (release && !packed && !plain) {
    if (release.verified) {
      problems.add({ level: 'error', file: where, message: `${plainPath} is not listed in the Release file, so its signature does not cover it; index skipped` });
      return null;
    }
    problems.warn(where, `${plainPath} is not listed in the Release file: not checked`);
  }
  if (packed && (raw.length !== packed.size || sha256(raw) !== packed.sha256)) {
    // apt may store an index recompressed (lists/*.lz4, GzipIndexes): then the signed hash of
    // the uncompressed index decides. A download must be the very file the Release lists.
    if (exactFile || !plain) throw mismatch(where, path, raw.length !== packed.size ? `size ${raw.length}` : 'SHA256');
  }
  const decoded = await decompress(raw, kind, maxBytes);
  if (plain && !decoded.error && (decoded.data.length !== plain.size || sha256(decoded.data) !== plain.sha256)) {
    throw mismatch(where, plainPath, decoded.data.length !== plain.size ? `decompressed size ${decoded.data.length}` : 'SHA256');
  }
  if (decoded.error && (plain || packed)) throw mismatch(where, path, `content (${decoded.error.message})`);
  const text = decoded.data.toString('latin1');
  if (decoded.error) {
    const complete = text.lastIndexOf('\n\n');
    const from = complete < 0 ? 1 : text.slice(0, complete).split('\n').length + 2;
    problems.add({
      level: 'error',
      file: where,
      line: from,
      message: `damaged at byte ${decoded.error.offset} of the compressed file (${decoded.error.message}): the records from line ${from} on are missing`,
    });
    // the last, incomplete record would pass for a whole one
    return { records: parsePackagesIndex(complete < 0 ? '' : text.slice(0, complete + 1), where, problems, arch === undefined ? {} : { arch }), checked: false };
  }
  if (text.length > 0 && !text.endsWith('\n')) problems.warn(where, `no newline at the end: the last record may be incomplete (${quote(text.slice(-40))})`);
  return { records: parsePackagesIndex(text, where, problems, arch === undefined ? {} : { arch }), checked: Boolean(packed || plain) };
}
