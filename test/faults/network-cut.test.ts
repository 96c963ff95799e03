/**
 * Fault: the network is cut in the middle of a package download. A TCP proxy between the
 * agents and the server cuts the connection after a number of bytes of a large package file
 * (a vendor patch's file from the server's content store, ~3 MiB). The agent must say what
 * happened, keep the partial file only as a partial (never as the package), resume it with an
 * HTTP range, check it against the signed hash, and install the patch exactly once; a file
 * altered on the way is discarded and the job fails cleanly, with nothing installed.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Journal, loadState } from '@patchwarden/agent';
import { downloadToFile } from '../../packages/agent/src/transport.js';
import { api, assertBuilt, cli, startServerProcess, type ServerProcess } from '../support/processes.js';
import { audit, deviceId, makeDevice, packageStates, spawnAgent, type AgentRun } from '../support/patching.js';
import { cuttingProxy, publishVendorPatch, reportLedger, type VendorPatch, until } from '../support/faults.js';

const NAME = 'pw-large';
const CUT = 1024 * 1024;


describe('fault: the network is cut during a package download', () => {
  assertBuilt();
  let dir: string;
  let server: ServerProcess;
  let ledger: Awaited<ReturnType<typeof reportLedger>>;
  let net: Awaited<ReturnType<typeof cuttingProxy>>;
  let patch: VendorPatch;
  let secret: string;
  let n = 0;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pw-fault-net-'));
    server = await startServerProcess(join(dir, 'server'));
    // agent → cutting network → report ledger → server
    ledger = await reportLedger(server.url);
    net = await cuttingProxy(ledger.url);
    patch = await publishVendorPatch(server, dir, NAME, 3 * 1024 * 1024);
    expect(patch.size).toBeGreaterThan(2 * CUT);
    expect((await api(server, 'POST', '/api/v1/groups', { name: 'lab' })).status).toBe(201);
    secret = (await api<{ secret: string }>(server, 'POST', '/api/v1/enrollment-secrets', { name: 'lab', group: 'lab' })).body.secret;
    expect((await api(server, 'POST', '/api/v1/approvals', { patch: patch.id, group: 'lab', decision: 'approve' })).status).toBe(200);
  }, 120_000);

  afterAll(async () => {
    await net?.close();
    await ledger?.close();
    await patch?.close();
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** An enrolled device at 1.0-1 that needs the patch, and a deployment of it to that device. */
  async function deviceWithJob() {
    const name = `net${++n}`;
    const root = makeDevice(join(dir, name), name, [patch.oldDeb]);
    const data = join(dir, `${name}-agent`);
    const args = ['--data-dir', data, '--root', root];
    let r = await cli(['agent', 'enroll', '--server', net.url, '--secret', secret, '--installs', ...args]);
    expect(r.status, r.stderr).toBe(0);
    r = await cli(['agent', 'run', '--once', ...args]);
    expect(r.status, r.stderr).toBe(0);
    const id = await deviceId(server, name);
    const needed = await api<{ items: { patch: string; state: string }[] }>(server, 'GET', `/api/v1/devices/${id}/patches`);
    expect(needed.body.items.find((p) => p.patch === patch.id)?.state, JSON.stringify(needed.body)).toBe('needed');
    const dep = await api<{ id: string }>(server, 'POST', '/api/v1/deployments', { patches: [patch.id], devices: [id], start: new Date(Date.now() - 60_000).toISOString() });
    expect(dep.status, JSON.stringify(dep.body)).toBe(201);
    const jobs = await api<{ items: { id: string; state: string }[] }>(server, 'GET', `/api/v1/deployments/${dep.body.id}/jobs`);
    return { name, root, data, args, deviceId: id, job: jobs.body.items[0]!.id };
  }

  const jobState = async (job: string) => (await api<{ state: string; events: { state: string; message?: string }[] }>(server, 'GET', `/api/v1/jobs/${job}`)).body;
  const files = (data: string, job: string) => {
    const d = join(data, 'jobs', job, 'files');
    return existsSync(d) ? readdirSync(d).filter((f) => !f.endsWith('.tmp')) : [];
  };
  const runs = (root: string) => (existsSync(join(root, `var/lib/${NAME}.runs`)) ? readFileSync(join(root, `var/lib/${NAME}.runs`), 'utf8') : '');

  it("the agent's download says E_SERVER_UNREACHABLE at the cut, keeps only a .part file, and a resume completes it against the signed hash", async () => {
    const d = await deviceWithJob();
    const token = loadState(d.data).token;
    const dest = join(dir, 'direct-download');
    const mark = net.downloads.length;
    net.cutDownloads(CUT, 1);
    const err = await downloadToFile(net.url, patch.contentPath, dest, { size: patch.size, sha256: patch.sha256 }, { token }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'E_SERVER_UNREACHABLE', message: expect.stringMatching(/was cut off at \d+ bytes.*it resumes from there/) });
    expect(existsSync(dest), 'nothing under the final name').toBe(false);
    const partial = statSync(`${dest}.part`).size;
    expect(partial).toBeGreaterThan(0);
    expect(partial).toBeLessThan(CUT);
    const done = await downloadToFile(net.url, patch.contentPath, dest, { size: patch.size, sha256: patch.sha256 }, { token });
    expect(done.resumedFrom).toBe(partial);
    expect(net.downloads.slice(mark).map((x) => x.range)).toEqual([null, `bytes=${partial}-`]);
    expect(statSync(dest).size).toBe(patch.size);
    expect(existsSync(`${dest}.part`)).toBe(false);
  }, 120_000);

  it('a job whose download is cut waits with the reason, changes nothing, then resumes from the cut and installs once', async () => {
    const d = await deviceWithJob();
    const mark = net.downloads.length;
    net.cutDownloads(CUT, 1);
    const first = await cli(['agent', 'run', '--once', ...d.args]);
    expect(first.status, first.stderr).toBe(0);
    const waiting = new RegExp(`job ${d.job}: waiting \\(the download of ${patch.contentPath} was cut off at (\\d+) bytes; it resumes from there\\)`);
    expect(first.stdout).toMatch(waiting);
    const cutAt = Number(waiting.exec(first.stdout)![1]);
    // only a partial file: nothing under the package's name, nothing installed, nothing reported
    expect(files(d.data, d.job)).toEqual([`${patch.sha256}.part`]);
    expect(statSync(join(d.data, 'jobs', d.job, 'files', `${patch.sha256}.part`)).size).toBe(cutAt);
    expect(packageStates(d.root, [NAME])).toEqual({ [NAME]: '1.0-1 ii' });
    expect(runs(d.root)).toBe('');
    expect(Journal.load(d.data, d.job).record.state).toBe('queued');
    expect((await jobState(d.job)).state).toBe('queued');
    expect(ledger.answers.get(d.job)).toBeUndefined();

    const second = await cli(['agent', 'run', '--once', ...d.args]);
    expect(second.status, second.stderr).toBe(0);
    expect(second.stdout).toMatch(new RegExp(`job ${d.job}: install ${patch.id} → done`));
    expect(net.downloads.slice(mark).map((x) => x.range)).toEqual([null, `bytes=${cutAt}-`]);
    expect(packageStates(d.root, [NAME])).toEqual({ [NAME]: '1.0-2 ii' });
    expect(runs(d.root), 'the postinst ran once').toBe('configured\n');
    expect(audit(d.root)).toBe('');
    const job = await jobState(d.job);
    expect(job.state).toBe('done');
    const told = job.events.map((e) => e.message ?? '').join('\n');
    expect(told).toMatch(/will retry: the download of .* was cut off at \d+ bytes/);
    expect(told).toContain(`resumed ${NAME} at byte ${cutAt}`);
    expect(ledger.stored(d.job)).toBe(1);
  }, 120_000);

  it('a running agent retries cut downloads on its own, with growing waits, and installs once', async () => {
    const d = await deviceWithJob();
    const mark = net.downloads.length;
    // three cuts in a row: each retry gets further, the fourth completes
    net.cutDownloads(CUT / 2, 3);
    let daemon: AgentRun | undefined;
    try {
      daemon = spawnAgent(['run', '--interval', '60', ...d.args]);
      await until('the job to end', async () => (await jobState(d.job)).state !== 'queued', 120_000, () => daemon!.output());
      const out = daemon.output();
      const retries = [...out.matchAll(new RegExp(`jobs: E_SERVER_UNREACHABLE: job ${d.job}: the download of \\S+ was cut off at (\\d+) bytes; it resumes from there; retrying in (\\d+) s`, 'g'))];
      expect(retries.map((m) => Number(m[1])), out).toHaveLength(3);
      // every try continued from where the last one stopped
      const offsets = retries.map((m) => Number(m[1]));
      expect([...offsets].sort((a, b) => a - b)).toEqual(offsets);
      expect(net.downloads.slice(mark).map((x) => x.range)).toEqual([null, `bytes=${offsets[0]}-`, `bytes=${offsets[1]}-`, `bytes=${offsets[2]}-`]);
      // the n-th retry in a row waits 2^n seconds, ±50 %
      retries.forEach((m, i) => {
        expect(Number(m[2]), out).toBeGreaterThanOrEqual(Math.floor(2 ** (i + 1) * 0.5));
        expect(Number(m[2]), out).toBeLessThanOrEqual(Math.ceil(2 ** (i + 1) * 1.5));
      });
    } finally {
      daemon?.child.kill('SIGTERM');
      await daemon?.done;
    }
    expect((await jobState(d.job)).state).toBe('done');
    expect(packageStates(d.root, [NAME])).toEqual({ [NAME]: '1.0-2 ii' });
    expect(runs(d.root), 'the postinst ran once').toBe('configured\n');
    expect(audit(d.root)).toBe('');
    expect(ledger.stored(d.job)).toBe(1);
  }, 180_000);

  it('a file altered on the way fails the hash check: discarded, the job fails with E_DIGEST_MISMATCH, nothing installed', async () => {
    const d = await deviceWithJob();
    net.cutDownloads(CUT, 1);
    const first = await cli(['agent', 'run', '--once', ...d.args]);
    expect(first.stdout).toMatch(/waiting \(the download of .* was cut off/);
    // the rest arrives in full but with one byte changed: the length is right, the hash is not
    net.corruptNextDownload();
    const second = await cli(['agent', 'run', '--once', ...d.args]);
    expect(second.status, second.stderr).toBe(0);
    expect(second.stdout).toMatch(new RegExp(`job ${d.job}: install ${patch.id} → failed`));
    const job = await jobState(d.job);
    expect(job.state).toBe('failed');
    expect(job.events.map((e) => e.message ?? '').join('\n')).toMatch(
      new RegExp(`E_DIGEST_MISMATCH: ${patch.contentPath} has sha256 [0-9a-f]{64}, not the ${patch.sha256} the signed manifest states; the file was discarded`),
    );
    expect(files(d.data, d.job), 'neither a partial nor a complete file is kept').toEqual([]);
    expect(packageStates(d.root, [NAME])).toEqual({ [NAME]: '1.0-1 ii' });
    expect(runs(d.root)).toBe('');
    expect(audit(d.root)).toBe('');
    expect(ledger.stored(d.job)).toBe(1);
  }, 120_000);
});
