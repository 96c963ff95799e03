import { createHash, generateKeyPairSync } from 'node:crypto';
import { Header } from 'tar';
import { describe, expect, it } from 'vitest';
import { buildBundle, parseManifest, readBundle, signBundle, verifyBundle } from './bundle.js';
import { canonicalJson } from './canonical.js';
import { keyIdOf, parsePrivateKeyFile, tufKeyFromRaw, type PrivateKeyFile, type TufPublicKey } from './signing.js';

function makeKey(name: string): PrivateKeyFile {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const pub = tufKeyFromRaw(Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url'));
  const seed = Buffer.from(privateKey.export({ format: 'jwk' }).d!, 'base64url').toString('hex');
  return parsePrivateKeyFile(
    { type: 'patchwarden-private-key', name, role: 'author', keyid: keyIdOf(pub), public: pub, private: seed },
    name,
  );
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const script = Buffer.from('#!/bin/sh\necho fixed > /opt/acme/state\n');

function manifest(extra: Record<string, unknown> = {}) {
  return {
    id: 'custom/acme-hotfix-12',
    revision: 1,
    title: 'Acme hotfix 12',
    severity: 'high',
    platforms: [{ family: 'linux' }],
    applicability: { os: { family: 'linux' } },
    installed: { file: { path: '/opt/acme/state', exists: true } },
    payload: [{ path: 'scripts/install.sh', size: script.length, sha256: sha(script) }],
    install: [{ type: 'script', interpreter: 'sh', source: 'scripts/install.sh', timeoutSeconds: 60, expectExit: [0] }],
    ...extra,
  };
}

const author = makeKey('author');
const other = makeKey('other');
const trusted = (...keys: PrivateKeyFile[]) => new Map<string, TufPublicKey>(keys.map((k) => [k.keyid, k.public]));
const signed = () => signBundle(buildBundle(manifest(), new Map([['scripts/install.sh', script]])), author);

/** A raw ustar entry, built by hand so tests can make what our writer never would. */
function rawEntry(path: string, data: Buffer, type: string = 'File', extra: Record<string, unknown> = {}): Buffer {
  const h = Buffer.alloc(512);
  new Header({ path, mode: 0o644, size: type === 'File' ? data.length : 0, mtime: new Date(0), type: type as never, ...extra }).encode(h, 0);
  if (type !== 'File') return h;
  return Buffer.concat([h, data, Buffer.alloc((512 - (data.length % 512)) % 512)]);
}
const end = Buffer.alloc(1024);
/** the manifest as a bundle holds it: parsed (defaults filled in), in canonical form */
const cm = () => canonicalJson(parseManifest(manifest()));

describe('bundles', () => {
  it('build → sign → verify round-trips, deterministically', () => {
    const a = signed();
    const b = signed();
    // Ed25519 is deterministic and the archive has fixed metadata: same inputs, same bytes
    expect(a.equals(b)).toBe(true);
    const v = verifyBundle(a, { trusted: trusted(author) });
    expect(v.manifest.id).toBe('custom/acme-hotfix-12');
    expect(v.signers).toEqual([author.keyid]);
    expect(v.payload.get('scripts/install.sh')!.equals(script)).toBe(true);
    expect(v.digest).toBe(sha(canonicalJson(v.manifest)));
  });

  it('requires a threshold of distinct trusted keys', () => {
    const once = signed();
    expect(() => verifyBundle(once, { trusted: trusted(author, other), threshold: 2 })).toThrow(/1 valid signature.*2 needed/);
    const twice = signBundle(once, other);
    expect(verifyBundle(twice, { trusted: trusted(author, other), threshold: 2 }).signers.sort()).toEqual([author.keyid, other.keyid].sort());
    // signing again with the same key replaces its signature instead of counting twice
    const again = signBundle(once, author);
    expect(readBundle(again).signatures).toHaveLength(1);
  });

  it('refuses a signature by an unknown key, and an unsigned bundle', () => {
    expect(() => verifyBundle(signed(), { trusted: trusted(other) })).toThrow(expect.objectContaining({ code: 'E_SIGNATURE_INVALID', message: expect.stringMatching(/unknown key/) }));
    const unsigned = buildBundle(manifest(), new Map([['scripts/install.sh', script]]));
    expect(() => verifyBundle(unsigned, { trusted: trusted(author) })).toThrow(/not signed/);
  });

  it('refuses a tampered payload byte', () => {
    const b = Buffer.from(signed());
    const at = b.indexOf('echo fixed');
    b[at] = 'E'.charCodeAt(0);
    expect(() => verifyBundle(b, { trusted: trusted(author) })).toThrow(expect.objectContaining({ code: 'E_DIGEST_MISMATCH' }));
  });

  it('refuses a tampered manifest field, even when the archive is rebuilt consistently', () => {
    const good = readBundle(signed());
    // an attacker rebuilds the archive with a changed title and keeps the author's signature
    const forged = buildBundle({ ...good.manifest, title: 'Acme hotfix 12 (now with more)' }, good.payload, good.signatures);
    expect(() => verifyBundle(forged, { trusted: trusted(author) })).toThrow(expect.objectContaining({ code: 'E_SIGNATURE_INVALID' }));
    // and an in-place byte edit of manifest.json breaks the tar checksum or the signature
    const b = Buffer.from(signed());
    const at = b.indexOf('"severity":"high"');
    b.write('"severity":"low" ', at);
    expect(() => verifyBundle(b, { trusted: trusted(author) })).toThrow(/not valid|signature|canonical/);
  });

  it('refuses a changed (id, revision) under the old signature', () => {
    const good = readBundle(signed());
    const forged = buildBundle({ ...good.manifest, revision: 2 }, good.payload, good.signatures);
    expect(() => verifyBundle(forged, { trusted: trusted(author) })).toThrow(expect.objectContaining({ code: 'E_SIGNATURE_INVALID' }));
  });

  const hostile: [string, () => Buffer, RegExp][] = [
    ['a ../ path', () => Buffer.concat([rawEntry('manifest.json', cm()), rawEntry('payload/../../etc/passwd', Buffer.from('x')), end]), /leaves its folder/],
    ['an absolute path', () => Buffer.concat([rawEntry('manifest.json', cm()), rawEntry('/etc/passwd', Buffer.from('x')), end]), /absolute path/],
    ['a symlink', () => Buffer.concat([rawEntry('manifest.json', cm()), rawEntry('payload/scripts/install.sh', Buffer.alloc(0), 'SymbolicLink', { linkpath: '/etc/shadow' }), end]), /SymbolicLink entry/],
    ['a hard link', () => Buffer.concat([rawEntry('manifest.json', cm()), rawEntry('payload/scripts/install.sh', Buffer.alloc(0), 'Link', { linkpath: 'manifest.json' }), end]), /Link entry/],
    ['a device file', () => Buffer.concat([rawEntry('manifest.json', cm()), rawEntry('payload/dev', Buffer.alloc(0), 'CharacterDevice', { devmaj: 1, devmin: 3 }), end]), /CharacterDevice entry/],
    ['a directory', () => Buffer.concat([rawEntry('payload/', Buffer.alloc(0), 'Directory'), end]), /Directory entry/],
    ['a pax extension header', () => Buffer.concat([rawEntry('PaxHeader', Buffer.alloc(0), 'ExtendedHeader'), end]), /ExtendedHeader entry/],
    ['an unexpected top-level file', () => Buffer.concat([rawEntry('manifest.json', cm()), rawEntry('install.sh', script), end]), /not manifest.json/],
    ['a payload file the manifest does not list', () => Buffer.concat([rawEntry('manifest.json', cm()), rawEntry('payload/scripts/install.sh', script), rawEntry('payload/extra.bin', Buffer.from('x')), end]), /not listed/],
    ['a listed payload file that is missing', () => Buffer.concat([rawEntry('manifest.json', cm()), end]), /missing/],
    ['a duplicate entry', () => Buffer.concat([rawEntry('manifest.json', cm()), rawEntry('manifest.json', cm()), end]), /twice/],
    ['bytes after the end', () => Buffer.concat([signed(), Buffer.from('trailing')]), /after the end/],
    ['a non-canonical manifest', () => Buffer.concat([rawEntry('manifest.json', Buffer.from(JSON.stringify(manifest(), null, 2))), rawEntry('payload/scripts/install.sh', script), end]), /canonical/],
    ['a manifest that is not JSON', () => Buffer.concat([rawEntry('manifest.json', Buffer.from('{"id":')), end]), /not JSON/],
    ['garbage', () => Buffer.from('this is not a tar archive at all'.repeat(40)), /checksum|truncated/],
    ['an empty file', () => Buffer.alloc(0), /truncated/],
  ];
  for (const [name, make, message] of hostile) {
    it(`refuses ${name}`, () => {
      expect(() => verifyBundle(make(), { trusted: trusted(author) })).toThrow(message);
    });
  }

  it('refuses a bad header checksum', () => {
    const b = Buffer.from(signed());
    b[0] = b[0]! ^ 0x20; // flips a letter of "manifest.json"
    expect(() => readBundle(b)).toThrow(/bad checksum/);
  });

  it('refuses a truncated bundle at every cut', () => {
    const b = signed();
    for (const cut of [1, 511, 512, 700, b.length - 1024, b.length - 600, b.length - 1]) {
      expect(() => readBundle(b.subarray(0, cut)), `cut at ${cut}`).toThrow(expect.objectContaining({ code: 'E_BUNDLE_INVALID' }));
    }
  });

  it('refuses an oversized bundle before reading it', () => {
    const b = signed();
    expect(() => readBundle(b, { maxBytes: b.length - 1 })).toThrow(expect.objectContaining({ code: 'E_PAYLOAD_TOO_LARGE' }));
  });
});
