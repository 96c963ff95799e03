/**
 * Signature checks with gpgv, the verifier apt itself uses, against archive keyrings only (never
 * the user's own GnuPG keys: gpgv gets a fresh, empty home directory). Its machine-readable
 * status lines decide: a BADSIG anywhere refuses the file; otherwise at least one good signature
 * by a key of the keyrings is needed. The text we parse afterwards is the one gpgv says was
 * signed (its --output), never the raw file.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { PatchwardenError } from '@patchwarden/core';

/** Keyrings used when none is given: Debian's and Ubuntu's, where installed. */
export const DEFAULT_KEYRINGS = ['/usr/share/keyrings/debian-archive-keyring.gpg', '/usr/share/keyrings/ubuntu-archive-keyring.gpg'];

export function defaultKeyrings(): string[] {
  return DEFAULT_KEYRINGS.filter((k) => existsSync(k));
}

export type SignatureCheck =
  | { status: 'good'; signers: string[]; text?: string }
  /** tampered or damaged: never usable */
  | { status: 'bad'; detail: string }
  /** no signature by a key of the keyrings (unknown, expired or revoked key) */
  | { status: 'untrusted'; detail: string };

function run(args: string[], home: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res, rej) => {
    const child = spawn('gpgv', ['--homedir', home, '--status-fd', '1', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      if (stderr.length < 16384) stderr += d.toString();
    });
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') rej(new PatchwardenError('E_VALIDATION', 'gpgv is needed to verify repository signatures and was not found', { hint: 'install it: apt-get install gpgv' }));
      else rej(err);
    });
    child.on('close', (code) => res({ code, stdout, stderr }));
  });
}

function judge(status: string, stderr: string): SignatureCheck {
  const lines = status.split('\n').filter((l) => l.startsWith('[GNUPG:] '));
  const words = lines.map((l) => l.slice(9).split(' '));
  const bad = words.find((w) => w[0] === 'BADSIG');
  if (bad) return { status: 'bad', detail: `bad signature by key ${bad[1]} (${bad.slice(2).join(' ')}): the file was altered` };
  const signers = words.filter((w) => w[0] === 'VALIDSIG').map((w) => w[1]!);
  const good = new Set(words.filter((w) => w[0] === 'GOODSIG').map((w) => w[1]!));
  // VALIDSIG also follows EXPKEYSIG/REVKEYSIG; only keys that gave a GOODSIG count
  const trusted = signers.filter((fpr) => [...good].some((id) => fpr.endsWith(id)));
  if (trusted.length > 0) return { status: 'good', signers: trusted };
  const why = words
    .filter((w) => ['ERRSIG', 'EXPKEYSIG', 'REVKEYSIG', 'NO_PUBKEY', 'NODATA'].includes(w[0]!))
    .map((w) => `${w[0]} ${w[1] ?? ''}`.trim());
  if (words.some((w) => w[0] === 'NODATA')) return { status: 'bad', detail: `no signature found (${why.join(', ')})` };
  return { status: 'untrusted', detail: why.length ? `no good signature by a key of the keyring (${why.join(', ')})` : stderr.trim().split('\n').pop() ?? 'gpgv failed' };
}

async function withTemp<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'patchwarden-gpgv-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function keyringArgs(keyrings: string[]): string[] {
  if (keyrings.length === 0) throw new Error('no keyring');
  // a bare name would be looked up in the (empty) home directory
  return keyrings.flatMap((k) => ['--keyring', isAbsolute(k) ? k : resolve(k)]);
}

/** Verifies a clear-signed InRelease; on success `text` is the signed content. */
export function verifyClearSigned(data: Buffer, keyrings: string[]): Promise<SignatureCheck> {
  return withTemp(async (dir) => {
    const input = join(dir, 'InRelease');
    const output = join(dir, 'signed');
    await writeFile(input, data);
    const r = await run([...keyringArgs(keyrings), '--output', output, input], dir);
    const verdict = judge(r.stdout, r.stderr);
    if (verdict.status !== 'good') return verdict;
    if (r.code !== 0 && !existsSync(output)) return { status: 'bad', detail: r.stderr.trim() || `gpgv exit status ${r.code}` };
    return { ...verdict, text: await readFile(output, 'utf8') };
  });
}

/** Verifies a Release file against its detached Release.gpg. */
export function verifyDetached(data: Buffer, signature: Buffer, keyrings: string[]): Promise<SignatureCheck> {
  return withTemp(async (dir) => {
    const input = join(dir, 'Release');
    const sig = join(dir, 'Release.gpg');
    await writeFile(input, data);
    await writeFile(sig, signature);
    const r = await run([...keyringArgs(keyrings), sig, input], dir);
    return judge(r.stdout, r.stderr);
  });
}
