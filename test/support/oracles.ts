/**
 * The reference implementations our version schemes are checked against: dpkg (through libdpkg,
 * in one long-lived process), rpm (through its Lua, a few thousand pairs per run) and the real
 * Debian version strings of this machine's apt lists. A missing tool fails the test with the
 * Debian package to install: a differential test that quietly skips proves nothing.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** mulberry32: a small seeded generator, so that a failing pair can be produced again. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

export function requireTool(ok: boolean, what: string, debianPackages: string): void {
  if (!ok) {
    throw new Error(`${what} is missing: install Debian's ${debianPackages} (apt-get install ${debianPackages}); .ci/run installs it`);
  }
}

const has = (cmd: string, args: string[]) => spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;

/** Distinct Version: values from the apt lists, grouped by package; dpkg's database if none. */
export function realDebVersions(): { versions: string[]; byPackage: Map<string, string[]> } {
  requireTool(has('dpkg-query', ['--version']), 'dpkg-query', 'dpkg');
  const byPackage = new Map<string, Set<string>>();
  const add = (pkg: string, v: string) => {
    if (!byPackage.has(pkg)) byPackage.set(pkg, new Set());
    byPackage.get(pkg)!.add(v);
  };
  const dump = spawnSync('apt-cache', ['dumpavail'], { encoding: 'utf8', maxBuffer: 1 << 30 });
  let pkg = '';
  for (const line of (dump.status === 0 ? dump.stdout : '').split('\n')) {
    if (line.startsWith('Package: ')) pkg = line.slice(9).trim();
    else if (line.startsWith('Version: ')) add(pkg, line.slice(9).trim());
  }
  if (byPackage.size === 0) {
    // no apt lists (apt-get update never ran): the installed packages are real versions too
    const q = spawnSync('dpkg-query', ['-W', '-f=${Package}\t${Version}\n'], { encoding: 'utf8', maxBuffer: 1 << 28 });
    for (const line of q.stdout.split('\n')) {
      const [p, v] = line.split('\t');
      if (p && v) add(p, v);
    }
  }
  const all = new Set<string>();
  for (const vs of byPackage.values()) for (const v of vs) all.add(v);
  return { versions: [...all].sort(), byPackage: new Map([...byPackage].map(([p, vs]) => [p, [...vs]])) };
}

// Reads "A<TAB>B" lines and answers each with -1, 0 or 1, or "E<TAB>reason" when dpkg rejects
// a version; a blank line flushes the answers so far (the process stays up between batches).
const DPKG_ORACLE_C = `
#define LIBDPKG_VOLATILE_API 1
#include <stdio.h>
#include <string.h>
#include <dpkg/dpkg.h>
#include <dpkg/dpkg-db.h>
#include <dpkg/version.h>

static int parse(struct dpkg_version *v, const char *s, char *why, size_t n) {
  struct dpkg_error err = DPKG_ERROR_OBJECT;
  if (parseversion(v, s, &err) == 0) return 0;
  snprintf(why, n, "%s", err.str ? err.str : "unknown error");
  dpkg_error_destroy(&err);
  return -1;
}

int main(void) {
  static char line[1 << 16];
  char why[512];
  while (fgets(line, sizeof line, stdin)) {
    size_t len = strlen(line);
    if (len > 0 && line[len - 1] == '\\n') line[--len] = 0;
    if (len == 0) { fflush(stdout); continue; }
    char *tab = strchr(line, '\\t');
    if (!tab) { puts("E\\tno tab"); continue; }
    *tab = 0;
    struct dpkg_version a, b;
    if (parse(&a, line, why, sizeof why) || parse(&b, tab + 1, why, sizeof why)) { printf("E\\t%s\\n", why); continue; }
    int r = dpkg_version_compare(&a, &b);
    puts(r < 0 ? "-1" : r > 0 ? "1" : "0");
  }
  fflush(stdout);
  return 0;
}
`;

/** dpkg's own parseversion() and dpkg_version_compare(), in one process for every batch. */
export class DpkgOracle {
  private readonly dir: string;
  private readonly child: ChildProcessWithoutNullStreams;
  private buffered = '';
  private waiting: { lines: string[]; want: number; resolve: (l: string[]) => void; reject: (e: Error) => void } | null = null;

