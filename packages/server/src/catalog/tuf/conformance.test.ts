/**
 * The cases of the TUF conformance suite (github.com/theupdateframework/tuf-conformance,
 * tuf_conformance/test_*.py) ported to the mirroring client, plus the rules of the Patchwarden
 * catalog (custom first and terminating, bins under vendor roles, hostile target names).
 *
 * Differences from the suite that come from the client being a whole-catalog mirror:
 * - a sync is all-or-nothing, so where the suite checks "the client kept version N", these check
 *   the error code and that the state passed in is unchanged;
 * - target paths are always dirname/basename, so the suite's paths are given two segments;
 * - "visited roles" are checked through what each path resolves to.
 */
import { PatchwardenError, type ErrorCode } from '@patchwarden/core';
import { describe, expect, it } from 'vitest';
import { mirrorCatalog, type MirrorLimits, type MirrorState } from './client.js';
import {
  binOf,
  catalogRepository,
  envelope,
  frozenState,
  HandmadeRepository,
  isoDays,
  keyidOf,
  keyJson,
  newKey,
  sha256,
  signaturesOf,
  type Json,
  type TestKey,
} from './testing/handmade.js';

const now = new Date('2026-03-01T12:00:00Z');

interface SyncOptions {
  now?: Date;
  limits?: Partial<MirrorLimits>;
}

async function sync(repo: HandmadeRepository, state: MirrorState, opts: SyncOptions = {}) {
  const remote = repo.remote();
  const result = await mirrorCatalog({ remote, state, now: opts.now ?? now, limits: opts.limits });
  return { result, remote };
}

