/**
 * `patchwarden sites`: credentials of the local patch servers that sync from this (central)
 * server, and whether each is behind.
 */
import type { Command } from 'commander';
import { PatchwardenError } from '@patchwarden/core';
import { ApiClient, withClient, type ClientOptions } from '../client.js';
import { ago, printJson, table } from '../output.js';

type Flags = ClientOptions & { json?: boolean };

interface Site {
  id: string;
  name: string;
  mode: 'replica' | 'autonomous';
  createdAt: string;
  revokedAt: string | null;
  lastSeenAt: string | null;
  report: { snapshot: number | null; expires: string | null; error: string | null } | null;
  behind: boolean | null;
}

export function siteCommands(program: Command): void {
  const sites = program
    .command('sites')
    .description('local patch servers that mirror this catalog: their credentials, and who is behind')
    .addHelpText(
      'after',
      `
Examples:
  patchwarden sites create lyon --mode replica     prints the site token once: give it to the local server
  patchwarden sites list                           last sync, snapshot served, behind or not
  patchwarden sites revoke lyon                    its syncs stop at once`,
    );

  withClient(sites.command('create <name>').description('create a site credential (its token is shown once)'))
    .option('--mode <mode>', 'replica (takes this server\'s approvals) or autonomous (keeps its own)', 'replica')
    .action(async (name: string, f: Flags & { mode: string }) => {
      if (f.mode !== 'replica' && f.mode !== 'autonomous') throw new PatchwardenError('E_VALIDATION', '--mode is replica or autonomous');
      const s = await ApiClient.from(f).call<Site & { token: string }>('POST', '/api/v1/sites', { name, mode: f.mode });
      if (f.json) return printJson(s);
      console.log(`site ${s.name} (${s.mode}) created. Its token, shown only now:\n${s.token}`);
      console.log('next, on the local server: `patchwarden server --upstream URL --upstream-token TOKEN --upstream-root sha256:HEX --upstream-ca sha256:CA_HEX` (CA_HEX: this server\'s certificate authority, printed at its start)');
    });

  withClient(sites.command('list').description('the sites, their last report, and whether they serve an older snapshot')).action(async (f: Flags) => {
    const res = await ApiClient.from(f).call<{ items: Site[] }>('GET', '/api/v1/sites');
    if (f.json) return printJson(res.items);
    if (!res.items.length) return console.log('No sites yet: `patchwarden sites create NAME`.');
    console.log(
      table(res.items, [
        { header: 'NAME', get: (s) => s.name },
        { header: 'MODE', get: (s) => s.mode },
        { header: 'LAST SEEN', get: (s) => (s.revokedAt ? 'revoked' : ago(s.lastSeenAt)) },
        { header: 'SNAPSHOT', get: (s) => s.report?.snapshot ?? '-', align: 'right' },
        { header: 'STATE', get: (s) => (s.report?.error ? `error: ${s.report.error.slice(0, 40)}` : s.behind === null ? 'never synced' : s.behind ? 'behind' : 'current') },
      ]),
    );
  });

  withClient(sites.command('revoke <site>').description('revoke a site credential (by name or id)')).action(async (ref: string, f: Flags) => {
    const s = await ApiClient.from(f).call<Site>('POST', `/api/v1/sites/${encodeURIComponent(ref)}/revoke`, {});
    if (f.json) return printJson(s);
    console.log(`site ${s.name} revoked: its syncs stop at once`);
  });
}
