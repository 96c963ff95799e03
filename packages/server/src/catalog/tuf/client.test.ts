import { PatchwardenError } from '@patchwarden/core';
import { DelegatedRole } from '@tufjs/models/dist/role.js';
import { describe, expect, it } from 'vitest';
import { fetchTarget, mirrorCatalog, targetPathProblem } from './client.js';
import { binOf, catalogRepository, frozenState as frozen, sha256 } from './testing/handmade.js';

const now = new Date('2026-03-01T12:00:00Z');
const BITS = 4;

const HOTFIX = 'custom/acme-hotfix-12.r1.bundle';
const OPENSSL = 'debian/openssl-3.0.15-1~deb12u1.r1.json';
const CURL = 'debian/curl-7.88.1-10+deb12u8.r1.json';
const OPENSSL_R2 = 'debian/openssl-3.0.15-1~deb12u1.r2.json';

function bin(path: string): string {
  return binOf(path, 'debian-bin', BITS);
}

function catalog() {
  const { repo, bins } = catalogRepository(now, BITS);
  repo.addTarget('custom', HOTFIX, 'signed bundle', { kind: 'bundle' });
  repo.addTarget(bin(OPENSSL), OPENSSL, '{"id":"debian/openssl-3.0.15-1~deb12u1","revision":1}');
  repo.addTarget(bin(CURL), CURL, '{"id":"debian/curl-7.88.1-10+deb12u8","revision":1}');
  repo.publishAll(); // still version 1 everywhere: nothing was mirrored yet
  return { repo, bins };
}

