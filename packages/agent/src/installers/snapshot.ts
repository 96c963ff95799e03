/**
 * Snapshot, install and undo for dpkg. Before a patch, each package it touches is recorded
 * (version, or absent) and the installed one is rebuilt into a .deb kept in the agent's data
 * directory, so undo works after the original package files are gone from everywhere else.
 * Undo refuses when the device drifted from the state recorded after the patch, and proves
 * its result by re-reading the status file.
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PatchwardenError, compareDebVersions } from '@patchwarden/core';
import type { PackageFact } from '@patchwarden/core';
import { describeRun, type DpkgInstaller } from './dpkg.js';

/** What one package looked like: absent, or its status entry. */
export interface PackageState {
  version: string;
  arch: string;
  state: PackageFact['state'];
}

export interface SnapshotPackage {
  name: string;
  before: PackageState | null;
  /** The kept copy of the package as it was installed (file name inside the snapshot directory). */
  kept?: { file: string; sha256: string; size: number };
  /** Recorded after the install; undefined until then. */
  after?: PackageState | null;
}

export interface DpkgSnapshot {
  format: 1;
  id: string;
  root: string;
  /** Directory holding snapshot.json and the kept .deb files. */
  dir: string;
  createdAt: number;
  packages: SnapshotPackage[];
}

export type ApplyResult =
  | { status: 'succeeded'; snapshot: DpkgSnapshot; output: string }
  | { status: 'rolled-back'; snapshot: DpkgSnapshot; reason: string; output: string }
  | { status: 'needs-attention'; snapshot: DpkgSnapshot; reason: string; output: string; audit: string };

export type UndoResult =
  | { status: 'undone'; output: string }
  | { status: 'refused'; reason: string; drift: { name: string; expected: PackageState | null; actual: PackageState | null }[] }
  | { status: 'needs-attention'; reason: string; output: string; audit: string };

const toState = (p: PackageFact | null | undefined): PackageState | null =>
  p ? { version: p.version, arch: p.arch, state: p.state } : null;

const sameState = (a: PackageState | null | undefined, b: PackageState | null | undefined) =>
  (a ?? null) === null ? (b ?? null) === null : !!b && a!.version === b.version && a!.arch === b.arch && a!.state === b.state;

export const describeState = (s: PackageState | null | undefined) => (s ? `${s.version} (${s.arch}, ${s.state})` : 'absent');

async function sha256File(file: string): Promise<{ sha256: string; size: number }> {
  const data = await readFile(file);
  return { sha256: createHash('sha256').update(data).digest('hex'), size: data.length };
}

async function save(s: DpkgSnapshot): Promise<void> {
  // write-then-rename: a crash leaves the old record or the new one, never half of one
  const tmp = path.join(s.dir, 'snapshot.json.tmp');
  await writeFile(tmp, JSON.stringify(s, null, 2) + '\n');
  await rename(tmp, path.join(s.dir, 'snapshot.json'));
}

export async function loadSnapshot(dir: string): Promise<DpkgSnapshot> {
  const s = JSON.parse(await readFile(path.join(dir, 'snapshot.json'), 'utf8')) as DpkgSnapshot;
  if (s.format !== 1 || !Array.isArray(s.packages)) throw new PatchwardenError('E_VALIDATION', `${dir}/snapshot.json is not a snapshot this agent can read`);
  return { ...s, dir };
}

/**
 * Records the packages `names` touch on the installer's root and keeps a rebuilt copy of each
 * installed one under `dataDir/snapshots/<id>/`. Refuses (before anything changes) when the
 * database is not clean or a package is in a state that could not be restored.
 */
