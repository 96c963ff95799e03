/** `patchwarden server --database postgres://…`: the same server, migrated on start, on PostgreSQL. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { api, assertBuilt, cli, startServerProcess, type ServerProcess } from './support/processes.js';
import { makeRoot } from './support/sandbox.js';

const pgUrl = process.env.PATCHWARDEN_TEST_PG_READY || null;

describe.skipIf(!pgUrl)('server process on PostgreSQL', () => {
  const dbName = `pw_proc_${process.pid}`;
  const dbUrl = pgUrl ? pgUrl.replace(/\/[^/]*$/, `/${dbName}`) : '';
  const dir = mkdtempSync(join(tmpdir(), 'pw-pgproc-'));
  let server: ServerProcess | undefined;

  async function admin(q: string) {
    const c = new pg.Client({ connectionString: pgUrl!.replace(/\/[^/]*$/, '/postgres') });
    await c.connect();
    await c.query(q);
    await c.end();
  }

  afterAll(async () => {
    await server?.stop();
    await admin(`drop database if exists ${dbName}`);
    rmSync(dir, { recursive: true, force: true });
  });

  it('migrates on start, enrolls an agent and stores its inventory, and starts again on the same database', async () => {
    assertBuilt();
    await admin(`drop database if exists ${dbName}`);
    await admin(`create database ${dbName}`);
    server = await startServerProcess(join(dir, 'server'), ['--database', dbUrl]);
    expect((await api<{ database: string }>(server, 'GET', '/api/health')).body.database).toBe('postgres');
    const { secret } = (await api<{ secret: string }>(server, 'POST', '/api/v1/enrollment-secrets', { name: 'pg' })).body;
    const root = makeRoot(join(dir, 'root'), { hostname: 'pg-agent' });
    const agent = ['--data-dir', join(dir, 'agent'), '--root', root];
    expect((await cli(['agent', 'enroll', '--server', server.url, '--secret', secret, ...agent])).status).toBe(0);
    const run = await cli(['agent', 'run', '--once', '--json', ...agent]);
    expect(run.status, run.stderr).toBe(0);
    const first = (await api<{ packageCount: number }>(server, 'GET', '/api/v1/devices/pg-agent')).body;
    expect(first.packageCount).toBe(JSON.parse(run.stdout).packages);

    // a restart runs the migrations again (nothing to do) and keeps everything
    const port = new URL(server.url).port;
    await server.stop();
    server = await startServerProcess(join(dir, 'server'), ['--database', dbUrl, '--port', port]);
    expect((await api<{ packageCount: number }>(server, 'GET', '/api/v1/devices/pg-agent')).body.packageCount).toBe(first.packageCount);
    const again = await cli(['agent', 'run', '--once', '--json', '--data-dir', join(dir, 'agent'), '--root', root]);
    expect(again.status, again.stderr).toBe(0);
  });
});
