/**
 * `patchwarden audit`: the audit log. `list` reads it over the API; `verify` and `export` run on
 * the server's machine, because checking the seals needs the audit key from the data directory,
 * which the API never hands out.
 */
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { PatchwardenError } from '@patchwarden/core';
import { ApiClient, withClient, type ClientOptions } from '../client.js';
import { printJson, table } from '../output.js';

type Flags = ClientOptions & { json?: boolean };
type DbFlags = { dataDir?: string; database?: string; json?: boolean };

interface Entry {
  seq: number;
  at: number;
  actor: { kind: string; name: string };
  action: string;
  target: string | null;
  ip: string | null;
}

async function openLog(f: DbFlags) {
  const { loadServerConfig, databaseUrl, openDatabase, AuditLog, readAuditKey, AUDIT_ANCHOR_FILE } = await import('@patchwarden/server');
  const config = loadServerConfig({ flags: { dataDir: f.dataDir, database: f.database } });
  const key = readAuditKey(config.dataDir);
  const database = await openDatabase({ url: databaseUrl(config) });
  return { log: new AuditLog(database.db, key, { anchorFile: join(config.dataDir, AUDIT_ANCHOR_FILE) }), database };
}

const dbOptions = (cmd: Command) =>
  cmd
    .option('--data-dir <dir>', 'server data directory, which holds keys/audit.key (default ./.patchwarden)')
    .option('--database <url>', 'the server database (default <data-dir>/patchwarden.db)')
    .option('--json', 'print JSON');

export function auditCommands(program: Command): void {
  const audit = program
    .command('audit')
    .description('the audit log: every change, who made it, before and after; hash-chained and sealed')
    .addHelpText(
      'after',
      `
Each entry's hash covers the one before it, and each is sealed with an HMAC key kept in the data
directory (keys/audit.key), never in the database; the newest entry is also anchored in
<data-dir>/audit-anchor.json. \`audit verify\` detects a changed entry, a chain rewritten without
the key, and entries cut off the end. Keep a copy of the key and anchor apart from the database
backups (or send entries to syslog with --audit-syslog udp://HOST:514 on the server).

Examples:
  patchwarden audit list --limit 20
  patchwarden audit verify
  patchwarden audit export --out audit-2026-11.jsonl
  patchwarden audit export --format syslog --out audit.log`,
    );

  withClient(
    audit
      .command('list')
      .description('the newest entries')
      .option('--limit <n>', 'how many', '50')
      .option('--actor <name>', 'only this user or token')
      .option('--action <action>', "only this action, e.g. 'POST /api/v1/deployments'"),
  ).action(async (f: Flags & { limit: string; actor?: string; action?: string }) => {
    const q = new URLSearchParams({ limit: f.limit, ...(f.actor ? { actor: f.actor } : {}), ...(f.action ? { action: f.action } : {}) });
    const r = await ApiClient.from(f).call<{ items: Entry[]; total: number }>('GET', `/api/v1/audit?${q}`);
    if (f.json) return printJson(r);
    console.log(
      table(r.items, [
        { header: 'seq', get: (e) => e.seq, align: 'right' },
        { header: 'at', get: (e) => new Date(e.at).toISOString() },
        { header: 'who', get: (e) => e.actor.name },
        { header: 'action', get: (e) => e.action },
        { header: 'target', get: (e) => e.target ?? '' },
        { header: 'from', get: (e) => e.ip ?? '' },
      ]),
    );
    console.log(`${r.items.length} of ${r.total} entries`);
  });

  dbOptions(audit.command('verify').description('check every link, hash and seal, and the anchor (exit code 10 when it does not verify)')).action(async (f: DbFlags) => {
    const { log, database } = await openLog(f);
    try {
      const v = await log.verify();
      if (f.json) printJson(v);
      else if (v.ok) console.log(`the audit log verifies: ${v.entries} entries, every link sealed${v.anchoredSeq !== null ? `, anchored at entry ${v.anchoredSeq}` : ' (no anchor file)'}`);
      if (!v.ok) throw new PatchwardenError('E_DIGEST_MISMATCH', `the audit log does not verify at entry ${v.problem!.seq}: ${v.problem!.reason}`, { hint: 'compare with an exported copy or the syslog collector; restore the database from a backup' });
    } finally {
      await database.close();
    }
  });

  dbOptions(
    audit
      .command('export')
      .description('write the whole log (JSON lines with hashes and seals, or syslog lines) to a file')
      .requiredOption('--out <file>', 'the file to write')
      .option('--format <format>', 'jsonl or syslog', 'jsonl')
      .option('--from <seq>', 'start at this entry', '1'),
  ).action(async (f: DbFlags & { out: string; format: string; from: string }) => {
    if (!['jsonl', 'syslog'].includes(f.format)) throw new PatchwardenError('E_VALIDATION', `unknown format '${f.format}'`, { hint: 'jsonl or syslog' });
    const { syslogLine } = await import('@patchwarden/server');
    const { log, database } = await openLog(f);
    const out = createWriteStream(f.out, { mode: 0o600 });
    let n = 0;
    try {
      for await (const e of log.entries(Number(f.from) || 1)) {
        if (!out.write(`${f.format === 'jsonl' ? JSON.stringify(e) : syslogLine(e)}\n`)) await new Promise<void>((r) => out.once('drain', () => r()));
        n++;
      }
    } finally {
      await new Promise<void>((r) => out.end(() => r()));
      await database.close();
    }
    if (f.json) printJson({ file: f.out, entries: n });
    else console.log(`${n} entries written to ${f.out}`);
  });
}
