/**
 * Root and top-level targets kept offline, as TUF intends: the administrator's machine builds
 * and signs them (`patchwarden keys root-init`, `keys sign-targets`, `keys rotate-root`), the
 * server only checks and stores them (`catalog import-metadata`). The builders here are pure;
 * `importOfflineMetadata` is the server's side.
 */
import { Metadata, MetadataKind, type Root, type Targets } from '@tufjs/models';
import { canonicalJson, PatchwardenError, type PrivateKeyFile, type TufPublicKey } from '@patchwarden/core';

/** A key as metadata names it: its id and public half (a key file of either kind will do). */
export interface KeyRef {
  keyid: string;
  public: TufPublicKey;
}
import type { Transaction } from 'kysely';
import type { DB } from '../../db/schema.js';
import { LIFETIME, SPEC_VERSION, signMetadata, type TufRepository } from './repo.js';

const iso = (ms: number) => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
const keyJson = (k: KeyRef) => ({ keytype: k.public.keytype, scheme: k.public.scheme, keyval: { public: k.public.keyval.public } });
const ids = (keys: { keyid: string }[]) => [...new Set(keys.map((k) => k.keyid))];

export interface RootSpec {
  version: number;
  expiresAt: number;
  rootKeys: KeyRef[];
  rootThreshold: number;
  targetsKeys: KeyRef[];
  targetsThreshold: number;
  /** the server's online key: timestamp and snapshot */
  online: KeyRef;
}

export function rootSigned(spec: RootSpec): Record<string, unknown> {
  if (spec.rootThreshold < 1 || spec.rootThreshold > ids(spec.rootKeys).length) {
    throw new PatchwardenError('E_VALIDATION', `a root threshold of ${spec.rootThreshold} needs at least that many distinct root keys (${ids(spec.rootKeys).length} given)`);
  }
  if (spec.targetsThreshold < 1 || spec.targetsThreshold > ids(spec.targetsKeys).length) {
    throw new PatchwardenError('E_VALIDATION', `a targets threshold of ${spec.targetsThreshold} needs at least that many distinct targets keys`);
  }
  const keys: Record<string, unknown> = {};
  for (const k of [...spec.rootKeys, ...spec.targetsKeys, spec.online]) keys[k.keyid] = keyJson(k);
  return {
    _type: 'root',
    spec_version: SPEC_VERSION,
    version: spec.version,
    expires: iso(spec.expiresAt),
    consistent_snapshot: true,
    keys,
    roles: {
      root: { keyids: ids(spec.rootKeys), threshold: spec.rootThreshold },
      targets: { keyids: ids(spec.targetsKeys), threshold: spec.targetsThreshold },
      snapshot: { keyids: [spec.online.keyid], threshold: 1 },
      timestamp: { keyids: [spec.online.keyid], threshold: 1 },
    },
  };
}

/** Top-level targets: `custom/*` first and terminating (the authors' keys), then `vendors`. */
export function topTargetsSigned(spec: { version: number; expiresAt: number; online: KeyRef; authors: KeyRef[] }): Record<string, unknown> {
  const keys: Record<string, unknown> = { [spec.online.keyid]: keyJson(spec.online) };
  for (const a of spec.authors) keys[a.keyid] = keyJson(a);
  return {
    _type: 'targets',
    spec_version: SPEC_VERSION,
    version: spec.version,
    expires: iso(spec.expiresAt),
    targets: {},
    delegations: {
      keys,
      roles: [
        { name: 'custom', keyids: ids(spec.authors), threshold: 1, terminating: true, paths: ['custom/*'] },
        { name: 'vendors', keyids: [spec.online.keyid], threshold: 1, terminating: false, paths: ['*/*'] },
      ],
    },
  };
}

export function signRoot(signed: Record<string, unknown>, keys: PrivateKeyFile[]): Buffer {
  return signMetadata(MetadataKind.Root, signed, keys);
}

export function signTargets(signed: Record<string, unknown>, keys: PrivateKeyFile[]): Buffer {
  return signMetadata(MetadataKind.Targets, signed, keys);
}

