/**
 * Drives the real dpkg on one root directory that the caller names. Every call carries --root,
 * --admindir and --log inside that root, so a sandbox (or an image) is patched and the host's
 * own package database is never read or written by accident (DESIGN.md, "Never the host by
 * accident"). Acting on '/' needs allowHost.
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { PatchwardenError, compareDebVersions, packageNameProblem } from '@patchwarden/core';
import type { PackageFact } from '@patchwarden/core';
import { parseDpkgStatus } from '../collectors/dpkg/parse.js';

export interface DpkgInstallerOptions {
  /** The root to act on: a sandbox directory, an image, or '/' with allowHost. */
  root: string;
  /** Needed to act on '/': the host agent installation or --allow-host. */
  allowHost?: boolean;
  dpkgPath?: string;
  dpkgDebPath?: string;
  dpkgRepackPath?: string;
  /** Per dpkg call; the child is killed after it. Default 10 minutes. */
  timeoutMs?: number;
}

export interface DpkgRun {
  args: string[];
  /** null when the process was killed (timeout or signal) */
  code: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export interface DebInfo {
  file: string;
  name: string;
  version: string;
  arch: string;
}

export interface InstallOptions {
  /**
   * Allow installing an older version than the installed one. Only an undo of the agent's own
   * snapshot may set it: any other downgrade is refused before dpkg runs.
   */
  downgradeForUndo?: boolean;
}

const DEFAULT_TIMEOUT_MS = 10 * 60_000;
const MAX_OUTPUT = 4 << 20;

/** dpkg runs ldconfig and start-stop-daemon from PATH, which often lacks the sbin directories. */
function childEnv(): NodeJS.ProcessEnv {
  const dirs = (process.env.PATH ?? '').split(':').filter(Boolean);
  for (const d of ['/usr/local/sbin', '/usr/sbin', '/sbin', '/usr/local/bin', '/usr/bin', '/bin']) if (!dirs.includes(d)) dirs.push(d);
  return { ...process.env, PATH: dirs.join(':'), DEBIAN_FRONTEND: 'noninteractive', LC_ALL: 'C' };
}

export function checkPackageName(name: string): void {
  const problem = packageNameProblem('dpkg', name);
  if (problem !== null) throw new PatchwardenError('E_VALIDATION', problem, { hint: 'package names come from the patch manifest or the .deb file; this one cannot be given to dpkg' });
}

function runProcess(cmd: string, args: string[], opts: { cwd?: string; timeoutMs: number }): Promise<DpkgRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outLen = 0;
    let errLen = 0;
    let timedOut = false;
    child.stdout.on('data', (b: Buffer) => {
      if (outLen < MAX_OUTPUT) out.push(b);
      outLen += b.length;
    });
    child.stderr.on('data', (b: Buffer) => {
      if (errLen < MAX_OUTPUT) err.push(b);
      errLen += b.length;
    });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new PatchwardenError('E_INTERNAL', `cannot run ${cmd}: ${e.message}`, { cause: e, hint: 'install dpkg (and dpkg-repack for snapshots)' }));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ args, code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), timedOut });
    });
  });
}

export function describeRun(what: string, r: DpkgRun): string {
  const how = r.timedOut ? 'timed out and was killed' : `exited with ${r.code ?? 'a signal'}`;
  const tail = (r.stderr.trim() || r.stdout.trim()).split('\n').slice(-8).join('\n');
  return `${what} ${how}${tail ? `: ${tail}` : ''}`;
}

export class DpkgInstaller {
  readonly root: string;
  readonly admindir: string;
  readonly logFile: string;
  private readonly dpkg: string;
  private readonly dpkgDeb: string;
  private readonly dpkgRepack: string;
  private readonly timeoutMs: number;

