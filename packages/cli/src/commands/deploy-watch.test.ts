import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { PatchwardenError } from '@patchwarden/core';
import type { DeploymentStatus } from './deploy.js';
import { intervalMs, watchDeployment, WATCH_EXIT } from './deploy-watch.js';

const ring = (name: string, status: string, total: number, succeeded: number, failed: number, reason: string | null = null) => ({
  name,
  status,
  reason,
  bakeEndsAt: null,
  counts: { total, succeeded, failed, unfinished: total - succeeded - failed },
});
const dep = (status: string, rings: DeploymentStatus['rings'], reason: string | null = null): DeploymentStatus => ({
  id: 'dep-1',
  status,
  reason,
  createdAt: '2026-11-26T10:00:00.000Z',
  start: '2026-11-26T10:00:00.000Z',
  deadline: null,
  patches: ['debian/openssl'],
  currentRing: 0,
  rings,
  jobs: { install: {}, undo: {} },
});

function capture(tty: boolean) {
  const s = new PassThrough() as PassThrough & { isTTY?: boolean; columns?: number };
  if (tty) Object.assign(s, { isTTY: true, columns: 120, cursorTo: () => true, clearLine: () => true, moveCursor: () => true });
  let text = '';
  s.on('data', (c: Buffer) => (text += c.toString()));
  return { stream: s, text: () => text };
}

function sequence(...states: (DeploymentStatus | Error)[]) {
  let i = 0;
  return async () => {
    const s = states[Math.min(i++, states.length - 1)]!;
    if (s instanceof Error) throw s;
    return s;
  };
}

const noSleep = async () => {};

describe('deploy status --watch', () => {
  it('prints one line per change off a terminal and exits 11 when halted', async () => {
    const out = capture(false);
    const code = await watchDeployment(
      sequence(
        dep('running', [ring('canary', 'running', 2, 0, 0), ring('rest', 'running', 8, 0, 0)]),
        dep('running', [ring('canary', 'running', 2, 0, 0), ring('rest', 'running', 8, 0, 0)]),
        dep('running', [ring('canary', 'running', 2, 1, 0), ring('rest', 'running', 8, 0, 0)]),
        dep('halted', [ring('canary', 'halted', 2, 1, 1, '1 of 2 failed'), ring('rest', 'running', 8, 0, 0)], 'ring 1: 1 of 2 failed'),
      ),
      { intervalMs: 10, tty: false, out: out.stream, sleep: noSleep },
    );
    expect(code).toBe(WATCH_EXIT.halted);
    expect(out.text()).toBe(
      [
        'deployment dep-1: running',
        '  canary: 0/2 finished (0 succeeded, 0 failed), running',
        '  rest: 0/8 finished (0 succeeded, 0 failed), running',
        '  canary: 1/2 finished (1 succeeded, 0 failed), running',
        'deployment dep-1: halted — ring 1: 1 of 2 failed',
        '  canary: 2/2 finished (1 succeeded, 1 failed), halted — 1 of 2 failed',
        '',
      ].join('\n'),
    );
  });

  it('draws a bar per ring on a terminal and exits 0 when complete', async () => {
    const out = capture(true);
    const code = await watchDeployment(sequence(dep('running', [ring('canary', 'running', 4, 1, 0)]), dep('complete', [ring('canary', 'healthy', 4, 4, 0)])), {
      intervalMs: 10,
      tty: true,
      out: out.stream,
      sleep: noSleep,
    });
    expect(code).toBe(0);
    expect(out.text()).toContain('deployment dep-1 (debian/openssl): refreshed every 0.01 s');
    expect(out.text()).toMatch(/canary [█░]+ 4\/4 finished {2}4 ok {2}0 failed {2}healthy/);
    expect(out.text().trimEnd().split('\n').at(-1)).toBe('deployment dep-1: complete');
  });

  it('rides out a few unreachable polls, exits 12 when undone, and prints JSON lines with --json', async () => {
    const out = capture(false);
    const err = capture(false);
    const down = new PatchwardenError('E_SERVER_UNREACHABLE', 'cannot reach');
    const code = await watchDeployment(sequence(dep('running', [ring('all', 'running', 1, 0, 0)]), down, down, dep('undone', [ring('all', 'running', 1, 0, 0)])), {
      intervalMs: 10,
      tty: false,
      json: true,
      out: out.stream,
      err: err.stream,
      sleep: noSleep,
    });
    expect(code).toBe(12);
    expect(err.text()).toBe('(server unreachable, trying again: 1 of 4)\n(server unreachable, trying again: 2 of 4)\n');
    const lines = out.text().trim().split('\n');
    expect(lines.map((l) => JSON.parse(l).status)).toEqual(['running', 'undone']);
    await expect(watchDeployment(sequence(dep('running', []), down, down, down), { intervalMs: 1, tty: false, out: capture(false).stream, sleep: noSleep, err: err.stream, unreachableTries: 3 })).rejects.toThrow(
      /cannot reach/,
    );
  });

  it('checks --interval', () => {
    expect(intervalMs('2')).toBe(2000);
    expect(intervalMs('0.5')).toBe(500);
    for (const bad of ['0', '-1', 'x', '7200']) expect(() => intervalMs(bad)).toThrow(/--interval/);
  });
});
