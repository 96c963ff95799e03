/**
 * Facts as the evaluator reads them: indexed once per device (or per distinct package set),
 * then read by every rule. A fact that was never collected is absent from its map, which the
 * evaluator answers with `unknown`, never with a guess.
 */
import type { OsFacts, PackageFact } from '../facts.js';

export interface FileFact {
  exists: boolean;
  size?: number;
  sha256?: string;
  mtime?: string;
  fileVersion?: string;
  productVersion?: string;
}

export interface RegistryFact {
  exists: boolean;
  data?: string;
}

/** An installed package as rules see it (any manager). */
export interface InstalledPackage {
  manager: string;
  name: string;
  arch: string;
  version: string;
  source?: string;
  sourceVersion?: string;
}

export interface EvalFacts {
  os: OsFacts | null;
  kernelRelease: string | null;
  rebootRequired: boolean;
  /** Managers whose inventory was collected, e.g. {'dpkg'}; a package test of another manager is unknown. */
  managers: ReadonlySet<string>;
  /** `${manager}\t${name}` → the installed instances (one per architecture). */
  packages: ReadonlyMap<string, readonly InstalledPackage[]>;
  /** `${manager}\t${source}` → the installed binaries built from it. */
  sources: ReadonlyMap<string, readonly InstalledPackage[]>;
  files: ReadonlyMap<string, FileFact>;
  /** `${key}\\${value}` (value '' for the key itself) → fact. */
  registry: ReadonlyMap<string, RegistryFact>;
  /** null: hotfixes were not collected. */
  hotfixes: ReadonlySet<string> | null;
}

export function packageIndex(packages: readonly (PackageFact | InstalledPackage)[]) {
  const byName = new Map<string, InstalledPackage[]>();
  const bySource = new Map<string, InstalledPackage[]>();
  for (const p of packages) {
    if ('state' in p && p.state !== 'installed' && p.state !== 'half-configured' && p.state !== 'triggers-awaited' && p.state !== 'triggers-pending') {
      // config-files, half-installed, unpacked: the package's files are not (all) there
      continue;
    }
    const k = `${p.manager}\t${p.name}`;
    let l = byName.get(k);
    if (!l) byName.set(k, (l = []));
    l.push(p);
    const sk = `${p.manager}\t${p.source ?? p.name}`;
    let sl = bySource.get(sk);
    if (!sl) bySource.set(sk, (sl = []));
    sl.push(p);
  }
  return { packages: byName, sources: bySource };
}

export function makeEvalFacts(input: {
  os: OsFacts | null;
  kernelRelease?: string | null;
  rebootRequired?: boolean;
  managers: Iterable<string>;
  packages: readonly (PackageFact | InstalledPackage)[];
  files?: ReadonlyMap<string, FileFact>;
  registry?: ReadonlyMap<string, RegistryFact>;
  hotfixes?: ReadonlySet<string> | null;
}): EvalFacts {
  return {
    os: input.os,
    kernelRelease: input.kernelRelease ?? null,
    rebootRequired: input.rebootRequired ?? false,
    managers: new Set(input.managers),
    ...packageIndex(input.packages),
    files: input.files ?? new Map(),
    registry: input.registry ?? new Map(),
    hotfixes: input.hotfixes ?? null,
  };
}
