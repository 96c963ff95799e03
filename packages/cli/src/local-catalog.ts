/**
 * `patchwarden start` gives a new user something real at once: this machine's own apt indexes
 * (verified against the archive keyring, as `catalog import-apt` does) become a first catalog,
 * so `report needed` and `explain` answer for the built-in agent's device. `patchwarden server`
 * never does this: a real server's catalog is the administrator's choice.
 */
import { existsSync, readdirSync } from 'node:fs';
import type { RunningServer } from '@patchwarden/server';

export const LOCAL_APT_LISTS = '/var/lib/apt/lists';

export async function importLocalCatalog(server: RunningServer, dir = LOCAL_APT_LISTS): Promise<string | null> {
  if (!existsSync(dir) || !readdirSync(dir).some((n) => /_(In)?Release$/.test(n))) return null;
  const { importAptLists, publishVendorPatches } = await import('@patchwarden/server');
  const r = await importAptLists(dir);
  if (r.patches.length === 0) return null;
  const verified = r.releases.every((x) => x.verified);
  await publishVendorPatches(
    server.app.catalogContext,
    r.patches,
    r.coverage,
    { kind: 'apt', origin: 'local apt lists', suites: r.releases.map((x) => x.suite ?? x.codename ?? '?'), verified },
  );
  const releases = [...new Set(r.releases.map((x) => x.codename ?? x.suite))].join(', ');
  return `${r.patches.length} patches from this machine's apt lists (${releases}${verified ? ', signatures verified' : ', NOT verified'})`;
}