function parse<T extends MetadataKind.Root | MetadataKind.Targets>(kind: T, json: unknown, what: string) {
  try {
    return Metadata.fromJSON(kind as MetadataKind.Root, json as never) as unknown as Metadata<T extends MetadataKind.Root ? Root : Targets>;
  } catch (err) {
    throw new PatchwardenError('E_METADATA_INVALID', `${what} is not valid ${kind} metadata: ${(err as Error).message}`);
  }
}

function verify(delegator: Metadata<Root> | Metadata<Targets>, role: string, md: Metadata<Root> | Metadata<Targets>, what: string) {
  try {
    delegator.verifyDelegate(role, md);
  } catch (err) {
    throw new PatchwardenError('E_SIGNATURE_INVALID', `${what}: ${(err as Error).message}`, { hint: 'sign it with a threshold of the keys the current root names for that role' });
  }
}

/** The structure the server relies on: custom first and terminating, vendors on the online key. */
function checkTopTargets(t: Targets, online: string) {
  const roles = t.delegations?.roles ? Object.values(t.delegations.roles) : [];
  const [custom, vendors] = roles;
  const ok =
    roles.length === 2 &&
    Object.keys(t.targets).length === 0 &&
    custom?.name === 'custom' &&
    custom.terminating &&
    JSON.stringify(custom.paths) === '["custom/*"]' &&
    vendors?.name === 'vendors' &&
    JSON.stringify(vendors.paths) === '["*/*"]' &&
    JSON.stringify(vendors.keyIDs) === JSON.stringify([online]);
  if (!ok) {
    throw new PatchwardenError('E_METADATA_INVALID', 'top-level targets must delegate custom/* first (terminating, authors\' keys) and */* to vendors on this server\'s online key, and list no targets itself', {
      hint: 'build it with `patchwarden keys root-init` or `patchwarden keys sign-targets`',
    });
  }
}

/**
 * Takes root and/or targets signed offline. A first root (version 1) comes with its targets
 * and initializes the catalog; later ones must be the next version, signed by a threshold of
 * the current root (and, for a root, of itself too: a rotation).
 */
export async function importOfflineMetadata(
  repo: TufRepository,
  now: number,
  input: { root?: unknown; targets?: unknown },
  opts: { alsoInTransaction?: (tx: Transaction<DB>) => Promise<void> } = {},
): Promise<{ root?: number; targets?: number }> {
  const online = repo.onlinePublic;
  const initialized = await repo.initialized();
  const out: { root?: number; targets?: number } = {};
  const root = initialized ? parse(MetadataKind.Root, (await repo.role('root')).json, 'the current root') : null;
  let newRoot: Metadata<Root> | null = null;
  if (input.root !== undefined) {
    const md = parse(MetadataKind.Root, input.root, 'the root');
    const expected = root ? root.signed.version + 1 : 1;
    if (md.signed.version !== expected) throw new PatchwardenError('E_METADATA_ROLLBACK', `the root is version ${md.signed.version}; the catalog expects ${expected}`);
    if (md.signed.isExpired(new Date(now))) throw new PatchwardenError('E_METADATA_EXPIRED', `the root expired at ${md.signed.expires}`);
    if (root) verify(root, 'root', md, 'the new root is not signed by a threshold of the current root keys');
    verify(md, 'root', md, 'the root is not signed by a threshold of its own root keys');
    for (const r of ['timestamp', 'snapshot'] as const) {
      const keyids = md.signed.roles[r]?.keyIDs ?? [];
      if (keyids.length !== 1 || keyids[0] !== online.keyid) {
        throw new PatchwardenError('E_METADATA_INVALID', `the root must name this server's online key (${online.keyid}) alone for ${r}`, {
          hint: "pass the server's keys/online.pub as --online when signing the root",
        });
      }
    }
    newRoot = md;
  } else if (!initialized) {
    throw new PatchwardenError('E_VALIDATION', 'the catalog has no root yet: import root version 1 together with its targets');
  }
  const rootForTargets = newRoot ?? root!;
  let targets: Metadata<Targets> | null = null;
  if (input.targets !== undefined) {
    const md = parse(MetadataKind.Targets, input.targets, 'the targets');
    const cur = initialized ? (await repo.role('targets')).version : 0;
    if (md.signed.version !== cur + 1) throw new PatchwardenError('E_METADATA_ROLLBACK', `the targets role is version ${md.signed.version}; the catalog expects ${cur + 1}`);
    if (md.signed.isExpired(new Date(now))) throw new PatchwardenError('E_METADATA_EXPIRED', `the targets role expired at ${md.signed.expires}`);
    verify(rootForTargets, 'targets', md, 'the targets role is not signed by a threshold of the targets keys the root names');
    checkTopTargets(md.signed, online.keyid);
    targets = md;
  } else if (!initialized) {
    throw new PatchwardenError('E_VALIDATION', 'a first root comes with its targets role (both from `patchwarden keys root-init`)');
  }
  await repo.transaction(async (tx) => {
    if (newRoot) {
      await repo.store(tx, 'root', newRoot.signed.version, canonicalBytes(newRoot), Date.parse(newRoot.signed.expires));
      out.root = newRoot.signed.version;
    }
    if (targets) {
      await repo.store(tx, 'targets', targets.signed.version, canonicalBytes(targets), Date.parse(targets.signed.expires));
      out.targets = targets.signed.version;
    }
    if (!initialized) await repo.createVendors(tx);
    await opts.alsoInTransaction?.(tx);
    await repo.snapshotAndTimestamp(tx);
  });
  return out;
}

