/** Shared by the apt tests: fixture paths and the machine's own lists. */
import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const TESTDATA = fileURLToPath(new URL('../../../testdata/apt/', import.meta.url));
export const MIRROR = `${TESTDATA}mirror`;
export const TEST_KEYRING = `${TESTDATA}test-archive-keyring.gpg`;
export const DEBIAN_KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';
export const HOST_LISTS = '/var/lib/apt/lists';

/** The machine's InRelease files; the tests that read them fail (never skip) without them. */
export function hostInReleases(): string[] {
  const files = existsSync(HOST_LISTS) ? readdirSync(HOST_LISTS).filter((n) => n.endsWith('_InRelease')) : [];
  if (files.length === 0) throw new Error(`no InRelease files in ${HOST_LISTS}: run apt-get update (CI does)`);
  if (!existsSync(DEBIAN_KEYRING)) throw new Error(`${DEBIAN_KEYRING} is missing: apt-get install debian-archive-keyring`);
  return files.map((n) => `${HOST_LISTS}/${n}`);
}