export async function takeSnapshot(installer: DpkgInstaller, names: readonly string[], dataDir: string): Promise<DpkgSnapshot> {
  const audit = await installer.audit();
  if (audit) throw new PatchwardenError('E_CONFLICT', `the dpkg database of ${installer.root} is not clean, so no snapshot could be restored exactly:\n${audit}`);
  const current = await installer.installed([...new Set(names)]);
  const id = randomUUID();
  const dir = path.join(path.resolve(dataDir), 'snapshots', id);
  await mkdir(dir, { recursive: true });
  const packages: SnapshotPackage[] = [];
  for (const [name, fact] of current) {
    const entry: SnapshotPackage = { name, before: toState(fact) };
    if (fact) {
      if (fact.state !== 'installed') {
        throw new PatchwardenError('E_CONFLICT', `${name} is ${fact.state}, not installed; undo could not restore that state`, { hint: `repair it first (dpkg --root=${installer.root} --configure -a)` });
      }
      const file = await installer.repack(name, dir);
      entry.kept = { file: path.basename(file), ...(await sha256File(file)) };
      const info = await installer.debInfo(file);
      if (info.name !== name || info.version !== fact.version) {
        throw new PatchwardenError('E_INTERNAL', `dpkg-repack rebuilt ${info.name} ${info.version}, expected ${name} ${fact.version}`);
      }
    }
    packages.push(entry);
  }
  const snapshot: DpkgSnapshot = { format: 1, id, root: installer.root, dir, createdAt: Date.now(), packages };
  await save(snapshot);
  return snapshot;
}

/** Records the touched packages' state after the install, so undo can detect drift. */
export async function recordAfter(installer: DpkgInstaller, s: DpkgSnapshot): Promise<void> {
  const now = await installer.installed(s.packages.map((p) => p.name));
  for (const p of s.packages) p.after = toState(now.get(p.name));
  await save(s);
}

/**
 * Puts the snapshot's packages back as they were; the result is proven by a re-scan. Safe after a
 * crash at any point of an install (half-unpacked packages included): it reinstalls the kept
 * copies and removes what the patch added, whatever state each is in.
 */
export async function restore(installer: DpkgInstaller, s: DpkgSnapshot): Promise<{ ok: true; output: string } | { ok: false; reason: string; output: string; audit: string }> {
  const before = await installer.status();
  const touched = new Set(s.packages.map((p) => p.name));
  let output = '';
  const fail = async (reason: string) => ({ ok: false as const, reason, output, audit: await installer.audit().catch((e: unknown) => `dpkg --audit failed: ${String(e)}`) });

  const reinstall: string[] = [];
  for (const p of s.packages) {
    if (!p.before) continue;
    if (!p.kept) return fail(`snapshot ${s.id} keeps no package file for ${p.name}`);
    const file = path.join(s.dir, p.kept.file);
    let digest;
    try {
      digest = await sha256File(file);
    } catch (e) {
      return fail(`the kept copy of ${p.name} (${file}) cannot be read: ${String(e)}`);
    }
    if (digest.sha256 !== p.kept.sha256 || digest.size !== p.kept.size) return fail(`the kept copy of ${p.name} (${file}) changed since the snapshot`);
    reinstall.push(file);
  }
  if (reinstall.length) {
    const r = await installer.install(reinstall, { downgradeForUndo: true });
    output += r.stdout + r.stderr;
    if (r.code !== 0) return fail(describeRun('reinstalling the kept packages', r));
  }
  const remove = s.packages.filter((p) => !p.before).map((p) => p.name);
  const present = await installer.installed(remove);
  const toPurge = remove.filter((n) => present.get(n));
  if (toPurge.length) {
    // these were absent before the patch: whatever state an interrupted unpack left them in, they go
    const r = await installer.purge(toPurge, { reinstReq: true });
    output += r.stdout + r.stderr;
    if (r.code !== 0) return fail(describeRun('removing the packages the patch added', r));
  }

  // Proof: the touched packages are exactly as recorded, every other entry as it was just before.
  const key = (p: PackageFact) => `${p.name}\t${p.arch}`;
  const expected = new Map<string, string>();
  for (const p of before) if (!touched.has(p.name)) expected.set(key(p), JSON.stringify(p));
  const now = await installer.status();
  const actual = new Map(now.map((p) => [key(p), JSON.stringify(p)]));
  const differences: string[] = [];
  for (const p of s.packages) {
    const cur = toState(now.find((q) => q.name === p.name));
    if (!sameState(cur, p.before)) differences.push(`${p.name}: expected ${describeState(p.before)}, found ${describeState(cur)}`);
  }
  for (const [k, v] of expected) if (actual.get(k) !== v) differences.push(`${k.replace('\t', ':')} changed during the restore`);
  for (const k of actual.keys()) {
    if (!touched.has(k.split('\t')[0]!) && !expected.has(k)) differences.push(`${k.replace('\t', ':')} appeared during the restore`);
  }
  const audit = await installer.audit();
  if (differences.length) return { ok: false, reason: `the status after the restore differs from the snapshot: ${differences.join('; ')}`, output, audit };
  if (audit) return { ok: false, reason: 'dpkg --audit reports problems after the restore', output, audit };
  return { ok: true, output };
}

