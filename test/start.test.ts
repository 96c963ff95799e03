/**
 * `patchwarden start` (what `npm start` runs), tried as a new user would: the server, the
 * built-in report-only agent for this machine, and this machine's apt lists as a first catalog,
 * so the device is assessed at once.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, fetch as undiciFetch } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { assertBuilt, CLI } from './support/processes.js';

describe('patchwarden start', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pw-start-'));
  const child = spawn(process.execPath, [CLI, 'start', '--port', '0', '--data-dir', join(dir, 'data')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));

  afterAll(async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
    rmSync(dir, { recursive: true, force: true });
  });

  const waitFor = (re: RegExp, ms: number) =>
    new Promise<RegExpExecArray>((resolve, reject) => {
      const t0 = Date.now();
      const tick = () => {
        const m = re.exec(out);
        if (m) return resolve(m);
        if (child.exitCode !== null || Date.now() - t0 > ms) return reject(new Error(`no ${re} in:\n${out}`));
        setTimeout(tick, 200);
      };
      tick();
    });

  it('serves the console, reports this machine, and assesses it against its own apt lists', async () => {
    assertBuilt();
    // TLS from the first start: the server made its own certificate authority
    const url = (await waitFor(/API docs:\s+(https:\/\/\S+)\/api\/docs/, 60_000))[1]!;
    expect(out).toMatch(/Console:\s+https:\/\/\S+\/#token=pwa_/);
    expect(out).toMatch(/Sign in:\s+as 'admin' with the password in \S+admin-password/);
    expect(out).toMatch(/TLS:\s+certificate authority sha256 [0-9a-f]{64}/);
    const dispatcher = new Agent({ connect: { ca: readFileSync(join(dir, 'data', 'tls', 'ca.crt'), 'utf8') } });
    const fetch = (u: string, init: { headers?: Record<string, string> } = {}) => undiciFetch(u, { ...init, dispatcher });
    const device = (await waitFor(/This machine: device ([0-9a-f-]{36}), (\d+) packages reported .*report-only/, 60_000))[1]!;
    await waitFor(/Catalog:\s+\d+ patches from this machine's apt lists \(.*signatures verified\)/, 120_000);
    const token = readFileSync(join(dir, 'data', 'admin-token'), 'utf8').trim();
    const get = async (path: string) => (await fetch(url + path, { headers: { authorization: `Bearer ${token}` } })).json() as Promise<Record<string, unknown>>;
    expect(await (await fetch(`${url}/`)).text()).toMatch(/<div id="root">/);
    const states = (await get(`/api/v1/devices/${device}/patches`)) as { assessed: string; items: { state: string }[] };
    expect(states.assessed).toBe('assessed');
    // the machine has its packages from these lists: most of their patches are installed here
    expect(states.items.filter((i) => i.state === 'installed').length).toBeGreaterThan(100);
  }, 240_000);
});
