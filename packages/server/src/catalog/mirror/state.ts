/**
 * What a local server trusts, as persisted: the root it was pinned to (by file or sha256), and
 * after each sync the verified root, timestamp and snapshot (`mirror_state`) with the other
 * roles' bytes as mirrored (`tuf_roles` names each current version, `tuf_files` holds its
 * bytes; the sync writes all of them in one transaction, so they always agree).
 */
import { readFileSync } from 'node:fs';
import type { Kysely } from 'kysely';
import { PatchwardenError, sha256Hex } from '@patchwarden/core';
import type { DB, MirrorStateTable } from '../../db/schema.js';
import type { MirrorState, VerifiedRole } from '../tuf/client.js';

export const MIRROR_ROW = 'central';
const TOP = ['root', 'timestamp', 'snapshot'];

/** The central root a local server trusts first: its bytes (from a file), or only its sha256 (fetched, then compared). */
export interface PinnedRoot {
  sha256: string;
  bytes?: Uint8Array;
  /** for messages: the file, or `sha256:…` */
  from: string;
}

/** `sha256:HEX`, or a root.json file (what `GET /api/v1/tuf-root` of the central server gives). */
export function parseRootPin(value: string): PinnedRoot {
  const m = /^sha256:([0-9a-fA-F]{64})$/.exec(value.trim());
  if (m) return { sha256: m[1]!.toLowerCase(), from: value.trim() };
  let bytes: Buffer;
  try {
    bytes = readFileSync(value);
  } catch (err) {
    throw new PatchwardenError('E_CONFIG_INVALID', `cannot read the central root ${value}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, {
      hint: 'give --upstream-root the central root.json (from GET /api/v1/tuf-root on the central server, checked out of band) or sha256:HEX',
    });
  }
  try {
    const j = JSON.parse(bytes.toString('utf8')) as { signed?: { _type?: unknown } };
    if (j.signed?._type !== 'root') throw new Error('not root metadata');
  } catch (err) {
    throw new PatchwardenError('E_CONFIG_INVALID', `${value} is not the catalog's root metadata: ${(err as Error).message}`, { hint: 'save it from GET /api/v1/tuf-root on the central server' });
  }
  return { sha256: sha256Hex(bytes), bytes: new Uint8Array(bytes), from: value };
}

export async function mirrorRow(db: Kysely<DB>): Promise<MirrorStateTable | undefined> {
  return db.selectFrom('mirror_state').selectAll().where('id', '=', MIRROR_ROW).executeTakeFirst();
}

/** The trusted state of the last sync, or null before the first one. */
export async function loadMirrorState(db: Kysely<DB>): Promise<MirrorState | null> {
  const row = await mirrorRow(db);
  if (!row) return null;
  const rows = await db
    .selectFrom('tuf_roles as r')
    .innerJoin('tuf_files as f', (j) => j.onRef('f.role', '=', 'r.name').onRef('f.version', '=', 'r.version'))
    .select(['r.name', 'r.version', 'f.bytes'])
    .where('r.name', 'not in', TOP)
    .execute();
  const roles = new Map<string, VerifiedRole>();
  for (const r of rows) roles.set(r.name, { name: r.name, version: r.version, bytes: new Uint8Array(r.bytes) });
  const state: MirrorState = { root: new Uint8Array(row.root), roles };
  if (row.timestamp) state.timestamp = new Uint8Array(row.timestamp);
  if (row.snapshot) state.snapshot = new Uint8Array(row.snapshot);
  return state;
}