describe('mirrorCatalog', () => {
  it('mirrors the whole catalog, then fetches only what changed', async () => {
    const { repo, bins } = catalog();
    const initial = repo.initialState();
    const before = frozen(initial);

    // First sync: every role of the graph.
    const remote1 = repo.remote();
    const first = await mirrorCatalog({ remote: remote1, state: initial, now });
    expect(frozen(initial)).toEqual(before);
    const allRoles = ['targets', 'custom', 'vendors', 'debian', ...bins];
    expect(remote1.requests).toEqual(['metadata/2.root.json', 'metadata/timestamp.json', 'metadata/1.snapshot.json', ...allRoles.map((r) => `metadata/1.${r}.json`)]);
    expect(first.fetched.files).toBe(2 + allRoles.length);
    const sizeOf = (...files: string[]) => files.reduce((n, f) => n + repo.files.get(f)!.length, 0);
    expect(first.fetched.bytes).toBe(sizeOf('metadata/timestamp.json', 'metadata/1.snapshot.json', ...allRoles.map((r) => `metadata/1.${r}.json`)));
    expect(first.newRoots).toEqual([]);
    expect(first.changedRoles).toEqual(['timestamp', 'snapshot', ...allRoles]);
    expect([...first.state.roles.keys()]).toEqual(allRoles);
    expect(first.state.root).toBe(initial.root);
    expect(first.refused).toEqual([]);
    expect(first.targets).toEqual(
      new Map([
        [CURL, { role: bin(CURL), length: repo.role(bin(CURL)).targets[CURL].length, sha256: repo.role(bin(CURL)).targets[CURL].hashes.sha256 }],
        [HOTFIX, { role: 'custom', length: 13, sha256: sha256('signed bundle'), custom: { kind: 'bundle' } }],
        [OPENSSL, { role: bin(OPENSSL), length: repo.role(bin(OPENSSL)).targets[OPENSSL].length, sha256: repo.role(bin(OPENSSL)).targets[OPENSSL].hashes.sha256 }],
      ]),
    );

    // A new revision of one patch: its bin, the snapshot and the timestamp change.
    const changedBin = bin(OPENSSL_R2);
    repo.addTarget(changedBin, OPENSSL_R2, '{"id":"debian/openssl-3.0.15-1~deb12u1","revision":2}');
    repo.commit(changedBin);
    const remote2 = repo.remote();
    const firstState = frozen(first.state);
    const second = await mirrorCatalog({ remote: remote2, state: first.state, now });
    expect(frozen(first.state)).toEqual(firstState);
    expect(remote2.requests).toEqual(['metadata/2.root.json', 'metadata/timestamp.json', 'metadata/2.snapshot.json', `metadata/2.${changedBin}.json`]);
    expect(second.fetched).toEqual({ files: 3, bytes: sizeOf('metadata/timestamp.json', 'metadata/2.snapshot.json', `metadata/2.${changedBin}.json`) });
    expect(second.changedRoles).toEqual(['timestamp', 'snapshot', changedBin]);
    expect(second.state.roles.get(changedBin)!.version).toBe(2);
    // unchanged roles are the bytes verified last time, reused as they are
    for (const r of allRoles.filter((r) => r !== changedBin)) expect(second.state.roles.get(r)!.bytes).toBe(first.state.roles.get(r)!.bytes);
    expect([...second.targets.keys()]).toEqual([CURL, OPENSSL, OPENSSL_R2, HOTFIX].sort());
    expect(second.targets.get(OPENSSL_R2)!.role).toBe(changedBin);

    // Nothing new: only the timestamp is fetched, and it is the one already trusted.
    const remote3 = repo.remote();
    const third = await mirrorCatalog({ remote: remote3, state: second.state, now });
    expect(remote3.requests).toEqual(['metadata/2.root.json', 'metadata/timestamp.json']);
    expect(third.fetched).toEqual({ files: 1, bytes: sizeOf('metadata/timestamp.json') });
    expect(third.changedRoles).toEqual([]);
    expect(frozen(third.state)).toEqual(frozen(second.state));
    expect(third.targets).toEqual(second.targets);
  });

  it('follows a new root and hands over every root it fetched, in order', async () => {
    const { repo } = catalog();
    const first = await mirrorCatalog({ remote: repo.remote(), state: repo.initialState(), now });
    const v2 = repo.rotateRoot();
    const v3 = repo.rotateRoot();
    const remote = repo.remote();
    const result = await mirrorCatalog({ remote, state: first.state, now });
    expect(result.newRoots).toEqual([v2, v3]);
    expect(result.state.root).toEqual(v3);
    expect(result.changedRoles).toEqual(['root']);
    expect(remote.requests.slice(0, 3)).toEqual(['metadata/2.root.json', 'metadata/3.root.json', 'metadata/4.root.json']);
  });

  it('gives the same answer with one request at a time', async () => {
    const { repo } = catalog();
    const a = await mirrorCatalog({ remote: repo.remote(), state: repo.initialState(), now });
    const b = await mirrorCatalog({ remote: repo.remote(), state: repo.initialState(), now, limits: { concurrency: 1 } });
    expect(frozen(b.state)).toEqual(frozen(a.state));
    expect(b.targets).toEqual(a.targets);
  });

  it('fetches a target by its hash and checks it', async () => {
    const { repo } = catalog();
    const { targets } = await mirrorCatalog({ remote: repo.remote(), state: repo.initialState(), now });
    const entry = targets.get(HOTFIX)!;
    const remote = repo.remote();
    expect(Buffer.from(await fetchTarget(remote, entry, HOTFIX)).toString()).toBe('signed bundle');
    expect(remote.requests).toEqual([`targets/custom/${entry.sha256}.acme-hotfix-12.r1.bundle`]);

    // the repository substitutes the file
    repo.files.set(`targets/custom/${entry.sha256}.acme-hotfix-12.r1.bundle`, new Uint8Array(Buffer.from('evil bundle!!')));
    await expect(fetchTarget(repo.remote(), entry, HOTFIX)).rejects.toMatchObject({ code: 'E_DIGEST_MISMATCH' });
    repo.files.set(`targets/custom/${entry.sha256}.acme-hotfix-12.r1.bundle`, new Uint8Array(Buffer.from('signed bundle, and more')));
    await expect(fetchTarget(repo.remote(), entry, HOTFIX)).rejects.toMatchObject({ code: 'E_DIGEST_MISMATCH' });
    repo.files.delete(`targets/custom/${entry.sha256}.acme-hotfix-12.r1.bundle`);
    await expect(fetchTarget(repo.remote(), entry, HOTFIX)).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
    await expect(fetchTarget(repo.remote(), entry, '../custom/x')).rejects.toBeInstanceOf(PatchwardenError);
  });

  it('names what is wrong with a target path', () => {
    expect(targetPathProblem(OPENSSL)).toBeUndefined();
    expect(targetPathProblem('a/../b')).toBe('has a "." or ".." segment');
    expect(targetPathProblem('/etc/passwd')).toBe('is absolute');
    expect(targetPathProblem('a\\b')).toBe('contains a backslash');
    expect(targetPathProblem('a//b')).toBe('has an empty segment');
    expect(targetPathProblem('a/b\0')).toMatch(/control character/);
    expect(targetPathProblem('a')).toMatch(/1 segments/);
    expect(targetPathProblem('a/b/c')).toMatch(/3 segments/);
    expect(targetPathProblem('')).toBe('is empty');
  });

  it('matches the pattern * as tuf-js does (the shortcut in segmentMatch)', async () => {
    const star = new DelegatedRole({ name: 'p', keyIDs: [], threshold: 1, terminating: false, paths: ['*/*'] });
    const samples = ['', '.', '..', '.x', '..a', 'x', 'a.b', 'a..', 'x.', ' .x', '-', '~', '#', '!', '*', '?', '[', ']', '{a,b}', '+(a)', 'é', 'a b'];
    const { repo } = catalog();
    for (const [i, s] of samples.entries()) repo.role('vendors').targets[`v${i}/${s}`] = { length: 1, hashes: { sha256: sha256('x') } };
    for (const [i, s] of samples.entries()) repo.role('vendors').targets[`${s}/v${i}`] = { length: 1, hashes: { sha256: sha256('x') } };
    for (const path of Object.keys(repo.role('vendors').targets)) if (targetPathProblem(path)) delete repo.role('vendors').targets[path];
    repo.publishAll();
    const { targets } = await mirrorCatalog({ remote: repo.remote(), state: repo.initialState(), now });
    for (const path of Object.keys(repo.role('vendors').targets)) {
      // vendors delegates */* to itself, in effect: a path is its own when tuf-js would match it
      expect(targets.get(path)?.role === 'vendors', path).toBe(star.isDelegatedPath(path));
    }
  });
});
