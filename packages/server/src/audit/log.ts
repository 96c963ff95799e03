/**
 * Appends to the audit log (one writer per server: appends are queued in order) and verifies it.
 * Every entry also goes to the configured sinks (a JSON-lines file, syslog) as it is written.
 */
import { sql, type Kysely } from 'kysely';
import { PatchwardenError } from '@patchwarden/core';
import type { DB } from '../db/schema.js';
import { entryHash, GENESIS, readAnchor, seal, sealMatches, writeAnchor, type AuditActor, type AuditEntry, type AuditFields } from './chain.js';

export interface AuditSink {
  write(entry: AuditEntry): void;
  close?(): Promise<void>;
}

type Row = DB['audit_log'];

function toEntry(r: Row): AuditEntry {
  return {
    seq: Number(r.seq),
    at: Number(r.at),
    actor: JSON.parse(r.actor_json) as AuditActor,
    action: r.action,
    target: r.target,
    detail: r.detail_json === null ? null : JSON.parse(r.detail_json),
    ip: r.ip,
    prevHash: r.prev_hash,
    hash: r.hash,
    mac: r.mac,
  };
}

export interface AuditVerdict {
  ok: boolean;
  entries: number;
  /** the newest link the anchor file vouches for (null: no anchor file) */
  anchoredSeq: number | null;
  problem: { seq: number; reason: string } | null;
}

export class AuditLog {
  private head: { seq: number; hash: string } | null = null;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly db: Kysely<DB>,
    private readonly key: Buffer,
    private readonly opts: { anchorFile?: string | undefined; sinks?: AuditSink[] } = {},
  ) {}

  /** Appends one entry after every earlier one; the answer is the stored entry. */
  append(f: AuditFields): Promise<AuditEntry> {
    const next = this.queue.then(() => this.write(f));
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async write(f: AuditFields): Promise<AuditEntry> {
    for (let attempt = 0; ; attempt++) {
      if (!this.head) {
        const last = await this.db.selectFrom('audit_log').select(['seq', 'hash']).orderBy('seq', 'desc').limit(1).executeTakeFirst();
        this.head = last ? { seq: Number(last.seq), hash: last.hash } : { seq: 0, hash: GENESIS };
      }
      const seq = this.head.seq + 1;
      const hash = entryHash(this.head.hash, seq, f);
      const entry: AuditEntry = { ...f, detail: f.detail ?? null, seq, prevHash: this.head.hash, hash, mac: seal(this.key, seq, hash) };
      try {
        await this.db
          .insertInto('audit_log')
          .values({ seq, at: f.at, actor_json: JSON.stringify(f.actor), action: f.action, target: f.target, detail_json: JSON.stringify(entry.detail), ip: f.ip, prev_hash: entry.prevHash, hash, mac: entry.mac })
          .execute();
      } catch (err) {
        // another writer took this number (a second server on the same database): read the head again
        this.head = null;
        if (attempt < 3) continue;
        throw err;
      }
      this.head = { seq, hash };
      if (this.opts.anchorFile) writeAnchor(this.opts.anchorFile, this.key, seq, hash);
      for (const s of this.opts.sinks ?? []) s.write(entry);
      return entry;
    }
  }

  async list(q: { limit: number; offset: number; action?: string | undefined; actor?: string | undefined; since?: number | undefined }): Promise<{ items: AuditEntry[]; total: number }> {
    let base = this.db.selectFrom('audit_log');
    if (q.action) base = base.where('action', '=', q.action);
    if (q.since !== undefined) base = base.where('at', '>=', q.since);
    // the actor's name exactly, as it stands in its JSON (LIKE wildcards in it are literal)
    if (q.actor) base = base.where('actor_json', 'like', sql<string>`${`%${`"name":${JSON.stringify(q.actor)}`.replace(/[!%_]/g, (c) => `!${c}`)}%`} escape '!'`);
    const [rows, total] = await Promise.all([
      base.selectAll().orderBy('seq', 'desc').limit(q.limit).offset(q.offset).execute(),
      base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow(),
    ]);
    return { items: rows.map(toEntry), total: Number(total.n) };
  }

  /** Every entry in order, in pages (for export and verification). */
  async *entries(fromSeq = 1, page = 1000): AsyncGenerator<AuditEntry> {
    let from = fromSeq;
    for (;;) {
      const rows = await this.db.selectFrom('audit_log').selectAll().where('seq', '>=', from).orderBy('seq').limit(page).execute();
      for (const r of rows) yield toEntry(r);
      if (rows.length < page) return;
      from = Number(rows[rows.length - 1]!.seq) + 1;
    }
  }

  /**
   * Walks the whole chain: numbers without gaps from 1, each link to the one before, each hash
   * recomputed, each seal checked with the key; then the anchor: the log reaches at least the
   * anchored entry, and that entry is the one anchored.
   */
  async verify(): Promise<AuditVerdict> {
    let prev = GENESIS;
    let n = 0;
    const hashes = new Map<number, string>();
    const anchor = this.opts.anchorFile ? readAnchor(this.opts.anchorFile, this.key) : null;
    const fail = (seq: number, reason: string): AuditVerdict => ({ ok: false, entries: n, anchoredSeq: anchor?.seq ?? null, problem: { seq, reason } });
    for await (const e of this.entries()) {
      const want = n + 1;
      if (e.seq !== want) return fail(want, e.seq > want ? `entries ${want}…${e.seq - 1} are missing` : `entry ${e.seq} appears twice`);
      if (e.prevHash !== prev) return fail(e.seq, 'its link to the entry before does not match');
      if (entryHash(prev, e.seq, e) !== e.hash) return fail(e.seq, 'its content does not match its hash (the entry was changed)');
      if (!sealMatches(this.key, e.seq, e.hash, e.mac)) return fail(e.seq, 'its seal does not match the audit key (the chain was rewritten from here)');
      if (anchor && e.seq === anchor.seq) hashes.set(e.seq, e.hash);
      prev = e.hash;
      n = e.seq;
    }
    if (anchor) {
      if (n < anchor.seq) return fail(n + 1, `the log ends at entry ${n} but the anchor vouches for entry ${anchor.seq} (entries were removed)`);
      if (anchor.seq > 0 && hashes.get(anchor.seq) !== anchor.hash) return fail(anchor.seq, 'it is not the entry the anchor vouches for');
    }
    return { ok: true, entries: n, anchoredSeq: anchor?.seq ?? null, problem: null };
  }

  async close(): Promise<void> {
    await this.queue;
    for (const s of this.opts.sinks ?? []) await s.close?.();
  }
}

export function assertVerified(v: AuditVerdict): void {
  if (!v.ok) throw new PatchwardenError('E_DIGEST_MISMATCH', `the audit log does not verify at entry ${v.problem!.seq}: ${v.problem!.reason}`, { details: v });
}
