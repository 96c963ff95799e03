import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PatchwardenError, ScriptAction } from '@patchwarden/core';
import type { ErrorCode } from '@patchwarden/core';
import { runScript } from './scripts.js';
import { makeTemp, removeTemp } from './testing.js';

let tmp: string;
let root: string;
let payload: string;

beforeEach(() => {
  tmp = makeTemp('pw-scripts-');
  root = path.join(tmp, 'root');
  payload = path.join(tmp, 'payload');
  mkdirSync(root);
  mkdirSync(payload);
});
afterEach(() => removeTemp(tmp));

function script(name: string, body: string, extra: Partial<ScriptAction> = {}): ScriptAction {
  const f = path.join(payload, name);
  mkdirSync(path.dirname(f), { recursive: true });
  writeFileSync(f, body);
  const interpreter = name.endsWith('.py') ? 'python3' : name.endsWith('.bash') ? 'bash' : 'sh';
  return ScriptAction.parse({ type: 'script', interpreter, source: name, timeoutSeconds: 30, ...extra });
}

/** Gone, or a zombie nobody reaped yet (PID 1 in a container may not reap): either way not running. */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

async function waitGone(pid: number, ms = 3000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (!running(pid)) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return !running(pid);
}

async function codeOf(p: Promise<unknown>): Promise<ErrorCode> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(PatchwardenError);
    return (e as PatchwardenError).code;
  }
  throw new Error('expected a PatchwardenError');
}

