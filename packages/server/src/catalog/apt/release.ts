/**
 * A repository's Release file: who publishes it (Origin, Label), which release it is (Suite,
 * Codename), when (Date, Valid-Until) and the SHA256 and size of every index. Only SHA256 is
 * used: MD5 and SHA1 no longer prove anything.
 */
import { PatchwardenError } from '@patchwarden/core';

export interface IndexHash {
  sha256: string;
  size: number;
}

export interface ReleaseFile {
  origin?: string;
  label?: string;
  suite?: string;
  codename?: string;
  version?: string;
  /** ISO 8601 */
  date?: string;
  validUntil?: string;
  architectures: string[];
  components: string[];
  /** apt never picks a version from it by itself (experimental, backports) */
  notAutomatic: boolean;
  /** path relative to dists/<suite>/ → hash and size */
  files: Map<string, IndexHash>;
}

const MAX_RELEASE_BYTES = 16 * 1024 * 1024;

/** Fields of one deb822 paragraph; continuation lines are kept, joined by '\n'. */
export function parseFields(text: string, what: string): Map<string, string> {
  const fields = new Map<string, string>();
  let last: string | null = null;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/\r$/, '');
    if (line.trim() === '') {
      if (fields.size > 0) {
        // a Release file is one paragraph; more text after it is not covered by our reading
        if (lines.slice(i).some((l) => l.trim() !== '')) throw new PatchwardenError('E_VALIDATION', `${what}: more than one paragraph (line ${i + 2})`);
        break;
      }
      continue;
    }
    if (line[0] === ' ' || line[0] === '\t') {
      if (last === null) throw new PatchwardenError('E_VALIDATION', `${what}: line ${i + 1} continues no field`);
      fields.set(last, `${fields.get(last)!}\n${line.trim()}`);
      continue;
    }
    const m = /^([!-9;-~]+):[ \t]*(.*)$/.exec(line);
    if (!m) throw new PatchwardenError('E_VALIDATION', `${what}: line ${i + 1} is not a field: ${JSON.stringify(line.slice(0, 60))}`);
    const name = m[1]!.toLowerCase();
    if (fields.has(name)) throw new PatchwardenError('E_VALIDATION', `${what}: field ${m[1]} appears twice (line ${i + 1})`);
    fields.set(name, m[2]!.trim());
    last = name;
  }
  return fields;
}

function isoDate(value: string | undefined, field: string, what: string): string | undefined {
  if (value === undefined) return undefined;
  const t = Date.parse(value);
  if (Number.isNaN(t)) throw new PatchwardenError('E_VALIDATION', `${what}: ${field} is not a date: ${JSON.stringify(value.slice(0, 60))}`);
  return new Date(t).toISOString();
}

const PATH_RE = /^[A-Za-z0-9][A-Za-z0-9._+~/-]*$/;

export function parseRelease(text: string, what: string): ReleaseFile {
  if (text.length > MAX_RELEASE_BYTES) throw new PatchwardenError('E_VALIDATION', `${what}: larger than ${MAX_RELEASE_BYTES} bytes`);
  const f = parseFields(text, what);
  const files = new Map<string, IndexHash>();
  const sums = f.get('sha256');
  if (sums !== undefined) {
    for (const line of sums.split('\n')) {
      if (line === '') continue;
      const m = /^([0-9a-f]{64})\s+(\d{1,15})\s+(\S+)$/.exec(line);
      if (!m || !PATH_RE.test(m[3]!) || m[3]!.split('/').includes('..')) {
        throw new PatchwardenError('E_VALIDATION', `${what}: bad SHA256 line ${JSON.stringify(line.slice(0, 100))}`);
      }
      files.set(m[3]!, { sha256: m[1]!, size: Number(m[2]) });
    }
  }
  const words = (k: string) => (f.get(k) ?? '').split(/\s+/).filter(Boolean);
  const r: ReleaseFile = {
    architectures: words('architectures'),
    components: words('components'),
    notAutomatic: (f.get('notautomatic') ?? '').toLowerCase() === 'yes',
    files,
  };
  for (const [k, field] of [
    ['origin', 'origin'],
    ['label', 'label'],
    ['suite', 'suite'],
    ['codename', 'codename'],
    ['version', 'version'],
  ] as const) {
    const v = f.get(field);
    if (v !== undefined && v !== '') r[k] = v.slice(0, 200);
  }
  const date = isoDate(f.get('date'), 'Date', what);
  if (date) r.date = date;
  const until = isoDate(f.get('valid-until'), 'Valid-Until', what);
  if (until) r.validUntil = until;
  if (!r.codename && !r.suite) throw new PatchwardenError('E_VALIDATION', `${what}: neither Codename nor Suite is given`);
  return r;
}

export interface ClearSigned {
  /** the signed text, dash-escaping removed */
  text: string;
}

/**
 * Splits an OpenPGP clear-signed message without verifying it (for a repository read with no
 * keyring). Strict, like apt: nothing but white space may stand outside the signed block, so
 * unsigned text can never pass as part of the Release file.
 */
export function splitClearSigned(raw: string, what: string): ClearSigned {
  const lines = raw.split('\n').map((l) => l.replace(/\r$/, ''));
  let i = 0;
  while (i < lines.length && lines[i]!.trim() === '') i++;
  if (lines[i] !== '-----BEGIN PGP SIGNED MESSAGE-----') throw new PatchwardenError('E_VALIDATION', `${what}: not a clear-signed message`);
  i++;
  while (i < lines.length && lines[i] !== '') {
    if (!/^Hash: /.test(lines[i]!)) throw new PatchwardenError('E_VALIDATION', `${what}: unexpected armor header ${JSON.stringify(lines[i]!.slice(0, 60))}`);
    i++;
  }
  i++;
  const body: string[] = [];
  while (i < lines.length && lines[i] !== '-----BEGIN PGP SIGNATURE-----') {
    const l = lines[i]!;
    if (l.startsWith('-----')) throw new PatchwardenError('E_VALIDATION', `${what}: unexpected armor line ${JSON.stringify(l.slice(0, 60))}`);
    body.push(l.startsWith('- ') ? l.slice(2) : l);
    i++;
  }
  if (i >= lines.length) throw new PatchwardenError('E_VALIDATION', `${what}: the signature block is missing`);
  while (i < lines.length && lines[i] !== '-----END PGP SIGNATURE-----') i++;
  if (i >= lines.length) throw new PatchwardenError('E_VALIDATION', `${what}: the signature block is not closed`);
  if (lines.slice(i + 1).some((l) => l.trim() !== '')) throw new PatchwardenError('E_VALIDATION', `${what}: text after the signature`);
  return { text: `${body.join('\n')}\n` };
}

/**
 * The release a suite belongs to: bookworm-security and bookworm-updates are bookworm (Debian
 * names their Codename so; Ubuntu's jammy-security already says jammy). Backports stay apart:
 * they are opt-in, so their patches must not apply to every bookworm machine.
 */
export function releaseCodename(r: Pick<ReleaseFile, 'codename' | 'suite'>): string {
  const name = (r.codename ?? r.suite)!.toLowerCase();
  return name.replace(/-(security|updates)$/, '');
}

/** Lowercase letters, digits and . _ + ~ -: fits a patch id segment and a platform field. */
export function slug(s: string): string {
  const v = s.toLowerCase().replace(/[^a-z0-9._+~-]+/g, '-').replace(/^[^a-z0-9]+/, '');
  return v || 'unknown';
}
