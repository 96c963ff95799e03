/**
 * The server's catalog keys in its data directory (never in the database, so a copy of the
 * database alone signs nothing): `keys/online.key`, made on first start; and, in local mode
 * only, `keys/root.key`, which signs root and top-level targets on this server. Local mode is
 * what `npm start` gives a new user; a production catalog keeps root and targets offline
 * (`patchwarden keys`), and the server holds the online key alone.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { generateKey, readPrivateKey, writeKeyPair } from '../keys.js';
import type { RepoKeys } from './repo.js';

export interface LoadedKeys extends RepoKeys {
  /** true when this server holds the root key (local mode) */
  local: boolean;
}

export async function loadOrCreateRepoKeys(dataDir: string, opts: { allowLocalRoot: boolean }): Promise<LoadedKeys> {
  const dir = join(dataDir, 'keys');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const onlinePath = join(dir, 'online.key');
  if (!existsSync(onlinePath)) await writeKeyPair(dir, generateKey('online', 'online'));
  const online = await readPrivateKey(onlinePath);
  const rootPath = join(dir, 'root.key');
  if (!existsSync(rootPath) && opts.allowLocalRoot) await writeKeyPair(dir, generateKey('root', 'root'));
  if (!existsSync(rootPath)) return { online, local: false };
  return { online, root: [await readPrivateKey(rootPath)], local: true };
}

/** Keys that live only as long as the process: for servers built in tests. */
export function ephemeralRepoKeys(): LoadedKeys {
  return { online: generateKey('online', 'online'), root: [generateKey('root', 'root')], local: true };
}
