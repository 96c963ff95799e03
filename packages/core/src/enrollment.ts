/**
 * The enrollment string: everything a device must trust at first contact, in one value an
 * administrator copies: `pw1.<secret>.<CA sha256>.<root sha256>`. The agent pins the server's
 * certificate authority and the catalog root by these fingerprints before it sends the secret.
 * A `-` stands for what the server does not have (plain HTTP, or no catalog root yet).
 */
import { PatchwardenError } from './errors.js';

export interface EnrollmentString {
  secret: string;
  caSha256: string | null;
  rootSha256: string | null;
}

const HEX = /^[0-9a-f]{64}$/;

export function formatEnrollmentString(e: EnrollmentString): string {
  return ['pw1', e.secret, e.caSha256 ?? '-', e.rootSha256 ?? '-'].join('.');
}

export function parseEnrollmentString(value: string): EnrollmentString {
  const parts = value.trim().split('.');
  const bad = (why: string) =>
    new PatchwardenError('E_VALIDATION', `not an enrollment string: ${why}`, { hint: 'copy the whole string the administrator gave you (pw1.pwe_….….…)' });
  if (parts.length !== 4 || parts[0] !== 'pw1') throw bad('it has the form pw1.SECRET.CA.ROOT');
  const [, secret, ca, root] = parts as [string, string, string, string];
  if (!/^pwe_[A-Za-z0-9_-]{20,100}$/.test(secret)) throw bad('the secret part is malformed');
  const fp = (s: string, what: string) => {
    if (s === '-') return null;
    const hex = s.toLowerCase().replace(/:/g, '');
    if (!HEX.test(hex)) throw bad(`the ${what} fingerprint is not 64 hex digits`);
    return hex;
  };
  return { secret, caSha256: fp(ca, 'certificate authority'), rootSha256: fp(root, 'catalog root') };
}
