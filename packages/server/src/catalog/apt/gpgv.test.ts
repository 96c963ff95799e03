import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { verifyClearSigned, verifyDetached } from './gpgv.js';
import { DEBIAN_KEYRING, hostInReleases, MIRROR, TEST_KEYRING } from './testing.js';

/** Flips one letter inside the signed text (not in the armor). */
function tamper(data: Buffer, field: string): Buffer {
  const text = data.toString('latin1');
  const at = text.indexOf(`\n${field}: `) + field.length + 3;
  expect(at).toBeGreaterThan(field.length + 3);
  const b = Buffer.from(data);
  b[at] = b[at] === 0x41 ? 0x42 : 0x41;
  return b;
}

describe('gpgv', () => {
  it("verifies this machine's InRelease files with Debian's archive keyring", async () => {
    for (const file of hostInReleases()) {
      const data = readFileSync(file);
      const r = await verifyClearSigned(data, [DEBIAN_KEYRING]);
      expect(r.status, file).toBe('good');
      if (r.status !== 'good') continue;
      expect(r.signers.length, file).toBeGreaterThan(0);
      expect(r.signers[0]).toMatch(/^[0-9A-F]{40}$/);
      // the text handed on is what was signed
      expect(r.text).toMatch(/^Origin: /);
      expect(data.toString('utf8')).toContain(r.text!.split('\n').slice(0, 5).join('\n'));
    }
  });

  it('refuses a tampered copy as a bad signature', async () => {
    const [file] = hostInReleases();
    const r = await verifyClearSigned(tamper(readFileSync(file!), 'Date'), [DEBIAN_KEYRING]);
    expect(r).toMatchObject({ status: 'bad', detail: expect.stringMatching(/bad signature by key [0-9A-F]+ .*altered/) });
  });

  it('calls a signature by a key outside the keyrings untrusted', async () => {
    const [file] = hostInReleases();
    const r = await verifyClearSigned(readFileSync(file!), [TEST_KEYRING]);
    expect(r).toMatchObject({ status: 'untrusted', detail: expect.stringMatching(/no good signature by a key of the keyring \(.*NO_PUBKEY/) });
  });

  it('verifies a detached Release.gpg, and refuses it for an altered Release', async () => {
    const release = readFileSync(`${MIRROR}/dists/bookworm/Release`);
    const sig = readFileSync(`${MIRROR}/dists/bookworm/Release.gpg`);
    expect(await verifyDetached(release, sig, [TEST_KEYRING])).toMatchObject({ status: 'good', signers: [expect.stringMatching(/^[0-9A-F]{40}$/)] });
    expect(await verifyDetached(tamper(release, 'Codename'), sig, [TEST_KEYRING])).toMatchObject({ status: 'bad' });
    expect(await verifyDetached(release, Buffer.from('not a signature'), [TEST_KEYRING])).toMatchObject({ status: 'bad' });
  });

  it('refuses a clear-signed file with no signature in it', async () => {
    const r = await verifyClearSigned(readFileSync(`${MIRROR}/dists/bookworm/Release`), [TEST_KEYRING]);
    expect(r.status).toBe('bad');
  });
});
