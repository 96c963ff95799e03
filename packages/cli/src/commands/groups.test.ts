import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { buildApp, createAdminToken, createGroup, openDatabase, type Database, type PatchwardenApp } from '@patchwarden/server';
import { buildProgram } from '../main.js';
import { readQuery } from './groups.js';

describe('patchwarden groups, approve rules, cves and deploy targets against a real server', () => {
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
  async function help(...args: string[]): Promise<string> {
    let text = '';
    const write = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => ((text += String(s)), true));
    try {
      await buildProgram()
        .parseAsync(['node', 'patchwarden', ...args, '--help'])
        .catch(() => {});
    } finally {
      write.mockRestore();
    }
    return text;
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pw-cli-groups-'));
    database = await openDatabase({ url: join(dir, 'test.db') });
    const now = Date.parse('2026-11-26T10:00:00Z');
    app = await buildApp({ db: database.db, dialect: database.dialect, logger: false, now: () => now });
    const { token } = await createAdminToken(database.db, 'cli test', now);
    const web = await createGroup(database.db, 'web', '', now);
    const system = (hostname: string, codename: string) =>
      JSON.stringify({
        hostname,
        os: { family: 'linux', distribution: 'debian', version: codename === 'bookworm' ? '12' : '11', versionCodename: codename, machine: 'x86_64', packageArch: 'amd64' },
        kernel: { release: '6.1.0' },
        rebootRequired: false,
        agentVersion: '0.1.0',
        collectors: [],
      });
    const devices = [
      ['web-1', 'bookworm', web.id],
      ['web-2', 'bullseye', web.id],
      ['db-1', 'bookworm', null],
    ] as const;
    for (const [hostname, codename, group] of devices) {
      await database.db
        .insertInto('devices')
        .values({
          id: `00000000-0000-4000-8000-00000000000${devices.findIndex((d) => d[0] === hostname)}`,
          hostname,
          status: 'active',
          group_id: group,
          token_hash: `hash-${hostname}`,
          secret_id: null,
          enrolled_at: now,
          last_seen_at: now,
          revoked_at: null,
          system_json: system(hostname, codename),
          system_hash: null,
          os_pretty: null,
          package_set_id: null,
          package_count: 0,
          inventory_status: 'none',
          inventory_message: null,
          context_id: null,
        })
        .execute();
    }
    await database.db
      .insertInto('device_labels')
      .values([
        { device_id: '00000000-0000-4000-8000-000000000000', label: 'env=prod' },
        { device_id: '00000000-0000-4000-8000-000000000002', label: 'pci' },
      ])
      .execute();
    const bookworm = [{ family: 'linux', distribution: 'debian', release: 'bookworm', arch: ['amd64'] }];
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
    const address = await app.listen({ host: '127.0.0.1', port: 0 });
    flags = ['--server', address, '--token', token];
  });
  afterAll(async () => {
    await app?.close();
    await database?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads a query given inline or from a file, checking it first', () => {
    expect(readQuery('{"label":"env="}')).toEqual({ label: 'env=' });
    const file = join(dir, 'q.json');
    writeFileSync(file, '{"os":{"codename":"bookworm"}}');
    expect(readQuery(`@${file}`)).toEqual({ os: { codename: 'bookworm' } });
    expect(() => readQuery('{label')).toThrow(/the query is not JSON/);
    expect(() => readQuery('{"lable":"x"}')).toThrow(/invalid device query: query: unknown test 'lable'/);
    expect(() => readQuery('@/nonexistent/q.json')).toThrow(/cannot read the query file/);
  });

  it('creates a dynamic group, lists its members, and changes its settings', async () => {
    expect(await run('groups', 'create', 'bookworm', '--query', '{"os":{"codename":"bookworm"}}')).toMatch(/^created dynamic group bookworm \(.+\): 2 devices match now$/);
    expect(await run('groups', 'create', 'canary', '--test-ring')).toMatch(/^created static group canary/);
    const list = await run('groups', 'list');
    expect(list).toMatch(/^NAME\s+KIND\s+DEVICES\s+SETTINGS\s+QUERY/);
    expect(list).toMatch(/bookworm\s+dynamic\s+2\s+-\s+\{"os":\{"codename":"bookworm"\}\}/);
    expect(list).toMatch(/canary\s+static\s+0\s+test ring/);
    const members = await run('groups', 'members', 'bookworm');
    expect(members).toMatch(/^HOSTNAME\s+OS\s+STATIC GROUP\s+LABELS/);
    expect(members.split('\n').slice(1).map((l) => l.split(/\s+/)[0])).toEqual(['db-1', 'web-1']);
    expect(JSON.parse(await run('groups', 'members', 'web', '--json', '--limit', '1'))).toMatchObject({ total: 2, items: [{ hostname: 'web-1' }] });
    expect(await run('groups', 'set', 'web', '--require-test-pass')).toMatch(/web\s+static\s+2\s+requires test pass/);
    const off = JSON.parse(await run('groups', 'set', 'web', '--no-require-test-pass', '--json'));
    expect(off).toMatchObject({ requireTestPass: false, testRing: false });
    // an untouched --no- option is not sent: canary stays a test ring
    expect(JSON.parse(await run('groups', 'set', 'canary', '--description', 'first', '--json'))).toMatchObject({ testRing: true, description: 'first' });
  });

  it('adds, lists, applies and removes approval rules; flags exploited CVEs', async () => {
    const added = await run('approve', 'rules', 'add', '--group', 'web', '--min-severity', 'high', '--min-age-days', '7');
    expect(added).toMatch(/^added rule [0-9a-f-]+ for group web: severity ≥ high, released ≥ 7 days ago$/);
    const id = /rule ([0-9a-f-]+)/.exec(added)![1]!;
    expect(await run('approve', 'rules', 'list')).toMatch(/^ID\s+GROUP\s+APPROVES WHEN/);
    expect(JSON.parse(await run('approve', 'rules', 'list', '--json'))).toMatchObject({ total: 1, items: [{ id, group: 'web', minSeverity: 'high', minAgeDays: 7 }] });
    expect(await run('approve', 'rules', 'apply')).toBe('Nothing new to approve.');
    expect(await run('approve', 'rules', 'remove', id)).toBe(`removed rule ${id}`);
    expect(await run('cves', 'exploited', 'CVE-2024-3094')).toMatch(/^CVE-2024-3094 is flagged as exploited/);
    expect(await run('cves', 'exploited')).toMatch(/CVE\s+FLAGGED\nCVE-2024-3094/);
    expect(await run('cves', 'needed')).toBe('No needed patch fixes an exploited CVE.');
    expect(await run('cves', 'exploited', 'cve-2024-3094', '--off')).toBe('CVE-2024-3094 is no longer flagged as exploited');
  });

  it('deploys to labels with exclusions, storing the whole target', async () => {
    const d = JSON.parse(await run('deploy', 'create', 'test/p1', '--label', 'env=prod', '--group', 'bookworm', '--exclude-device', 'db-1', '--exclude-label', 'pci', '--exclude-group', 'canary', '--json'));
    expect(d.target).toEqual({
      groups: ['bookworm'],
      labels: ['env=prod'],
      devices: [],
      exclude: { groups: ['canary'], labels: ['pci'], devices: ['00000000-0000-4000-8000-000000000002'] },
      testRings: [],
    });
    expect(await run('deploy', 'status', d.id)).toContain('  target group bookworm; label env=prod; excluding group canary, label pci, 1 device');
    await expect(run('deploy', 'create', 'test/p1', '--label', 'nope', '--exclude-group', 'gone')).rejects.toThrow("no active device with label 'nope'; no group 'gone'");
  });

  it('explains itself in --help', async () => {
    expect(await help('groups', 'create')).toContain('{"label": "env="}  any env=… label');
    expect(await help('groups', 'set')).toContain('--no-require-test-pass');
    expect(await help('approve', 'rules')).toContain('It never replaces an administrator');
    expect(await help('approve', 'rules', 'add')).toContain('--exploited-only');
    expect(await help('deploy', 'create')).toContain('--exclude-label <labels>');
    expect(await help('cves', 'exploited')).toContain('patchwarden cves exploited CVE-2024-3094 --off');
  });
});
