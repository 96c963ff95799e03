import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { buildApp, createAdminToken, createGroup, openDatabase, type Database, type PatchwardenApp } from '@patchwarden/server';
import { buildProgram } from '../main.js';
import { parseRing } from './deploy.js';

const bookworm = [{ family: 'linux', distribution: 'debian', release: 'bookworm', arch: ['amd64'] }];

describe('patchwarden deploy and approve against a real server', () => {
  let dir: string;
  let database: Database;
  let app: PatchwardenApp;
  let flags: string[];

  async function run(...args: string[]): Promise<string> {
    const out: string[] = [];
    const log = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.join(' ')));
    const write = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => (out.push(String(s)), true));
    try {
      await buildProgram().parseAsync(['node', 'patchwarden', ...args, ...flags]);
    } finally {
      log.mockRestore();
      write.mockRestore();
    }
    return out.join('\n');
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pw-cli-deploy-'));
    database = await openDatabase({ url: join(dir, 'test.db') });
    const now = Date.parse('2026-11-26T10:00:00Z');
    app = await buildApp({ db: database.db, dialect: database.dialect, logger: false, now: () => now });
    const { token } = await createAdminToken(database.db, 'cli test', now);
    await createGroup(database.db, 'web', '', now);
    const address = await app.listen({ host: '127.0.0.1', port: 0 });
    flags = ['--server', address, '--token', token];
    const up = await app.inject({
      method: 'POST',
      url: '/api/v1/catalog/patches',
      headers: { authorization: `Bearer ${token}` },
      payload: {
        coverage: bookworm,
        source: { kind: 'test' },
        patches: [
          {
            id: 'test/p1',
            revision: 1,
            title: 'p1',
            severity: 'high',
            cves: [],
            advisories: [],
            platforms: bookworm,
            applicability: { package: { manager: 'dpkg', name: 'zzz-none', installed: true } },
            installed: { package: { manager: 'dpkg', name: 'zzz-none', version: { ge: '1' } } },
            requires: [],
            supersedes: [],
            conflicts: [],
            restart: { reboot: 'never', kernel: false },
            fixes: [],
            payload: [],
            install: [],
            undo: [],
          },
        ],
      },
    });
    expect(up.statusCode, up.body).toBe(200);
  });
  afterAll(async () => {
    await app?.close();
    await database?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('parses ring specs', () => {
    expect(parseRing('30%:60', 0, 0.1)).toEqual({ name: 'ring-1', percent: 30, bakeMinutes: 60, failureThreshold: 0.1 });
    expect(parseRing('group=web,db', 1, 0)).toEqual({ name: 'ring-2', groups: ['web', 'db'], bakeMinutes: 0, failureThreshold: 0 });
    expect(() => parseRing('half', 0, 0)).toThrow(/bad ring/);
  });

  it('approves, creates, lists, shows, halts, resumes and undoes', async () => {
    expect(await run('approve', 'test/p1', '--group', 'web')).toBe('approved test/p1 for group web');
    const created = JSON.parse(await run('deploy', 'create', 'test/p1', '--group', 'web', '--ring', '50%:60', '--ring', '100%', '--json'));
    expect(created).toMatchObject({ status: 'complete', patches: ['test/p1'], rings: [{ name: 'ring-1' }, { name: 'ring-2' }] });
    const id = created.id as string;
    const list = await run('deploy', 'list');
    expect(list).toMatch(/^ID\s+STATUS\s+RING\s+JOBS/);
    expect(list).toContain(id);
    const status = await run('deploy', 'status', id);
    expect(status).toContain(`deployment ${id}: complete`);
    expect(status).toMatch(/ring-1\s+healthy/);
    expect(await run('deploy', 'halt', id, '--reason', 'hold on')).toContain(`deployment ${id}: halted — hold on`);
    expect(await run('deploy', 'resume', id)).toContain(`deployment ${id}: complete`);
    expect(await run('deploy', 'undo', id)).toContain('created 0 undo jobs');
    expect(JSON.parse(await run('deploy', 'status', id, '--json')).status).toBe('undone');
  });
});
