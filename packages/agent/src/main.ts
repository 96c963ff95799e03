/**
 * The agent's own entry point, bundled into one file (dist/patchwarden-agent.mjs) for devices:
 * it imports only core and agent code. Same commands as `patchwarden agent …`.
 */
import { parseArgs } from 'node:util';
import { DEFAULT_DATA_DIR, PatchwardenError } from '@patchwarden/core';
import { checkinOnce, enrollAgent } from './run.js';
import { fetchVerifiedTarget, fileVoucher } from './catalog.js';
import { loadState, saveState } from './state.js';
import { runAgent } from './daemon.js';
import { listJournals, processJobs } from './jobs/loop.js';
import { barrierFromEnv } from './jobs/barrier.js';

const USAGE = `usage: patchwarden-agent <command> [options]

commands:
  enroll --server URL --secret S   enroll this device (--root-sha256 HEX: the catalog root to expect;
                                   --installs: run install and undo jobs, default report only)
  run [--once] [--interval S]      check in now, then on an interval with jitter; with installs on,
                                   run the jobs the server hands out (--allow-host to act on '/')
  jobs                             the jobs this agent ran, from its journal
  installs on|off                  let this agent install (on) or only report (off)
  fetch-patch TARGET               fetch a patch object and verify it from the pinned catalog root

options:
  --data-dir DIR      identity and state (default ${DEFAULT_DATA_DIR}/agent)
  --root DIR          read facts below this root (default /)
  --dpkg-status FILE  read this dpkg status file
  --force             enroll again as a new device`;

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      server: { type: 'string' },
      secret: { type: 'string' },
      'root-sha256': { type: 'string' },
      'data-dir': { type: 'string', default: process.env.PATCHWARDEN_AGENT_DATA_DIR ?? `${DEFAULT_DATA_DIR}/agent` },
      root: { type: 'string', default: '/' },
      'dpkg-status': { type: 'string' },
      once: { type: 'boolean' },
      force: { type: 'boolean' },
      installs: { type: 'boolean' },
      'allow-host': { type: 'boolean' },
      'reboot-command': { type: 'string' },
      interval: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const cmd = positionals[0];
  if (values.help || !cmd) {
    console.log(USAGE);
    return cmd || values.help ? 0 : 2;
  }
  const opts = {
    dataDir: values['data-dir']!,
    collect: {
      root: values.root!,
      ...(values['dpkg-status'] ? { dpkgStatus: values['dpkg-status'] } : {}),
      // files the server asks for are read only where a verified catalog rule names them
      vouch: fileVoucher(values['data-dir']!),
    },
  };
  if (cmd === 'enroll') {
    if (!values.server || !values.secret) throw new PatchwardenError('E_VALIDATION', 'enroll needs --server and --secret');
    const s = await enrollAgent({ ...opts, server: values.server, secret: values.secret, force: !!values.force, installs: !!values.installs, ...(values['root-sha256'] ? { rootSha256: values['root-sha256'] } : {}) });
    console.log(`enrolled as device ${s.deviceId}${s.status === 'pending' ? ' (waiting for an administrator: the machine has an active record already)' : ''}${s.catalogRoot ? `; catalog root sha256 ${s.catalogRoot.sha256}` : ''}`);
    return 0;
  }
  if (cmd === 'fetch-patch') {
    if (!positionals[1]) throw new PatchwardenError('E_VALIDATION', 'fetch-patch needs a target path, e.g. debian/NAME.json');
    const bytes = await fetchVerifiedTarget(opts.dataDir, loadState(opts.dataDir), positionals[1]);
    process.stdout.write(bytes);
    return 0;
  }
  const jobOpts = {
    ...opts,
    ...(values['allow-host'] ? { allowHost: true } : {}),
    ...(values['reboot-command'] ? { rebootCommand: values['reboot-command'].split(/\s+/).filter(Boolean) } : {}),
    log: (line: string) => console.log(`${new Date().toISOString()} ${line}`),
  };
  const barrier = barrierFromEnv(opts.dataDir);
  if (cmd === 'run') {
    if (values.once) {
      const r = await checkinOnce(opts);
      console.log(`checked in: ${r.packages} packages, sent ${r.mode} (${r.bytesSent} bytes)`);
      if (!loadState(opts.dataDir).installs) return 0;
      const pass = await processJobs({ ...jobOpts, ...(barrier ? { barrier } : {}) }, 0);
      for (const j of pass.ran) console.log(`job ${j.id}: ${j.kind} ${j.patch} → ${j.state}`);
      if (pass.ran.length) await checkinOnce(opts);
      return 0;
    }
    const controller = new AbortController();
    process.once('SIGINT', () => controller.abort());
    process.once('SIGTERM', () => controller.abort());
    const interval = values.interval ? Number(values.interval) : undefined;
    await runAgent({
      ...jobOpts,
      ...(barrier ? { barrier } : {}),
      ...(interval ? { intervalSeconds: interval } : {}),
      signal: controller.signal,
      onResult: (r) => console.log(`${new Date().toISOString()} checked in: ${r.packages} packages, sent ${r.mode}`),
      onError: (err, retry) => console.error(`check-in failed: ${(err as Error).message}; retrying in ${Math.round(retry)} s`),
      onJobError: (err, retry) => console.error(`jobs: ${(err as Error).message}; retrying in ${Math.round(retry)} s`),
    });
    return 0;
  }
  if (cmd === 'jobs') {
    for (const j of listJournals(opts.dataDir)) console.log(`${j.id}  ${j.kind}  ${j.patch}  ${j.state}${j.reported ? '' : ' (not reported yet)'}  ${j.outcome ?? ''}`);
    return 0;
  }
  if (cmd === 'installs') {
    const v = positionals[1];
    if (v !== 'on' && v !== 'off') throw new PatchwardenError('E_VALIDATION', 'installs takes on or off');
    saveState(opts.dataDir, { ...loadState(opts.dataDir), installs: v === 'on' });
    console.log(`installs ${v}`);
    return 0;
  }
  console.error(`unknown command '${cmd}'\n\n${USAGE}`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof PatchwardenError) {
      console.error(`error ${err.code}: ${err.message}${err.hint ? `\n  → ${err.hint}` : ''}`);
      process.exitCode = err.exitCode;
    } else {
      console.error(`error: ${(err as Error).message}`);
      process.exitCode = 1;
    }
  },
);
