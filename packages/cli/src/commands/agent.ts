import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { DEFAULT_DATA_DIR, PatchwardenError } from '@patchwarden/core';
import { printJson, table } from '../output.js';

interface CollectFlags {
  dataDir: string;
  root: string;
  dpkgStatus?: string;
  hostname?: string;
  json?: boolean;
}

const DEFAULT_AGENT_DIR = `${DEFAULT_DATA_DIR}/agent`;

function collectOptions(cmd: Command): Command {
  return cmd
    .option('--data-dir <dir>', 'agent data directory: identity and state (several agents need several)', process.env.PATCHWARDEN_AGENT_DATA_DIR ?? DEFAULT_AGENT_DIR)
    .option('--root <dir>', 'read facts from this filesystem root (a sandbox copy); reading never changes it', '/')
    .option('--dpkg-status <file>', 'read this dpkg status file instead of <root>/var/lib/dpkg/status')
    .option('--hostname <name>', 'report this hostname instead of the machine\'s')
    .option('--json', 'print JSON');
}

function collectOf(flags: CollectFlags) {
  return {
    root: flags.root,
    // files the server asks for are read only where a verified catalog rule names them
    vouch: async (paths: readonly string[]) => (await import('@patchwarden/agent')).fileVoucher(flags.dataDir)(paths),
    ...(flags.dpkgStatus ? { dpkgStatus: flags.dpkgStatus } : {}),
    ...(flags.hostname ? { hostname: flags.hostname } : {}),
  };
}

