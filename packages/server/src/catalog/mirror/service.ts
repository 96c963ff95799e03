/**
 * A local server's mirror: one sync or import at a time, its progress, and what the last one
 * did. Online, each sync first asks the site channel who this site is (a revoked credential
 * stops it there), in replica mode takes the central server's approvals, syncs the signed
 * catalog, and reports what it serves (or why it failed) back to the central server.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { PatchwardenError } from '@patchwarden/core';
import type { AppContext } from '../../http/context.js';
import { ExportFile } from './export-file.js';
import { HttpRemote, type SiteSelf } from './remote-http.js';
import { MIRROR_ROW, mirrorRow, type PinnedRoot } from './state.js';
import { syncCatalog, type SyncProgress, type SyncReport, type SyncSource } from './sync.js';

type Ctx = Pick<AppContext, 'db' | 'compliance' | 'now'>;

/** The central server as a sync sees it: the signed catalog and the site channel. */
export interface UpstreamSource extends SyncSource {
  self(): Promise<SiteSelf>;
  json<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T>;
  close(): void;
}

export interface MirrorConfig {
  /** the central server's URL; absent on an air-gapped local server (imports only) */
  upstream?: string;
  /** the site token (`pws_…`) */
  token?: string;
  /** the central server's CA: PEM, or sha256:HEX of the one it serves */
  ca?: string;
  pin: PinnedRoot;
  /** where uploaded export files are spooled before they are read */
  workDir: string;
  /** the largest export file taken (default 64 GiB) */
  maxImportBytes?: number;
  timeoutMs?: number;
  /** targets fetched at once */
  concurrency?: number;
  /** how the central server is reached (tests replace it) */
  connect?: (config: MirrorConfig) => UpstreamSource;
}

export interface MirrorStatus {
  upstream: string | null;
  pinnedRoot: string;
  site: { name: string; mode: string } | null;
  running: { kind: 'sync' | 'import'; startedAt: string; progress: SyncProgress | null } | null;
  lastAttemptAt: string | null;
  lastSuccessAt: string | null;
  lastError: { code: string; message: string; hint?: string } | null;
  /** what this server serves now */
  serving: { source: string; root: number | null; timestamp: number | null; snapshot: number | null; expires: string | null; targets: number } | null;
  last: SyncReport | null;
  approvals: { items: number; note: string };
}

interface Log {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

const iso = (ms: number | null | undefined) => (ms === null || ms === undefined ? null : new Date(Number(ms)).toISOString());

export class MirrorService {
  private running: { kind: 'sync' | 'import'; startedAt: number; promise: Promise<SyncReport> } | null = null;
  private progress: SyncProgress | null = null;
  private lastError: { code: string; message: string; hint?: string } | null = null;
  private approvals = { items: 0, note: 'no sync has asked the central server yet' };
  log: Log | null = null;

  constructor(
    private readonly ctx: Ctx,
    readonly config: MirrorConfig,
  ) {}

  /** A sync from the central server; joins the one running, if any. */
  sync(): Promise<SyncReport> {
    const { upstream, token } = this.config;
    if (!upstream || !token) {
      throw new PatchwardenError('E_CONFLICT', 'this local server has no upstream to sync from', {
        hint: 'start it with --upstream URL --upstream-token pws_…, or import an export file: `patchwarden catalog import FILE`',
      });
    }
    if (this.running?.kind === 'sync') return this.running.promise;
    return this.exclusive('sync', async () => {
      const remote = this.config.connect?.(this.config) ?? new HttpRemote({ baseUrl: upstream, token, ...(this.config.timeoutMs ? { timeoutMs: this.config.timeoutMs } : {}), ...(this.config.ca ? { ca: this.config.ca } : {}) });
      this.remote = remote;
      try {
        const self = await remote.self();
        await this.takeApprovals(remote, self);
        const report = await syncCatalog(this.ctx, remote, this.syncOptions());
        await this.ctx.db.updateTable('mirror_state').set({ site_name: self.name, site_mode: self.mode, last_result: JSON.stringify(report) }).where('id', '=', MIRROR_ROW).execute();
        await this.report(remote, report, null);
        return report;
      } catch (err) {
        await this.report(remote, null, err);
        throw err;
      } finally {
        this.remote = null;
        remote.close();
      }
    });
  }

  private remote: UpstreamSource | null = null;

  /** Stops a running sync (its connections are closed; what it fetched stays) and waits for it. */
  async close(): Promise<void> {
    const running = this.running;
    this.remote?.close();
    await running?.promise.catch(() => {});
  }

  /** An export file (already on this machine's disk), verified exactly like an online sync. */
  importFile(path: string, name = path): Promise<SyncReport> {
    return this.exclusive('import', async () => {
      const file = await ExportFile.open(path, `file:${name}`);
      try {
        const report = await syncCatalog(this.ctx, file, this.syncOptions());
        await this.ctx.db.updateTable('mirror_state').set({ last_result: JSON.stringify(report) }).where('id', '=', MIRROR_ROW).execute();
        return report;
      } finally {
        await file.close();
      }
    });
  }

