/**
 * TLS by default: on its first start the server makes its own certificate authority (ECDSA
 * P-256, ten years) and a server certificate from it (about two years) for this machine's names
 * and addresses, in `<data-dir>/tls/`. Devices pin the CA by its SHA-256 fingerprint (carried in
 * the enrollment string). An administrator's own certificate and key replace them.
 */
import 'reflect-metadata';
import { createHash, createPrivateKey, webcrypto, X509Certificate, type KeyObject } from 'node:crypto';

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname, networkInterfaces } from 'node:os';
import { isIP } from 'node:net';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { PatchwardenError } from '@patchwarden/core';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
const DAY = 86_400_000;
export const TLS_DIR = 'tls';
export const CA_FILE = join(TLS_DIR, 'ca.crt');

export interface TlsMaterial {
  key: string;
  /** the server certificate followed by the CA's (the chain a client is sent) */
  cert: string;
  /** the CA certificate devices pin and administrators may import into browsers */
  caPem: string;
  /** sha256 of the CA certificate (DER), lower-case hex: what enrollment strings carry */
  caSha256: string;
  /** the names and addresses the server certificate covers */
  names: string[];
  notAfter: string;
}

/** SHA-256 of a certificate's DER, lower-case hex without colons. */
export function certSha256(pem: string): string {
  return createHash('sha256').update(new X509Certificate(pem).raw).digest('hex');
}

function pemKey(der: ArrayBuffer): string {
  const b64 = Buffer.from(der).toString('base64');
  return `-----BEGIN PRIVATE KEY-----\n${b64.match(/.{1,64}/g)!.join('\n')}\n-----END PRIVATE KEY-----\n`;
}

async function importKey(pem: string): Promise<CryptoKey> {
  const der = Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
  return webcrypto.subtle.importKey('pkcs8', der, ALG, true, ['sign']) as Promise<CryptoKey>;
}

const serial = () => Buffer.from(webcrypto.getRandomValues(new Uint8Array(16))).toString('hex').replace(/^[89a-f]/, '1');

/** This machine's names and addresses, plus the administrator's extra ones. */
export function defaultNames(extra: readonly string[] = []): string[] {
  const names = new Set(['localhost', '127.0.0.1', '::1', hostname(), ...extra]);
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) if (!a.internal) names.add(a.address.replace(/%.*$/, ''));
  return [...names].filter(Boolean);
}

async function makeCa(now: number): Promise<{ certPem: string; keyPem: string; key: CryptoKey }> {
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=Patchwarden CA (${hostname()})`,
    notBefore: new Date(now - DAY),
    notAfter: new Date(now + 3650 * DAY),
    keys,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: `${cert.toString('pem').trim()}\n`, keyPem: pemKey(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)), key: keys.privateKey };
}

async function makeServerCert(now: number, ca: { certPem: string; key: CryptoKey }, names: string[]): Promise<{ certPem: string; keyPem: string }> {
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const caCert = new x509.X509Certificate(ca.certPem);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${names.find((n) => !isIP(n) && n !== 'localhost') ?? 'localhost'}`,
    issuer: caCert.subject,
    notBefore: new Date(now - DAY),
    notAfter: new Date(now + 825 * DAY),
    signingKey: ca.key,
    publicKey: keys.publicKey,
    signingAlgorithm: ALG,
    extensions: [
      new x509.SubjectAlternativeNameExtension(names.map((n) => (isIP(n) ? { type: 'ip' as const, value: n } : { type: 'dns' as const, value: n }))),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.BasicConstraintsExtension(false, undefined, true),
      await x509.AuthorityKeyIdentifierExtension.create(caCert),
    ],
  });
  return { certPem: `${cert.toString('pem').trim()}\n`, keyPem: pemKey(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)) };
}

function covers(certPem: string, names: string[]): boolean {
  const c = new X509Certificate(certPem);
  const san = c.subjectAltName ?? '';
  return names.every((n) => san.includes(isIP(n) ? `IP Address:${n.includes(':') ? n.toUpperCase() : n}` : `DNS:${n}`));
}

/**
 * The data directory's CA and server certificate, made when missing; the server certificate is
 * made anew when it expires within 30 days or does not cover a wanted name (the CA stays, so
 * devices keep trusting the server).
 */
export async function loadOrCreateTls(dataDir: string, opts: { names?: readonly string[]; now?: number } = {}): Promise<TlsMaterial> {
  const now = opts.now ?? Date.now();
  const dir = join(dataDir, TLS_DIR);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const f = (n: string) => join(dir, n);
  let ca: { certPem: string; key: CryptoKey };
  if (existsSync(f('ca.crt')) && existsSync(f('ca.key'))) {
    ca = { certPem: readFileSync(f('ca.crt'), 'utf8'), key: await importKey(readFileSync(f('ca.key'), 'utf8')) };
  } else {
    const made = await makeCa(now);
    writeFileSync(f('ca.key'), made.keyPem, { mode: 0o600 });
    writeFileSync(f('ca.crt'), made.certPem, { mode: 0o644 });
    ca = made;
  }
  const names = defaultNames(opts.names);
  let certPem = existsSync(f('server.crt')) ? readFileSync(f('server.crt'), 'utf8') : null;
  let keyPem = existsSync(f('server.key')) ? readFileSync(f('server.key'), 'utf8') : null;
  const stale = !certPem || !keyPem || Date.parse(new X509Certificate(certPem).validTo) - now < 30 * DAY || !covers(certPem, names) || !new X509Certificate(certPem).verify(new X509Certificate(ca.certPem).publicKey);
  if (stale) {
    const made = await makeServerCert(now, ca, names);
    writeFileSync(f('server.key'), made.keyPem, { mode: 0o600 });
    writeFileSync(f('server.crt'), made.certPem, { mode: 0o644 });
    certPem = made.certPem;
    keyPem = made.keyPem;
  }
  return { key: keyPem!, cert: `${certPem!.trim()}\n${ca.certPem.trim()}\n`, caPem: ca.certPem, caSha256: certSha256(ca.certPem), names, notAfter: new Date(new X509Certificate(certPem!).validTo).toISOString() };
}

/** An administrator's certificate (with its chain) and key; `caFile` names the certificate devices pin (default: the first one). */
export function loadAdminTls(certFile: string, keyFile: string, caFile?: string): TlsMaterial {
  const read = (p: string) => {
    try {
      return readFileSync(p, 'utf8');
    } catch (err) {
      throw new PatchwardenError('E_CONFIG_INVALID', `cannot read ${p}: ${(err as Error).message}`);
    }
  };
  const cert = read(certFile);
  const key = read(keyFile);
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(cert);
  } catch {
    throw new PatchwardenError('E_CONFIG_INVALID', `${certFile} is not a PEM certificate`);
  }
  if (!leaf.checkPrivateKey(createPrivateKeySafe(key, keyFile))) throw new PatchwardenError('E_CONFIG_INVALID', `the key ${keyFile} does not belong to the certificate ${certFile}`);
  const caPem = caFile ? read(caFile) : cert.slice(0, cert.indexOf('-----END CERTIFICATE-----') + 25) + '\n';
  return { key, cert, caPem, caSha256: certSha256(caPem), names: (leaf.subjectAltName ?? '').split(', ').map((s) => s.replace(/^[^:]+:/, '')), notAfter: new Date(leaf.validTo).toISOString() };
}

function createPrivateKeySafe(pem: string, file: string): KeyObject {
  try {
    return createPrivateKey(pem);
  } catch {
    throw new PatchwardenError('E_CONFIG_INVALID', `${file} is not a PEM private key`);
  }
}
