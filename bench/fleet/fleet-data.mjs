// The simulated fleet's shared description: machine images built from real Debian package lists,
// each device's system facts, and the catalog patches the benchmark stores before the server
// starts. Used by bench/fleet/run.mjs (the catalog) and bench/fleet/generator.mjs (the devices);
// both build the same lists from the same order, so no randomness lives here.
import { sortInventory } from '@patchwarden/core';
import { allPackages } from '../packages.mjs';

export const IMAGE_COUNT = 8;
const COMMON = 700;

let cache = null;

/** The machine images: a common base of real packages plus an image's own extras (about 900 to 1,950 packages). */
export function images() {
  if (cache) return cache;
  const pool = allPackages().filter((p) => p.arch === 'amd64' || p.arch === 'all');
  const need = COMMON + IMAGE_COUNT * 300 + 400;
  if (pool.length < need) throw new Error(`only ${pool.length} real amd64 packages found here, ${need} needed; run apt-get update for the archive's lists`);
  const common = pool.slice(0, COMMON);
  const out = [];
  for (let k = 0; k < IMAGE_COUNT; k++) {
    const extra = pool.slice(COMMON + k * 300, COMMON + k * 300 + 200 + 150 * k);
    const list = [...common, ...extra].map((p) => ({ ...p, state: 'installed' }));
    sortInventory(list);
    out.push(list);
  }
  // packages no image holds: what an administrator installs on one device
  const spare = pool.slice(COMMON + IMAGE_COUNT * 300, need).map((p) => ({ ...p, state: 'installed' }));
  cache = { images: out, spare, common };
  return cache;
}

const OS = [
  { family: 'linux', distribution: 'debian', prettyName: 'Debian GNU/Linux 12 (bookworm)', version: '12', versionCodename: 'bookworm', machine: 'x86_64', packageArch: 'amd64' },
  { family: 'linux', distribution: 'debian', prettyName: 'Debian GNU/Linux 11 (bullseye)', version: '11', versionCodename: 'bullseye', machine: 'x86_64', packageArch: 'amd64' },
];
const KERNELS = ['6.1.0-28-amd64', '6.1.0-31-amd64', '5.10.0-33-amd64'];

/** Device `i`'s image and system facts: four in five on Debian 12, the rest on Debian 11. */
export function deviceProfile(i) {
  const bullseye = i % 5 === 4;
  const system = {
    hostname: `fleet-${String(i).padStart(5, '0')}`,
    os: OS[bullseye ? 1 : 0],
    kernel: { release: bullseye ? KERNELS[2] : KERNELS[i % 2] },
    timezone: ['UTC', 'Europe/Berlin', 'America/New_York', 'Asia/Tokyo'][i % 4],
    rebootRequired: i % 17 === 0,
    agentVersion: '0.1.0',
    collectors: [{ name: 'dpkg', status: 'ok', count: 0 }],
  };
  return { image: (i * 7) % IMAGE_COUNT, system };
}

const SEVERITY = ['critical', 'high', 'medium', 'low'];
const PLATFORM = [{ family: 'linux', distribution: 'debian', release: 'bookworm', arch: ['amd64'] }];

/**
 * Catalog patches over packages the images hold: one in three fixes a version above the installed
 * one (needed), the others a version already installed. Plain objects, parsed by the caller.
 */
export function catalogPatches(count = 400) {
  const { images: imgs } = images();
  const seen = new Set();
  const targets = [];
  for (let k = 0; targets.length < count && k < 5000; k++) {
    const img = imgs[k % IMAGE_COUNT];
    const p = img[(k * 37) % img.length];
    if (seen.has(p.name)) continue;
    seen.add(p.name);
    targets.push(p);
  }
  const patches = targets.map((p, i) => {
    const fixed = i % 3 === 0 ? `${p.version}+pw1` : p.version;
    return {
      id: `fleet/${p.name}-${i}`,
      revision: 1,
      title: `${p.name} ${fixed}`,
      severity: SEVERITY[i % 4],
      cves: [`CVE-2025-${String(10000 + i)}`],
      advisories: [],
      platforms: PLATFORM,
      applicability: { package: { manager: 'dpkg', name: p.name, installed: true } },
      installed: { package: { manager: 'dpkg', name: p.name, version: { ge: fixed } } },
      requires: [],
      supersedes: [],
      conflicts: [],
      restart: { reboot: 'never', kernel: false },
      fixes: [{ manager: 'dpkg', name: p.name, version: fixed }],
    };
  });
  return { patches, coverage: PLATFORM };
}
