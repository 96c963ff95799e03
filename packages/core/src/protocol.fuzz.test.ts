/**
 * Fuzzing the agent ↔ server protocol: JSON bodies, structure-aware and byte-level, through
 * what the server does with a check-in before the database (the envelope, the raw inventory
 * hash, the per-package schema, sorting and hashing) and through the enrollment schema. The
 * contracts: JSON.parse throws only a SyntaxError (the server answers E_BAD_REQUEST); a zod
 * schema's safeParse never throws; what passes the envelope can be hashed and sorted.
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { canonicalDigest } from './canonical.js';
import { PackageFact } from './facts.js';
import { applyDelta, inventoryHash, rawInventoryHash, sortInventory } from './inventory.js';
import { CheckinEnvelope, CheckinRequest, EnrollRequest } from './protocol.js';
import { formatFuzzStats, fuzz, fuzzSettings, mutateJsonText, passedShare } from './testing/fuzz.js';

const { seed: SEED, scale } = fuzzSettings(process.env, 0x970c01);
const H = (c: string) => c.repeat(64);

const system = {
  hostname: 'web-1',
  os: { family: 'linux', distribution: 'debian', idLike: [], name: 'Debian GNU/Linux', prettyName: 'Debian GNU/Linux 12 (bookworm)', version: '12', versionCodename: 'bookworm', machine: 'x86_64', packageArch: 'amd64' },
  kernel: { release: '6.1.0-26-amd64', version: '#1 SMP PREEMPT_DYNAMIC Debian 6.1.112-1' },
  timezone: 'Europe/Berlin',
  machineId: 'a1b2c3d4e5f60718293a4b5c6d7e8f90',
  rebootRequired: false,
  agentVersion: '0.1.0',
  collectors: [{ name: 'dpkg', status: 'ok', count: 2 }],
  heldPackages: ['linux-image-amd64'],
  files: { '/etc/ssl/openssl.cnf': { exists: true, size: 12324, sha256: H('a'), mtime: '2024-01-01T00:00:00.000Z' } },
};
const packages: PackageFact[] = [
  { manager: 'dpkg', name: 'libc6', version: '2.36-9+deb12u10', arch: 'amd64', source: 'glibc', state: 'installed' },
  { manager: 'dpkg', name: 'libssl3', version: '3.0.15-1~deb12u1', arch: 'amd64', source: 'openssl', state: 'installed' },
];
const CORPUS = [
  { protocol: 1, catalog: 3, systemHash: canonicalDigest(system), system, inventory: { mode: 'full', hash: inventoryHash(packages), packages } },
  { protocol: 1, systemHash: H('b'), inventory: { mode: 'same', hash: H('c') } },
  { protocol: 1, systemHash: H('b'), inventory: { mode: 'delta', base: H('c'), hash: H('d'), add: [packages[1]], remove: [{ manager: 'dpkg', name: 'zlib1g', arch: 'amd64' }] } },
  { secret: 'pwe_0123456789abcdefghij', system },
].map((v) => JSON.stringify(v));

const PackageList = z.array(PackageFact);

describe('agent ↔ server protocol under fuzzing', () => {
  it(`JSON bodies: a SyntaxError or a schema verdict, and what passes can be hashed (seed ${SEED})`, async () => {
    const stats = await fuzz({
      label: 'protocol (check-in, enroll)',
      corpus: CORPUS,
      seed: SEED,
      iterations: 4000 * scale,
      budgetMs: 1500 * scale,
      now: () => performance.now(),
      mutate: (s, rng, corpus) => mutateJsonText(s, rng, corpus, { structural: 0.8 }),
      codes: [],
      expected: (err) => err instanceof SyntaxError,
      run: (text, reached) => {
        const body: unknown = JSON.parse(text);
        EnrollRequest.safeParse(body);
        CheckinRequest.safeParse(body);
        const env = CheckinEnvelope.safeParse(body);
        if (!env.success) return;
        reached();
        const req = env.data;
        if (req.system) canonicalDigest(req.system);
        const inv = req.inventory;
        if (inv.mode === 'full') {
          rawInventoryHash(inv.packages);
          const r = PackageList.safeParse(inv.packages);
          if (r.success && sortInventory(r.data) === null) inventoryHash(r.data);
        } else if (inv.mode === 'delta') {
          const after = applyDelta(packages, inv);
          if (sortInventory(after) === null) inventoryHash(after);
        }
      },
    });
    console.log(formatFuzzStats(stats));
    expect(passedShare(stats)).toBeGreaterThanOrEqual(5);
  });
});
