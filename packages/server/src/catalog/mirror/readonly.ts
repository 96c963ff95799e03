/**
 * A local server's catalog is the central server's, byte for byte: it holds no catalog key and
 * signs nothing. The repository it serves from is therefore read-only, and the routes that
 * would add to the catalog (vendor patches, bundles, authors, custom listings) answer
 * E_FORBIDDEN before they store anything. Only a sync (apply.ts) writes the mirrored tables.
 */
import type { FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import { PatchwardenError } from '@patchwarden/core';
import type { DB } from '../../db/schema.js';
import { TufRepository, type RepoKeys } from '../tuf/repo.js';

export function centralTakesIt(what: string): PatchwardenError {
  return new PatchwardenError('E_FORBIDDEN', `this is a local patch server: it mirrors the central server's signed catalog and cannot take ${what}`, {
    hint: 'publish on the central server; the local server receives it with its next sync (`patchwarden catalog sync`)',
  });
}

export class MirrorRepository extends TufRepository {
  constructor(db: Kysely<DB>, now: () => number) {
    // no keys at all: every method that would sign is refused below
    super(db, {} as RepoKeys, now);
  }

  override get holdsTargetsKeys(): boolean {
    return false;
  }

  override async initialize(): Promise<void> {
    throw centralTakesIt('a root of its own');
  }

  override async setAuthors(): Promise<number> {
    throw centralTakesIt('author keys');
  }

  override async store(): Promise<void> {
    throw centralTakesIt('signed metadata');
  }

  override async snapshotAndTimestamp(): Promise<void> {
    throw centralTakesIt('signed metadata');
  }

  override async publishVendorTargets(): Promise<{ bins: number; targets: number }> {
    throw centralTakesIt('vendor patches');
  }

  override async refreshExpiring(): Promise<{ resigned: string[]; offlineExpiring: { role: string; expiresAt: number }[] }> {
    // the central server re-signs; a sync brings the new versions
    return { resigned: [], offlineExpiring: [] };
  }

  override async signForExport(): Promise<{ expiresAt: number; limitedBy: string | null }> {
    throw centralTakesIt('re-signing for an export');
  }

  override async rotateRoot(): Promise<number> {
    throw centralTakesIt('a root rotation');
  }
}

/** The routes that add to the catalog; refused on a local server before their bodies are read. */
const WRITES = new Set([
  'POST /api/v1/catalog/patches',
  'POST /api/v1/catalog/bundles',
  'PUT /api/v1/catalog/custom-role',
  'POST /api/v1/catalog/authors',
  'POST /api/v1/catalog/metadata',
]);

export function refuseCatalogWrites(app: FastifyInstance): void {
  // registered after the auth hook: a caller without credentials still learns that first
  app.addHook('onRequest', async (req) => {
    if (WRITES.has(`${req.method} ${req.routeOptions.url}`)) throw centralTakesIt(req.routeOptions.url === '/api/v1/catalog/patches' ? 'vendor patches' : 'bundles, authors, custom listings or signed metadata');
  });
}
