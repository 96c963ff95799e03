/**
 * File actions (place, replace, delete) on one root directory, with a snapshot taken before
 * anything changes, a rollback that is safe after a crash at any point of the apply, and an
 * undo that refuses when the device drifted from what the patch left.
 *
 * A device path `/etc/app.conf` is `<root>/etc/app.conf`. The root is a sandbox (or an image),
 * or '/' with allowHost. No write ever leaves the root: every existing parent directory is
 * resolved with realpath and must stay below the root's realpath, the final component is never
 * followed when it is a symbolic link, and files are opened with O_NOFOLLOW / O_EXCL.
 *
 * Every change is atomic: the new content goes to a temporary file in the same directory
 * (`.pw-tmp-<snapshot id>-<action index>`, a name rollback can find again), is fsynced, then
 * renamed over the path, and the directory is fsynced. So after a crash each touched path is
 * at its before state, at its after state, or has a leftover temporary file beside it.
 */
import { createHash, randomUUID } from 'node:crypto';
import { constants as FS } from 'node:fs';
import type { Stats } from 'node:fs';
import { lstat, mkdir, open, readFile, readdir, realpath, rename, rmdir, stat, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { PatchwardenError, devicePathProblem, isWindowsPath, payloadPathProblem } from '@patchwarden/core';
import type { ErrorCode, FileAction } from '@patchwarden/core';

// ── roots and paths ────────────────────────────────────────────────────────────────────────

export interface RootOptions {
  /** Needed to act on '/': the host agent installation or --allow-host. */
  allowHost?: boolean;
}

/** The root's realpath, after checking that it is an absolute, existing directory and not '/' unless allowed. */
export async function resolveRoot(root: string, opts: RootOptions = {}): Promise<string> {
  if (!root || !path.isAbsolute(root)) {
    throw new PatchwardenError('E_VALIDATION', `the agent's root must be an absolute path, not '${root}'`, { hint: 'give the sandbox, image or host root as an absolute directory' });
  }
  let real: string;
  try {
    real = await realpath(path.resolve(root));
  } catch (e) {
    throw new PatchwardenError('E_VALIDATION', `the agent's root ${root} does not exist or cannot be read: ${(e as Error).message}`, { cause: e, hint: 'create the root directory first, or give the right one' });
  }
  if (!(await stat(real)).isDirectory()) throw new PatchwardenError('E_VALIDATION', `the agent's root ${root} is not a directory`);
  if (real === '/' && !opts.allowHost) {
    throw new PatchwardenError('E_FORBIDDEN', `refusing to change files in the host's root '/'${root === '/' ? '' : ` (${root} resolves to it)`}`, {
      hint: 'install the host agent (patchwarden agent install) or start the agent with --allow-host; otherwise give a sandbox root',
    });
  }
  return real;
}

const inside = (rootReal: string, p: string) => rootReal === '/' || p === rootReal || p.startsWith(rootReal + path.sep);

export type FinalKind = 'absent' | 'file' | 'symlink' | 'directory' | 'other';

export interface ResolvedPath {
  devicePath: string;
  /** The root's realpath. */
  root: string;
  /** Where the device path is on this machine (parents resolved, final component not followed). */
  hostPath: string;
  /** Parent directories that do not exist yet, shallowest first (host paths). */
  missingDirs: string[];
  /** What the final component is now: resolveInRoot only returns 'absent' or 'file'. */
  final: FinalKind;
}

function kindOf(st: Stats): FinalKind {
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'directory';
  return 'other';
}

/** Parents checked, the final component reported, never refused: rollback needs that. */
async function resolveParents(rootReal: string, devicePath: string): Promise<ResolvedPath> {
  if (process.platform === 'win32') {
    throw new PatchwardenError('E_VALIDATION', 'file actions on Windows devices are not supported by this agent yet', { hint: 'target the patch at POSIX devices' });
  }
  if (isWindowsPath(devicePath)) {
    throw new PatchwardenError('E_VALIDATION', `'${devicePath}' is a Windows path and this device is POSIX`, { hint: 'give the file action a POSIX path (/…), or target the patch at Windows devices only' });
  }
  const why = devicePathProblem(devicePath);
  if (why !== null) throw new PatchwardenError('E_VALIDATION', why, { hint: 'device paths are absolute and normalised, such as /etc/app.conf' });
  const segs = devicePath.slice(1).split('/');
  const name = segs.pop()!;
  let cur = rootReal;
  const missingDirs: string[] = [];
  for (let i = 0; i < segs.length; i++) {
    const shown = '/' + segs.slice(0, i + 1).join('/');
    const next = path.join(cur, segs[i]!);
    let st: Stats;
    try {
      st = await lstat(next);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      for (const s of segs.slice(i)) {
        cur = path.join(cur, s);
        missingDirs.push(cur);
      }
      return { devicePath, root: rootReal, hostPath: path.join(cur, name), missingDirs, final: 'absent' };
    }
    if (st.isSymbolicLink()) {
      let target: string;
      try {
        target = await realpath(next);
      } catch (e) {
        throw new PatchwardenError('E_CONFLICT', `'${shown}' in ${rootReal} is a symbolic link that points nowhere (${(e as Error).message})`, { cause: e, hint: `fix or remove the link ${next}` });
      }
      if (!inside(rootReal, target)) {
        throw new PatchwardenError('E_FORBIDDEN', `'${shown}' in ${rootReal} is a symbolic link to ${target}, outside the root: the agent never writes outside its root`, {
          hint: `remove or fix the link ${next}, or give the root the patch is really meant for`,
        });
      }
      if (!(await stat(target)).isDirectory()) throw new PatchwardenError('E_CONFLICT', `'${shown}' in ${rootReal} is a link to ${target}, which is not a directory`, { hint: `${devicePath} cannot be created below a file` });
      cur = target;
    } else if (st.isDirectory()) {
      cur = next;
    } else {
      throw new PatchwardenError('E_CONFLICT', `'${shown}' in ${rootReal} is not a directory, so ${devicePath} cannot be there`, { hint: `remove or move ${next}, or fix the path in the patch` });
    }
  }
  const hostPath = path.join(cur, name);
  let final: FinalKind = 'absent';
  try {
    final = kindOf(await lstat(hostPath));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  return { devicePath, root: rootReal, hostPath, missingDirs, final };
}

/**
 * Where `devicePath` is below `root`. Refuses a Windows path on POSIX (E_VALIDATION), a parent
 * that resolves outside the root (E_FORBIDDEN), a final component that is a symbolic link
 * (E_FORBIDDEN), and a parent or final component of the wrong kind (E_CONFLICT).
 */
export async function resolveInRoot(root: string, devicePath: string, opts: RootOptions = {}): Promise<ResolvedPath> {
  const r = await resolveParents(await resolveRoot(root, opts), devicePath);
  if (r.final === 'symlink') {
    throw new PatchwardenError('E_FORBIDDEN', `${devicePath} in ${r.root} is a symbolic link: the agent does not place, replace or delete through links`, {
      hint: `point the action at the file the link names, or remove the link ${r.hostPath}`,
    });
  }
  if (r.final === 'directory') throw new PatchwardenError('E_CONFLICT', `${devicePath} in ${r.root} is a directory; file actions act on regular files only`, { hint: 'fix the path in the patch' });
  if (r.final === 'other') throw new PatchwardenError('E_CONFLICT', `${devicePath} in ${r.root} is a special file (device, socket or pipe); file actions act on regular files only`, { hint: 'fix the path in the patch' });
  return r;
}

// ── file states ────────────────────────────────────────────────────────────────────────────

/** A regular file: its content and permission bits ('0644'). Owner is kept to restore it, never compared. */
export interface FileState {
  sha256: string;
  mode: string;
  uid?: number;
  gid?: number;
}

/** What a path holds now: absent (null), a regular file, or a description of something else. */
export type ObservedState = FileState | null | string;

const modeString = (m: number) => (m & 0o7777).toString(8).padStart(4, '0');
const parseMode = (m: string) => parseInt(m, 8) & 0o7777;
export const DEFAULT_FILE_MODE = '0644';

async function hashHandle(fh: FileHandle): Promise<{ sha256: string; size: number }> {
  const h = createHash('sha256');
  const buf = Buffer.allocUnsafe(1 << 16);
  let size = 0;
  for (;;) {
    const { bytesRead } = await fh.read(buf, 0, buf.length, null);
    if (bytesRead === 0) break;
    h.update(buf.subarray(0, bytesRead));
    size += bytesRead;
  }
  return { sha256: h.digest('hex'), size };
}

/** Reads the path without following a final symbolic link. */
async function observe(hostPath: string): Promise<ObservedState> {
  let fh: FileHandle;
  try {
    fh = await open(hostPath, FS.O_RDONLY | FS.O_NOFOLLOW | FS.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    if (code === 'ELOOP') return 'a symbolic link';
    if (code === 'ENOTDIR') return 'below something that is not a directory';
    if (code === 'ENXIO') return 'a special file';
    throw e;
  }
  try {
    const st = await fh.stat();
    if (st.isDirectory()) return 'a directory';
    if (!st.isFile()) return 'a special file';
    const { sha256 } = await hashHandle(fh);
    return { sha256, mode: modeString(st.mode), uid: st.uid, gid: st.gid };
  } finally {
    await fh.close();
  }
}

/** Same content and mode (null = absent on both sides). */
function sameState(actual: ObservedState, expected: FileState | null): boolean {
  if (expected === null) return actual === null;
  return typeof actual === 'object' && actual !== null && actual.sha256 === expected.sha256 && actual.mode === expected.mode;
}

export function describeFileState(s: ObservedState | undefined): string {
  if (s === undefined || s === null) return 'absent';
  if (typeof s === 'string') return s;
  return `sha256 ${s.sha256.slice(0, 12)}… mode ${s.mode}`;
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, FS.O_RDONLY | FS.O_DIRECTORY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function removeIfPresent(p: string): Promise<boolean> {
  try {
    await unlink(p); // never follows a link: a link is removed, not its target
    return true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return false;
    throw e;
  }
}

/**
 * Copies `src` to a new file `tmp` (O_EXCL, so never through a link), sets mode (and owner when
 * given), fsyncs. Returns the sha256 of what was written; the caller renames.
 */
async function writeTmp(tmp: string, src: string, mode: number, owner?: { uid: number; gid: number }): Promise<{ sha256: string; size: number }> {
  await removeIfPresent(tmp);
  const input = await open(src, FS.O_RDONLY | FS.O_NOFOLLOW);
  try {
    const st = await input.stat();
    if (!st.isFile()) throw new PatchwardenError('E_CONFLICT', `${src} is not a regular file`);
    const out = await open(tmp, FS.O_WRONLY | FS.O_CREAT | FS.O_EXCL | FS.O_NOFOLLOW, 0o600);
    try {
      const h = createHash('sha256');
      const buf = Buffer.allocUnsafe(1 << 16);
      let size = 0;
      for (;;) {
        const { bytesRead } = await input.read(buf, 0, buf.length, null);
        if (bytesRead === 0) break;
        const chunk = buf.subarray(0, bytesRead);
        h.update(chunk);
        let off = 0;
        while (off < chunk.length) off += (await out.write(chunk, off, chunk.length - off)).bytesWritten;
        size += bytesRead;
      }
      // chown first: it clears set-id bits, which chmod then sets as asked
      if (owner) await out.chown(owner.uid, owner.gid);
      await out.chmod(mode);
      await out.sync();
      return { sha256: h.digest('hex'), size };
    } finally {
      await out.close();
    }
  } finally {
    await input.close();
  }
}

const isRoot = () => typeof process.getuid === 'function' && process.getuid() === 0;

// ── payload ────────────────────────────────────────────────────────────────────────────────

/** The payload file `source` below payloadDir, refusing anything that would leave it. */
export async function payloadFile(payloadDir: string, source: string): Promise<string> {
  const why = payloadPathProblem(source);
  if (why !== null) throw new PatchwardenError('E_VALIDATION', why);
  const dirReal = await realpath(path.resolve(payloadDir));
  const file = path.join(dirReal, ...source.split('/'));
  let real: string;
  try {
    real = await realpath(file);
  } catch (e) {
    throw new PatchwardenError('E_NOT_FOUND', `payload file ${source} is missing from ${dirReal}`, { cause: e, hint: 'the bundle must carry every file its actions name' });
  }
  if (!inside(dirReal, real)) throw new PatchwardenError('E_FORBIDDEN', `payload file ${source} resolves to ${real}, outside the payload directory`);
  if (!(await stat(real)).isFile()) throw new PatchwardenError('E_VALIDATION', `payload file ${source} is not a regular file`);
  return real;
}

async function sha256Of(file: string): Promise<string> {
  const fh = await open(file, FS.O_RDONLY);
  try {
    return (await hashHandle(fh)).sha256;
  } finally {
    await fh.close();
  }
}

// ── preflight ──────────────────────────────────────────────────────────────────────────────

export interface FileProblem {
  /** index of the action in the list */
  index: number;
  path: string;
  code: ErrorCode;
  message: string;
}

function duplicatePaths(actions: readonly FileAction[]): FileProblem[] {
  const seen = new Map<string, number>();
  const out: FileProblem[] = [];
  actions.forEach((a, index) => {
    const first = seen.get(a.path);
    if (first !== undefined) out.push({ index, path: a.path, code: 'E_VALIDATION', message: `${a.path} is named by actions ${first} and ${index}; a patch acts on each file once, so its before and after states are unambiguous` });
    else seen.set(a.path, index);
  });
  return out;
}

function fieldProblems(a: FileAction, index: number): FileProblem[] {
  const out: FileProblem[] = [];
  const p = (message: string) => out.push({ index, path: a.path, code: 'E_VALIDATION', message });
  if (a.type !== 'file') p(`action ${index} is a ${String(a.type)} action, not a file action`);
  if (a.op !== 'delete' && (a.source === undefined || a.sha256 === undefined)) p(`a ${a.op} action needs source and sha256`);
  if (a.op !== 'place' && a.priorSha256 === undefined) p(`a ${a.op} action needs priorSha256`);
  if (a.mode !== undefined && !/^[0-7]{3,4}$/.test(a.mode)) p(`mode '${a.mode}' is not an octal string such as 0644`);
  return out;
}

function errorProblem(e: unknown, index: number, p: string): FileProblem {
  if (e instanceof PatchwardenError) return { index, path: p, code: e.code, message: e.hint ? `${e.message} (${e.hint})` : e.message };
  return { index, path: p, code: 'E_INTERNAL', message: String((e as Error)?.message ?? e) };
}

/**
 * What stands in the way of applying `actions` on `root`; nothing is changed. place: the file
 * must not exist; replace and delete: the file's sha256 must be priorSha256; place and replace:
 * the payload source's sha256 must be the action's sha256.
 */
export async function preflightFileActions(root: string, actions: readonly FileAction[], payloadDir: string, opts: RootOptions = {}): Promise<FileProblem[]> {
  const rootReal = await resolveRoot(root, opts);
  const problems = duplicatePaths(actions);
  for (const [index, a] of actions.entries()) {
    const fields = fieldProblems(a, index);
    if (fields.length) {
      problems.push(...fields);
      continue;
    }
    try {
      const r = await resolveInRoot(rootReal, a.path, opts);
      const cur = r.final === 'absent' ? null : await observe(r.hostPath);
      if (a.op === 'place') {
        if (cur !== null) problems.push({ index, path: a.path, code: 'E_CONFLICT', message: `${a.path} already exists (${describeFileState(cur)}); a place action only creates files`, });
      } else if (cur === null) {
        problems.push({ index, path: a.path, code: 'E_CONFLICT', message: `${a.path} does not exist; a ${a.op} action expects sha256 ${a.priorSha256}` });
      } else if (typeof cur === 'string') {
        problems.push({ index, path: a.path, code: 'E_CONFLICT', message: `${a.path} is ${cur}, not a regular file` });
      } else if (cur.sha256 !== a.priorSha256) {
        problems.push({ index, path: a.path, code: 'E_CONFLICT', message: `${a.path} has sha256 ${cur.sha256}, the patch expects ${a.priorSha256}: this device is not the one the patch was built for, or the file was changed` });
      }
    } catch (e) {
      problems.push(errorProblem(e, index, a.path));
    }
    if (a.op !== 'delete') {
      try {
        const src = await payloadFile(payloadDir, a.source!);
        const got = await sha256Of(src);
        if (got !== a.sha256) problems.push({ index, path: a.path, code: 'E_DIGEST_MISMATCH', message: `payload file ${a.source} has sha256 ${got}, the action states ${a.sha256}` });
      } catch (e) {
        problems.push(errorProblem(e, index, a.path));
      }
    }
  }
  return problems.sort((x, y) => x.index - y.index);
}

// ── snapshot ───────────────────────────────────────────────────────────────────────────────

export interface FileSnapshotEntry {
  index: number;
  op: FileAction['op'];
  /** the device path */
  path: string;
  /** where it is on this machine, as resolved when the snapshot was taken */
  hostPath: string;
  before: FileState | null;
  /** the kept copy of the before content (file name inside the snapshot directory) */
  kept?: { file: string; sha256: string; size: number };
  /** the intended state after the apply */
  after: FileState | null;
  /** the temporary file apply and restore write beside the path */
  tmp: string;
}

export interface FileSnapshot {
  format: 1;
  kind: 'files';
  id: string;
  /** the root's realpath */
  root: string;
  /** directory holding files-snapshot.json and the kept copies */
  dir: string;
  createdAt: number;
  entries: FileSnapshotEntry[];
  /** parent directories missing before the apply (host paths, shallowest first); apply creates them, rollback and undo remove them */
  createdDirs: string[];
  /** set once every action is applied and re-hashed */
  appliedAt?: number;
  undoStartedAt?: number;
  undoneAt?: number;
}

export const FILE_SNAPSHOT_NAME = 'files-snapshot.json';

async function saveFileSnapshot(s: FileSnapshot): Promise<void> {
  // write, fsync, rename, fsync the directory: a crash leaves the old record or the new one
  const file = path.join(s.dir, FILE_SNAPSHOT_NAME);
  const tmp = `${file}.tmp`;
  await removeIfPresent(tmp);
  const fh = await open(tmp, FS.O_WRONLY | FS.O_CREAT | FS.O_EXCL | FS.O_NOFOLLOW, 0o600);
  try {
    await fh.writeFile(JSON.stringify(s, null, 2) + '\n');
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, file);
  await fsyncDir(s.dir);
}

export async function loadFileSnapshot(dir: string): Promise<FileSnapshot> {
  const abs = path.resolve(dir);
  const s = JSON.parse(await readFile(path.join(abs, FILE_SNAPSHOT_NAME), 'utf8')) as FileSnapshot;
  const ok =
    s.format === 1 &&
    s.kind === 'files' &&
    Array.isArray(s.entries) &&
    Array.isArray(s.createdDirs) &&
    s.entries.every((e) => e.kept === undefined || /^kept-\d+$/.test(e.kept.file));
  if (!ok) throw new PatchwardenError('E_VALIDATION', `${abs}/${FILE_SNAPSHOT_NAME} is not a file snapshot this agent can read`);
  return { ...s, dir: abs };
}

const afterState = (a: FileAction): FileState | null => (a.op === 'delete' ? null : { sha256: a.sha256!, mode: modeString(parseMode(a.mode ?? DEFAULT_FILE_MODE)) });

const depth = (p: string) => p.split(path.sep).length;

/**
 * Records, before anything changes, each touched path's before state (absent, or sha256, mode
 * and a kept copy in snapshotDir) and its intended after state; written atomically as
 * snapshotDir/files-snapshot.json. Refuses a directory that already holds a snapshot.
 */
export async function takeFileSnapshot(root: string, actions: readonly FileAction[], snapshotDir: string, opts: RootOptions = {}): Promise<FileSnapshot> {
  const rootReal = await resolveRoot(root, opts);
  const bad = [...duplicatePaths(actions), ...actions.flatMap((a, i) => fieldProblems(a, i))];
  if (bad.length) throw new PatchwardenError('E_VALIDATION', bad.map((p) => p.message).join('; '), { details: bad });
  const dir = path.resolve(snapshotDir);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  if ((await readdir(dir)).length > 0) {
    throw new PatchwardenError('E_CONFLICT', `${dir} is not empty; each snapshot needs a directory of its own`, { hint: 'a snapshot there may still be needed for an undo: give a new directory' });
  }
  const id = randomUUID();
  const entries: FileSnapshotEntry[] = [];
  const dirs = new Set<string>();
  // every path is resolved and read before the first copy is kept: a refusal leaves nothing behind
  for (const [index, a] of actions.entries()) {
    const r = await resolveInRoot(rootReal, a.path, opts);
    const cur = r.final === 'absent' ? null : await observe(r.hostPath);
    if (typeof cur === 'string') throw new PatchwardenError('E_CONFLICT', `${a.path} is ${cur}, not a regular file`);
    entries.push({
      index,
      op: a.op,
      path: a.path,
      hostPath: r.hostPath,
      before: cur,
      after: afterState(a),
      tmp: path.join(path.dirname(r.hostPath), `.pw-tmp-${id}-${index}`),
    });
    if (a.op !== 'delete') for (const d of r.missingDirs) dirs.add(d);
  }
  const createdDirs = [...dirs].sort((x, y) => depth(x) - depth(y) || x.localeCompare(y));
  for (const e of entries) {
    if (dirs.has(e.hostPath)) throw new PatchwardenError('E_VALIDATION', `${e.path} is both a file an action writes and a directory another action needs`);
  }
  try {
    for (const e of entries) {
      if (!e.before) continue;
      const file = `kept-${e.index}`;
      const copy = await writeTmp(path.join(dir, file), e.hostPath, 0o600);
      if (copy.sha256 !== e.before.sha256) throw new PatchwardenError('E_CONFLICT', `${e.path} changed while the snapshot was being taken`, { hint: 'try again when nothing else writes it' });
      e.kept = { file, ...copy };
    }
    const snapshot: FileSnapshot = { format: 1, kind: 'files', id, root: rootReal, dir, createdAt: Date.now(), entries, createdDirs };
    await saveFileSnapshot(snapshot);
    return snapshot;
  } catch (err) {
    // the directory was empty: what is in it now is ours, and useless without its record
    for (const e of entries) await removeIfPresent(path.join(dir, `kept-${e.index}`));
    await removeIfPresent(path.join(dir, `${FILE_SNAPSHOT_NAME}.tmp`));
    throw err;
  }
}

// ── apply ──────────────────────────────────────────────────────────────────────────────────

export type ApplyPhase = 'mkdir' | 'tmp-written' | 'done';
export interface ApplyStep {
  index: number;
  phase: ApplyPhase;
  /** the directory just created (phase 'mkdir') */
  dir?: string;
}
export type ApplyHook = (step: ApplyStep) => void | Promise<void>;

function checkMatches(snapshot: FileSnapshot, rootReal: string, actions: readonly FileAction[]): void {
  if (snapshot.root !== rootReal) throw new PatchwardenError('E_CONFLICT', `snapshot ${snapshot.id} was taken on ${snapshot.root}, not on ${rootReal}`);
  const same = snapshot.entries.length === actions.length && snapshot.entries.every((e, i) => e.path === actions[i]!.path && e.op === actions[i]!.op && sameState(e.after, afterState(actions[i]!)));
  if (!same) throw new PatchwardenError('E_VALIDATION', `snapshot ${snapshot.id} was taken for other actions`, { hint: 'take the snapshot with the actions being applied' });
}

async function sameResolution(rootReal: string, e: FileSnapshotEntry): Promise<ResolvedPath> {
  const r = await resolveParents(rootReal, e.path);
  if (r.hostPath !== e.hostPath) {
    throw new PatchwardenError('E_CONFLICT', `${e.path} now resolves to ${r.hostPath}, the snapshot recorded ${e.hostPath}: a directory on the way was replaced`, { hint: 'check what changed the tree during the patch' });
  }
  return r;
}

/**
 * The changes alone, action by action, with no preflight and no rollback: applyFileActions
 * wraps it. Exported so that tests can stop it at any step (a hook that throws) as a crash would.
 */
export async function applyFileSteps(root: string, actions: readonly FileAction[], payloadDir: string, snapshot: FileSnapshot, opts: RootOptions & { onStep?: ApplyHook } = {}): Promise<void> {
  const rootReal = await resolveRoot(root, opts);
  checkMatches(snapshot, rootReal, actions);
  const created = new Set(snapshot.createdDirs);
  for (const e of snapshot.entries) {
    const a = actions[e.index]!;
    if (a.op !== 'delete') {
      const r = await resolveParents(rootReal, e.path);
      for (const d of r.missingDirs) {
        if (!created.has(d)) throw new PatchwardenError('E_CONFLICT', `${d} disappeared after the snapshot was taken`, { hint: 'take a new snapshot' });
        await mkdir(d, { mode: 0o755 });
        await fsyncDir(path.dirname(d));
        await opts.onStep?.({ index: e.index, phase: 'mkdir', dir: d });
      }
    }
    const r = await sameResolution(rootReal, e);
    if (r.final !== 'absent' && r.final !== 'file') throw new PatchwardenError('E_CONFLICT', `${e.path} became a ${r.final} after the snapshot was taken`);
    if (a.op === 'delete') {
      await unlink(e.hostPath);
    } else {
      const owner = e.before && isRoot() && e.before.uid !== undefined && e.before.gid !== undefined ? { uid: e.before.uid, gid: e.before.gid } : undefined;
      const src = await payloadFile(payloadDir, a.source!);
      const wrote = await writeTmp(e.tmp, src, parseMode(e.after!.mode), owner);
      if (wrote.sha256 !== e.after!.sha256) {
        await removeIfPresent(e.tmp);
        throw new PatchwardenError('E_DIGEST_MISMATCH', `payload file ${a.source} has sha256 ${wrote.sha256}, the action states ${e.after!.sha256}`);
      }
      await opts.onStep?.({ index: e.index, phase: 'tmp-written' });
      await rename(e.tmp, e.hostPath);
    }
    await fsyncDir(path.dirname(e.hostPath));
    await opts.onStep?.({ index: e.index, phase: 'done' });
  }
}

export type FileApplyResult =
  | { status: 'applied'; snapshot: FileSnapshot }
  /** nothing was changed */
  | { status: 'refused'; snapshot: FileSnapshot; reason: string; problems: FileProblem[] }
  /** a step failed; the rollback restored and proved every before state */
  | { status: 'rolled-back'; snapshot: FileSnapshot; reason: string; rollback: FileRollbackResult }
  /** a step failed and the rollback could not prove every before state */
  | { status: 'needs-attention'; snapshot: FileSnapshot; reason: string; rollback: FileRollbackResult };

/**
 * Applies the actions after a preflight (and a check that every path is still as the snapshot
 * recorded). Each change is atomic; the result is proven by re-hashing. On any failure the
 * snapshot is restored (rollbackFiles) and the result says how that went.
 * `onStep` is a fault-injection hook: anything it throws is handled like a failed step.
 */
export async function applyFileActions(root: string, actions: readonly FileAction[], payloadDir: string, snapshot: FileSnapshot, opts: RootOptions & { onStep?: ApplyHook } = {}): Promise<FileApplyResult> {
  const rootReal = await resolveRoot(root, opts);
  checkMatches(snapshot, rootReal, actions);
  if (snapshot.appliedAt !== undefined) throw new PatchwardenError('E_CONFLICT', `snapshot ${snapshot.id} was applied already`, { hint: 'take a new snapshot for a new apply' });
  const problems = await preflightFileActions(rootReal, actions, payloadDir, opts);
  for (const e of snapshot.entries) {
    if (problems.some((p) => p.index === e.index)) continue;
    try {
      const r = await sameResolution(rootReal, e);
      const cur = await observe(r.hostPath);
      if (!sameState(cur, e.before)) problems.push({ index: e.index, path: e.path, code: 'E_CONFLICT', message: `${e.path} is ${describeFileState(cur)}, the snapshot recorded ${describeFileState(e.before)}` });
    } catch (err) {
      problems.push(errorProblem(err, e.index, e.path));
    }
  }
  if (problems.length) return { status: 'refused', snapshot, reason: `preflight found ${problems.length} problem(s): ${problems.map((p) => p.message).join('; ')}`, problems };

  let reason: string;
  try {
    await applyFileSteps(rootReal, actions, payloadDir, snapshot, opts);
    const wrong: string[] = [];
    for (const e of snapshot.entries) {
      const cur = await observe(e.hostPath);
      if (!sameState(cur, e.after)) wrong.push(`${e.path} is ${describeFileState(cur)}, expected ${describeFileState(e.after)}`);
    }
    if (wrong.length === 0) {
      snapshot.appliedAt = Date.now();
      await saveFileSnapshot(snapshot);
      return { status: 'applied', snapshot };
    }
    reason = `the files after the apply differ from the actions: ${wrong.join('; ')}`;
  } catch (err) {
    reason = `applying the file actions failed: ${(err as Error).message}`;
    delete snapshot.appliedAt;
  }
  const rollback = await rollbackFiles(rootReal, snapshot, opts);
  if (rollback.status === 'restored') return { status: 'rolled-back', snapshot, reason, rollback };
  return { status: 'needs-attention', snapshot, reason: `${reason}; the rollback could not restore everything: ${rollback.reason}`, rollback };
}

// ── restore: rollback and undo ─────────────────────────────────────────────────────────────

export interface FileDrift {
  /** device path (or host path, for a directory the apply created) */
  path: string;
  before: FileState | null;
  after: FileState | null;
  actual: ObservedState;
}

interface Restored {
  restored: string[];
  removedTmp: string[];
  removedDirs: string[];
  drift: FileDrift[];
  problems: string[];
}

export type FileRollbackResult =
  | ({ status: 'restored' } & Omit<Restored, 'drift' | 'problems'>)
  | ({ status: 'needs-attention'; reason: string } & Restored);

export type FileUndoResult =
  | ({ status: 'undone' } & Omit<Restored, 'drift' | 'problems'>)
  /** nothing was changed */
  | { status: 'refused'; reason: string; drift: FileDrift[] }
  | ({ status: 'needs-attention'; reason: string } & Restored);

async function keptIntact(s: FileSnapshot, e: FileSnapshotEntry): Promise<string | null> {
  if (!e.before) return null;
  if (!e.kept) return `snapshot ${s.id} keeps no copy of ${e.path}`;
  try {
    const got = await sha256Of(path.join(s.dir, e.kept.file));
    return got === e.kept.sha256 && got === e.before.sha256 ? null : `the kept copy of ${e.path} (${path.join(s.dir, e.kept.file)}) changed since the snapshot`;
  } catch (err) {
    return `the kept copy of ${e.path} cannot be read: ${(err as Error).message}`;
  }
}

/** Why the directory `d` the apply created cannot simply be removed, or null. */
async function createdDirProblem(s: FileSnapshot, d: string): Promise<ObservedState | 'ok'> {
  let st: Stats;
  try {
    st = await lstat(d);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw e;
  }
  if (st.isSymbolicLink()) return 'a symbolic link';
  if (!st.isDirectory()) return 'not a directory';
  const expected = new Set<string>();
  for (const e of s.entries) {
    if (path.dirname(e.hostPath) === d) expected.add(path.basename(e.hostPath)).add(path.basename(e.tmp));
  }
  for (const c of s.createdDirs) if (path.dirname(c) === d) expected.add(path.basename(c));
  const extra = (await readdir(d)).filter((n) => !expected.has(n));
  return extra.length ? `a directory holding files the patch did not place: ${extra.slice(0, 10).join(', ')}` : 'ok';
}

/**
 * Puts every path at its before state when it is at its after state (or before already), removes
 * the temporary files of the apply and the directories it created; a path in neither state is
 * drift, left untouched. Then proves the result by re-hashing.
 */
async function restore(s: FileSnapshot, rootReal: string): Promise<Restored> {
  const out: Restored = { restored: [], removedTmp: [], removedDirs: [], drift: [], problems: [] };
  const drifted = new Set<string>();
  for (const e of [...s.entries].reverse()) {
    const drift = (actual: ObservedState) => {
      out.drift.push({ path: e.path, before: e.before, after: e.after, actual });
      drifted.add(e.path);
    };
    try {
      try {
        await sameResolution(rootReal, e);
      } catch (err) {
        drift(`cannot be resolved: ${(err as Error).message}`);
        continue;
      }
      // the directory is the one recorded, so the temporary file beside the path is ours
      if (await removeIfPresent(e.tmp)) out.removedTmp.push(e.tmp);
      const cur = await observe(e.hostPath);
      if (sameState(cur, e.before)) continue;
      if (!sameState(cur, e.after)) {
        drift(cur);
        continue;
      }
      if (e.before === null) {
        await unlink(e.hostPath);
      } else {
        const bad = await keptIntact(s, e);
        if (bad) {
          out.problems.push(bad);
          continue;
        }
        const owner = isRoot() && e.before.uid !== undefined && e.before.gid !== undefined ? { uid: e.before.uid, gid: e.before.gid } : undefined;
        const wrote = await writeTmp(e.tmp, path.join(s.dir, e.kept!.file), parseMode(e.before.mode), owner);
        if (wrote.sha256 !== e.before.sha256) {
          await removeIfPresent(e.tmp);
          out.problems.push(`the kept copy of ${e.path} changed while it was copied back`);
          continue;
        }
        await rename(e.tmp, e.hostPath);
      }
      await fsyncDir(path.dirname(e.hostPath));
      out.restored.push(e.path);
    } catch (err) {
      out.problems.push(`${e.path}: ${(err as Error).message}`);
    }
  }
  for (const d of [...s.createdDirs].reverse()) {
    try {
      if (!inside(rootReal, d) || (await realpath(path.dirname(d)).catch(() => path.dirname(d))) !== path.dirname(d)) {
        out.drift.push({ path: d, before: null, after: null, actual: 'a directory whose parent no longer resolves inside the root' });
        drifted.add(d);
        continue;
      }
      const why = await createdDirProblem(s, d);
      if (why === null) continue;
      if (why !== 'ok') {
        out.drift.push({ path: d, before: null, after: null, actual: why });
        drifted.add(d);
        continue;
      }
      await rmdir(d);
      await fsyncDir(path.dirname(d));
      out.removedDirs.push(d);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOTEMPTY' || code === 'EEXIST') {
        out.drift.push({ path: d, before: null, after: null, actual: 'a directory holding files the patch did not place' });
        drifted.add(d);
      } else out.problems.push(`${d}: ${(err as Error).message}`);
    }
  }
  // proof: every path not left as drift is at its before state, every created directory gone
  for (const e of s.entries) {
    if (drifted.has(e.path)) continue;
    const cur = await observe(e.hostPath).catch((err: unknown) => `unreadable: ${(err as Error).message}`);
    if (!sameState(cur, e.before)) out.problems.push(`${e.path} is ${describeFileState(cur)} after the restore, expected ${describeFileState(e.before)}`);
  }
  for (const d of s.createdDirs) {
    if (drifted.has(d)) continue;
    const still = await lstat(d).then(
      () => true,
      () => false,
    );
    if (still) out.problems.push(`${d} still exists after the restore`);
  }
  out.restored.reverse();
  return out;
}

function describeDrift(d: FileDrift[]): string {
  return d.map((x) => `${x.path} is ${describeFileState(x.actual)}, neither before (${describeFileState(x.before)}) nor after (${describeFileState(x.after)})`).join('; ');
}

function restoreReason(r: Restored): string {
  const parts: string[] = [];
  if (r.drift.length) parts.push(`left untouched because they changed outside the patch: ${describeDrift(r.drift)}`);
  if (r.problems.length) parts.push(r.problems.join('; '));
  return parts.join('; ');
}

/**
 * Restores the snapshot's before states after an apply that failed or was interrupted at any
 * point (also a finished one). Idempotent. A path in neither its before nor its after state is
 * drift: left untouched and listed (status needs-attention).
 */
export async function rollbackFiles(root: string, snapshot: FileSnapshot, opts: RootOptions = {}): Promise<FileRollbackResult> {
  const rootReal = await resolveRoot(root, opts);
  if (snapshot.root !== rootReal) throw new PatchwardenError('E_CONFLICT', `snapshot ${snapshot.id} was taken on ${snapshot.root}, not on ${rootReal}`);
  const r = await restore(snapshot, rootReal);
  if (r.drift.length === 0 && r.problems.length === 0) return { status: 'restored', restored: r.restored, removedTmp: r.removedTmp, removedDirs: r.removedDirs };
  return { status: 'needs-attention', reason: restoreReason(r), ...r };
}

/**
 * The undo of a finished apply, from the kept copies alone. Refuses, changing nothing, when a
 * path is not at the state the apply left (or a directory it created holds other files); a
 * second undo, or one resumed after a crash, finishes the job.
 */
export async function undoFiles(root: string, snapshot: FileSnapshot, opts: RootOptions = {}): Promise<FileUndoResult> {
  const rootReal = await resolveRoot(root, opts);
  if (snapshot.root !== rootReal) throw new PatchwardenError('E_CONFLICT', `snapshot ${snapshot.id} was taken on ${snapshot.root}, not on ${rootReal}`);
  if (snapshot.appliedAt === undefined) {
    return { status: 'refused', reason: `snapshot ${snapshot.id} records no finished apply; an interrupted apply is restored with rollbackFiles`, drift: [] };
  }
  const resumed = snapshot.undoStartedAt !== undefined;
  const drift: FileDrift[] = [];
  const problems: string[] = [];
  for (const e of snapshot.entries) {
    let cur: ObservedState;
    try {
      await sameResolution(rootReal, e);
      cur = await observe(e.hostPath);
    } catch (err) {
      cur = `cannot be resolved: ${(err as Error).message}`;
    }
    if (!(sameState(cur, e.after) || (resumed && sameState(cur, e.before)))) drift.push({ path: e.path, before: e.before, after: e.after, actual: cur });
    const bad = await keptIntact(snapshot, e);
    if (bad) problems.push(bad);
  }
  for (const d of snapshot.createdDirs) {
    const why = await createdDirProblem(snapshot, d);
    if (why !== 'ok' && !(why === null && resumed)) drift.push({ path: d, before: null, after: null, actual: why === null ? null : why });
  }
  if (drift.length) return { status: 'refused', reason: `the device drifted since the patch: ${describeDrift(drift)}`, drift };
  if (problems.length) return { status: 'refused', reason: `the snapshot cannot restore the files: ${problems.join('; ')}`, drift: [] };

  if (!resumed) {
    snapshot.undoStartedAt = Date.now();
    await saveFileSnapshot(snapshot);
  }
  const r = await restore(snapshot, rootReal);
  if (r.drift.length || r.problems.length) return { status: 'needs-attention', reason: restoreReason(r), ...r };
  snapshot.undoneAt = Date.now();
  await saveFileSnapshot(snapshot);
  return { status: 'undone', restored: r.restored, removedTmp: r.removedTmp, removedDirs: r.removedDirs };
}
