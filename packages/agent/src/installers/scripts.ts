/**
 * Script actions: `<interpreter> <payloadDir>/<source> ...args`, arguments as an argv array
 * (never a shell string), in a fresh temporary working directory, stdin closed, with a reduced
 * environment:
 *
 *   PATH              /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
 *   LANG              C
 *   PATCHWARDEN_ROOT  the root the agent acts on (a sandbox, an image, or '/')
 *
 * A script must act on files below $PATCHWARDEN_ROOT, never on absolute paths of its own: the
 * same patch then works on a sandbox, an image and the host. The agent cannot enforce that (the
 * script runs with the agent's rights); it is the script author's contract.
 *
 * The script runs in its own process group (detached, a new session). At the timeout the whole
 * group is killed with SIGKILL; when the script exits, whatever it left running in its group is
 * killed too (a daemon that detached into its own session is not). Output is captured up to a
 * bound per stream; the rest is drained and counted, not kept.
 */
import { spawn } from 'node:child_process';
import { constants as FS } from 'node:fs';
import { access, mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { PatchwardenError } from '@patchwarden/core';
import type { ScriptAction } from '@patchwarden/core';
import { payloadFile, resolveRoot } from './files.js';
import type { RootOptions } from './files.js';

export const SCRIPT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
export const DEFAULT_SCRIPT_OUTPUT_BYTES = 1 << 20;
/** How long the output pipes may stay open after the script exited (a detached daemon holding them). */
const CLOSE_GRACE_MS = 2_000;

const POSIX_INTERPRETERS = new Set(['sh', 'bash', 'python3']);
const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

export interface RunScriptOptions extends RootOptions {
  /** Overrides action.timeoutSeconds (milliseconds). */
  timeoutMs?: number;
  /** Variables added to the reduced environment (PATH may be replaced; PATCHWARDEN_ROOT may not). */
  env?: Record<string, string>;
  /** Bytes kept of stdout and of stderr each; default 1 MiB. */
  maxOutputBytes?: number;
}

export interface ScriptResult {
  /** null when the script was killed by a signal */
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  /** not timed out and the exit code is one of action.expectExit */
  ok: boolean;
  stdout: string;
  stderr: string;
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
  durationMs: number;
}

class Bounded {
  private chunks: Buffer[] = [];
  private kept = 0;
  total = 0;
  constructor(private readonly max: number) {}
  push(b: Buffer) {
    this.total += b.length;
    const room = this.max - this.kept;
    if (room <= 0) return;
    const part = b.length <= room ? b : b.subarray(0, room);
    this.chunks.push(part);
    this.kept += part.length;
  }
  get truncated() {
    return this.total > this.kept;
  }
  text() {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}

async function findExecutable(name: string, searchPath: string): Promise<string> {
  for (const dir of searchPath.split(':')) {
    if (!dir || !path.isAbsolute(dir)) continue;
    const candidate = path.join(dir, name);
    try {
      await access(candidate, FS.X_OK);
      if ((await stat(candidate)).isFile()) return candidate;
    } catch {
      // next directory
    }
  }
  throw new PatchwardenError('E_NOT_FOUND', `the interpreter ${name} is not installed (searched ${searchPath})`, { hint: `install ${name} on the device, or ship the script for an interpreter it has` });
}

function scriptEnv(rootReal: string, extra: Record<string, string> | undefined): Record<string, string> {
  const env: Record<string, string> = { PATH: SCRIPT_PATH, LANG: 'C' };
  for (const [k, v] of Object.entries(extra ?? {})) {
    if (!ENV_NAME_RE.test(k)) throw new PatchwardenError('E_VALIDATION', `'${k}' is not an environment variable name`);
    if (k === 'PATCHWARDEN_ROOT') throw new PatchwardenError('E_VALIDATION', 'PATCHWARDEN_ROOT is set by the agent to the root it acts on');
    if (typeof v !== 'string' || v.includes('\0')) throw new PatchwardenError('E_VALIDATION', `environment variable ${k} holds no NUL character`);
    env[k] = v;
  }
  env.PATCHWARDEN_ROOT = rootReal;
  return env;
}

/**
 * Runs one script action. Resolves with the result whatever the script did (a non-expected exit
 * code is `ok: false`, not an exception); rejects only when it cannot be started (Windows
 * interpreter on POSIX, missing interpreter or payload file, bad root or options).
 */
export async function runScript(root: string, action: ScriptAction, payloadDir: string, opts: RunScriptOptions = {}): Promise<ScriptResult> {
  if (process.platform === 'win32') throw new PatchwardenError('E_VALIDATION', 'script actions on Windows devices are not supported by this agent yet');
  if (!POSIX_INTERPRETERS.has(action.interpreter)) {
    throw new PatchwardenError('E_VALIDATION', `a ${action.interpreter} script runs on Windows devices only, and this device is POSIX`, {
      hint: 'ship an sh, bash or python3 script for POSIX devices, or target the patch at Windows devices only',
    });
  }
  const rootReal = await resolveRoot(root, opts);
  const timeoutMs = opts.timeoutMs ?? action.timeoutSeconds * 1000;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new PatchwardenError('E_VALIDATION', `a script timeout is a positive number of milliseconds, not ${timeoutMs}`);
  const max = opts.maxOutputBytes ?? DEFAULT_SCRIPT_OUTPUT_BYTES;
  const args = action.args ?? [];
  for (const a of args) if (typeof a !== 'string' || a.includes('\0')) throw new PatchwardenError('E_VALIDATION', 'a script argument is a string without NUL characters');
  const env = scriptEnv(rootReal, opts.env);
  const script = await payloadFile(payloadDir, action.source);
  const interpreter = await findExecutable(action.interpreter, env.PATH!);
  const expect = action.expectExit ?? [0];

  const cwd = await mkdtemp(path.join(os.tmpdir(), 'pw-script-'));
  try {
    return await new Promise<ScriptResult>((resolve, reject) => {
      const started = performance.now();
      // the script path is absolute, so it can never be read as an interpreter option
      const child = spawn(interpreter, [script, ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true, shell: false });
      const out = new Bounded(max);
      const err = new Bounded(max);
      child.stdout.on('data', (b: Buffer) => out.push(b));
      child.stderr.on('data', (b: Buffer) => err.push(b));
      let timedOut = false;
      let settled = false;
      let exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
      let grace: NodeJS.Timeout | undefined;
      const killGroup = () => {
        if (child.pid === undefined) return;
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // the group is gone already
        }
      };
      const timer = setTimeout(() => {
        timedOut = true;
        killGroup();
      }, timeoutMs);
      const finish = () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (grace) clearTimeout(grace);
        const code = exit?.code ?? null;
        resolve({
          exitCode: code,
          signal: exit?.signal ?? null,
          timedOut,
          ok: !timedOut && code !== null && expect.includes(code),
          stdout: out.text(),
          stderr: err.text(),
          stdoutTruncated: out.truncated,
          stderrTruncated: err.truncated,
          durationMs: Math.round(performance.now() - started),
        });
      };
      child.on('error', (e) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        killGroup();
        reject(new PatchwardenError('E_INTERNAL', `cannot run ${interpreter} ${action.source}: ${e.message}`, { cause: e }));
      });
      child.on('exit', (code, signal) => {
        exit = { code, signal };
        clearTimeout(timer);
        // leftovers in the script's group die with it; they would otherwise hold the pipes open
        killGroup();
        grace = setTimeout(() => {
          child.stdout.destroy();
          child.stderr.destroy();
          finish();
        }, CLOSE_GRACE_MS);
      });
      child.on('close', () => finish());
    });
  } finally {
    await rm(cwd, { recursive: true, force: true });
  }
}
