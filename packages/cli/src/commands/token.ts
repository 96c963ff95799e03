import type { Command } from 'commander';
import { printJson } from '../output.js';

export function tokenCommands(program: Command): void {
  const token = program.command('token').description('admin tokens (works on the database directly, for the first token or a lost one)');
  token
    .command('create')
    .description('create an admin token and print it once')
    .option('--name <name>', 'what the token is for', 'administrator')
    .option('--data-dir <dir>', 'server data directory (default ./.patchwarden)')
    .option('--database <url>', 'the server database (default <data-dir>/patchwarden.db)')
    .option('--json', 'print JSON')
    .action(async (f: { name: string; dataDir?: string; database?: string; json?: boolean }) => {
      const { loadServerConfig, databaseUrl, openDatabase, createAdminToken } = await import('@patchwarden/server');
      const config = loadServerConfig({ flags: { dataDir: f.dataDir, database: f.database } });
      const database = await openDatabase({ url: databaseUrl(config) });
      try {
        const t = await createAdminToken(database.db, f.name, Date.now());
        if (f.json) printJson(t);
        else console.log(`admin token (shown only now; pass it as --token or PATCHWARDEN_TOKEN):\n${t.token}`);
      } finally {
        await database.close();
      }
    });
}
