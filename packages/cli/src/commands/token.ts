import type { Command } from 'commander';
import { PatchwardenError, ROLE_NAMES, type Role } from '@patchwarden/core';
import { printJson } from '../output.js';
import { parseScopes } from './users.js';

export function tokenCommands(program: Command): void {
  const token = program.command('token').description('service tokens made on the database directly (the first token, or a lost one); `tokens` manages them over the API');
  token
    .command('create')
    .description('create a service token and print it once')
    .option('--name <name>', 'what the token is for', 'administrator')
    .option('--role <role>', `its role: ${ROLE_NAMES.join(', ')}`, 'administrator')
    .option('--scopes <list>', 'narrow it to some permissions of the role (comma-separated)')
    .option('--expires-days <n>', 'it stops working after this many days')
    .option('--data-dir <dir>', 'server data directory (default ./.patchwarden)')
    .option('--database <url>', 'the server database (default <data-dir>/patchwarden.db)')
    .option('--json', 'print JSON')
    .action(async (f: { name: string; role: string; scopes?: string; expiresDays?: string; dataDir?: string; database?: string; json?: boolean }) => {
      if (!(ROLE_NAMES as string[]).includes(f.role)) throw new PatchwardenError('E_VALIDATION', `unknown role '${f.role}'`, { hint: `roles: ${ROLE_NAMES.join(', ')}` });
      const days = f.expiresDays === undefined ? null : Number(f.expiresDays);
      if (days !== null && !(Number.isInteger(days) && days > 0)) throw new PatchwardenError('E_VALIDATION', '--expires-days takes a whole number of days');
      const scopes = parseScopes(f.scopes) ?? null;
      const { loadServerConfig, databaseUrl, openDatabase, createAdminToken } = await import('@patchwarden/server');
      const config = loadServerConfig({ flags: { dataDir: f.dataDir, database: f.database } });
      const database = await openDatabase({ url: databaseUrl(config) });
      try {
        const t = await createAdminToken(database.db, f.name, Date.now(), { role: f.role as Role, scopes, expiresAt: days === null ? null : Date.now() + days * 86_400_000 });
        if (f.json) printJson(t);
        else console.log(`${f.role} token (shown only now; pass it as --token or PATCHWARDEN_TOKEN):\n${t.token}`);
      } finally {
        await database.close();
      }
    });
}