export function agentCommands(program: Command): void {
  const agent = program.command('agent').description('the agent: enroll this device, report its facts');

  collectOptions(
    agent
      .command('enroll')
      .description('enroll this device with a server, using an enrollment secret from an administrator')
      .requiredOption('--server <url>', 'server URL, e.g. https://patchwarden.example:8060')
      .option('--enrollment-string <pw1…>', 'what the administrator gave you: the secret with the fingerprints of the server\'s certificate authority and catalog root, both checked before the secret is sent')
      .option('--secret <secret>', 'an enrollment secret alone (`patchwarden secrets create` makes one); prefer --enrollment-string')
      .option('--force', 'enroll again as a new device even if this data directory is enrolled')
      .option('--root-sha256 <hex>', "the catalog root's fingerprint, from the administrator: checked before the secret is sent")
      .option('--ca-sha256 <hex>', "the server's certificate authority fingerprint: the connection is verified against it")
      .option('--installs', 'let this agent run install and undo jobs (default: report only)'),
  ).action(async (flags: CollectFlags & { server: string; secret?: string; enrollmentString?: string; force?: boolean; rootSha256?: string; caSha256?: string; installs?: boolean }) => {
    const { enrollAgent } = await import('@patchwarden/agent');
    const { parseEnrollmentString } = await import('@patchwarden/core');
    const e = flags.enrollmentString ? parseEnrollmentString(flags.enrollmentString) : null;
    const secret = e?.secret ?? flags.secret;
    if (!secret) throw new PatchwardenError('E_VALIDATION', 'no enrollment secret', { hint: 'pass --enrollment-string (or --secret) from the administrator' });
    const rootSha256 = flags.rootSha256 ?? e?.rootSha256 ?? undefined;
    const caSha256 = flags.caSha256 ?? e?.caSha256 ?? undefined;
    const state = await enrollAgent({
      dataDir: flags.dataDir,
      collect: collectOf(flags),
      server: flags.server,
      secret,
      force: !!flags.force,
      installs: !!flags.installs,
      ...(rootSha256 ? { rootSha256 } : {}),
      ...(caSha256 ? { caSha256 } : {}),
    });
    if (flags.json) return printJson({ deviceId: state.deviceId, server: state.server, status: state.status, publicKey: state.key?.publicKey ?? null, catalogRoot: state.catalogRoot });
    console.log(`enrolled as device ${state.deviceId} with ${state.server}${caSha256 ? ' (its certificate authority pinned)' : ''}; it signs every request with its own key`);
    if (state.status === 'pending') {
      console.log('this machine has an active record on the server already: this enrollment waits for an administrator (`patchwarden devices approve ' + state.deviceId + '`); the agent keeps asking');
    }
    if (state.catalogRoot) {
      console.log(`catalog root pinned: version ${state.catalogRoot.version}, sha256 ${state.catalogRoot.sha256}${rootSha256 ? ' (as expected)' : ' (compare it with the administrator\'s)'}`);
    } else console.log('the server has no catalog root yet: pin it later with `patchwarden agent pin-root`');
    console.log(`next: \`patchwarden agent run --data-dir ${flags.dataDir}\``);
  });

  agent
    .command('trust')
    .description("move an enrolled agent to the server's TLS address and pin its certificate authority (no new enrollment: same device, same history)")
    .requiredOption('--server <url>', 'the https:// address of the same server')
    .requiredOption('--ca-sha256 <hex>', "the fingerprint of the server's certificate authority (`patchwarden server` prints it)")
    .option('--data-dir <dir>', "the agent's data directory", process.env.PATCHWARDEN_AGENT_DATA_DIR ?? DEFAULT_AGENT_DIR)
    .option('--json', 'print JSON')
    .addHelpText('after', '\nFor agents enrolled before the server spoke TLS: run it once per device (e.g. from your configuration management).\nThe agent checks its own credentials over the new address before it keeps it.')
    .action(async (flags: { server: string; caSha256: string; dataDir: string; json?: boolean }) => {
      const { fetchPinnedCa, loadState, normalizeServerUrl, request, saveState, trustServerCa } = await import('@patchwarden/agent');
      const state = loadState(flags.dataDir);
      const server = normalizeServerUrl(flags.server).origin;
      const caPem = await fetchPinnedCa(server, flags.caSha256);
      trustServerCa(server, caPem);
      // the device's own credential must work there: the same server, not merely one with that CA
      await request(server, 'GET', '/api/v1/agent/jobs?wait=0&installs=false', { token: state.token });
      saveState(flags.dataDir, { ...state, server, caPem });
      if (flags.json) return printJson({ deviceId: state.deviceId, server, caSha256: flags.caSha256.toLowerCase() });
      console.log(`device ${state.deviceId} now reaches ${server}, trusting only the pinned certificate authority`);
    });

  agent
    .command('pin-root')
    .description("pin the server's catalog root (when it had none at enrollment); every patch is verified from it")
    .option('--data-dir <dir>', "the agent's data directory", process.env.PATCHWARDEN_AGENT_DATA_DIR ?? DEFAULT_AGENT_DIR)
    .option('--root-sha256 <hex>', "the root's fingerprint, from the administrator")
    .option('--force', 'replace a root pinned before (only on the administrator\'s word: it is what every verification trusts)')
    .action(async (flags: { dataDir: string; rootSha256?: string; force?: boolean }) => {
      const { loadState, fetchRoot, pinRoot, pinnedRootSha256 } = await import('@patchwarden/agent');
      const s = loadState(flags.dataDir);
      const before = pinnedRootSha256(flags.dataDir);
      if (before && !flags.force) throw new PatchwardenError('E_CONFLICT', `a root is pinned already (sha256 ${before})`, { hint: 'the agent follows root rotations by itself; --force replaces it' });
      const root = await fetchRoot(s.server, flags.rootSha256);
      if (!root) throw new PatchwardenError('E_NOT_FOUND', 'the server has no catalog root yet');
      pinRoot(flags.dataDir, root);
      console.log(`catalog root pinned: version ${root.version}, sha256 ${root.sha256}`);
    });

  agent
    .command('fetch-patch <target>')
    .description('fetch a patch object from the signed catalog and verify it from the pinned root (e.g. debian/NAME.json)')
    .option('--data-dir <dir>', "the agent's data directory", process.env.PATCHWARDEN_AGENT_DATA_DIR ?? DEFAULT_AGENT_DIR)
    .option('--out <file>', 'write the verified file here')
    .option('--json', 'print the verified manifest as JSON')
    .action(async (target: string, flags: { dataDir: string; out?: string; json?: boolean }) => {
      const { loadState, fetchVerifiedTarget } = await import('@patchwarden/agent');
      const s = loadState(flags.dataDir);
      const bytes = await fetchVerifiedTarget(flags.dataDir, s, target);
      if (flags.out) writeFileSync(flags.out, bytes);
      if (flags.json) return console.log(bytes.toString('utf8'));
      console.log(`${target}: verified (${bytes.length} bytes, sha256 ${createHash('sha256').update(bytes).digest('hex')})${flags.out ? `, written to ${flags.out}` : ''}`);
    });

  collectOptions(
    agent
      .command('run')
      .description('check in now and then on an interval (with jitter); with installs on, run the jobs the server hands out, until stopped')
      .option('--once', 'check in once, run the jobs that can run now, check in again if any ran, and exit')
      .option('--interval <seconds>', "override the server's check-in interval")
      .option('--allow-host', "let jobs act on the host's own root '/' (the host agent installation implies it)")
      .option('--reboot-command <cmd>', 'run this when a patch\'s reboot is due (e.g. "systemctl reboot"); without it a reboot stays pending and is reported')
      .option('--no-monitor', 'do not watch the package database for changes between check-ins'),
  ).action(async (flags: CollectFlags & { once?: boolean; interval?: string; allowHost?: boolean; rebootCommand?: string; monitor?: boolean }) => {
    const { checkinOnce, runAgent, processJobs, barrierFromEnv, loadState } = await import('@patchwarden/agent');
    const opts = { dataDir: flags.dataDir, collect: collectOf(flags) };
    const log = (line: string) => console.log(`${new Date().toISOString()} ${line}`);
    const jobOpts = {
      ...opts,
      ...(flags.allowHost ? { allowHost: true } : {}),
      ...(flags.rebootCommand ? { rebootCommand: flags.rebootCommand.split(/\s+/).filter(Boolean) } : {}),
      ...(flags.json ? {} : { log }),
    };
    const barrier = barrierFromEnv(flags.dataDir);
    const describe = (r: Awaited<ReturnType<typeof checkinOnce>>) =>
      flags.json
        ? JSON.stringify(r)
        : `checked in: ${r.packages} packages, sent ${r.mode}${r.sentSystem ? ' + system facts' : ''} (${r.bytesSent} bytes)${r.resent ? ', resent in full after the server lost the base' : ''}`;
    if (flags.once) {
      const first = await checkinOnce(opts);
      // a report-only agent has just checked in: there is nothing more to ask the server
      const pass = loadState(flags.dataDir).installs
        ? await processJobs({ ...jobOpts, ...(barrier ? { barrier } : {}) }, 0)
        : { installs: false, ran: [], waiting: [], rebooted: [], scanRequested: false };
      const again = pass.ran.length ? await checkinOnce(opts) : null;
      if (flags.json) return printJson({ ...first, jobs: pass, after: again });
      console.log(describe(first));
      for (const r of pass.ran) console.log(`job ${r.id}: ${r.kind} ${r.patch} → ${r.state}`);
      for (const w of pass.waiting) console.log(`job ${w.id}: waiting (${w.reason})`);
      if (again) console.log(describe(again));
      return;
    }
    const interval = flags.interval === undefined ? undefined : Number(flags.interval);
    if (interval !== undefined && !(interval >= 1)) throw new Error('--interval must be a number of seconds ≥ 1');
    const controller = new AbortController();
    process.once('SIGINT', () => controller.abort());
    process.once('SIGTERM', () => controller.abort());
    await runAgent({
      ...jobOpts,
      ...(barrier ? { barrier } : {}),
      ...(interval ? { intervalSeconds: interval } : {}),
      monitor: flags.monitor !== false,
      signal: controller.signal,
      onResult: (r) => log(describe(r)),
      onError: (err, retry) => console.error(`${new Date().toISOString()} check-in failed: ${coded(err)}; retrying in ${Math.round(retry)} s`),
      onJobError: (err, retry) => console.error(`${new Date().toISOString()} jobs: ${coded(err)}; retrying in ${Math.round(retry)} s`),
    });
  });

  agent
    .command('jobs')
    .description("the jobs this agent ran or is running, from its journal (state, outcome, snapshot kept for undo)")
    .option('--data-dir <dir>', 'agent data directory', process.env.PATCHWARDEN_AGENT_DATA_DIR ?? DEFAULT_AGENT_DIR)
    .option('--json', 'print JSON')
    .action(async (flags: { dataDir: string; json?: boolean }) => {
      const { listJournals } = await import('@patchwarden/agent');
      const rows = listJournals(flags.dataDir);
      if (flags.json) return printJson({ items: rows, total: rows.length });
      if (!rows.length) return console.log('no jobs yet');
      console.log(
        table(rows, [
          { header: 'job', get: (r) => r.id },
          { header: 'kind', get: (r) => r.kind },
          { header: 'patch', get: (r) => r.patch },
          { header: 'state', get: (r) => r.state },
          { header: 'reported', get: (r) => (r.reported ? 'yes' : 'no') },
          { header: 'outcome', get: (r) => (r.outcome ?? '').slice(0, 80) },
        ]),
      );
    });

  agent
    .command('installs <on|off>')
    .description('let this agent run install and undo jobs (on) or only report (off, the default)')
    .option('--data-dir <dir>', 'agent data directory', process.env.PATCHWARDEN_AGENT_DATA_DIR ?? DEFAULT_AGENT_DIR)
    .action(async (value: string, flags: { dataDir: string }) => {
      if (value !== 'on' && value !== 'off') throw new PatchwardenError('E_VALIDATION', `'${value}' is neither on nor off`, { hint: 'patchwarden agent installs on' });
      const { loadState, saveState } = await import('@patchwarden/agent');
      saveState(flags.dataDir, { ...loadState(flags.dataDir), installs: value === 'on' });
      console.log(value === 'on' ? 'installs on: this agent runs the install and undo jobs approved for it' : 'installs off: this agent only reports');
    });

  agent
    .command('status')
    .description("this agent's enrollment and last acknowledged check-in")
    .option('--data-dir <dir>', 'agent data directory', process.env.PATCHWARDEN_AGENT_DATA_DIR ?? DEFAULT_AGENT_DIR)
    .option('--json', 'print JSON')
    .action(async (flags: { dataDir: string; json?: boolean }) => {
      const { loadState, pinnedRootSha256 } = await import('@patchwarden/agent');
      const s = loadState(flags.dataDir);
      const view = {
        deviceId: s.deviceId,
        server: s.server,
        enrolledAt: s.enrolledAt,
        installs: s.installs,
        checkinIntervalSeconds: s.checkinIntervalSeconds,
        acked: s.acked,
        catalogRootSha256: pinnedRootSha256(flags.dataDir),
      };
      if (flags.json) printJson(view);
      else console.log(table([view], [
        { header: 'device', get: (v) => v.deviceId },
        { header: 'server', get: (v) => v.server },
        { header: 'installs', get: (v) => (v.installs ? 'on' : 'off (report-only)') },
        { header: 'inventory', get: (v) => v.acked?.inventoryHash.slice(0, 12) ?? 'not reported yet' },
        { header: 'catalog root', get: (v) => v.catalogRootSha256?.slice(0, 16) ?? 'not pinned' },
      ]));
    });

  collectOptions(agent.command('facts').description('collect and print the facts the agent would report (no server needed)'))
    .action(async (flags: CollectFlags) => {
      const { collectFacts } = await import('@patchwarden/agent');
      const f = await collectFacts(collectOf(flags));
      if (flags.json) return printJson(f);
      const os = f.system.os;
      console.log(`${f.system.hostname}: ${os.prettyName ?? os.family} (${os.machine}), kernel ${f.system.kernel.release}, time zone ${f.system.timezone ?? 'unknown'}`);
      for (const c of f.system.collectors) console.log(`  collector ${c.name}: ${c.status}${c.count === undefined ? '' : `, ${c.count} packages`}${c.message ? ` — ${c.message}` : ''}`);
    });
}

/** An error for the agent's log: its code first where it has one (E_DATABASE, E_DEVICE_PENDING …). */
function coded(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  const message = (err as Error).message ?? String(err);
  return typeof code === 'string' && /^E_[A-Z_]+$/.test(code) ? `${code}: ${message}` : message;
}
