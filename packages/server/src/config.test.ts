import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { databaseUrl, loadServerConfig } from './config.js';

describe('server configuration', () => {
  it('layers defaults < file < environment < flags', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pw-cfg-'));
    writeFileSync(join(dir, 'server.json'), JSON.stringify({ port: 9000, host: '0.0.0.0', logLevel: 'debug' }));
    const env = { PATCHWARDEN_DATA_DIR: dir, PATCHWARDEN_PORT: '9100', PATCHWARDEN_HOST: '' };
    expect(loadServerConfig({ env })).toMatchObject({ dataDir: dir, port: 9100, host: '0.0.0.0', logLevel: 'debug', checkinIntervalSeconds: 300 });
    expect(loadServerConfig({ env, flags: { port: '9200', logLevel: undefined } })).toMatchObject({ port: 9200, logLevel: 'debug' });
    expect(databaseUrl(loadServerConfig({ env }))).toBe(join(dir, 'patchwarden.db'));
    expect(databaseUrl(loadServerConfig({ env, flags: { database: 'postgres://u@h/db' } }))).toBe('postgres://u@h/db');
  });

  it('says which setting is wrong', () => {
    const env = { PATCHWARDEN_DATA_DIR: mkdtempSync(join(tmpdir(), 'pw-cfg-')) };
    expect(() => loadServerConfig({ env, flags: { port: 'eighty' } })).toThrow(/invalid configuration: port/);
    expect(() => loadServerConfig({ env, flags: { port: '70000' } })).toThrow(/port/);
    expect(() => loadServerConfig({ env: { ...env, PATCHWARDEN_LOG_LEVEL: 'loud' } })).toThrow(/logLevel/);
    expect(() => loadServerConfig({ env, configFile: '/nonexistent/pw.json' })).toThrow(/does not exist/);
    const bad = join(env.PATCHWARDEN_DATA_DIR, 'bad.json');
    writeFileSync(bad, '{"port": 80');
    expect(() => loadServerConfig({ env, configFile: bad })).toThrow(/cannot read config file/);
    writeFileSync(bad, '{"prot": 80}');
    expect(() => loadServerConfig({ env, configFile: bad })).toThrow(/Unrecognized key/i);
  });
});
