/**
 * Fuzzing the bundle reader (the strict ustar walk, then manifest, signatures and payload):
 * byte mutations, half of them with every header checksum made valid again so that the
 * mutation reaches the fields behind the checksum. The contract: verifyBundle returns or throws
 * a PatchwardenError of the bundle's codes.
 */
import { createHash, generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { buildBundle, readBundle, signBundle, verifyBundle } from './bundle.js';
import { keyIdOf, parsePrivateKeyFile, tufKeyFromRaw, type TufPublicKey } from './signing.js';
import { formatFuzzStats, fuzz, fuzzSettings, mutateBytes, passedShare, type FuzzRng } from './testing/fuzz.js';

const { seed: SEED, scale } = fuzzSettings(process.env, 0xb0d1e);

const { publicKey, privateKey } = generateKeyPairSync('ed25519');
const pub = tufKeyFromRaw(Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url'));
const author = parsePrivateKeyFile(
  { type: 'patchwarden-private-key', name: 'author', role: 'author', keyid: keyIdOf(pub), public: pub, private: Buffer.from(privateKey.export({ format: 'jwk' }).d!, 'base64url').toString('hex') },
  'author',
);
const trusted = new Map<string, TufPublicKey>([[author.keyid, author.public]]);
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

const script = Buffer.from('#!/bin/sh\necho fixed > /opt/acme/state\n');
const conf = Buffer.from('level=3\n'.repeat(100));
const manifest = (payload: [string, Buffer][]) => ({
  id: 'custom/acme-hotfix-12',
  revision: 1,
  title: 'Acme hotfix 12',
  severity: 'high',
  platforms: [{ family: 'linux' }],
  applicability: { os: { family: 'linux' } },
  installed: { file: { path: '/opt/acme/state', exists: true } },
  payload: payload.map(([path, b]) => ({ path, size: b.length, sha256: sha(b) })),
  install: [{ type: 'script', interpreter: 'sh', source: 'scripts/install.sh', timeoutSeconds: 60, expectExit: [0] }],
});
const one: [string, Buffer][] = [['scripts/install.sh', script]];
const two: [string, Buffer][] = [...one, ['files/acme.conf', conf]];
const CORPUS = [
  new Uint8Array(signBundle(buildBundle(manifest(one), new Map(one)), author)),
  new Uint8Array(signBundle(buildBundle(manifest(two), new Map(two)), author)),
  new Uint8Array(buildBundle(manifest(one), new Map(one))),
];
const CODES = ['E_BUNDLE_INVALID', 'E_VALIDATION', 'E_DIGEST_MISMATCH', 'E_SIGNATURE_INVALID', 'E_PAYLOAD_TOO_LARGE'] as const;

/** Recomputes the checksum of every block that looks like a ustar header (magic at 257). */
export function fixTarChecksums(b: Uint8Array): Uint8Array {
  const out = b.slice();
  for (let off = 0; off + 512 <= out.length; off += 512) {
    if (String.fromCharCode(...out.subarray(off + 257, off + 262)) !== 'ustar') continue;
    out.fill(0x20, off + 148, off + 156);
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += out[off + i]!;
    const text = `${sum.toString(8).padStart(6, '0')}\0 `;
    for (let i = 0; i < 8; i++) out[off + 148 + i] = text.charCodeAt(i);
  }
  return out;
}

/** Byte mutations aimed at the headers (name, mode, size, type) more often than at random. */
export function mutateTar(b: Uint8Array, rng: FuzzRng, corpus: readonly Uint8Array[]): Uint8Array {
  let out: Uint8Array;
  if (rng.chance(0.5)) {
    out = b.slice();
    const headers: number[] = [];
    for (let off = 0; off + 512 <= out.length; off += 512) if (String.fromCharCode(...out.subarray(off + 257, off + 262)) === 'ustar') headers.push(off);
    const h = headers.length ? rng.pick(headers) : 0;
    // name 0..100, size 124..136 (octal or base-256), typeflag 156, prefix 345..500
    const field = rng.pick([
      [0, 100],
      [124, 12],
      [156, 1],
      [345, 155],
      [100, 8],
    ] as const);
    const at = h + field[0] + rng.int(field[1]);
    if (at < out.length) {
      const choices = [0x00, 0x80, 0xff, 0x2e, 0x2f, 0x30, 0x37, 0x39, 0x20, 0x35, 0x31, 0x4c, 0x78, 0x67, rng.int(256)];
      out[at] = rng.pick(choices);
      if (rng.chance(0.3) && at + 1 < out.length) out[at + 1] = rng.pick(choices);
    }
  } else out = mutateBytes(b, rng, corpus, { maxStack: 2, maxLength: 1 << 20 });
  return rng.chance(0.7) ? fixTarChecksums(out) : out;
}

describe('bundles under fuzzing', () => {
  it(`verifyBundle returns or throws a bundle error code, never anything else (seed ${SEED})`, async () => {
    const stats = await fuzz({
      label: 'verifyBundle',
      corpus: CORPUS,
      seed: SEED,
      iterations: 3000 * scale,
      budgetMs: 1500 * scale,
      now: () => performance.now(),
      mutate: mutateTar,
      codes: CODES,
      run: (b, reached) => {
        let entries = true;
        try {
          readBundle(b, { maxBytes: 1 << 20 });
        } catch (err) {
          // refused by the tar walk itself: the front door
          const m = (err as Error).message;
          entries = !/archive|header|entry|appears twice|truncated|absolute path|leaves its folder|name outside|is not manifest\.json|too large|more than/.test(m);
          if (entries) reached();
          throw err;
        }
        reached();
        verifyBundle(b, { trusted, maxBytes: 1 << 20 });
      },
    });
    console.log(formatFuzzStats(stats));
    expect(passedShare(stats)).toBeGreaterThanOrEqual(5);
  });

  it('refuses a base-256 size beyond 2^53 or below zero with E_BUNDLE_INVALID (found by fuzzing)', () => {
    const withSize = (bytes: number[]) => {
      const b = CORPUS[2]!.slice();
      b.set(bytes, 124);
      return fixTarChecksums(b);
    };
    // tar threw a plain Error ("parsed number outside of javascript safe integer range")
    const huge = withSize([0x80, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    expect(() => readBundle(huge)).toThrow(expect.objectContaining({ code: 'E_BUNDLE_INVALID', message: expect.stringMatching(/cannot be read/) }));
    // -1024: tar reads no size, which was taken as 0 and the file's bytes as the next header
    const negative = withSize([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfc, 0x00]);
    expect(() => readBundle(negative)).toThrow(expect.objectContaining({ code: 'E_BUNDLE_INVALID', message: expect.stringMatching(/no valid size/) }));
  });
});
