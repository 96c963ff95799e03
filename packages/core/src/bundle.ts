/**
 * A bundle is one file: a plain ustar archive holding `manifest.json` (the manifest's canonical
 * JSON), `signatures.json` (signatures over exactly those bytes) and `payload/<path>` for each
 * payload file the manifest lists with its size and sha256. One signature therefore covers
 * manifest and payload. Bundles are built deterministically (fixed order, owner 0, mtime 0),
 * so building the same inputs twice gives the same bytes.
 *
 * Reading is strict, because a bundle comes from outside: only regular files, only the names
 * above, no `..`, no absolute paths, no links or device files, no extension headers, checksums
 * valid, nothing truncated, nothing after the end but zero padding, every payload file listed
 * and matching its size and hash.
 */
import { createHash } from 'node:crypto';
import { Header } from 'tar';
import { canonicalJson } from './canonical.js';
import { PatchwardenError } from './errors.js';
import { PatchManifest } from './patch.js';
import { Signature, signBytes, verifiedSigners, type PrivateKeyFile, type TufPublicKey } from './signing.js';

const BLOCK = 512;
export const BUNDLE_DEFAULT_MAX_BYTES = 1024 * 1024 * 1024;
const MAX_ENTRIES = 10_002;
const PAYLOAD_PREFIX = 'payload/';

export interface BundleContents {
  manifest: PatchManifest;
  /** the canonical manifest bytes that signatures cover */
  manifestBytes: Buffer;
  /** sha256 of manifestBytes: the patch object's digest */
  digest: string;
  signatures: Signature[];
  payload: Map<string, Buffer>;
}

const bad = (message: string, hint?: string) =>
  new PatchwardenError('E_BUNDLE_INVALID', `not a valid bundle: ${message}`, {
    hint: hint ?? 'rebuild it with `patchwarden patch build` and sign it again with `patchwarden patch sign`',
  });

function sha256(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

/** Parses and checks a manifest the way a bundle holds it (zod schema, canonical form). */
export function parseManifest(json: unknown): PatchManifest {
  const r = PatchManifest.safeParse(json);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new PatchwardenError('E_VALIDATION', `manifest.${i.path.join('.')}: ${i.message}`, { details: r.error.issues.slice(0, 20) });
  }
  return r.data;
}

function entry(path: string, data: Uint8Array): Buffer[] {
  const h = Buffer.alloc(BLOCK);
  const header = new Header({ path, mode: 0o644, uid: 0, gid: 0, size: data.length, mtime: new Date(0), type: 'File', uname: '', gname: '' });
  // paths longer than ustar can hold would need an extension header, which readers here refuse
  if (header.encode(h, 0)) throw bad(`the path ${path} is too long for a bundle`);
  const pad = (BLOCK - (data.length % BLOCK)) % BLOCK;
  return [h, Buffer.from(data.buffer, data.byteOffset, data.length), Buffer.alloc(pad)];
}

/**
 * Builds a bundle. The manifest's `payload` list must name exactly the given files with their
 * sizes and hashes (`patch build` fills it in from the files).
 */
export function buildBundle(manifestInput: unknown, payload: ReadonlyMap<string, Uint8Array>, signatures: Signature[] = []): Buffer {
  const manifest = parseManifest(manifestInput);
  checkPayload(manifest, payload);
  const parts: Buffer[] = [...entry('manifest.json', canonicalJson(manifest))];
  if (signatures.length) parts.push(...entry('signatures.json', canonicalJson({ signatures })));
  for (const f of manifest.payload.slice().sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) {
    parts.push(...entry(PAYLOAD_PREFIX + f.path, payload.get(f.path)!));
  }
  parts.push(Buffer.alloc(BLOCK * 2));
  return Buffer.concat(parts);
}

function checkPayload(manifest: PatchManifest, payload: ReadonlyMap<string, Uint8Array>) {
  const listed = new Set(manifest.payload.map((f) => f.path));
  for (const p of payload.keys()) if (!listed.has(p)) throw bad(`payload/${p} is not listed in the manifest`);
  for (const f of manifest.payload) {
    const data = payload.get(f.path);
    if (!data) throw bad(`payload/${f.path} is listed in the manifest but missing`);
    if (data.length !== f.size) throw new PatchwardenError('E_DIGEST_MISMATCH', `payload/${f.path} is ${data.length} bytes, the manifest says ${f.size}`);
    if (sha256(data) !== f.sha256) throw new PatchwardenError('E_DIGEST_MISMATCH', `payload/${f.path} does not match the sha256 in the manifest`, { hint: 'the payload was changed after the bundle was built; do not use it' });
  }
}

