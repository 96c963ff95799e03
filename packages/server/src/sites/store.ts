/**
 * Sites: the local patch servers that sync from this (central) server. Each has its own
 * credential, a 256-bit token shown once and stored as SHA-256 like device tokens, and a mode:
 * `replica` takes the central server's approvals over the site channel, `autonomous` keeps its
 * own. A site reports what it serves after every sync, so the central server can tell which
 * sites are behind.
 */
import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import { PatchwardenError } from '@patchwarden/core';
import type { DB } from '../db/schema.js';
import { hashToken, newId } from '../auth/tokens.js';

export const SITE_MODES = ['replica', 'autonomous'] as const;
export type SiteMode = (typeof SITE_MODES)[number];

export interface SiteIdentity {
  kind: 'site';
  id: string;
  name: string;
  mode: SiteMode;
}

/** What a local server reports after a sync (or a failed one). */
export interface SiteReport {
  root: number | null;
  timestamp: number | null;
  snapshot: number | null;
  targets: number;
  expires: string | null;
  syncedAt: string | null;
  error: string | null;
}

export interface SiteInfo {
  id: string;
  name: string;
  mode: SiteMode;
  createdAt: string;
  revokedAt: string | null;
  lastSeenAt: string | null;
  reportedAt: string | null;
  report: SiteReport | null;
  /** null: the site never reported; true: it serves an older snapshot than this server's */
  behind: boolean | null;
}

const iso = (ms: number | null) => (ms === null ? null : new Date(Number(ms)).toISOString());

/** `pws_` + 256 random bits (auth/tokens.ts makes the other kinds the same way). */
export function newSiteToken(): string {
  return 'pws_' + randomBytes(32).toString('base64url');
}

async function currentVersions(db: Kysely<DB>): Promise<{ snapshot: number | null; timestamp: number | null }> {
  const rows = await db.selectFrom('tuf_roles').select(['name', 'version']).where('name', 'in', ['snapshot', 'timestamp']).execute();
  const v = (n: string) => rows.find((r) => r.name === n)?.version ?? null;
  return { snapshot: v('snapshot'), timestamp: v('timestamp') };
}

export async function listSites(db: Kysely<DB>): Promise<SiteInfo[]> {
  const rows = await db.selectFrom('sites').selectAll().orderBy('name').execute();
  const central = await currentVersions(db);
  return rows.map((r) => {
    const report = r.report_json ? (JSON.parse(r.report_json) as SiteReport) : null;
    // behind: a snapshot older than ours (a timestamp alone moves on re-signing, which
    // changes nothing a device sees)
    const behind = report?.snapshot == null || central.snapshot === null ? null : report.snapshot < central.snapshot;
    return {
      id: r.id,
      name: r.name,
      mode: r.mode,
      createdAt: iso(r.created_at)!,
      revokedAt: iso(r.revoked_at),
      lastSeenAt: iso(r.last_seen_at),
      reportedAt: iso(r.reported_at),
      report,
      behind,
    };
  });
}

async function getSite(db: Kysely<DB>, idOrName: string): Promise<SiteInfo> {
  const s = (await listSites(db)).find((x) => x.id === idOrName || x.name === idOrName);
  if (!s) throw new PatchwardenError('E_NOT_FOUND', `no site '${idOrName}'`, { hint: 'list them with GET /api/v1/sites' });
  return s;
}

/** Creates a site; the clear token is returned this once and never stored. */
export async function createSite(db: Kysely<DB>, name: string, mode: SiteMode, now: number): Promise<SiteInfo & { token: string }> {
  const existing = await db.selectFrom('sites').select('id').where('name', '=', name).executeTakeFirst();
  if (existing) throw new PatchwardenError('E_CONFLICT', `a site named '${name}' exists`, { hint: 'choose another name, or revoke the old site first and reuse nothing of it' });
  const token = newSiteToken();
  const id = newId();
  await db.insertInto('sites').values({ id, name, mode, token_hash: hashToken(token), created_at: now }).execute();
  return { ...(await getSite(db, id)), token };
}

export async function revokeSite(db: Kysely<DB>, idOrName: string, now: number): Promise<SiteInfo> {
  const s = await getSite(db, idOrName);
  await db.updateTable('sites').set({ revoked_at: now }).where('id', '=', s.id).where('revoked_at', 'is', null).execute();
  return getSite(db, s.id);
}

/** The site a token belongs to (revoked sites too: the caller tells them apart). */
export async function findSiteByToken(db: Kysely<DB>, token: string): Promise<(SiteIdentity & { revoked: boolean }) | null> {
  const r = await db.selectFrom('sites').select(['id', 'name', 'mode', 'revoked_at']).where('token_hash', '=', hashToken(token)).executeTakeFirst();
  return r ? { kind: 'site', id: r.id, name: r.name, mode: r.mode, revoked: r.revoked_at !== null } : null;
}

export async function touchSite(db: Kysely<DB>, id: string, now: number): Promise<void> {
  await db.updateTable('sites').set({ last_seen_at: now }).where('id', '=', id).execute();
}

export async function recordReport(db: Kysely<DB>, id: string, report: SiteReport, now: number): Promise<void> {
  await db.updateTable('sites').set({ report_json: JSON.stringify(report), reported_at: now, last_seen_at: now }).where('id', '=', id).execute();
}