/**
 * Recovery from a compromised online key, on a catalog whose root stays offline: the next root
 * (naming the new online key for timestamp and snapshot) and top-level targets (delegating
 * vendors to it), both signed offline, are checked as any import, and in the same transaction
 * every online role is re-signed with the new key. Metadata the old key signs from then on
 * verifies for no client that has read the new root. The server must not be running (it would
 * go on signing with the old key it holds in memory); the caller replaces keys/online.key.
 */
export async function rotateOnlineKey(repo: TufRepository, now: number, newKey: PrivateKeyFile, input: { root: unknown; targets: unknown }): Promise<{ root: number; targets: number; resigned: string[] }> {
  if (newKey.role !== 'online') throw new PatchwardenError('E_KEY_INVALID', `the new key is a ${newKey.role} key; the server signs with an online key`, { hint: 'create one with `patchwarden keys create NAME --role online`' });
  const old = repo.onlinePublic;
  if (old.keyid === newKey.keyid) throw new PatchwardenError('E_VALIDATION', 'the new online key is the one the catalog uses already');
  const current = (await repo.role('root')).json.signed as { roles?: Record<string, { keyids?: string[] }> };
  if (current.roles?.timestamp?.keyids?.[0] !== old.keyid) {
    throw new PatchwardenError('E_CONFIG_INVALID', "this data directory's keys/online.key is not the key the catalog's root names", { hint: 'run this against the data directory of the server that signs this catalog' });
  }
  if (input.root === undefined || input.targets === undefined) {
    throw new PatchwardenError('E_VALIDATION', 'replacing the online key takes the next root and the next top-level targets, both naming the new key', {
      hint: 'sign them offline with `patchwarden keys rotate-root --online NEW.pub` and `patchwarden keys sign-targets --online NEW.pub`',
    });
  }
  // the checks of the import then hold the new documents to the new key; this repository
  // object serves this one rotation (the command that calls it exits after)
  repo.useOnlineKey(newKey);
  let resigned: string[] = [];
  const out = await importOfflineMetadata(repo, now, input, {
    alsoInTransaction: async (tx) => {
      resigned = await repo.resignOnlineRoles(tx);
    },
  });
  return { root: out.root!, targets: out.targets!, resigned };
}

/** The metadata as one canonical JSON document, as the repository writes every file. */
function canonicalBytes(md: Metadata<Root> | Metadata<Targets>): Buffer {
  return canonicalJson(md.toJSON());
}

/** How long offline roles are signed for by default. */
export const OFFLINE_LIFETIME = { root: LIFETIME.root, targets: LIFETIME.targets };
