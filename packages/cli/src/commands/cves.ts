/** `cves …`: the CVEs flagged as exploited, and the needed patches that fix them. */
import type { Command } from 'commander';
import { PatchwardenError } from '@patchwarden/core';
import { ApiClient, withClient, type ClientOptions } from '../client.js';
import { printJson, table } from '../output.js';

type Flags = ClientOptions & { json?: boolean };

export function cveCommands(program: Command): void {
  const cves = program.command('cves').description('CVEs flagged as exploited (for approval rules and alerts)');

  withClient(
    cves
      .command('exploited')
      .description('flag a CVE as exploited (--off clears the flag); without a CVE, list the flagged ones')
      .argument('[cve]', 'CVE id, e.g. CVE-2024-3094')
      .option('--off', 'clear the flag')
      .addHelpText(
        'after',
        `
Approval rules with --exploited-only approve the patches that fix a flagged CVE.

Examples:
  patchwarden cves exploited CVE-2024-3094
  patchwarden cves exploited CVE-2024-3094 --off
  patchwarden cves exploited                 list the flagged CVEs
  patchwarden cves needed                    needed patches that fix one`,
      ),
  ).action(async (cve: string | undefined, f: Flags & { off?: boolean }) => {
    const client = ApiClient.from(f);
    if (cve === undefined) {
      if (f.off) throw new PatchwardenError('E_VALIDATION', '--off needs the CVE to clear', { hint: 'patchwarden cves exploited CVE-YYYY-NNNN --off' });
      const r = await client.call<{ items: { cve: string; markedAt: string }[]; total: number }>('GET', '/api/v1/cves/exploited');
      if (f.json) return printJson(r);
      if (!r.items.length) return console.log('No CVE is flagged as exploited. Flag one: patchwarden cves exploited CVE-YYYY-NNNN');
      console.log(
        table(r.items, [
          { header: 'cve', get: (x) => x.cve },
          { header: 'flagged', get: (x) => x.markedAt },
        ]),
      );
      return;
    }
    const r = await client.call<{ cve: string; exploited: boolean; markedAt: string | null }>('POST', `/api/v1/cves/${encodeURIComponent(cve.toUpperCase())}/exploited`, {
      exploited: !f.off,
    });
    if (f.json) return printJson(r);
    console.log(r.exploited ? `${r.cve} is flagged as exploited (since ${r.markedAt})` : `${r.cve} is no longer flagged as exploited`);
  });

  withClient(cves.command('needed').description('patches that fix an exploited CVE and that at least one device needs')).action(async (f: Flags) => {
    const r = await ApiClient.from(f).call<{ items: { patch: string; title: string; severity: string; cves: string[]; devices: number }[]; total: number }>(
      'GET',
      '/api/v1/cves/exploited/needed',
    );
    if (f.json) return printJson(r);
    if (!r.items.length) return console.log('No needed patch fixes an exploited CVE.');
    console.log(
      table(r.items, [
        { header: 'patch', get: (x) => x.patch },
        { header: 'severity', get: (x) => x.severity },
        { header: 'devices', get: (x) => x.devices, align: 'right' },
        { header: 'exploited cves', get: (x) => x.cves.join(', ') },
        { header: 'title', get: (x) => x.title },
      ]),
    );
  });
}
