import type { Command } from 'commander';
import { DEFAULT_DATA_DIR } from '@patchwarden/core';
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
      .requiredOption('--server <url>', 'server URL, e.g. http://patchwarden.example:8060')
      .requiredOption('--secret <secret>', 'enrollment secret (`patchwarden secrets create` makes one)')
      .option('--force', 'enroll again as a new device even if this data directory is enrolled'),
  ).action(async (flags: CollectFlags & { server: string; secret: string; force?: boolean }) => {
    const { enrollAgent } = await import('@patchwarden/agent');
    const state = await enrollAgent({ dataDir: flags.dataDir, collect: collectOf(flags), server: flags.server, secret: flags.secret, force: !!flags.force });
    if (flags.json) printJson({ deviceId: state.deviceId, server: state.server });
    else console.log(`enrolled as device ${state.deviceId} with ${state.server}\nnext: \`patchwarden agent run --data-dir ${flags.dataDir}\``);
  });

  collectOptions(
    agent
      .command('run')
      .description('check in now and then on an interval (with jitter) until stopped')
      .option('--once', 'check in once and exit')
      .option('--interval <seconds>', "override the server's check-in interval"),
  ).action(async (flags: CollectFlags & { once?: boolean; interval?: string }) => {
    const { checkinOnce, runLoop } = await import('@patchwarden/agent');
    const opts = { dataDir: flags.dataDir, collect: collectOf(flags) };
    const describe = (r: Awaited<ReturnType<typeof checkinOnce>>) =>
      flags.json
        ? JSON.stringify(r)
        : `checked in: ${r.packages} packages, sent ${r.mode}${r.sentSystem ? ' + system facts' : ''} (${r.bytesSent} bytes)${r.resent ? ', resent in full after the server lost the base' : ''}`;
    if (flags.once) {
      console.log(describe(await checkinOnce(opts)));
      return;
    }
    const interval = flags.interval === undefined ? undefined : Number(flags.interval);
    if (interval !== undefined && !(interval >= 1)) throw new Error('--interval must be a number of seconds ≥ 1');
    const controller = new AbortController();
    process.once('SIGINT', () => controller.abort());
    process.once('SIGTERM', () => controller.abort());
    await runLoop({
      ...opts,
      ...(interval ? { intervalSeconds: interval } : {}),
      signal: controller.signal,
      onResult: (r) => console.log(`${new Date().toISOString()} ${describe(r)}`),
      onError: (err, retry) => console.error(`${new Date().toISOString()} check-in failed: ${(err as Error).message}; retrying in ${Math.round(retry)} s`),
    });
  });

  agent
    .command('status')
    .description("this agent's enrollment and last acknowledged check-in")
    .option('--data-dir <dir>', 'agent data directory', process.env.PATCHWARDEN_AGENT_DATA_DIR ?? DEFAULT_AGENT_DIR)
    .option('--json', 'print JSON')
    .action(async (flags: { dataDir: string; json?: boolean }) => {
      const { loadState } = await import('@patchwarden/agent');
      const s = loadState(flags.dataDir);
      const view = { deviceId: s.deviceId, server: s.server, enrolledAt: s.enrolledAt, installs: s.installs, checkinIntervalSeconds: s.checkinIntervalSeconds, acked: s.acked };
      if (flags.json) printJson(view);
      else console.log(table([view], [
        { header: 'device', get: (v) => v.deviceId },
        { header: 'server', get: (v) => v.server },
        { header: 'installs', get: (v) => (v.installs ? 'on' : 'off (report-only)') },
        { header: 'inventory', get: (v) => v.acked?.inventoryHash.slice(0, 12) ?? 'not reported yet' },
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
