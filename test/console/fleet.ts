/**
 * A small real fleet for the browser tests: a server process (with a test clock), an author key,
 * two signed custom patches (an upgrade of pw-demo and one whose title is hostile HTML), Debian 12
 * coverage, a group and agents enrolled with --installs on sandbox roots with real dpkg. Agents
 * do not run as daemons: a test runs `agent run --once` when it wants a device to act.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { buildDeb } from '../../packages/agent/src/installers/testing.js';
import { deviceId, makeDevice, publishPatch, trustAuthor } from '../support/patching.js';
import { api, assertBuilt, cli, startServerProcess, type ServerProcess } from '../support/processes.js';

export const P1 = 'custom/pw-demo-1.0-2';
export const P1_TITLE = 'pw-demo 1.0-2: fixes the demo vulnerability';
export const HOSTILE = 'custom/pw-hostile-1';
export const HOSTILE_TITLE = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">';
export const GROUP = 'lab';

export interface Fleet {
  dir: string;
  server: ServerProcess;
  hosts: string[];
  roots: Record<string, string>;
  ids: Record<string, string>;
  /** `agent run --once` for one device: check in, run the jobs that may run now, check in again */
  runOnce(host: string): Promise<string>;
  /** CLI flags that reach the server as the admin */
  flags: string[];
  stop(): Promise<void>;
}

export async function startFleet(hosts: string[], name = 'pw-console-'): Promise<Fleet> {
  assertBuilt();
  const dir = mkdtempSync(join(tmpdir(), name));
  const server = await startServerProcess(join(dir, 'server'), ['--test-clock']);
  const flags = ['--server', server.url, '--token', server.adminToken];
  try {
    const key = await trustAuthor(dir, server);
    const debs = join(dir, 'debs');
    mkdirSync(debs);
    const demo1 = buildDeb(debs, { name: 'pw-demo', version: '1.0-1', files: { 'usr/share/pw-demo/v': '1\n' } });
    const demo2 = buildDeb(debs, { name: 'pw-demo', version: '1.0-2', files: { 'usr/share/pw-demo/v': '2\n' } });
    await publishPatch(dir, server, key, {
      id: P1,
      revision: 1,
      title: P1_TITLE,
      severity: 'critical',
      cves: ['CVE-2026-0001'],
      platforms: [{ family: 'linux' }],
      applicability: { package: { manager: 'dpkg', name: 'pw-demo', installed: true } },
      installed: { package: { manager: 'dpkg', name: 'pw-demo', version: { ge: '1.0-2' } } },
      install: [{ type: 'package', manager: 'dpkg', op: 'upgrade', name: 'pw-demo', version: '1.0-2', file: 'pw-demo_1.0-2_all.deb' }],
    }, { 'pw-demo_1.0-2_all.deb': { file: demo2 } });
    // never deployed: only its title matters (it is needed wherever pw-demo is below 9)
    const script = '#!/bin/sh\nexit 0\n';
    await publishPatch(dir, server, key, {
      id: HOSTILE,
      revision: 1,
      title: HOSTILE_TITLE,
      severity: 'low',
      platforms: [{ family: 'linux' }],
      applicability: { package: { manager: 'dpkg', name: 'pw-demo', installed: true } },
      installed: { package: { manager: 'dpkg', name: 'pw-demo', version: { ge: '9.0' } } },
      install: [{ type: 'script', interpreter: 'sh', source: 'install.sh', timeoutSeconds: 60 }],
    }, { 'install.sh': { text: script } });
    const cov = await api(server, 'POST', '/api/v1/catalog/patches', { patches: [], coverage: [{ family: 'linux', distribution: 'debian', release: '12' }], source: { kind: 'test' } });
    expect(cov.status).toBe(200);
    const g = await cli(['groups', 'create', GROUP, ...flags]);
    expect(g.status, g.stderr).toBe(0);
    const secret = (await api<{ secret: string }>(server, 'POST', '/api/v1/enrollment-secrets', { name: GROUP, group: GROUP })).body.secret;

    const roots: Record<string, string> = {};
    const ids: Record<string, string> = {};
    const agentArgs = (host: string) => ['--data-dir', join(dir, `${host}-agent`), '--root', roots[host]!];
    const runOnce = async (host: string) => {
      const r = await cli(['agent', 'run', '--once', ...agentArgs(host)]);
      expect(r.status, `agent run --once on ${host}: ${r.stderr}${r.stdout}`).toBe(0);
      return r.stdout + r.stderr;
    };
    await Promise.all(hosts.map(async (host) => {
      roots[host] = makeDevice(join(dir, host), host, [demo1]);
      const r = await cli(['agent', 'enroll', '--server', server.url, '--secret', secret, '--installs', ...agentArgs(host)]);
      expect(r.status, r.stderr).toBe(0);
      await runOnce(host);
      ids[host] = await deviceId(server, host);
    }));
    return {
      dir, server, hosts, roots, ids, runOnce, flags,
      async stop() {
        await server.stop();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/** Needed patch ids of one device, as the API says. */
export async function neededOn(fleet: Fleet, host: string): Promise<string[]> {
  const r = await api<{ items: { patch: string; state: string }[] }>(fleet.server, 'GET', `/api/v1/devices/${fleet.ids[host]}/patches`);
  return r.body.items.filter((p) => p.state === 'needed').map((p) => p.patch).sort();
}