  constructor(opts: DpkgInstallerOptions) {
    if (!opts.root || !path.isAbsolute(opts.root)) {
      throw new PatchwardenError('E_VALIDATION', `the installer's root must be an absolute path, not '${opts.root}'`);
    }
    const root = path.resolve(opts.root);
    if (root === '/' && !opts.allowHost) {
      throw new PatchwardenError('E_FORBIDDEN', "refusing to install into the host's root '/'", {
        hint: 'install the host agent (patchwarden agent install) or start the agent with --allow-host; otherwise give a sandbox root',
      });
    }
    this.root = root;
    this.admindir = path.join(root, 'var/lib/dpkg');
    this.logFile = path.join(root, 'var/log/dpkg.log');
    this.dpkg = opts.dpkgPath ?? 'dpkg';
    this.dpkgDeb = opts.dpkgDebPath ?? 'dpkg-deb';
    this.dpkgRepack = opts.dpkgRepackPath ?? 'dpkg-repack';
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /** Runs dpkg on this root; `action` is options like ['-i'], `operands` come after '--'. */
  async run(action: string[], operands: string[] = []): Promise<DpkgRun> {
    const args = [`--root=${this.root}`, `--admindir=${this.admindir}`, `--log=${this.logFile}`];
    // dpkg refuses to change a database without root; a non-root agent can still work on a root it owns.
    if (typeof process.getuid === 'function' && process.getuid() !== 0) args.push('--force-not-root');
    args.push(...action);
    if (operands.length) args.push('--', ...operands);
    return runProcess(this.dpkg, args, { timeoutMs: this.timeoutMs });
  }

  /** Every package in the root's status file (not-installed entries left out). */
  async status(): Promise<PackageFact[]> {
    let text: string;
    try {
      text = await readFile(path.join(this.admindir, 'status'), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const { packages, problems } = parseDpkgStatus(text);
    const first = problems[0];
    if (first) {
      // An entry we cannot read could be one the patch touches: decisions need the whole file.
      throw new PatchwardenError('E_INTERNAL', `dpkg status file of ${this.root} has an unreadable entry at line ${first.line}: ${first.message}`);
    }
    return packages;
  }

  /** The installed entry of each name (any state dpkg records), or null when absent. */
  async installed(names: readonly string[]): Promise<Map<string, PackageFact | null>> {
    for (const n of names) checkPackageName(n);
    const all = await this.status();
    const out = new Map<string, PackageFact | null>();
    for (const n of names) {
      const found = all.filter((p) => p.name === n);
      if (found.length > 1) throw new PatchwardenError('E_CONFLICT', `${n} is installed for several architectures (${found.map((p) => p.arch).join(', ')}); this installer handles one`);
      out.set(n, found[0] ?? null);
    }
    return out;
  }

  /** Package, version and architecture of a .deb file, read with dpkg-deb. */
  async debInfo(file: string): Promise<DebInfo> {
    const abs = path.resolve(file);
    const r = await runProcess(this.dpkgDeb, ['--field', '--', abs, 'Package', 'Version', 'Architecture'], { timeoutMs: this.timeoutMs });
    if (r.code !== 0) throw new PatchwardenError('E_VALIDATION', describeRun(`dpkg-deb --field ${abs}`, r));
    const fields = new Map<string, string>();
    for (const line of r.stdout.split('\n')) {
      const m = /^([A-Za-z-]+):\s*(.*)$/.exec(line);
      if (m) fields.set(m[1]!, m[2]!.trim());
    }
    const name = fields.get('Package');
    const version = fields.get('Version');
    const arch = fields.get('Architecture');
    if (!name || !version || !arch) throw new PatchwardenError('E_VALIDATION', `${abs} lacks a Package, Version or Architecture field`);
    checkPackageName(name);
    return { file: abs, name, version, arch };
  }

  /**
   * dpkg -i of the given files. A file older than the installed version is refused unless this
   * is the undo of the agent's own snapshot (dpkg itself would downgrade, with a warning only).
   * Returns the run; a non-zero exit is the caller's to handle.
   */
  async install(debFiles: readonly string[], opts: InstallOptions = {}): Promise<DpkgRun> {
    if (debFiles.length === 0) throw new PatchwardenError('E_VALIDATION', 'nothing to install');
    const infos = await Promise.all(debFiles.map((f) => this.debInfo(f)));
    if (!opts.downgradeForUndo) {
      const current = await this.installed(infos.map((i) => i.name));
      for (const i of infos) {
        const cur = current.get(i.name);
        if (cur && compareDebVersions(i.version, cur.version) < 0) {
          throw new PatchwardenError('E_FORBIDDEN', `refusing to downgrade ${i.name} from ${cur.version} to ${i.version}`, {
            hint: "only the undo of the agent's own snapshot may install an older version",
          });
        }
      }
    }
    // Absolute paths: an operand can never be read as an option, '--' or not.
    return this.run(['--install'], infos.map((i) => i.file));
  }

  /** dpkg --purge: the package leaves no entry behind, as if it had never been installed. */
  async purge(names: readonly string[], opts: { reinstReq?: boolean } = {}): Promise<DpkgRun> {
    if (names.length === 0) throw new PatchwardenError('E_VALIDATION', 'nothing to remove');
    for (const n of names) checkPackageName(n);
    // a package left half-installed by an interrupted unpack refuses removal without this force
    return this.run(['--purge', ...(opts.reinstReq ? ['--force-remove-reinstreq'] : [])], [...names]);
  }

  /** dpkg --audit: empty when the database is consistent. */
  async audit(): Promise<string> {
    const r = await this.run(['--audit']);
    // dpkg exits 0 with a report too; a failure to run it at all is no clean bill of health.
    if (r.code !== 0 && !r.stdout.trim()) throw new PatchwardenError('E_INTERNAL', describeRun('dpkg --audit', r));
    return r.stdout.trim();
  }

  /**
   * Rebuilds the installed package `name` from the root's files into `outDir` (dpkg-repack
   * --root, which reads the root's database through dpkg-query --root). Returns the file path.
   */
  async repack(name: string, outDir: string): Promise<string> {
    checkPackageName(name);
    const r = await runProcess(this.dpkgRepack, [`--root=${this.root}`, '--', name], { cwd: outDir, timeoutMs: this.timeoutMs });
    if (r.code !== 0) throw new PatchwardenError('E_INTERNAL', describeRun(`dpkg-repack ${name}`, r), { hint: 'dpkg-repack needs root (or fakeroot)' });
    const m = /building package '[^']*' in '([^']+)'/.exec(r.stdout + r.stderr);
    if (!m) throw new PatchwardenError('E_INTERNAL', `dpkg-repack ${name} did not say which file it wrote`);
    return path.resolve(outDir, m[1]!);
  }
}
