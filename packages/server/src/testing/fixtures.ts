/** Real package facts for tests: this machine's dpkg database, read with dpkg-query itself. */
import { execFileSync } from 'node:child_process';
import { DPKG_STATES, inventoryHash, PackageFact, sortInventory, type PackageFact as Pkg, type PatchManifest } from '@patchwarden/core';

let cached: Pkg[] | null = null;

export function hostPackages(): Pkg[] {
  if (cached) return cached.map((p) => ({ ...p }));
  const out = execFileSync(
    'dpkg-query',
    ['-W', '-f=${Package}\\t${Version}\\t${Architecture}\\t${source:Package}\\t${source:Version}\\t${db:Status-Status}\\n'],
    { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
  );
  const pkgs: Pkg[] = [];
  for (const line of out.split('\n')) {
    const [name, version, arch, source, sourceVersion, state] = line.split('\t');
    if (!name || !version || !(DPKG_STATES as readonly string[]).includes(state ?? '')) continue;
    const p: Pkg = { manager: 'dpkg', name, version, arch: arch!, state: state as Pkg['state'] };
    if (source && source !== name) p.source = source;
    if (sourceVersion && sourceVersion !== version) p.sourceVersion = sourceVersion;
    if (PackageFact.safeParse(p).success) pkgs.push(p);
  }
  sortInventory(pkgs);
  cached = pkgs;
  return pkgs.map((p) => ({ ...p }));
}

export function hashed(pkgs: Pkg[]): { packages: Pkg[]; hash: string } {
  const copy = pkgs.map((p) => ({ ...p }));
  sortInventory(copy);
  return { packages: copy, hash: inventoryHash(copy) };
}

export const BOOKWORM = [{ family: 'linux', distribution: 'debian', release: 'bookworm', arch: ['amd64'] }];

/**
 * A bookworm patch that a device needs while its package `name` is older than `fixed`: the
 * manifest tests upload, with every default filled in as the schema would.
 */
export function packagePatch(id: string, name: string, fixed: string, extra: Partial<PatchManifest> = {}): PatchManifest {
  return {
    id,
    revision: 1,
    title: `${name} ${fixed}`,
    severity: 'high',
    cves: [],
    advisories: [],
    platforms: BOOKWORM,
    applicability: { package: { manager: 'dpkg', name, installed: true } },
    installed: { package: { manager: 'dpkg', name, version: { ge: fixed } } },
    requires: [],
    supersedes: [],
    conflicts: [],
    restart: { reboot: 'never', kernel: false },
    fixes: [{ manager: 'dpkg', name, version: fixed }],
    payload: [],
    install: [],
    undo: [],
    ...extra,
  };
}