describe('runScript', () => {
  it('reports an expected exit code as ok and an unexpected one as not ok, with both outputs', async () => {
    const good = await runScript(root, script('ok.sh', 'echo out; echo err >&2; exit 0\n'), payload);
    expect(good).toMatchObject({ exitCode: 0, signal: null, timedOut: false, ok: true, stdout: 'out\n', stderr: 'err\n', stdoutTruncated: false });
    expect(good.durationMs).toBeGreaterThanOrEqual(0);

    const bad = await runScript(root, script('three.sh', 'exit 3\n'), payload);
    expect(bad).toMatchObject({ exitCode: 3, ok: false, timedOut: false });

    const expected = await runScript(root, script('three.sh', 'exit 3\n', { expectExit: [0, 3] }), payload);
    expect(expected).toMatchObject({ exitCode: 3, ok: true });

    const bashed = await runScript(root, script('b.bash', 'echo "${BASH_VERSION:+bash}"; exit 0\n'), payload);
    expect(bashed).toMatchObject({ ok: true, stdout: 'bash\n' });
  });

  it('acts on $PATCHWARDEN_ROOT and runs in a fresh, empty temporary directory that is removed afterwards', async () => {
    const r = await runScript(root, script('root.sh', 'echo patched > "$PATCHWARDEN_ROOT/marker"; pwd; ls -A | wc -l\n'), payload);
    expect(r.ok).toBe(true);
    expect(readFileSync(path.join(root, 'marker'), 'utf8')).toBe('patched\n');
    const [cwd, count] = r.stdout.trim().split('\n');
    expect(path.dirname(cwd!)).toBe(path.resolve(os.tmpdir()));
    expect(path.basename(cwd!)).toMatch(/^pw-script-/);
    expect(count!.trim()).toBe('0');
    expect(existsSync(cwd!)).toBe(false);
  });

  it('passes arguments literally: spaces, quotes, $(…), backticks, globs and options', async () => {
    const pwned = path.join(tmp, 'pwned');
    const args = ['with space', `it's "quoted"`, `$(touch ${pwned})`, '`touch ' + pwned + '`', '; touch ' + pwned, '*', '--help', '', 'ünïcødé'];
    const py = await runScript(root, script('args.py', 'import sys, json\nprint(json.dumps(sys.argv[1:]))\n', { args }), payload);
    expect(py.ok).toBe(true);
    expect(JSON.parse(py.stdout)).toEqual(args);
    const sh = await runScript(root, script('args.sh', 'for a in "$@"; do printf "[%s]\\n" "$a"; done\n', { args }), payload);
    expect(sh.stdout).toBe(args.map((a) => `[${a}]\n`).join(''));
    expect(existsSync(pwned)).toBe(false);
  });

  it('gives the script only PATH, LANG=C and PATCHWARDEN_ROOT (and what the caller adds), stdin closed', async () => {
    process.env.PW_TEST_SECRET = 'must not leak';
    try {
      // /proc/$$/environ is the environment the interpreter was started with, before the shell adds its own
      const a = script('env.sh', 'tr "\\0" "\\n" < /proc/$$/environ | sort; cat; echo "stdin done"\n');
      const r = await runScript(root, a, payload);
      expect(r.ok).toBe(true);
      expect(r.stdout).toBe(['LANG=C', 'PATCHWARDEN_ROOT=' + root, 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'stdin done', ''].join('\n'));
      const extra = await runScript(root, a, payload, { env: { PATCHWARDEN_JOB: 'job-7' } });
      expect(extra.stdout).toContain('PATCHWARDEN_JOB=job-7\n');
      expect(extra.stdout).not.toContain('PW_TEST_SECRET');
      expect(await codeOf(runScript(root, a, payload, { env: { PATCHWARDEN_ROOT: '/' } }))).toBe('E_VALIDATION');
      expect(await codeOf(runScript(root, a, payload, { env: { 'BAD NAME': 'x' } }))).toBe('E_VALIDATION');
    } finally {
      delete process.env.PW_TEST_SECRET;
    }
  });

  it('kills the whole process group at the timeout, grandchildren included', async () => {
    const a = script('hang.sh', 'sleep 100 & echo $! > "$PATCHWARDEN_ROOT/grandchild.pid"\necho $$ > "$PATCHWARDEN_ROOT/child.pid"\nsleep 100\n');
    const r = await runScript(root, a, payload, { timeoutMs: 700 });
    expect(r).toMatchObject({ timedOut: true, ok: false, exitCode: null, signal: 'SIGKILL' });
    expect(r.durationMs).toBeGreaterThanOrEqual(600);
    expect(r.durationMs).toBeLessThan(5000);
    const grandchild = Number(readFileSync(path.join(root, 'grandchild.pid'), 'utf8'));
    const child = Number(readFileSync(path.join(root, 'child.pid'), 'utf8'));
    expect(grandchild).toBeGreaterThan(1);
    expect(await waitGone(grandchild)).toBe(true);
    expect(await waitGone(child)).toBe(true);
  });

  it("uses the action's timeoutSeconds when no timeoutMs is given", async () => {
    const r = await runScript(root, script('slow.sh', 'sleep 30\n', { timeoutSeconds: 1 }), payload);
    expect(r).toMatchObject({ timedOut: true, ok: false });
    expect(r.durationMs).toBeLessThan(5000);
  });

  it('kills what the script left running in its group when it exits, and returns without waiting for it', async () => {
    const a = script('leave.sh', 'sleep 100 & echo $! > "$PATCHWARDEN_ROOT/left.pid"\nexit 0\n');
    const r = await runScript(root, a, payload);
    expect(r).toMatchObject({ exitCode: 0, ok: true, timedOut: false });
    expect(r.durationMs).toBeLessThan(5000);
    expect(await waitGone(Number(readFileSync(path.join(root, 'left.pid'), 'utf8')))).toBe(true);
  });

  it('leaves a daemon that detached into its own session running, and returns shortly after the script exits although the daemon holds the output pipes', async () => {
    const a = script('daemon.sh', 'setsid sleep 100 & echo $! > "$PATCHWARDEN_ROOT/daemon.pid"\nsleep 0.2\nexit 0\n');
    const r = await runScript(root, a, payload);
    const daemon = Number(readFileSync(path.join(root, 'daemon.pid'), 'utf8'));
    try {
      expect(r).toMatchObject({ exitCode: 0, ok: true, timedOut: false });
      expect(r.durationMs).toBeLessThan(5000);
      expect(running(daemon)).toBe(true);
    } finally {
      process.kill(daemon, 'SIGKILL');
    }
  });

  it('keeps at most the output bound of each stream and says it truncated', async () => {
    const big = script('big.sh', 'head -c 3000000 /dev/zero | tr "\\0" a; head -c 5000 /dev/zero | tr "\\0" b >&2\n');
    const r = await runScript(root, big, payload);
    expect(r.ok).toBe(true);
    expect(r.stdout.length).toBe(1 << 20);
    expect(r.stdoutTruncated).toBe(true);
    expect(r.stderr).toBe('b'.repeat(5000));
    expect(r.stderrTruncated).toBe(false);
    const small = await runScript(root, big, payload, { maxOutputBytes: 1000 });
    expect(small.stdout).toBe('a'.repeat(1000));
    expect(small.stderr).toBe('b'.repeat(1000));
    expect(small.stderrTruncated).toBe(true);
  });

  it('refuses Windows interpreters on POSIX, a missing payload file, and the host root without allowHost', async () => {
    writeFileSync(path.join(payload, 'fix.ps1'), 'Write-Host hi');
    const ps = ScriptAction.parse({ type: 'script', interpreter: 'powershell', source: 'fix.ps1', timeoutSeconds: 10 });
    const err = await runScript(root, ps, payload).then(() => { throw new Error('expected a refusal'); }, (e: unknown) => e as PatchwardenError);
    expect(err.code).toBe('E_VALIDATION');
    expect(err.message).toMatch(/Windows devices only/);
    const cmd = ScriptAction.parse({ type: 'script', interpreter: 'cmd', source: 'fix.ps1', timeoutSeconds: 10 });
    expect(await codeOf(runScript(root, cmd, payload))).toBe('E_VALIDATION');
    const missing = ScriptAction.parse({ type: 'script', interpreter: 'sh', source: 'nope.sh', timeoutSeconds: 10 });
    expect(await codeOf(runScript(root, missing, payload))).toBe('E_NOT_FOUND');
    expect(await codeOf(runScript('/', script('x.sh', 'exit 0\n'), payload))).toBe('E_FORBIDDEN');
  });
});
