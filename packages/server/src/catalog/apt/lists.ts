/**
 * Imports a machine's apt lists directory (/var/lib/apt/lists). apt names each file after its
 * URL: `deb.debian.org_debian_dists_bookworm-security_main_binary-amd64_Packages.lz4` lies next
 * to `deb.debian.org_debian_dists_bookworm-security_InRelease` ('/' written as '_', a literal
 * '_' as %5f).
 */
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PatchwardenError } from '@patchwarden/core';
import { defaultKeyrings } from './gpgv.js';
import { AptCatalogBuilder } from './patches.js';
import { Problems } from './problems.js';
import { describeRelease, indexOrigin, loadRelease, readIndex, type AptImportOptions, type AptRelease, type Signed } from './read.js';
import { finishImport, type AptImport } from './result.js';

const INDEX_RE = /^(.+)_binary-([a-z0-9][a-z0-9-]*)_Packages(\.gz|\.xz|\.lz4)?$/;
/** when one index is there in several forms, the cheapest to read */
const PREFERENCE = ['.lz4', '.gz', '', '.xz'];

interface ListIndex {
  file: string;
  path: string;
  component: string;
  arch: string;
}

const unescape = (s: string) => s.replace(/%([0-9a-fA-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));

function findIndexes(names: string[], prefix: string): ListIndex[] {
  const byPath = new Map<string, ListIndex & { rank: number }>();
  for (const name of names) {
    if (!name.startsWith(`${prefix}_`)) continue;
    const m = INDEX_RE.exec(name.slice(prefix.length + 1));
    if (!m) continue;
    const component = unescape(m[1]!.replace(/_/g, '/'));
    const ext = m[3] ?? '';
    const path = `${component}/binary-${m[2]}/Packages${ext}`;
    const key = `${component}/${m[2]}`;
    const rank = PREFERENCE.indexOf(ext);
    const known = byPath.get(key);
    if (!known || rank < known.rank) byPath.set(key, { file: name, path, component, arch: m[2]!, rank });
  }
  return [...byPath.values()].sort((a, b) => (a.path < b.path ? -1 : 1));
}

export async function importAptLists(dir: string, opts: AptImportOptions = {}): Promise<AptImport> {
  let names: string[];
  try {
    names = (await readdir(dir)).sort();
  } catch (err) {
    throw new PatchwardenError('E_NOT_FOUND', `cannot read the apt lists directory ${dir}: ${(err as Error).message}`, { hint: 'pass --lists DIR (apt keeps them in /var/lib/apt/lists)' });
  }
  const problems = new Problems();
  const keyrings = opts.keyrings ?? defaultKeyrings();
  for (const k of keyrings) if (!existsSync(k)) throw new PatchwardenError('E_NOT_FOUND', `keyring ${k} does not exist`);
  const now = opts.now ?? new Date();
  const builder = new AptCatalogBuilder(problems);
  const releases: AptRelease[] = [];
  const claimed = new Set<string>();
  const prefixes = new Map<string, 'InRelease' | 'Release'>();
  for (const n of names) {
    const m = /^(.+_dists_.+)_(InRelease|Release)$/.exec(n);
    if (m && (m[2] === 'InRelease' || !prefixes.has(m[1]!))) prefixes.set(m[1]!, m[2] as 'InRelease' | 'Release');
  }
  let records = 0;
  for (const [prefix, kind] of prefixes) {
    const where = join(dir, `${prefix}_${kind}`);
    const indexes = findIndexes(names, prefix);
    for (const i of indexes) claimed.add(i.file);
    opts.onFile?.(where);
    const data = await readFile(where);
    const sigFile = join(dir, `${prefix}_Release.gpg`);
    const signed: Signed = kind === 'InRelease' ? { kind: 'inrelease', data } : { kind: 'release', data, signature: existsSync(sigFile) ? await readFile(sigFile) : null };
    const loaded = await loadRelease(signed, where, keyrings, problems, false);
    if (!loaded) continue;
    const f = loaded.file;
    if (opts.suites && !opts.suites.some((s) => s === f.suite || s === f.codename)) continue;
    const rel = describeRelease(loaded, where, problems, now);
    // apt's lists lose the scheme; http is what Debian's sources use, and every file fetched
    // from it is checked against the sha256 of the signed index anyway
    const repoPart = prefix.includes('_dists_') ? unescape(prefix.slice(0, prefix.indexOf('_dists_')).replace(/_/g, '/')) : null;
    const origin = indexOrigin(rel, repoPart ? `http://${repoPart}` : undefined);
    for (const i of indexes) {
      if (opts.architectures && !opts.architectures.includes(i.arch)) continue;
      if (opts.components && !opts.components.includes(i.component)) continue;
      const file = join(dir, i.file);
      opts.onFile?.(file);
      const read = await readIndex(await readFile(file), i.path, file, loaded, i.arch, problems, opts.maxIndexBytes);
      if (!read) continue;
      builder.addIndex(origin, i.arch, read.records);
      records += read.records.length;
      rel.indexes.push({ path: i.path, location: file, records: read.records.length, checked: read.checked });
    }
    if (rel.indexes.length === 0) problems.warn(where, 'no Packages index of this release was imported');
    releases.push(rel);
  }
  for (const n of names) {
    if (INDEX_RE.test(n) && !claimed.has(n)) problems.warn(join(dir, n), 'a Packages index without a Release file next to it: not imported');
  }
  return finishImport(builder, releases, problems, records);
}
