// Real Debian package names and versions for benchmarks: the archive's indexes on this machine
// (apt-cache dumpavail), else this machine's dpkg database.
import { execFileSync } from 'node:child_process';
import { PackageFact } from '@patchwarden/core';

function paragraphs(text) {
  const out = [];
  for (const para of text.split('\n\n')) {
    const f = {};
    for (const line of para.split('\n')) {
      const m = /^([A-Za-z-]+): (.*)$/.exec(line);
      if (m) f[m[1]] = m[2];
    }
    if (f.Package && f.Version) out.push(f);
  }
  return out;
}

function read(cmd, args) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 30, stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return '';
  }
}

let all = null;

/** Every distinct real package (name, arch) known here, as package facts. */
export function allPackages() {
  if (all) return all;
  const seen = new Map();
  for (const f of [...paragraphs(read('apt-cache', ['dumpavail'])), ...paragraphs(read('cat', ['/var/lib/dpkg/status']))]) {
    const arch = f.Architecture ?? 'all';
    const key = `${f.Package}\t${arch}`;
    if (seen.has(key)) continue;
    const p = { manager: 'dpkg', name: f.Package, version: f.Version, arch, state: 'installed' };
    const src = f.Source?.match(/^(\S+)(?: \((\S+)\))?$/);
    if (src && src[1] !== f.Package) p.source = src[1];
    if (src?.[2] && src[2] !== f.Version) p.sourceVersion = src[2];
    if (PackageFact.safeParse(p).success) seen.set(key, p);
  }
  all = [...seen.values()];
  return all;
}

/** `n` real packages, the same ones every call. */
export function loadPackages(n) {
  const pool = allPackages();
  if (pool.length < n) throw new Error(`only ${pool.length} real packages found here; run apt-get update for the archive's lists`);
  return pool.slice(0, n).map((p) => ({ ...p }));
}