/**
 * Snapshot, then dpkg -i. A failed install (for example a postinst that exits 1) is rolled
 * back to the snapshot, never left half-configured: `rolled-back` when the re-scan proves the
 * prior state, else `needs-attention` with dpkg --audit's output.
 */
export async function installWithSnapshot(installer: DpkgInstaller, debFiles: readonly string[], dataDir: string): Promise<ApplyResult> {
  // Reads every file first: a bad file or a refused downgrade stops here, before any change.
  const infos = await Promise.all(debFiles.map((f) => installer.debInfo(f)));
  const current = await installer.installed(infos.map((i) => i.name));
  for (const i of infos) {
    const cur = current.get(i.name);
    if (cur && compareDebVersions(i.version, cur.version) < 0) {
      throw new PatchwardenError('E_FORBIDDEN', `refusing to downgrade ${i.name} from ${cur.version} to ${i.version}`, { hint: "only the undo of the agent's own snapshot may install an older version" });
    }
  }
  const snapshot = await takeSnapshot(installer, infos.map((i) => i.name), dataDir);
  const r = await installer.install(infos.map((i) => i.file));
  const output = r.stdout + r.stderr;
  const audit = r.code === 0 ? await installer.audit() : '';
  if (r.code === 0 && !audit) {
    await recordAfter(installer, snapshot);
    const wrong = snapshot.packages.filter((p) => {
      const want = infos.find((i) => i.name === p.name)!;
      return p.after?.state !== 'installed' || p.after.version !== want.version;
    });
    if (wrong.length === 0) return { status: 'succeeded', snapshot, output };
  }
  const reason = r.code !== 0 ? describeRun('dpkg --install', r) : audit ? `dpkg --audit reports problems after the install:\n${audit}` : 'dpkg did not install the versions given';
  const back = await restore(installer, snapshot);
  if (back.ok) return { status: 'rolled-back', snapshot, reason, output: output + back.output };
  return { status: 'needs-attention', snapshot, reason: `${reason}; the rollback failed too: ${back.reason}`, output: output + back.output, audit: back.audit };
}

/** Which touched packages differ from the state recorded after the patch. */
export async function driftFrom(installer: DpkgInstaller, s: DpkgSnapshot) {
  const now = await installer.installed(s.packages.map((p) => p.name));
  return s.packages
    .map((p) => ({ name: p.name, expected: p.after ?? null, actual: toState(now.get(p.name)) }))
    .filter((d) => !sameState(d.expected, d.actual));
}

/**
 * The undo of a patch installed with installWithSnapshot. Refuses, with the packages that
 * differ, when the device no longer is in the recorded post-install state.
 */
export async function undoSnapshot(installer: DpkgInstaller, s: DpkgSnapshot): Promise<UndoResult> {
  if (path.resolve(s.root) !== installer.root) {
    throw new PatchwardenError('E_CONFLICT', `snapshot ${s.id} was taken on ${s.root}, not on ${installer.root}`);
  }
  if (s.packages.some((p) => p.after === undefined)) {
    return { status: 'refused', reason: `snapshot ${s.id} has no recorded post-install state: the patch never finished installing`, drift: [] };
  }
  const now = await installer.installed(s.packages.map((p) => p.name));
  if (s.packages.every((p) => sameState(toState(now.get(p.name)), p.before)) && !(await installer.audit())) {
    // already back (an undo that ran before a crash, or a second request): nothing to do
    return { status: 'undone', output: '' };
  }
  const drift = await driftFrom(installer, s);
  if (drift.length) {
    const what = drift.map((d) => `${d.name} is ${describeState(d.actual)}, the patch left it ${describeState(d.expected)}`).join('; ');
    return { status: 'refused', reason: `the device drifted since the patch: ${what}`, drift };
  }
  const r = await restore(installer, s);
  if (r.ok) return { status: 'undone', output: r.output };
  return { status: 'needs-attention', reason: r.reason, output: r.output, audit: r.audit };
}
