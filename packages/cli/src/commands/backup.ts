/** `patchwarden backup` and `patchwarden restore`: the whole server state in one file, and back. */
import type { Command } from 'commander';
import { printJson, table } from '../output.js';

const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;

export function backupCommands(program: Command): void {
  program
    .command('backup')
    .description('write the server\'s database, content store and keys into one file (safe while the server runs)')
    .requiredOption('--out <file>', 'the backup file to write (a new file; it is never overwritten)')
    .option('--data-dir <dir>', 'the server\'s data directory (default ./.patchwarden)')
    .option('--database <url>', 'the server\'s database (default <data-dir>/patchwarden.db, or postgres://…)')
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      `
What the file holds (one tar archive):
  every table of the database, read in one consistent snapshot (the server may keep running),
  the content store (patch objects, bundles, cached package files), the catalog's signing keys
  and the audit key (keys/), the admin token file, server.json and the audit anchor.

The file holds PRIVATE KEYS and credentials: it is written readable by its owner only (0600).
Keep it like the keys themselves: encrypted, off the machine, and out of shared folders.

Examples:
  patchwarden backup --out /backups/pw-$(date +%F).tar
  patchwarden backup --out pw.tar --data-dir /var/lib/patchwarden --database postgres://pw@db/pw

Restore it with \`patchwarden restore FILE --data-dir NEW_DIR\` (see \`patchwarden restore --help\`).`,
    )
    .action(async (f: { out: string; dataDir?: string; database?: string; json?: boolean }) => {
      const { loadServerConfig, databaseUrl, backup } = await import('@patchwarden/server');
      const config = loadServerConfig({ flags: { dataDir: f.dataDir, database: f.database } });
      const tty = !f.json && process.stderr.isTTY;
      const { SingleBar, Presets } = await import('cli-progress');
      const bar = tty ? new SingleBar({ format: 'backup {bar} {value}/{total} tables  {item}', stream: process.stderr, hideCursor: true }, Presets.shades_classic) : null;
      let phase = '';
      let r;
      try {
        r = await backup({
          dataDir: config.dataDir,
          database: databaseUrl(config),
          out: f.out,
          onProgress: (p) => {
            if (!bar) return;
            if (p.phase !== phase) {
              if (phase) bar.stop();
              phase = p.phase;
              if (p.phase === 'files') return;
              bar.start(p.total, p.done, { item: '' });
              return;
            }
            bar.update(p.done, { item: p.phase === 'tables' ? `${p.item ?? ''} ${p.rows ?? ''}`.trim() : (p.item ?? '') });
          },
        });
      } finally {
        bar?.stop();
      }
      if (f.json) return printJson(r);
      console.log(
        table(
          r.tables.filter((t) => t.rows > 0),
          [
            { header: 'table', get: (t) => t.name },
            { header: 'rows', get: (t) => t.rows, align: 'right' },
            { header: 'size', get: (t) => mib(t.size), align: 'right' },
          ],
        ),
      );
      console.log(
        `\nwrote ${r.file} (${mib(r.bytes)}, owner-only) in ${(r.ms / 1000).toFixed(1)} s: ${r.rows} rows from ${r.dialect} at schema ${r.migration}, ` +
          `${r.content.entries} content files (${mib(r.content.bytes)}), ${r.keys} keys, ${r.files} other files`,
      );
      if (r.skipped.length) console.log(`left out (not regular files): ${r.skipped.join(', ')}`);
      console.log('the file holds private keys: keep it safe');
    });

  program
    .command('restore <file>')
    .description('restore a backup into a fresh data directory and an empty database')
    .requiredOption('--data-dir <dir>', 'the new data directory: absent or empty')
    .option('--database <url>', 'an empty database to restore into (default: SQLite <data-dir>/patchwarden.db; or postgres://…)')
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      `
A restore never overwrites anything: the data directory must be new or empty, and the database
empty (a new SQLite file, or a PostgreSQL database or schema without tables). A backup taken
from SQLite restores into PostgreSQL and the other way round.

Every entry of the file is checked against the sha256 in its manifest before anything is
written; a truncated or altered file is refused (E_BACKUP_INVALID, E_DIGEST_MISMATCH), and so
is a backup from a newer Patchwarden schema. Rows go in in one transaction; if anything fails,
what the restore made is removed again.

Examples:
  patchwarden restore /backups/pw-2026-11-26.tar --data-dir /var/lib/patchwarden-new
  patchwarden restore pw.tar --data-dir ./pw --database postgres://pw@db/pw_new
then start the server on it:
  patchwarden server --data-dir /var/lib/patchwarden-new   (add --database for PostgreSQL)

The admin token file, keys and server.json come back as they were. If server.json names a
database, check that it is the one restored into.`,
    )
    .action(async (file: string, f: { dataDir: string; database?: string; json?: boolean }) => {
      const { restore } = await import('@patchwarden/server');
      const tty = !f.json && process.stderr.isTTY;
      const { SingleBar, Presets } = await import('cli-progress');
      const bar = tty ? new SingleBar({ format: '{phase} {bar} {percentage}%  {item}', stream: process.stderr, hideCursor: true }, Presets.shades_classic) : null;
      const names = { verify: 'verifying', rows: 'restoring rows', files: 'writing files' } as const;
      let phase = '';
      let r;
      try {
        r = await restore({
          archive: file,
          dataDir: f.dataDir,
          ...(f.database ? { database: f.database } : {}),
          onProgress: (p) => {
            if (!bar) return;
            if (p.phase !== phase) {
              if (phase) bar.stop();
              phase = p.phase;
              bar.start(Math.max(p.total, 1), p.done, { phase: names[p.phase].padEnd(14), item: '' });
              return;
            }
            bar.update(p.done, { item: p.item ?? '' });
          },
        });
      } finally {
        bar?.stop();
      }
      if (f.json) return printJson(r);
      console.log(
        table(
          r.tables.filter((t) => t.rows > 0),
          [
            { header: 'table', get: (t) => t.name },
            { header: 'rows', get: (t) => t.rows, align: 'right' },
          ],
        ),
      );
      console.log(
        `\nrestored ${r.rows} rows (backup of ${r.from.createdAt} from ${r.from.dialect}, schema ${r.from.migration}) into ${r.database}, ` +
          `${r.content} content files, ${r.keys} keys and ${r.files} other files into ${r.dataDir} in ${(r.ms / 1000).toFixed(1)} s`,
      );
      for (const w of r.warnings) console.log(`warning: ${w}`);
      console.log(`start it with: patchwarden server --data-dir ${r.dataDir}${f.database ? ' --database URL' : ''}`);
    });
}