/** The sync fails with `code` (and a message matching `message`) and leaves `state` as it was. */
async function refused(repo: HandmadeRepository, state: MirrorState, code: ErrorCode, message?: RegExp, opts: SyncOptions = {}) {
  const before = frozenState(state);
  const remote = repo.remote();
  const err: unknown = await mirrorCatalog({ remote, state, now: opts.now ?? now, limits: opts.limits }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(PatchwardenError);
  expect((err as PatchwardenError).code, (err as Error).message).toBe(code);
  if (message) expect((err as Error).message).toMatch(message);
  expect(frozenState(state)).toEqual(before);
  return { err: err as PatchwardenError, remote };
}

/** A repository the client has already synced once. */
async function synced(repo = new HandmadeRepository(now)) {
  const { result } = await sync(repo, repo.initialState());
  return { repo, state: result.state };
}

function versionOf(bytes: Uint8Array | undefined): number {
  return JSON.parse(Buffer.from(bytes!).toString('utf8')).signed.version;
}

describe('basic (test_basic.py)', () => {
  it('first sync: root probe, timestamp, snapshot, targets', async () => {
    const repo = new HandmadeRepository(now);
    const { result, remote } = await sync(repo, repo.initialState());
    expect(remote.requests).toEqual(['metadata/2.root.json', 'metadata/timestamp.json', 'metadata/1.snapshot.json', 'metadata/1.targets.json']);
    expect(versionOf(result.state.timestamp)).toBe(1);
    expect(versionOf(result.state.snapshot)).toBe(1);
    expect(result.state.roles.get('targets')!.version).toBe(1);
  });

  it('refuses an initial root its own keys did not sign, before any request (test_unsigned_initial_root)', async () => {
    const repo = new HandmadeRepository(now);
    const doc = JSON.parse(Buffer.from(repo.files.get('metadata/1.root.json')!).toString());
    doc.signatures[0].sig = '00'.repeat(64);
    const state: MirrorState = { root: new Uint8Array(Buffer.from(JSON.stringify(doc))), roles: new Map() };
    const { remote } = await refused(repo, state, 'E_SIGNATURE_INVALID', /state\.root/);
    expect(remote.requests).toEqual([]);
  });

  it('refuses an initial root without a version, before any request (test_invalid_initial_root)', async () => {
    const repo = new HandmadeRepository(now);
    const doc = JSON.parse(Buffer.from(repo.files.get('metadata/1.root.json')!).toString());
    delete doc.signed.version;
    const state: MirrorState = { root: new Uint8Array(Buffer.from(JSON.stringify(doc))), roles: new Map() };
    const { remote } = await refused(repo, state, 'E_METADATA_INVALID', /version/);
    expect(remote.requests).toEqual([]);
  });

  it('keeps the trusted timestamp when another one comes with the same version (test_timestamp_eq_versions_check)', async () => {
    const { repo, state } = await synced();
    const ts = structuredClone(repo.timestamp);
    ts.meta['snapshot.json'].version = 100;
    repo.files.set('metadata/timestamp.json', envelope(ts, signaturesOf(ts, repo.signers.get('timestamp')!)));
    const { result } = await sync(repo, state);
    expect(result.state.timestamp).toBe(state.timestamp);
    expect(result.changedRoles).toEqual([]);
  });

  it('accepts unknown fields, which the signatures cover (test_custom_fields)', async () => {
    const { repo, state } = await synced();
    const v2 = repo.rotateRoot((root) => {
      root['custom-field'] = 'value';
      root.keys[root.roles.root.keyids[0]]['extra-field'] = { a: 1, b: 2 };
      root.roles.root['another-field'] = 'value';
    });
    const { result } = await sync(repo, state);
    expect(result.newRoots).toEqual([v2]);
  });

  it('refuses metadata whose expiry is not a TUF date', async () => {
    const { repo, state } = await synced();
    repo.snapshot.expires = 'some day';
    repo.commit();
    await refused(repo, state, 'E_METADATA_INVALID', /2\.snapshot\.json: expires "some day"/);
  });

  it('refuses metadata larger than its limit', async () => {
    const { repo, state } = await synced();
    repo.timestamp.padding = 'x'.repeat(20_000);
    repo.commit();
    await refused(repo, state, 'E_METADATA_INVALID', /timestamp\.json: \d+ bytes, more than the 16384-byte limit/);
  });

  it('refuses a snapshot longer than the timestamp says', async () => {
    const repo = new HandmadeRepository(now);
    repo.timestampHashes = true;
    repo.publishAll();
    const { state } = await synced(repo);
    repo.commit();
    // the same version signed again with more in it: not the file the timestamp describes
    repo.snapshot.padding = 'more';
    repo.files.set('metadata/2.snapshot.json', envelope(repo.snapshot, signaturesOf(repo.snapshot, repo.signers.get('snapshot')!)));
    await refused(repo, state, 'E_DIGEST_MISMATCH', /2\.snapshot\.json: \d+ bytes, but metadata\/timestamp\.json says \d+/);
  });
});

describe('expiration (test_expiration.py)', () => {
  it('root: an expired intermediate root is fine, an expired final root is not (test_root_expired)', async () => {
    const { repo, state } = await synced();
    repo.rotateRoot((r) => (r.expires = isoDays(now, -1))); // v2, expired
    repo.rotateRoot((r) => (r.expires = isoDays(now, 365))); // v3
    const { result } = await sync(repo, state);
    expect(result.newRoots.map(versionOf)).toEqual([2, 3]);

    repo.rotateRoot((r) => (r.expires = isoDays(now, -1))); // v4, expired and final
    repo.role('targets').version += 1;
    repo.commit('targets');
    const { remote } = await refused(repo, result.state, 'E_METADATA_EXPIRED', /4\.root\.json: expired/);
    // nothing after the root is fetched (spec §5.3.10)
    expect(remote.requests).toEqual(['metadata/4.root.json', 'metadata/5.root.json']);
  });

  it('timestamp (test_timestamp_expired)', async () => {
    const { repo, state } = await synced();
    repo.timestamp.expires = isoDays(now, -5);
    repo.commit();
    await refused(repo, state, 'E_METADATA_EXPIRED', /timestamp\.json: expired/);
  });

  it('snapshot (test_snapshot_expired)', async () => {
    const { repo, state } = await synced();
    repo.snapshot.expires = isoDays(now, -5);
    repo.commit();
    await refused(repo, state, 'E_METADATA_EXPIRED', /2\.snapshot\.json: expired/);
  });

  it('targets (test_targets_expired)', async () => {
    const { repo, state } = await synced();
    repo.role('targets').expires = isoDays(now, -5);
    repo.commit('targets');
    await refused(repo, state, 'E_METADATA_EXPIRED', /2\.targets\.json: expired/);
  });

  it('a delegated hash bin (test_delegated_expiration.py)', async () => {
    const { repo, bins } = catalogRepository(now);
    const { state } = await synced(repo);
    repo.role(bins[3]!).expires = isoDays(now, -1);
    repo.commit(bins[3]!);
    await refused(repo, state, 'E_METADATA_EXPIRED', new RegExp(`2\\.${bins[3]}\\.json: expired`));
  });

  it('an expired role kept in the state is refused once it is expired, even unchanged', async () => {
    const { repo, bins } = catalogRepository(now);
    repo.role(bins[0]!).expires = isoDays(now, 10);
    repo.timestamp.expires = isoDays(now, 30);
    repo.snapshot.expires = isoDays(now, 60);
    repo.publishAll();
    const { state } = await synced(repo);
    repo.commit();
    await refused(repo, state, 'E_METADATA_EXPIRED', new RegExp(`1\\.${bins[0]}\\.json: expired`), { now: new Date(now.getTime() + 11 * 86_400_000) });
  });

  it('expired trusted timestamp and snapshot still let newer ones in (test_expired_metadata)', async () => {
    const repo = new HandmadeRepository(now);
    repo.timestamp.expires = isoDays(now, 7);
    repo.publishTimestamp();
    const { state } = await synced(repo);
    repo.role('targets').version += 1;
    repo.timestamp.expires = isoDays(now, 21);
    repo.snapshot.expires = isoDays(now, 60);
    repo.commit('targets');
    const { result } = await sync(repo, state, { now: new Date(now.getTime() + 18 * 86_400_000) });
    expect(result.state.roles.get('targets')!.version).toBe(3);
    expect(versionOf(result.state.timestamp)).toBe(2);
    expect(versionOf(result.state.snapshot)).toBe(2);
  });
});

describe('rollback (test_rollback.py)', () => {
  it('timestamp version going back (test_new_timestamp_version_rollback)', async () => {
    const repo = new HandmadeRepository(now);
    repo.commit(); // timestamp v2
    const { state } = await synced(repo);
    repo.timestamp.version = 1;
    repo.publishTimestamp();
    await refused(repo, state, 'E_METADATA_ROLLBACK', /timestamp\.json: version 1, but version 2 is already trusted/);
  });

  it('a snapshot republished with an older version but no new timestamp is never fetched (test_simple_snapshot_rollback)', async () => {
    const repo = new HandmadeRepository(now);
    repo.commit(); // snapshot v2
    const { state } = await synced(repo);
    repo.snapshot.version = 1;
    repo.publishSnapshot();
    const { result, remote } = await sync(repo, state);
    expect(remote.requests).toEqual(['metadata/2.root.json', 'metadata/timestamp.json']);
    expect(versionOf(result.state.snapshot)).toBe(2);
  });

  it.each([false, true])('snapshot version going back, timestamp with hashes: %s (test_snapshot_rollback)', async (hashes) => {
    const repo = new HandmadeRepository(now);
    repo.timestampHashes = hashes;
    repo.commit(); // snapshot v2
    const { state } = await synced(repo);
    repo.snapshot.version = 1;
    repo.publishSnapshot();
    repo.timestamp.version += 1;
    repo.publishTimestamp();
    await refused(repo, state, 'E_METADATA_ROLLBACK', /timestamp\.json: names snapshot version 1, but version 2 is already trusted/);
  });

  it.each([false, true])('targets version going back, snapshot with hashes: %s (test_targets_rollback)', async (hashes) => {
    const repo = new HandmadeRepository(now);
    repo.snapshotHashes = hashes;
    repo.commit('targets'); // targets v2
    const { state } = await synced(repo);
    repo.role('targets').version = 1;
    repo.publishRole('targets');
    repo.commit();
    await refused(repo, state, 'E_METADATA_ROLLBACK', /3\.snapshot\.json: lists targets\.json version 1, but version 2 is already trusted/);
  });

  it('a hash bin going back', async () => {
    const { repo, bins } = catalogRepository(now);
    repo.commit(bins[5]!);
    repo.commit(bins[5]!); // v3
    const { state } = await synced(repo);
    repo.role(bins[5]!).version = 2;
    repo.publishRole(bins[5]!);
    repo.commit();
    await refused(repo, state, 'E_METADATA_ROLLBACK', new RegExp(`lists ${bins[5]}\\.json version 2, but version 3`));
  });

  it('a role the trusted snapshot listed disappears (spec §5.5.5)', async () => {
    const { repo } = catalogRepository(now);
    const { state } = await synced(repo);
    repo.role('targets').delegations.roles = repo.role('targets').delegations.roles.filter((r: Json) => r.name !== 'custom');
    repo.roles.delete('custom');
    repo.commit('targets');
    await refused(repo, state, 'E_METADATA_ROLLBACK', /no longer lists custom\.json/);
  });
});

describe('fast-forward attack recovery (test_rollback.py, spec §5.3.11)', () => {
  it('timestamp: recovers once the timestamp key is rotated (test_new_timestamp_fast_forward_recovery)', async () => {
    const repo = new HandmadeRepository(now);
    repo.timestamp.version = 100; // an attacker with the timestamp key
    repo.publishTimestamp();
    const { state } = await synced(repo);
    repo.timestamp.version = 1;
    repo.publishTimestamp();
    // without a key rotation the old version is a rollback
    await refused(repo, state, 'E_METADATA_ROLLBACK', /timestamp\.json: version 1, but version 100/);

    repo.setTopLevelKeys('timestamp', [newKey()]);
    repo.rotateRoot();
    repo.publishTimestamp();
    const { result } = await sync(repo, state);
    expect(versionOf(result.state.timestamp)).toBe(1);
  });

  it('snapshot: recovers once snapshot and timestamp keys are rotated (test_new_snapshot_fast_forward_recovery)', async () => {
    const repo = new HandmadeRepository(now);
    repo.snapshot.version = 99_998;
    repo.commit();
    const { state } = await synced(repo);
    expect(versionOf(state.snapshot)).toBe(99_999);

    repo.setTopLevelKeys('snapshot', [newKey()]);
    repo.setTopLevelKeys('timestamp', [newKey()]);
    repo.rotateRoot();
    repo.snapshot.version = 1;
    repo.timestamp.version = 1;
    repo.publishSnapshot();
    repo.publishTimestamp();
    const { result } = await sync(repo, state);
    expect(versionOf(result.state.snapshot)).toBe(1);
    expect(versionOf(result.state.timestamp)).toBe(1);
  });

  it('targets: recovers once the snapshot key is rotated (test_new_targets_fast_forward_recovery)', async () => {
    const repo = new HandmadeRepository(now);
    repo.role('targets').version = 99;
    repo.commit('targets');
    const { state } = await synced(repo);
    expect(state.roles.get('targets')!.version).toBe(100);

    repo.setTopLevelKeys('snapshot', [newKey()]);
    repo.rotateRoot();
    repo.role('targets').version = 1;
    repo.publishRole('targets');
    repo.commit();
    const { result } = await sync(repo, state);
    expect(result.state.roles.get('targets')!.version).toBe(1);
  });
});

describe('keys and signatures (test_keys.py)', () => {
  it('snapshot signed by fewer keys than its threshold (test_snapshot_threshold)', async () => {
    const { repo, state } = await synced();
    repo.setTopLevelKeys('snapshot', [newKey(), newKey(), newKey(), newKey(), newKey()], 6);
    repo.rotateRoot();
    repo.commit();
    await refused(repo, state, 'E_SIGNATURE_INVALID', /2\.snapshot\.json: snapshot is signed by 5 of the 6 distinct key\(s\) root v2 requires/);
  });

  it('a higher threshold than the keys that signed (test_root_has_keys_but_not_snapshot)', async () => {
    const { repo, state } = await synced();
    repo.setTopLevelKeys('snapshot', [newKey(), newKey(), newKey(), newKey()], 3);
    repo.rotateRoot();
    repo.commit();
    const { result } = await sync(repo, state);
    repo.root.roles.snapshot.threshold = 5;
    repo.rotateRoot();
    repo.commit();
    await refused(repo, result.state, 'E_SIGNATURE_INVALID', /signed by 4 of the 5/);
  });

  it('the same signature listed twice counts once', async () => {
    const { repo, state } = await synced();
    const [a, b] = [newKey(), newKey()];
    repo.setTopLevelKeys('snapshot', [a, b], 2);
    repo.rotateRoot();
    repo.snapshot.version += 1;
    repo.snapshot.meta = repo.snapshotMeta();
    const sigs = signaturesOf(repo.snapshot, [a]);
    repo.files.set(`metadata/${repo.snapshot.version}.snapshot.json`, envelope(repo.snapshot, [...sigs, ...sigs]));
    repo.timestamp.version += 1;
    repo.publishTimestamp();
    await refused(repo, state, 'E_SIGNATURE_INVALID', /signed by 1 of the 2/);
  });

  it('one key under two key ids counts once', async () => {
    const { repo, state } = await synced();
    const k = newKey();
    // TUF key ids are hashes of the key object: an extra field gives a second, valid id
    const other = { ...keyJson(k), 'x-note': 'same key' };
    const otherId = keyidOf(other);
    repo.root.keys[k.keyid] = keyJson(k);
    repo.root.keys[otherId] = other;
    repo.root.roles.snapshot = { keyids: [k.keyid, otherId], threshold: 2 };
    repo.rotateRoot();
    repo.snapshot.version += 1;
    repo.snapshot.meta = repo.snapshotMeta();
    repo.files.set(`metadata/${repo.snapshot.version}.snapshot.json`, envelope(repo.snapshot, [...signaturesOf(repo.snapshot, [k]), ...signaturesOf(repo.snapshot, [k], otherId)]));
    repo.timestamp.version += 1;
    repo.publishTimestamp();
    await refused(repo, state, 'E_SIGNATURE_INVALID', /signed by 1 of the 2/);
  });

  it('one key listed ten times does not meet a threshold of 6 (test_duplicate_keys_root)', async () => {
    const { repo, state } = await synced();
    const k = newKey();
    const ids: string[] = [];
    const sigs: Array<{ keyid: string; sig: string }> = [];
    repo.snapshot.version += 1;
    repo.snapshot.meta = repo.snapshotMeta();
    for (let n = 0; n < 10; n++) {
      const json = { ...keyJson(k), n: String(n) };
      ids.push(keyidOf(json));
      repo.root.keys[keyidOf(json)] = json;
      sigs.push(...signaturesOf(repo.snapshot, [k], keyidOf(json)));
    }
    repo.root.roles.snapshot = { keyids: ids, threshold: 6 };
    repo.rotateRoot();
    repo.files.set(`metadata/${repo.snapshot.version}.snapshot.json`, envelope(repo.snapshot, sigs));
    repo.timestamp.version += 1;
    repo.publishTimestamp();
    await refused(repo, state, 'E_SIGNATURE_INVALID', /signed by 1 of the 6/);
  });

  it('a key with a keyid_hash_algorithms field still counts (test_wrong_hashing_algorithm)', async () => {
    const { repo, state } = await synced();
    repo.root.keys[repo.root.roles.snapshot.keyids[0]].keyid_hash_algorithms = ['md5'];
    repo.rotateRoot();
    repo.commit();
    const { result } = await sync(repo, state);
    expect(versionOf(result.state.snapshot)).toBe(2);
  });

  it('keys of a type the client does not use never count', async () => {
    const { repo, state } = await synced();
    const k = newKey();
    const ecdsa = { keytype: 'ecdsa', scheme: 'ecdsa-sha2-nistp256', keyval: { public: k.public } };
    repo.root.keys[keyidOf(ecdsa)] = ecdsa;
    repo.root.roles.snapshot = { keyids: [keyidOf(ecdsa)], threshold: 1 };
    repo.rotateRoot();
    repo.snapshot.version += 1;
    repo.snapshot.meta = repo.snapshotMeta();
    repo.files.set(`metadata/${repo.snapshot.version}.snapshot.json`, envelope(repo.snapshot, signaturesOf(repo.snapshot, [k], keyidOf(ecdsa))));
    repo.timestamp.version += 1;
    repo.publishTimestamp();
    await refused(repo, state, 'E_SIGNATURE_INVALID', /signed by 0 of the 1/);
  });

  it('a delegated role signed by a key its delegator did not give', async () => {
    const { repo, bins } = catalogRepository(now);
    repo.publishRole(bins[2]!, [newKey()]);
    await refused(repo, repo.initialState(), 'E_SIGNATURE_INVALID', new RegExp(`1\\.${bins[2]}\\.json: ${bins[2]} is signed by 0 of the 1 distinct key\\(s\\) debian requires`));
  });

  it('a delegation threshold counts distinct keys too', async () => {
    const repo = new HandmadeRepository(now);
    const k = newKey();
    const other = { ...keyJson(k), 'x-note': 'same key' };
    repo.delegate('targets', 'A', { keys: [k], threshold: 2 });
    const d = repo.role('targets').delegations;
    d.keys[keyidOf(other)] = other;
    d.roles[0].keyids.push(keyidOf(other));
    const a = repo.role('A');
    repo.publishAll();
    repo.files.set('metadata/1.A.json', envelope(a, [...signaturesOf(a, [k]), ...signaturesOf(a, [k], keyidOf(other))]));
    await refused(repo, repo.initialState(), 'E_SIGNATURE_INVALID', /1\.A\.json: A is signed by 1 of the 2/);
  });
});

/** test_updater_key_rotations.py: keys (indices), threshold and signing keys of each root version. */
interface MdVersion {
  keys: number[];
  threshold: number;
  sigs: number[];
  ok?: boolean;
}

const rootRotationCases: Record<string, MdVersion[]> = {
  '1-of-1-key-rotation': [
    { keys: [1], threshold: 1, sigs: [1] },
    { keys: [2], threshold: 1, sigs: [2, 1] },
    { keys: [2], threshold: 1, sigs: [2] },
  ],
  '1-of-1-key-rotation-unused-signatures': [
    { keys: [1], threshold: 1, sigs: [3, 1, 4] },
    { keys: [2], threshold: 1, sigs: [3, 2, 1, 4] },
    { keys: [2], threshold: 1, sigs: [3, 2, 4] },
  ],
  '3-of-5-sign-with-different-keycombos': [
    { keys: [0, 1, 2, 3, 4], threshold: 3, sigs: [0, 2, 4] },
    { keys: [0, 1, 2, 3, 4], threshold: 3, sigs: [0, 4, 1] },
    { keys: [0, 1, 2, 3, 4], threshold: 3, sigs: [0, 1, 3] },
    { keys: [0, 1, 2, 3, 4], threshold: 3, sigs: [0, 1, 3] },
  ],
  '3-of-5-one-key-rotated': [
    { keys: [0, 1, 2, 3, 4], threshold: 3, sigs: [0, 2, 4] },
    { keys: [0, 1, 3, 4, 5], threshold: 3, sigs: [0, 4, 1] },
  ],
  '3-of-5-one-key-rotated-with-intermediate-step': [
    { keys: [0, 1, 2, 3, 4], threshold: 3, sigs: [0, 2, 4] },
    { keys: [0, 1, 3, 4, 5], threshold: 3, sigs: [0, 2, 4, 5] },
    { keys: [0, 1, 3, 4, 5], threshold: 3, sigs: [0, 4, 5] },
  ],
  '3-of-5-all-keys-rotated-with-intermediate-step': [
    { keys: [0, 1, 2, 3, 4], threshold: 3, sigs: [0, 2, 4] },
    { keys: [5, 6, 7, 8, 9], threshold: 3, sigs: [0, 2, 4, 5, 6, 7] },
    { keys: [5, 6, 7, 8, 9], threshold: 3, sigs: [5, 6, 7] },
  ],
  '1-of-3-threshold-increase-to-2-of-3': [
    { keys: [1, 2, 3], threshold: 1, sigs: [1] },
    { keys: [1, 2, 3], threshold: 2, sigs: [1, 2] },
  ],
  '2-of-3-threshold-decrease-to-1-of-3': [
    { keys: [1, 2, 3], threshold: 2, sigs: [1, 2] },
    { keys: [1, 2, 3], threshold: 1, sigs: [1, 2] },
    { keys: [1, 2, 3], threshold: 1, sigs: [1] },
  ],
  '1-of-2-threshold-increase-to-2-of-2': [
    { keys: [1], threshold: 1, sigs: [1] },
    { keys: [1, 2], threshold: 2, sigs: [1, 2] },
  ],
  '1-of-1-key-rotation-fail-not-signed-with-old-key': [
    { keys: [1], threshold: 1, sigs: [1] },
    { keys: [2], threshold: 1, sigs: [2, 3, 4], ok: false },
  ],
  '1-of-1-key-rotation-fail-not-signed-with-new-key': [
    { keys: [1], threshold: 1, sigs: [1] },
    { keys: [2], threshold: 1, sigs: [1, 3, 4], ok: false },
  ],
  '3-of-5-one-key-rotate-fails-not-signed-with-3-new-keys': [
    { keys: [0, 1, 2, 3, 4], threshold: 3, sigs: [0, 2, 4] },
    { keys: [0, 1, 3, 4, 5], threshold: 3, sigs: [0, 2, 4], ok: false },
  ],
  '3-of-5-one-key-rotate-fails-not-signed-with-3-old-keys': [
    { keys: [0, 1, 2, 3, 4], threshold: 3, sigs: [0, 2, 4] },
    { keys: [0, 1, 3, 4, 5], threshold: 3, sigs: [0, 4, 5], ok: false },
  ],
  '1-of-3-threshold-bump-to-2-of-3-fails-new-threshold-not-reached': [
    { keys: [1, 2, 3], threshold: 1, sigs: [1] },
    { keys: [1, 2, 3], threshold: 2, sigs: [2], ok: false },
  ],
  '2-of-3-threshold-decr-to-1-of-3-fails-old-threshold-not-reached': [
    { keys: [1, 2, 3], threshold: 2, sigs: [1, 2] },
    { keys: [1, 2, 3], threshold: 1, sigs: [1], ok: false },
  ],
};

const nonRootRotationCases: Record<string, MdVersion> = {
  '1-of-1-key-rotation': { keys: [2], threshold: 1, sigs: [2] },
  '1-of-1-key-rotation-unused-signatures': { keys: [1], threshold: 1, sigs: [3, 1, 4] },
  '1-of-1-key-rotation-fail-not-signed-with-new-key': { keys: [2], threshold: 1, sigs: [1, 3, 4], ok: false },
  '3-of-5-one-key-signature-wrong-not-signed-with-3-expected-keys': { keys: [0, 1, 3, 4, 5], threshold: 3, sigs: [0, 2, 4], ok: false },
  '2-of-5-one-key-signature-missing-threshold-not-reached': { keys: [0, 1, 3, 4, 5], threshold: 3, sigs: [0, 4], ok: false },
  '3-of-5-sign-first-combo': { keys: [0, 1, 2, 3, 4], threshold: 3, sigs: [0, 2, 4] },
  '3-of-5-sign-second-combo': { keys: [0, 1, 2, 3, 4], threshold: 3, sigs: [0, 4, 1] },
  '3-of-5-sign-third-combo': { keys: [0, 1, 2, 3, 4], threshold: 3, sigs: [0, 1, 3] },
  '3-of-5-sign-fourth-combo': { keys: [0, 1, 2, 3, 4], threshold: 3, sigs: [1, 2, 3] },
  '3-of-5-sign-fifth-combo': { keys: [0, 1, 2, 3, 4], threshold: 3, sigs: [2, 3, 4] },
};

describe('key rotations (test_updater_key_rotations.py)', () => {
  it.each(Object.entries(rootRotationCases))('root: %s (test_root_rotation)', async (_name, versions) => {
    const repo = new HandmadeRepository(now);
    const keys = Array.from({ length: 10 }, () => newKey());
    versions.forEach((v, i) => {
      repo.root.version = i + 1;
      for (const k of v.keys) repo.root.keys[keys[k]!.keyid] = keyJson(keys[k]!);
      repo.root.roles.root = { keyids: v.keys.map((k) => keys[k]!.keyid), threshold: v.threshold };
      repo.publishRoot(v.sigs.map((k) => keys[k]!));
    });
    const state: MirrorState = { root: repo.files.get('metadata/1.root.json')!, roles: new Map() };
    const last = versions.length;
    if (versions[last - 1]!.ok === false) {
      await refused(repo, state, 'E_SIGNATURE_INVALID', new RegExp(`${last}\\.root\\.json: root is signed by \\d of the \\d distinct key\\(s\\) root v${last - 1}|root v${last} requires`));
    } else {
      const { result } = await sync(repo, state);
      expect(result.state.root).toEqual(repo.files.get(`metadata/${last}.root.json`));
      expect(result.newRoots).toEqual(versions.slice(1).map((_, i) => repo.files.get(`metadata/${i + 2}.root.json`)));
    }
  });

  describe.each(['timestamp', 'snapshot', 'targets'])('%s (test_non_root_rotations)', (role) => {
    it.each(Object.entries(nonRootRotationCases))('%s', async (_name, v) => {
      const { repo, state } = await synced();
      const keys = Array.from({ length: 10 }, () => newKey());
      repo.setTopLevelKeys(role, v.keys.map((k) => keys[k]!), v.threshold);
      repo.signers.set(role, v.sigs.map((k) => keys[k]!));
      repo.rotateRoot();
      // targets is signed again under the same version: the copy in the state no longer
      // verifies, so the client must take the one the remote serves now
      repo.publishRole('targets');
      repo.commit();
      if (v.ok === false) {
        await refused(repo, state, 'E_SIGNATURE_INVALID', new RegExp(`${role} is signed by \\d of the ${v.threshold}`));
      } else {
        const { result } = await sync(repo, state);
        expect(result.newRoots.length).toBe(1);
        if (role === 'targets') expect(result.changedRoles).toContain('targets');
      }
    });
  });

  it('a delegated role signed again under the same version after its delegator changed its keys', async () => {
    const { repo } = catalogRepository(now);
    const { state } = await synced(repo);
    const k = newKey();
    const d = repo.role('targets').delegations;
    d.keys[k.keyid] = keyJson(k);
    d.roles[0].keyids = [k.keyid];
    repo.signers.set('custom', [k]);
    repo.publishRole('custom'); // same version, new signature
    repo.commit('targets');
    const { result } = await sync(repo, state);
    expect(result.changedRoles).toEqual(['timestamp', 'snapshot', 'targets', 'custom']);
    expect(result.state.roles.get('custom')!.bytes).toEqual(repo.files.get('metadata/1.custom.json'));
  });
});

describe('mix and match', () => {
  it('a snapshot whose meta names another targets version than the one served (test_new_targets_version_mismatch)', async () => {
    const { repo, state } = await synced();
    repo.files.set('metadata/2.targets.json', repo.files.get('metadata/1.targets.json')!);
    repo.role('targets').version = 2; // listed in the snapshot, never signed
    repo.commit();
    await refused(repo, state, 'E_METADATA_INVALID', /2\.targets\.json: version 1, but metadata\/2\.snapshot\.json names version 2/);
  });

  it('targets bytes other than the snapshot hashes (test_new_targets_hash_mismatch)', async () => {
    const repo = new HandmadeRepository(now);
    repo.snapshotHashes = true;
    repo.publishAll();
    const { state } = await synced(repo);
    repo.commit('targets');
    // targets v2 signed again with other content, the snapshot still describing the first one
    repo.addTarget('targets', 'x/late', 'late');
    repo.publishRole('targets');
    await refused(repo, state, 'E_DIGEST_MISMATCH', /2\.targets\.json: (\d+ bytes|sha256 \w+), but metadata\/2\.snapshot\.json says/);
  });

  it('a snapshot of another version than the timestamp names (test_new_snapshot_version_mismatch)', async () => {
    const repo = new HandmadeRepository(now);
    const snap = { ...repo.snapshot, version: 2 };
    repo.files.set('metadata/1.snapshot.json', envelope(snap, signaturesOf(snap, repo.signers.get('snapshot')!)));
    const { remote } = await refused(repo, repo.initialState(), 'E_METADATA_INVALID', /1\.snapshot\.json: version 2, but metadata\/timestamp\.json names version 1/);
    expect(remote.requests.at(-1)).toBe('metadata/1.snapshot.json');
  });

  it('a root at N+1 that says it is another version', async () => {
    const { repo, state } = await synced();
    repo.root.version = 3;
    const bytes = envelope(repo.root, signaturesOf(repo.root, repo.signers.get('root')!));
    repo.files.set('metadata/2.root.json', bytes);
    await refused(repo, state, 'E_METADATA_INVALID', /2\.root\.json: version 3, expected 2/);
    repo.root.version = 1;
    repo.files.set('metadata/2.root.json', envelope(repo.root, signaturesOf(repo.root, repo.signers.get('root')!)));
    await refused(repo, state, 'E_METADATA_ROLLBACK', /2\.root\.json: version 1, but root v1 is already trusted/);
  });

  it('a delegated role the snapshot does not list: the paths that need it are refused, nothing else', async () => {
    const repo = new HandmadeRepository(now);
    repo.delegate('targets', 'ghost', { paths: ['g/*'], terminating: true });
    repo.delegate('targets', 'A');
    repo.addTarget('A', 'g/x', 'A would give g/x');
    repo.addTarget('A', 'a/x', 'a/x');
    repo.publishAll();
    repo.snapshot.meta = repo.snapshotMeta();
    delete repo.snapshot.meta['ghost.json'];
    repo.files.set('metadata/1.snapshot.json', envelope(repo.snapshot, signaturesOf(repo.snapshot, repo.signers.get('snapshot')!)));
    const { result, remote } = await sync(repo, repo.initialState());
    expect(remote.requests).not.toContain('metadata/1.ghost.json');
    expect(Object.fromEntries([...result.targets].map(([p, t]) => [p, t.role]))).toEqual({ 'a/x': 'A' });
    // the search for g/x stops at ghost: it does not go on to A
    expect(result.refused).toEqual([{ path: 'g/x', role: 'A', reason: 'the search for this path needs ghost, which the snapshot does not list' }]);
    expect(result.state.roles.has('ghost')).toBe(false);
  });
});

/** Builds a graph from [delegator, role, options] and lists one target per [role, path]. */
function graph(delegations: Array<[string, string, { paths?: string[]; terminating?: boolean; sameKeys?: boolean }?]>, listings: Array<[string, string]>) {
  const repo = new HandmadeRepository(now);
  for (const [from, name, opts = {}] of delegations) {
    const keys: TestKey[] | undefined = opts.sameKeys ? repo.signers.get(name) : undefined;
    repo.delegate(from, name, { paths: opts.paths ?? ['*/*'], terminating: opts.terminating ?? false, ...(keys ? { keys } : {}) });
  }
  for (const [role, path] of listings) repo.addTarget(role, path, `${path} by ${role}`);
  repo.publishAll();
  return repo;
}

async function resolved(repo: HandmadeRepository, limits?: Partial<MirrorLimits>) {
  const { result } = await sync(repo, repo.initialState(), { limits });
  return { owners: Object.fromEntries([...result.targets].map(([p, t]) => [p, t.role])), refused: result.refused };
}

describe('delegations (test_updater_delegation_graphs.py)', () => {
  it('terminating: nothing after the terminating role but its descendants (two-level-terminating)', async () => {
    const repo = graph(
      [['targets', 'A'], ['targets', 'B'], ['A', 'C', { terminating: true }], ['A', 'D']],
      [['A', 'x/a'], ['B', 'x/b'], ['C', 'x/c'], ['D', 'x/d']],
    );
    const { owners, refused } = await resolved(repo);
    expect(owners).toEqual({ 'x/a': 'A', 'x/c': 'C' });
    expect(refused).toEqual([
      { path: 'x/b', role: 'B', reason: 'no chain of delegations gives this path to B' },
      { path: 'x/d', role: 'D', reason: 'no chain of delegations gives this path to D' },
    ]);
  });

  it('terminating: descendants of the terminating role are searched (three-level-terminating)', async () => {
    const repo = graph([['targets', 'A'], ['targets', 'B'], ['A', 'C', { terminating: true }], ['C', 'D']], [['D', 'x/d'], ['B', 'x/b']]);
    expect((await resolved(repo)).owners).toEqual({ 'x/d': 'D' });
  });

  it('pre-order depth-first: a deeper role of an earlier branch comes before a later branch (DFS order)', async () => {
    const repo = graph([['targets', 'A'], ['targets', 'B'], ['A', 'C'], ['C', 'D']], [['D', 'x/same'], ['B', 'x/same']]);
    const { owners, refused } = await resolved(repo);
    expect(owners).toEqual({ 'x/same': 'D' });
    expect(refused).toEqual([{ path: 'x/same', role: 'B', reason: 'D comes first for this path' }]);
  });

  it('branches whose paths do not match are not searched (ignores-all-branches-not-matching-paths)', async () => {
    const repo = graph([['targets', 'A', { paths: ['*/*.py'] }], ['targets', 'B'], ['A', 'C']], [['C', 'x/c.txt'], ['C', 'x/c.py'], ['B', 'x/b.txt']]);
    const { owners, refused } = await resolved(repo);
    expect(owners).toEqual({ 'x/c.py': 'C', 'x/b.txt': 'B' });
    expect(refused.map((r) => [r.path, r.role])).toEqual([['x/c.txt', 'C']]);
  });

  it('a cyclic graph ends (cyclic-graph)', async () => {
    const repo = graph([['targets', 'A'], ['targets', 'B'], ['B', 'C'], ['C', 'D'], ['D', 'B', { sameKeys: true }]], [['D', 'x/d']]);
    const { owners } = await resolved(repo);
    expect(owners).toEqual({ 'x/d': 'D' });
  });

  it('a role delegated by two roles is reached through the one whose paths match (two-roles-delegating-to-a-third-different-paths)', async () => {
    const repo = graph([['targets', 'A'], ['targets', 'B'], ['B', 'C'], ['A', 'C', { paths: ['*/*.py'], sameKeys: true }]], [['C', 'x/c.txt'], ['C', 'x/c.py']]);
    expect((await resolved(repo)).owners).toEqual({ 'x/c.txt': 'C', 'x/c.py': 'C' });
  });

  it('the delegation followed for a path must have signed the role it leads to (spec §5.6.3)', async () => {
    // A gives C one key for *.py, B gives C another key for everything; C is signed by A's key.
    const build = (listings: Array<[string, string]>) => {
      const repo = new HandmadeRepository(now);
      const [kA, kB] = [newKey(), newKey()];
      repo.delegate('targets', 'A');
      repo.delegate('targets', 'B');
      repo.delegate('A', 'C', { paths: ['*/*.py'], keys: [kA] });
      repo.delegate('B', 'C', { keys: [kB] });
      repo.signers.set('C', [kA]);
      for (const [role, path] of listings) repo.addTarget(role, path, path);
      repo.publishAll();
      return repo;
    };
    // x/c.py is reached through A, which signed C
    expect((await resolved(build([['C', 'x/c.py']]))).owners).toEqual({ 'x/c.py': 'C' });
    // x/c.txt is reached through B, which did not
    const repo = build([['C', 'x/c.py'], ['C', 'x/c.txt']]);
    await refused(repo, repo.initialState(), 'E_SIGNATURE_INVALID', /1\.C\.json: C is signed by 0 of the 1 distinct key\(s\) B requires/);
  });

  it('the top-level targets role comes before every delegation', async () => {
    const repo = graph([['targets', 'A']], [['targets', 'x/t'], ['A', 'x/t']]);
    const { owners, refused } = await resolved(repo);
    expect(owners).toEqual({ 'x/t': 'targets' });
    expect(refused).toEqual([{ path: 'x/t', role: 'A', reason: 'targets comes first for this path' }]);
  });

  it('target file search through a tree of path patterns (test_targetfile_search)', async () => {
    const repo = graph(
      [
        ['targets', 'A', { paths: ['*/*.doc', '*/*.md'] }],
        ['targets', 'B', { paths: ['releases/*'] }],
        ['B', 'C', { paths: ['releases/x*'] }],
        ['B', 'D', { paths: ['releases/y*.zip'] }],
      ],
      [
        ['targets', 'top/targetfile'],
        ['A', 'docs/README.md'],
        ['C', 'releases/x_v1'],
        ['D', 'releases/y_v1.zip'],
        ['D', 'releases/z_v1.zip'],
      ],
    );
    const { owners, refused } = await resolved(repo);
    expect(owners).toEqual({ 'top/targetfile': 'targets', 'docs/README.md': 'A', 'releases/x_v1': 'C', 'releases/y_v1.zip': 'D' });
    expect(refused.map((r) => [r.path, r.role])).toEqual([['releases/z_v1.zip', 'D']]);
  });

  it('path_hash_prefixes', async () => {
    const prefix = sha256('x/in')[0]!;
    const outside = ['x/o1', 'x/o2', 'x/o3', 'x/o4', 'x/o5'].find((p) => sha256(p)[0] !== prefix)!;
    const repo = new HandmadeRepository(now);
    repo.delegate('targets', 'H', { pathHashPrefixes: [prefix] });
    repo.addTarget('H', 'x/in', 'in');
    repo.addTarget('H', outside, 'out');
    repo.publishAll();
    const { owners, refused } = await resolved(repo);
    expect(owners).toEqual({ 'x/in': 'H' });
    expect(refused.map((r) => r.path)).toEqual([outside]);
  });

  it('the search for one path stops after maxDelegations roles', async () => {
    const chain: Array<[string, string]> = [];
    for (let i = 1; i <= 40; i++) chain.push([i === 1 ? 'targets' : `r${i - 1}`, `r${i}`]);
    const repo = graph(chain, [['r40', 'x/deep'], ['r3', 'x/shallow']]);
    const limited = await resolved(repo);
    expect(limited.owners).toEqual({ 'x/shallow': 'r3' });
    expect(limited.refused).toEqual([{ path: 'x/deep', role: 'r40', reason: 'the search for this path stopped after 32 roles' }]);
    expect((await resolved(repo, { maxDelegations: 64 })).owners).toEqual({ 'x/shallow': 'r3', 'x/deep': 'r40' });
  });

  it('keeps the order of delegations as sent, role names that look like numbers included', async () => {
    const repo = graph([['targets', 'b'], ['targets', '1']], [['b', 'x/same'], ['1', 'x/same']]);
    const { owners } = await resolved(repo);
    expect(owners).toEqual({ 'x/same': 'b' });
  });

  it('refuses a graph with more roles than allowed', async () => {
    const chain: Array<[string, string]> = [];
    for (let i = 1; i <= 12; i++) chain.push([i === 1 ? 'targets' : `r${i - 1}`, `r${i}`]);
    const repo = graph(chain, []);
    await refused(repo, repo.initialState(), 'E_METADATA_INVALID', /the delegation graph has more than 10 roles/, { limits: { maxRoles: 10 } });
  });

  it('refuses more hash bins than roles allowed', async () => {
    const { repo } = catalogRepository(now);
    await refused(repo, repo.initialState(), 'E_METADATA_INVALID', /16 hash bins, more than the 10 roles allowed/, { limits: { maxRoles: 10 } });
  });

  it('refuses a delegated role with the name of a top-level role', async () => {
    const repo = new HandmadeRepository(now);
    repo.role('targets').delegations = { keys: {}, roles: [{ name: 'snapshot', keyids: [], threshold: 1, terminating: false, paths: ['*/*'] }] };
    repo.publishAll();
    await refused(repo, repo.initialState(), 'E_METADATA_INVALID', /1\.targets\.json: .*top-level role name/);
  });

  it('refuses a role delegated twice in one list', async () => {
    const repo = graph([['targets', 'A']], []);
    repo.role('targets').delegations.roles.push({ ...repo.role('targets').delegations.roles[0], paths: ['y/*'] });
    repo.publishAll();
    await refused(repo, repo.initialState(), 'E_METADATA_INVALID', /delegates to "A" twice/);
  });

  it.each(['?', '#', '/delegatedrole', '../delegatedrole', '%2F', 'a b'])('fetches an unusual role name %j encoded (test_quoting_issues.py)', async (role) => {
    const repo = graph([['targets', role]], [[role, 'x/y']]);
    const { result, remote } = await sync(repo, repo.initialState());
    expect(remote.requests).toContain(`metadata/1.${encodeURIComponent(role)}.json`);
    expect(result.targets.get('x/y')!.role).toBe(role);
    expect(result.state.roles.has(role)).toBe(true);
  });
});

describe('the Patchwarden catalog: custom first and terminating, bins under vendors', () => {
  const OPENSSL = 'debian/openssl-3.0.15-1~deb12u1.r1.json';

  it('a bin that signs custom/x is never taken', async () => {
    const { repo } = catalogRepository(now);
    const bin = binOf('custom/x', 'debian-bin', 4);
    repo.addTarget(bin, 'custom/x', 'from a bin');
    repo.publishAll();
    const { result } = await sync(repo, repo.initialState());
    expect(result.targets.has('custom/x')).toBe(false);
    expect(result.refused).toEqual([{ path: 'custom/x', role: bin, reason: `no chain of delegations gives this path to ${bin}` }]);

    // and when the authors list it too, theirs is the one
    repo.addTarget('custom', 'custom/x', 'from the authors');
    repo.commit('custom');
    const again = await sync(repo, result.state);
    expect(again.result.targets.get('custom/x')).toEqual({ role: 'custom', length: 16, sha256: sha256('from the authors') });
    expect(again.result.refused).toEqual([{ path: 'custom/x', role: bin, reason: 'custom comes first for this path' }]);
  });

  it('before the authors publish a custom listing, vendor targets flow and custom/* goes to nobody', async () => {
    const { repo, bins } = catalogRepository(now);
    repo.roles.delete('custom'); // delegated by targets, never published
    const bin = binOf('custom/x', 'debian-bin', 4);
    repo.addTarget(bin, 'custom/x', 'from a bin');
    repo.addTarget(binOf(OPENSSL, 'debian-bin', 4), OPENSSL, 'openssl');
    repo.addTarget('vendors', 'custom/y', 'from vendors');
    repo.publishAll();
    const { result } = await sync(repo, repo.initialState());
    expect([...result.targets.keys()]).toEqual([OPENSSL]);
    expect(result.refused.map((r) => [r.path, r.role, r.reason])).toEqual([
      ['custom/x', bin, 'the search for this path needs custom, which the snapshot does not list'],
      ['custom/y', 'vendors', 'the search for this path needs custom, which the snapshot does not list'],
    ]);
    expect([...result.state.roles.keys()]).toEqual(['targets', 'vendors', 'debian', ...bins]);
  });

  it('vendors (online) listing custom/x is refused', async () => {
    const { repo } = catalogRepository(now);
    repo.addTarget('vendors', 'custom/x', 'from vendors');
    repo.publishAll();
    const { result } = await sync(repo, repo.initialState());
    expect(result.targets.has('custom/x')).toBe(false);
    expect(result.refused.map((r) => [r.path, r.role])).toEqual([['custom/x', 'vendors']]);
  });

  it('a bin listing targets outside its delegated paths: those are refused, its others kept', async () => {
    const { repo } = catalogRepository(now);
    const bin = binOf(OPENSSL, 'debian-bin', 4);
    const elsewhere = ['debian/a', 'debian/b', 'debian/c', 'debian/d', 'debian/e'].find((p) => binOf(p, 'debian-bin', 4) !== bin)!;
    repo.addTarget(bin, OPENSSL, 'openssl');
    repo.addTarget(bin, 'ubuntu/openssl.r1.json', 'another vendor');
    repo.addTarget(bin, elsewhere, 'another bin');
    repo.publishAll();
    const { result } = await sync(repo, repo.initialState());
    expect([...result.targets.keys()]).toEqual([OPENSSL]);
    expect(result.refused.map((r) => r.path).sort()).toEqual([elsewhere, 'ubuntu/openssl.r1.json'].sort());
  });
});

describe('hostile target names (test_file_download.py, and the mirror layout)', () => {
  const hostile = ['debian/..', '../debian', '..', '/debian/x', '/x', 'debian\\x', 'debian//x', '//x', 'debian/', 'debian/x\0y', 'debian/x\ny', 'debian', 'debian/a/b', '', './x'];

  it.each(hostile)('%j in targets', async (path) => {
    const { repo, state } = await synced();
    repo.role('targets').targets[path] = { length: 1, hashes: { sha256: sha256('x') } };
    repo.commit('targets');
    await refused(repo, state, 'E_METADATA_INVALID', new RegExp(`2\\.targets\\.json: target path ${JSON.stringify(path).replace(/[\\^$.*+?()[\]{}|]/g, '\\$&')}`));
  });

  it.each(['debian/../../etc/passwd', 'debian\\..\\x'])('%j in a hash bin', async (path) => {
    const { repo, bins } = catalogRepository(now);
    repo.role(bins[0]!).targets[path] = { length: 1, hashes: { sha256: sha256('x') } };
    repo.publishAll();
    await refused(repo, repo.initialState(), 'E_METADATA_INVALID', /target path/);
  });

  it('a sha256 that is not a hash (it names the file on the mirror)', async () => {
    const { repo, state } = await synced();
    repo.role('targets').targets['x/y'] = { length: 1, hashes: { sha256: '../../../etc/passwd' } };
    repo.commit('targets');
    await refused(repo, state, 'E_METADATA_INVALID', /x\/y: needs a sha256 hash/);
  });
});