/** Walks the archive's entries, refusing everything but plain, safely named files. */
function readEntries(bytes: Uint8Array, maxBytes: number): Map<string, Buffer> {
  if (bytes.length > maxBytes) {
    throw new PatchwardenError('E_PAYLOAD_TOO_LARGE', `the bundle is ${bytes.length} bytes, more than the limit of ${maxBytes}`, {
      hint: 'split the payload, or raise the server limit (--max-bundle-bytes)',
    });
  }
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  const out = new Map<string, Buffer>();
  let off = 0;
  for (;;) {
    if (off + BLOCK > buf.length) throw bad('the archive is truncated (no end-of-archive marker)');
    const block = buf.subarray(off, off + BLOCK);
    if (block.every((b) => b === 0)) {
      if (off + 2 * BLOCK > buf.length || !buf.subarray(off + BLOCK, off + 2 * BLOCK).every((b) => b === 0)) throw bad('the archive is truncated (half an end-of-archive marker)');
      // tar pads to a record size with zeros; anything else after the end is refused
      if (!buf.subarray(off + 2 * BLOCK).every((b) => b === 0)) throw bad('there are bytes after the end of the archive');
      return out;
    }
    let h: Header;
    try {
      h = new Header(buf, off);
    } catch (err) {
      // tar throws a plain Error for a base-256 number beyond 2^53 (size, mtime, uid …)
      throw bad(`the header at byte ${off} cannot be read: ${(err as Error).message}`);
    }
    if (!h.cksumValid) throw bad(`the header at byte ${off} has a bad checksum`);
    const path = h.path ?? '';
    if (h.type !== 'File' && h.type !== 'OldFile') {
      throw bad(`${JSON.stringify(path)} is a ${h.type} entry; a bundle holds regular files only (no links, devices, directories or extension headers)`);
    }
    checkEntryName(path);
    if (out.has(path)) throw bad(`${path} appears twice`);
    if (out.size >= MAX_ENTRIES) throw bad(`more than ${MAX_ENTRIES} entries`);
    // tar leaves the size undefined when a base-256 field holds a negative number
    const size = h.size ?? -1;
    if (!Number.isSafeInteger(size) || size < 0) throw bad(`${path} has no valid size`);
    const start = off + BLOCK;
    if (start + size > buf.length) throw bad(`${path} is truncated (${buf.length - start} of ${size} bytes)`);
    out.set(path, buf.subarray(start, start + size));
    off = start + Math.ceil(size / BLOCK) * BLOCK;
  }
}

const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._+~-]*$/;
function checkEntryName(path: string) {
  if (path === 'manifest.json' || path === 'signatures.json') return;
  if (path.startsWith('/') || /^[A-Za-z]:/.test(path) || path.includes('\\')) throw bad(`${JSON.stringify(path)} is an absolute path`);
  if (!path.startsWith(PAYLOAD_PREFIX)) throw bad(`${JSON.stringify(path)} is not manifest.json, signatures.json or under payload/`);
  for (const seg of path.slice(PAYLOAD_PREFIX.length).split('/')) {
    if (seg === '..' || seg === '.') throw bad(`${JSON.stringify(path)} leaves its folder`);
    if (!SEGMENT.test(seg)) throw bad(`${JSON.stringify(path)} has a name outside [A-Za-z0-9._+~-]`);
  }
}

function parseJson(data: Buffer, name: string): unknown {
  try {
    return JSON.parse(data.toString('utf8'));
  } catch (err) {
    throw bad(`${name} is not JSON: ${(err as Error).message}`);
  }
}

/** Reads a bundle and checks its structure, manifest and payload hashes (not who signed it). */
export function readBundle(bytes: Uint8Array, opts: { maxBytes?: number } = {}): BundleContents {
  const entries = readEntries(bytes, opts.maxBytes ?? BUNDLE_DEFAULT_MAX_BYTES);
  const raw = entries.get('manifest.json');
  if (!raw) throw bad('manifest.json is missing');
  const manifest = parseManifest(parseJson(raw, 'manifest.json'));
  const manifestBytes = canonicalJson(manifest);
  // the bytes signed are the canonical form; anything else could mean two readings of one file
  if (!manifestBytes.equals(raw)) throw bad('manifest.json is not in canonical form (it was edited after the bundle was built)');
  let signatures: Signature[] = [];
  const sigRaw = entries.get('signatures.json');
  if (sigRaw) {
    const j = parseJson(sigRaw, 'signatures.json') as { signatures?: unknown };
    const r = Signature.array().max(64).safeParse(j?.signatures);
    if (!r.success || Object.keys(j ?? {}).length !== 1) throw bad('signatures.json is not { "signatures": [{ "keyid", "sig" }] }');
    signatures = r.data;
  }
  const payload = new Map<string, Buffer>();
  for (const [p, data] of entries) if (p.startsWith(PAYLOAD_PREFIX)) payload.set(p.slice(PAYLOAD_PREFIX.length), data);
  checkPayload(manifest, payload);
  return { manifest, manifestBytes, digest: sha256(manifestBytes), signatures, payload };
}

/** Adds (or replaces) one key's signature. */
export function signBundle(bytes: Uint8Array, key: PrivateKeyFile, opts: { maxBytes?: number } = {}): Buffer {
  const b = readBundle(bytes, opts);
  const sig = signBytes(key, b.manifestBytes);
  const signatures = [...b.signatures.filter((s) => s.keyid !== key.keyid), sig];
  return buildBundle(b.manifest, b.payload, signatures);
}

export interface VerifiedBundle extends BundleContents {
  /** the trusted key ids whose signatures verify */
  signers: string[];
}

/**
 * Reads a bundle and requires `threshold` distinct trusted keys to have signed it. Nothing of
 * it may be used before this returns.
 */
export function verifyBundle(
  bytes: Uint8Array,
  opts: { trusted: ReadonlyMap<string, TufPublicKey>; threshold?: number; maxBytes?: number },
): VerifiedBundle {
  const b = readBundle(bytes, opts);
  const threshold = opts.threshold ?? 1;
  const signers = verifiedSigners(b.manifestBytes, b.signatures, opts.trusted);
  if (signers.length < threshold) {
    const unknown = b.signatures.filter((s) => !opts.trusted.has(s.keyid)).map((s) => s.keyid.slice(0, 12));
    throw new PatchwardenError(
      'E_SIGNATURE_INVALID',
      `the bundle ${b.manifest.id} r${b.manifest.revision} has ${signers.length} valid signature(s) from trusted keys, ${threshold} needed` +
        (b.signatures.length === 0 ? ' (it is not signed)' : unknown.length ? ` (signed by unknown key(s) ${unknown.join(', ')})` : ''),
      { hint: 'sign it with an author key the catalog trusts: `patchwarden patch sign BUNDLE --key author.key`' },
    );
  }
  return { ...b, signers };
}