  constructor() {
    requireTool(has('cc', ['--version']), 'a C compiler (cc)', 'gcc');
    requireTool(has('pkg-config', ['--exists', 'libdpkg']), 'libdpkg (pkg-config libdpkg)', 'libdpkg-dev pkg-config');
    this.dir = mkdtempSync(join(tmpdir(), 'pw-dpkg-oracle-'));
    writeFileSync(join(this.dir, 'oracle.c'), DPKG_ORACLE_C);
    const flags = spawnSync('pkg-config', ['--cflags', '--libs', 'libdpkg'], { encoding: 'utf8' }).stdout.trim().split(/\s+/);
    const cc = spawnSync('cc', ['-O2', '-o', join(this.dir, 'oracle'), join(this.dir, 'oracle.c'), ...flags], { encoding: 'utf8' });
    if (cc.status !== 0) throw new Error(`compiling the libdpkg oracle failed:\n${cc.stderr}`);
    this.child = spawn(join(this.dir, 'oracle'), [], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdout.setEncoding('utf8');
    this.child.stdout.on('data', (d: string) => this.take(d));
    let stderr = '';
    this.child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    this.child.on('exit', (code) => this.waiting?.reject(new Error(`the dpkg oracle exited (${code}): ${stderr}`)));
  }

  private take(data: string): void {
    this.buffered += data;
    const w = this.waiting;
    if (!w) return;
    const nl = this.buffered.lastIndexOf('\n');
    if (nl === -1) return;
    w.lines.push(...this.buffered.slice(0, nl).split('\n'));
    this.buffered = this.buffered.slice(nl + 1);
    if (w.lines.length >= w.want) {
      this.waiting = null;
      w.resolve(w.lines);
    }
  }

  /** One answer per pair: "-1", "0", "1", or "E\t<dpkg's reason>". */
  compare(pairs: readonly (readonly [string, string])[]): Promise<string[]> {
    for (const [a, b] of pairs) {
      if (/[\t\n]/.test(a + b)) throw new Error(`a version for the dpkg oracle holds a tab or newline: ${JSON.stringify([a, b])}`);
    }
    return new Promise((resolve, reject) => {
      this.waiting = { lines: [], want: pairs.length, resolve, reject };
      this.child.stdin.write(`${pairs.map(([a, b]) => `${a}\t${b}`).join('\n')}\n\n`);
    });
  }

  close(): void {
    this.child.stdin.end();
    this.child.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** rpm.vercmp() of rpm's Lua on each pair, a few thousand pairs per rpm process. */
export function rpmVercmp(pairs: readonly (readonly [string, string])[], perRun = 4000): number[] {
  requireTool(has('rpm', ['--version']), 'rpm', 'rpm');
  const dir = mkdtempSync(join(tmpdir(), 'pw-rpm-oracle-'));
  try {
    const out: number[] = [];
    for (let start = 0; start < pairs.length; start += perRun) {
      const chunk = pairs.slice(start, start + perRun);
      // the strings go into Lua string literals: allow nothing that could end or escape one
      for (const [a, b] of chunk) {
        if (!/^[A-Za-z0-9._+~^:-]+$/.test(a) || !/^[A-Za-z0-9._+~^:-]+$/.test(b)) {
          throw new Error(`not safe in a Lua string literal: ${JSON.stringify([a, b])}`);
        }
      }
      const file = join(dir, `batch-${start}.lua`);
      writeFileSync(file, chunk.map(([a, b]) => `print(rpm.vercmp("${a}","${b}").."\\n")`).join('\n'));
      const r = spawnSync('rpm', ['--eval', `%{lua: dofile('${file}')}`], { encoding: 'utf8', maxBuffer: 1 << 26 });
      if (r.status !== 0) throw new Error(`rpm --eval failed (${r.status}): ${r.stderr}`);
      const answers = r.stdout.split('\n').filter((l) => l !== '').map(Number);
      if (answers.length !== chunk.length || answers.some((n) => ![-1, 0, 1].includes(n))) {
        throw new Error(`rpm answered ${answers.length} lines for ${chunk.length} pairs: ${r.stdout.slice(0, 200)} ${r.stderr}`);
      }
      out.push(...answers);
    }
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