  /**
   * Spools an uploaded export file to the work directory (bounded), imports it, removes it.
   * Answers once the file is spooled, with the import still running (its outcome goes to the status).
   */
  async importStream(body: Readable, name: string): Promise<{ done: Promise<SyncReport> }> {
    if (this.running) throw busy(this.running.kind);
    mkdirSync(this.config.workDir, { recursive: true, mode: 0o700 });
    const path = join(this.config.workDir, `import-${randomBytes(8).toString('hex')}.tar`);
    const max = this.config.maxImportBytes ?? 64 * 1024 ** 3;
    let got = 0;
    try {
      await pipeline(
        body,
        async function* (source: AsyncIterable<Buffer>) {
          for await (const chunk of source) {
            got += chunk.length;
            if (got > max) throw new PatchwardenError('E_PAYLOAD_TOO_LARGE', `the export file is larger than the ${max} bytes this server takes`);
            yield chunk;
          }
        },
        createWriteStream(path, { mode: 0o600 }),
      );
    } catch (err) {
      rmSync(path, { force: true });
      throw err;
    }
    try {
      const done = this.importFile(path, name).finally(() => rmSync(path, { force: true }));
      return { done };
    } catch (err) {
      rmSync(path, { force: true });
      throw err;
    }
  }

  async status(): Promise<MirrorStatus> {
    const row = await mirrorRow(this.ctx.db);
    const roles = await this.ctx.db.selectFrom('tuf_roles').select(['name', 'version', 'expires_at']).execute();
    const targets = Number((await this.ctx.db.selectFrom('tuf_targets').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
    const v = (n: string) => roles.find((r) => r.name === n)?.version ?? null;
    return {
      upstream: this.config.upstream ?? null,
      pinnedRoot: row?.pinned_sha256 ?? this.config.pin.sha256,
      site: row?.site_name ? { name: row.site_name, mode: row.site_mode ?? 'unknown' } : null,
      running: this.running ? { kind: this.running.kind, startedAt: iso(this.running.startedAt)!, progress: this.progress } : null,
      lastAttemptAt: iso(row?.last_attempt_at),
      lastSuccessAt: iso(row?.last_success_at),
      lastError: this.lastError ?? (row?.last_error ? (JSON.parse(row.last_error) as { code: string; message: string }) : null),
      serving: row
        ? { source: row.source, root: v('root'), timestamp: v('timestamp'), snapshot: v('snapshot'), expires: roles.length ? iso(Math.min(...roles.map((r) => Number(r.expires_at)))) : null, targets }
        : null,
      last: row?.last_result ? (JSON.parse(row.last_result) as SyncReport) : null,
      approvals: this.approvals,
    };
  }

  private syncOptions() {
    return {
      pin: this.config.pin,
      onProgress: (p: SyncProgress) => (this.progress = p),
      ...(this.config.concurrency ? { concurrency: this.config.concurrency } : {}),
    };
  }

  /**
   * Replica sites take the central server's approvals over the site channel. Approvals do not
   * exist yet; the channel does, and its (empty) answer is what a replica holds.
   */
  private async takeApprovals(remote: UpstreamSource, self: SiteSelf): Promise<void> {
    if (self.mode !== 'replica') {
      this.approvals = { items: 0, note: 'autonomous: this site keeps its own approvals' };
      return;
    }
    const a = await remote.json<{ items?: unknown[]; note?: string }>('GET', 'api/v1/sites/self/approvals');
    this.approvals = { items: Array.isArray(a.items) ? a.items.length : 0, note: `replica: ${typeof a.note === 'string' ? a.note.slice(0, 300) : 'approvals come from the central server'}` };
  }

  /** Tells the central server what this site serves; a failure to tell it fails nothing. */
  private async report(remote: UpstreamSource, r: SyncReport | null, err: unknown): Promise<void> {
    // a revoked or unknown credential cannot report anything
    if (err instanceof PatchwardenError && (err.code === 'E_FORBIDDEN' || err.code === 'E_UNAUTHENTICATED')) return;
    try {
      const s = await this.status();
      await remote.json('POST', 'api/v1/sites/self/report', {
        root: s.serving?.root ?? null,
        timestamp: s.serving?.timestamp ?? null,
        snapshot: s.serving?.snapshot ?? null,
        targets: s.serving?.targets ?? 0,
        expires: r?.expires ?? s.serving?.expires ?? null,
        syncedAt: s.lastSuccessAt,
        error: err ? `${(err as PatchwardenError).code ?? 'E_INTERNAL'}: ${(err as Error).message}`.slice(0, 2000) : null,
      });
    } catch (e) {
      this.log?.warn({ err: e }, 'could not report to the central server');
    }
  }

  private exclusive(kind: 'sync' | 'import', fn: () => Promise<SyncReport>): Promise<SyncReport> {
    if (this.running) throw busy(this.running.kind);
    const startedAt = this.ctx.now();
    this.progress = null;
    const promise = (async () => {
      try {
        const r = await fn();
        this.lastError = null;
        this.log?.info({ kind, changed: r.changed, snapshot: r.snapshot, fetched: r.targets.fetched, bytes: r.transfer.bytes, seconds: r.seconds }, 'catalog mirrored');
        return r;
      } catch (err) {
        const e =
          err instanceof PatchwardenError ? { code: err.code, message: err.message, ...(err.hint ? { hint: err.hint } : {}) } : { code: 'E_INTERNAL', message: (err as Error).message };
        this.lastError = e;
        await this.ctx.db.updateTable('mirror_state').set({ last_attempt_at: startedAt, last_error: JSON.stringify(e) }).where('id', '=', MIRROR_ROW).execute();
        this.log?.warn({ kind, code: e.code, error: e.message }, 'catalog sync failed; nothing was switched');
        throw err;
      } finally {
        this.running = null;
      }
    })();
    this.running = { kind, startedAt, promise };
    return promise;
  }
}

function busy(kind: string): PatchwardenError {
  return new PatchwardenError('E_CONFLICT', `a catalog ${kind} is running on this server`, { hint: 'wait for it to finish (`GET /api/v1/mirror/status`), then try again' });
}
