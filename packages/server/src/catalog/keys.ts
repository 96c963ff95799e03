/**
 * Key files on disk: created here (randomness belongs outside core), read back with core's
 * checks. A private key file is written owner-only and never overwritten.
 */
import { generateKeyPairSync } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import {
  keyIdOf,
  parsePrivateKeyFile,
  parsePublicKeyFile,
  PatchwardenError,
  publicFileOf,
  tufKeyFromRaw,
  type KeyRole,
  type PrivateKeyFile,
  type PublicKeyFile,
} from '@patchwarden/core';

export function generateKey(name: string, role: KeyRole, now = new Date()): PrivateKeyFile {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const pub = tufKeyFromRaw(Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url'));
  const seed = Buffer.from(privateKey.export({ format: 'jwk' }).d!, 'base64url').toString('hex');
  return { type: 'patchwarden-private-key', name, role, keyid: keyIdOf(pub), public: pub, private: seed, created: now.toISOString() };
}

async function readJson(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new PatchwardenError('E_KEY_INVALID', `cannot read the key file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new PatchwardenError('E_KEY_INVALID', `${path} is not JSON`, { hint: 'a key file is what `patchwarden keys create` writes' });
  }
}

export async function readPrivateKey(path: string): Promise<PrivateKeyFile> {
  return parsePrivateKeyFile(await readJson(path), path);
}

export async function readPublicKey(path: string): Promise<PublicKeyFile> {
  return parsePublicKeyFile(await readJson(path), path);
}

/** Writes `NAME.key` (owner-only) and `NAME.pub`; refuses to overwrite either. */
export async function writeKeyPair(dir: string, key: PrivateKeyFile): Promise<{ privatePath: string; publicPath: string }> {
  const privatePath = `${dir}/${key.name}.key`;
  const publicPath = `${dir}/${key.name}.pub`;
  try {
    await writeFile(privatePath, JSON.stringify(key, null, 2) + '\n', { mode: 0o600, flag: 'wx' });
    await writeFile(publicPath, JSON.stringify(publicFileOf(key), null, 2) + '\n', { mode: 0o644, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new PatchwardenError('E_CONFLICT', `a key named ${key.name} already exists in ${dir}`, { hint: 'choose another name; a key file is never overwritten' });
    }
    throw err;
  }
  return { privatePath, publicPath };
}
