/** The CLI tried as a new user would: help, vercmp, and errors that say what to do next. */
import { describe, expect, it } from 'vitest';
import { assertBuilt, cli } from './support/processes.js';

describe('patchwarden CLI', () => {
  assertBuilt();

  it('explains itself', async () => {
    const r = await cli(['--help']);
    expect(r.status).toBe(0);
    for (const cmd of ['start', 'server', 'agent', 'devices', 'groups', 'secrets', 'token', 'vercmp']) expect(r.stdout).toContain(cmd);
    expect((await cli(['devices', 'list', '--help'])).stdout).toMatch(/--json/);
    const bad = await cli(['devcies']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/unknown command/);
  });

  it('compares two Debian versions', async () => {
    expect((await cli(['vercmp', '--scheme', 'deb', '1:1.0', '2.0'])).stdout.trim()).toBe('1');
    expect((await cli(['vercmp', '--scheme', 'deb', '1.0~rc1', '1.0'])).stdout.trim()).toBe('-1');
    expect((await cli(['vercmp', '--scheme', 'deb', '1.0', '1.0'])).stdout.trim()).toBe('0');
    const bad = await cli(['vercmp', '--scheme', 'deb', '1.0', 'abc']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/E_VERSION_INVALID: invalid deb version 'abc': version number does not start with digit/);
    const scheme = await cli(['vercmp', '--scheme', 'nope', '1', '2']);
    expect(scheme.stderr).toMatch(/unknown version scheme 'nope'.*\n.*known schemes: deb/);
  });

  it('compares pairs from stdin, one answer per line, and fails at the end if a line failed', async () => {
    const ok = await cli(['vercmp', '--scheme', 'deb'], { input: '1.0 1.0~rc1\n2.0 2.0\n1.0-1 1.0-1+b1\n' });
    expect(ok.status).toBe(0);
    expect(ok.stdout).toBe('1\n0\n-1\n');
    const mixed = await cli(['vercmp', '--scheme', 'deb'], { input: '1.0 2.0\nonly-one\n1.0 x\n3 2\n' });
    expect(mixed.status).toBe(1);
    const lines = mixed.stdout.trim().split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[0]).toBe('-1');
    expect(lines[1]).toMatch(/^error: expected two versions/);
    expect(lines[2]).toMatch(/^error: invalid deb version 'x'/);
    expect(lines[3]).toBe('1');
  });

  it('says how to reach a server that is not there', async () => {
    const r = await cli(['devices', 'list', '--server', 'http://127.0.0.1:9', '--token', 'pwa_x']);
    expect(r.status).toBe(7);
    expect(r.stderr).toMatch(/E_SERVER_UNREACHABLE/);
    expect(r.stderr).toMatch(/→ is the server running/);
    const noToken = await cli(['devices', 'list', '--data-dir', '/nonexistent'], { env: { PATCHWARDEN_TOKEN: '' } });
    expect(noToken.stderr).toMatch(/E_UNAUTHENTICATED: no admin token/);
    const notEnrolled = await cli(['agent', 'run', '--once', '--data-dir', '/nonexistent/agent']);
    expect(notEnrolled.status).toBe(6);
    expect(notEnrolled.stderr).toMatch(/not enrolled[\s\S]*agent enroll --server URL --secret S/);
  });

  it('reads this machine\'s facts without a server', async () => {
    const r = await cli(['agent', 'facts', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const facts = JSON.parse(r.stdout);
    expect(facts.system.os.family).toBe('linux');
    expect(facts.packages.length).toBeGreaterThan(100);
  });
});
