import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseRelease, releaseCodename, slug, splitClearSigned } from './release.js';
import { hostInReleases, MIRROR } from './testing.js';

describe('Release files', () => {
  it('reads the fields and the SHA256 list', () => {
    const r = parseRelease(readFileSync(`${MIRROR}/dists/bookworm/Release`, 'utf8'), 'Release');
    expect(r).toMatchObject({
      origin: 'Debian',
      label: 'Debian',
      suite: 'stable',
      codename: 'bookworm',
      date: '2024-11-09T10:00:00.000Z',
      validUntil: '2056-01-01T00:00:00.000Z',
      architectures: ['amd64'],
      components: ['main'],
      notAutomatic: false,
    });
    expect(r.files.get('main/binary-amd64/Packages')).toEqual({ sha256: expect.stringMatching(/^[0-9a-f]{64}$/), size: 2844 });
    expect([...r.files.keys()]).toEqual(['main/binary-amd64/Packages', 'main/binary-amd64/Packages.gz']);
  });

  it("reads this machine's InRelease files", () => {
    for (const file of hostInReleases()) {
      const r = parseRelease(splitClearSigned(readFileSync(file, 'utf8'), file).text, file);
      expect(r.origin, file).toBeTruthy();
      expect(r.codename ?? r.suite, file).toBeTruthy();
      expect(r.date, file).toMatch(/^\d{4}-\d\d-\d\dT/);
      expect(r.architectures.length, file).toBeGreaterThan(0);
      expect(r.files.size, file).toBeGreaterThan(0);
    }
  });

  it('refuses what is not a Release file', () => {
    const base = 'Origin: X\nCodename: c\n';
    expect(() => parseRelease('Origin: X\n', 'R')).toThrow(/neither Codename nor Suite/);
    expect(() => parseRelease(`${base}Date: yesterday-ish\n`, 'R')).toThrow(/Date is not a date/);
    expect(() => parseRelease(`${base}SHA256:\n abc 12 main/x\n`, 'R')).toThrow(/bad SHA256 line/);
    expect(() => parseRelease(`${base}SHA256:\n ${'a'.repeat(64)} 12 ../../etc/passwd\n`, 'R')).toThrow(/bad SHA256 line/);
    expect(() => parseRelease(`${base}Origin: Y\n`, 'R')).toThrow(/appears twice/);
    expect(() => parseRelease(`${base}\nOrigin: Evil\n`, 'R')).toThrow(/more than one paragraph/);
    expect(() => parseRelease(`${base}no colon here\n`, 'R')).toThrow(/line 3 is not a field/);
  });

  it('splits clear-signed text strictly: nothing outside the signed block', () => {
    const signed = readFileSync(`${MIRROR}/dists/bookworm-security/InRelease`, 'utf8');
    expect(splitClearSigned(signed, 'x').text).toBe(readFileSync(`${MIRROR}/dists/bookworm-security/Release`, 'utf8'));
    expect(() => splitClearSigned(`${signed}\nOrigin: Evil\n`, 'x')).toThrow(/text after the signature/);
    expect(() => splitClearSigned(`Origin: Evil\n${signed}`, 'x')).toThrow(/not a clear-signed message/);
    expect(() => splitClearSigned(signed.replace(/-----BEGIN PGP SIGNATURE-----[^]*$/, ''), 'x')).toThrow(/signature block is missing/);
    expect(splitClearSigned('-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n- -dashed\nA: b\n-----BEGIN PGP SIGNATURE-----\nxx\n-----END PGP SIGNATURE-----\n', 'x').text).toBe('-dashed\nA: b\n');
  });

  it('names the release a suite belongs to', () => {
    expect(releaseCodename({ codename: 'bookworm-security', suite: 'oldstable-security' })).toBe('bookworm');
    expect(releaseCodename({ codename: 'bookworm-updates' })).toBe('bookworm');
    expect(releaseCodename({ codename: 'jammy', suite: 'jammy-security' })).toBe('jammy');
    expect(releaseCodename({ codename: 'bookworm-backports' })).toBe('bookworm-backports');
    expect(releaseCodename({ suite: 'Sid' })).toBe('sid');
    expect(slug('Debian Backports')).toBe('debian-backports');
    expect(slug('Ubuntu')).toBe('ubuntu');
    expect(slug('LP-PPA-deadsnakes')).toBe('lp-ppa-deadsnakes');
    expect(slug('--')).toBe('unknown');
  });
});
