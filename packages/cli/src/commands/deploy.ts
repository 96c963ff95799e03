/** Deployments and approvals from the command line. */
import type { Command } from 'commander';
import { PatchwardenError } from '@patchwarden/core';
import { ApiClient, withClient, type ClientOptions } from '../client.js';
import { printJson, table } from '../output.js';

type Flags = ClientOptions & { json?: boolean };

interface JobRow {
  id: string;
  kind: string;
  device: { id: string; hostname: string };
  patch: { id: string; revision: number };
  ring: number;
  state: string;
  finishedAt: string | null;
}

interface RingStatus {
  name: string;
  status: string;
  reason: string | null;
  bakeEndsAt: string | null;
  counts: { total: number; succeeded: number; failed: number; unfinished: number };
}
export interface DeploymentStatus {
  id: string;
  status: string;
  reason: string | null;
  createdAt: string;
  start: string;
  deadline: string | null;
  patches: string[];
  currentRing: number;
  rings: RingStatus[];
  jobs: { install: Record<string, number>; undo: Record<string, number> };
  target?: {
    groups?: string[];
    labels?: string[];
    devices?: string[];
    exclude?: { groups?: string[]; labels?: string[]; devices?: string[] };
    testRings?: string[];
  };
  undoJobs?: number;
  unassigned?: string[];
  undoLimits?: { patch: string; reasons: string[] }[];
}
interface DeploymentListItem {
  id: string;
  status: string;
  reason: string | null;
  createdAt: string;
  patches: string[];
  currentRing: number;
  rings: number;
  jobs: { total: number; succeeded: number; failed: number };
}

type CreateFlags = Flags & {
  reboot: string;
  group?: string;
  label?: string;
  device?: string;
  excludeGroup?: string;
  excludeLabel?: string;
  excludeDevice?: string;
  start?: string;
  deadline?: string;
  ring?: string[];
  failureThreshold: string;
};

const list = (xs: string | undefined) => (xs ? xs.split(',').map((s) => s.trim()).filter(Boolean) : undefined);

/** `30%:60` is a ring of 30 % of the devices with a 60-minute bake; `group=web:60` a ring by group. */
export function parseRing(spec: string, index: number, threshold: number) {
  const [sel, bake = '0'] = spec.split(':');
  const bakeMinutes = Number(bake);
  if (!sel || !Number.isInteger(bakeMinutes) || bakeMinutes < 0) throw new Error(`bad ring '${spec}': expected PERCENT%[:BAKE_MINUTES] or group=NAME[,NAME][:BAKE_MINUTES]`);
  const common = { name: `ring-${index + 1}`, bakeMinutes, failureThreshold: threshold };
  if (sel.startsWith('group=')) return { ...common, groups: list(sel.slice(6)) ?? [] };
  const m = /^(\d+(?:\.\d+)?)%$/.exec(sel);
  if (!m) throw new Error(`bad ring '${spec}': expected PERCENT%[:BAKE_MINUTES] or group=NAME[,NAME][:BAKE_MINUTES]`);
  return { ...common, percent: Number(m[1]) };
}

/** `groups web, db; labels env=prod; 2 devices; excluding group pci; test ring canary` */
export function describeTarget(t: NonNullable<DeploymentStatus['target']>): string {
  const part = (what: string, xs: string[] | undefined, count = false) =>
    xs?.length ? (count ? `${xs.length} device${xs.length === 1 ? '' : 's'}` : `${what}${xs.length === 1 ? '' : 's'} ${xs.join(', ')}`) : null;
  const inc = [part('group', t.groups), part('label', t.labels), part('device', t.devices, true)].filter(Boolean);
  const exc = [part('group', t.exclude?.groups), part('label', t.exclude?.labels), part('device', t.exclude?.devices, true)].filter(Boolean);
  return [inc.join('; ') || 'nothing', exc.length ? `excluding ${exc.join(', ')}` : null, t.testRings?.length ? `test ring ${t.testRings.join(', ')}` : null]
    .filter(Boolean)
    .join('; ');
}

function printStatus(d: DeploymentStatus): void {
  console.log(`deployment ${d.id}: ${d.status}${d.reason ? ` — ${d.reason}` : ''}`);
  console.log(`  patches ${d.patches.join(', ')}; start ${d.start}${d.deadline ? `, deadline ${d.deadline}` : ''}`);
  if (d.target) console.log(`  target ${describeTarget(d.target)}`);
  console.log(
    table(d.rings, [
      { header: 'ring', get: (r) => r.name },
      { header: 'status', get: (r) => r.status },
      { header: 'devices', get: (r) => r.counts.total, align: 'right' },
      { header: 'succeeded', get: (r) => r.counts.succeeded, align: 'right' },
      { header: 'failed', get: (r) => r.counts.failed, align: 'right' },
      { header: 'pending', get: (r) => r.counts.unfinished, align: 'right' },
      { header: 'note', get: (r) => r.reason ?? (r.bakeEndsAt ? `bakes until ${r.bakeEndsAt}` : '') },
    ]),
  );
  const states = (m: Record<string, number>) => Object.entries(m).map(([s, n]) => `${s} ${n}`).join(', ') || 'none';
  console.log(`  install jobs: ${states(d.jobs.install)}`);
  if (Object.keys(d.jobs.undo).length) console.log(`  undo jobs: ${states(d.jobs.undo)}`);
}

export function deployCommands(program: Command): void {
  const deploy = program.command('deploy').description('deploy approved patches in rings');

  withClient(
    deploy
      .command('create')
      .description('deploy patches to groups, labels and devices (only patches their groups approved, none declined)')
      .argument('<patches...>', 'patch ids')
      .option('--group <names>', 'target groups (static or dynamic), comma-separated')
      .option('--label <labels>', 'target the devices with any of these labels, comma-separated')
      .option('--device <refs>', 'target devices (ids or hostnames), comma-separated')
      .option('--exclude-group <names>', 'leave out the devices of these groups, comma-separated')
      .option('--exclude-label <labels>', 'leave out the devices with any of these labels, comma-separated')
      .option('--exclude-device <refs>', 'leave out these devices (ids or hostnames), comma-separated')
      .option('--start <iso>', 'start (ISO 8601; default now)')
      .option('--deadline <iso>', 'deadline: devices that missed their windows install then')
      .option('--ring <spec...>', 'rings in order: PERCENT%[:BAKE_MINUTES] or group=NAME[,NAME][:BAKE_MINUTES] (default one ring of 100%)')
      .option('--failure-threshold <ratio>', 'halt a ring when failed ÷ finished goes above this', '0')
      .option('--reboot <policy>', 'when devices reboot after a patch that needs it: never (it stays pending and is reported), window-end or deadline', 'never')
      .addHelpText(
        'after',
        `
Targets add up (groups, labels and devices, any combination); exclusions then take devices out.
A device gets a job for a patch when it needs it, one of its groups approved it and none declined.

Examples:
  patchwarden deploy create debian/openssl-3.0.15-1~deb12u1 --group web --ring 10%:60 --ring 100%
  patchwarden deploy create custom/acme-hotfix-12 --label env=prod --exclude-label pci --exclude-device db-1`,
      ),
  ).action(async (patches: string[], f: CreateFlags) => {
    const threshold = Number(f.failureThreshold);
    const exclude = {
      ...(f.excludeGroup ? { groups: list(f.excludeGroup) } : {}),
      ...(f.excludeLabel ? { labels: list(f.excludeLabel) } : {}),
      ...(f.excludeDevice ? { devices: list(f.excludeDevice) } : {}),
    };
    const body = {
      patches,
      ...(f.group ? { groups: list(f.group) } : {}),
      ...(f.label ? { labels: list(f.label) } : {}),
      ...(f.device ? { devices: list(f.device) } : {}),
      ...(Object.keys(exclude).length ? { exclude } : {}),
      start: f.start ?? new Date().toISOString(),
      ...(f.deadline ? { deadline: f.deadline } : {}),
      ...(f.ring ? { rings: f.ring.map((s, i) => parseRing(s, i, threshold)) } : {}),
      reboot: f.reboot,
    };
    if (!['never', 'window-end', 'deadline'].includes(f.reboot)) throw new PatchwardenError('E_VALIDATION', `--reboot ${f.reboot} is not a reboot policy`, { hint: 'use never, window-end or deadline' });
    const d = await ApiClient.from(f).call<DeploymentStatus>('POST', '/api/v1/deployments', body);
    if (f.json) return printJson(d);
    printStatus(d);
    if (d.unassigned?.length) console.log(`  ${d.unassigned.length} devices fell in no ring: ${d.unassigned.join(', ')}`);
    for (const u of d.undoLimits ?? []) console.log(`  note: undo of ${u.patch} would not restore everything: ${u.reasons.join('; ')}`);
  });

  withClient(
    deploy
      .command('jobs')
      .description("a deployment's jobs: device, patch, ring, state (filter by --state, --ring, --device)")
      .argument('<id>', 'deployment id')
      .option('--state <state>', 'only jobs in this state (queued, done, failed, rolled-back, needs-attention …)')
      .option('--ring <n>', 'only jobs of this ring (0 is the first)')
      .option('--device <ref>', 'only jobs of this device (id or hostname)')
      .option('--limit <n>', 'how many', '100')
      .option('--offset <n>', 'skip this many', '0'),
  ).action(async (id: string, f: Flags & { state?: string; ring?: string; device?: string; limit: string; offset: string }) => {
    const q = new URLSearchParams({ limit: f.limit, offset: f.offset, ...(f.state ? { state: f.state } : {}), ...(f.ring ? { ring: f.ring } : {}), ...(f.device ? { device: f.device } : {}) });
    const r = await ApiClient.from(f).call<{ items: JobRow[]; total: number }>('GET', `/api/v1/deployments/${encodeURIComponent(id)}/jobs?${q}`);
    if (f.json) return printJson(r);
    if (!r.items.length) return console.log('no jobs match');
    console.log(
      table(r.items, [
        { header: 'job', get: (j) => j.id },
        { header: 'kind', get: (j) => j.kind },
        { header: 'device', get: (j) => j.device.hostname },
        { header: 'patch', get: (j) => `${j.patch.id} r${j.patch.revision}` },
        { header: 'ring', get: (j) => j.ring, align: 'right' },
        { header: 'state', get: (j) => j.state },
        { header: 'finished', get: (j) => j.finishedAt },
      ]),
    );
    if (r.total > r.items.length) console.log(`${r.items.length} of ${r.total}; page with --offset`);
  });

  withClient(
    deploy
      .command('job')
      .description('one job with its event history, as the agent reported it')
      .argument('<job-id>', 'job id'),
  ).action(async (id: string, f: Flags) => {
    const j = await ApiClient.from(f).call<JobRow & { events: { at: string; state: string; message?: string }[]; detail: Record<string, unknown> | null }>('GET', `/api/v1/jobs/${encodeURIComponent(id)}`);
    if (f.json) return printJson(j);
    console.log(`job ${j.id}: ${j.kind} of ${j.patch.id} r${j.patch.revision} on ${j.device.hostname} — ${j.state}`);
    for (const e of j.events) console.log(`  ${e.at}  ${e.state.padEnd(17)} ${e.message ?? ''}`);
    if (j.detail?.audit) console.log(`dpkg --audit:\n${String(j.detail.audit)}`);
  });

  withClient(
    deploy
      .command('list')
      .description('deployments, newest first')
      .option('--limit <n>', 'how many', '50')
      .option('--offset <n>', 'skip this many', '0'),
  ).action(async (f: Flags & { limit: string; offset: string }) => {
    const q = new URLSearchParams({ limit: f.limit, offset: f.offset });
    const r = await ApiClient.from(f).call<{ items: DeploymentListItem[]; total: number }>('GET', `/api/v1/deployments?${q}`);
    if (f.json) return printJson(r);
    if (r.items.length === 0) return console.log('No deployments.');
    console.log(
      table(r.items, [
        { header: 'id', get: (d) => d.id },
        { header: 'status', get: (d) => d.status },
        { header: 'ring', get: (d) => `${Math.min(d.currentRing + 1, d.rings)}/${d.rings}` },
        { header: 'jobs', get: (d) => d.jobs.total, align: 'right' },
        { header: 'succeeded', get: (d) => d.jobs.succeeded, align: 'right' },
        { header: 'failed', get: (d) => d.jobs.failed, align: 'right' },
        { header: 'patches', get: (d) => d.patches.join(', ') },
        { header: 'created', get: (d) => d.createdAt },
      ]),
    );
    if (r.total > r.items.length) console.log(`(${r.items.length} of ${r.total})`);
  });

  withClient(
    deploy
      .command('status')
      .description('rings, verdicts and jobs of a deployment; --watch follows it until it ends')
      .argument('<id>', 'deployment id')
      .option('--watch', 'follow it live: a progress bar per ring (one line per change when not on a terminal)')
      .option('--interval <seconds>', 'with --watch: seconds between refreshes', '2')
      .addHelpText(
        'after',
        `
With --watch the command ends when the deployment does, and its exit code says how:
  0   complete: every ring finished and baked healthy
  11  halted: a ring crossed its failure threshold, or an administrator halted it
  12  undone
Other codes are errors (7: the server could not be reached, 4: no such deployment).
With --json, --watch prints the whole status as one JSON line each time it changes.`,
      ),
  ).action(async (id: string, f: Flags & { watch?: boolean; interval: string }) => {
    const client = ApiClient.from(f);
    const get = () => client.call<DeploymentStatus>('GET', `/api/v1/deployments/${encodeURIComponent(id)}`);
    if (f.watch) {
      const { intervalMs, watchDeployment } = await import('./deploy-watch.js');
      process.exitCode = await watchDeployment(get, { intervalMs: intervalMs(f.interval), tty: !!process.stdout.isTTY, json: !!f.json });
      return;
    }
    const d = await get();
    if (f.json) return printJson(d);
    printStatus(d);
  });

  withClient(deploy.command('halt').description('halt a deployment').argument('<id>', 'deployment id').option('--reason <text>', 'why')).action(
    async (id: string, f: Flags & { reason?: string }) => {
      const d = await ApiClient.from(f).call<DeploymentStatus>('POST', `/api/v1/deployments/${encodeURIComponent(id)}/halt`, f.reason ? { reason: f.reason } : {});
      if (f.json) return printJson(d);
      printStatus(d);
    },
  );

  withClient(deploy.command('resume').description("resume a halted deployment (the current ring's jobs go out again)").argument('<id>', 'deployment id')).action(async (id: string, f: Flags) => {
    const d = await ApiClient.from(f).call<DeploymentStatus>('POST', `/api/v1/deployments/${encodeURIComponent(id)}/resume`);
    if (f.json) return printJson(d);
    printStatus(d);
  });

  withClient(
    deploy
      .command('undo')
      .description('undo a deployment (it stops), one ring or some devices: each install there that succeeded is undone from the agent\'s snapshot')
      .argument('<id>', 'deployment id')
      .option('--ring <n>', 'only this ring (0 is the first); the rest keeps running')
      .option('--device <refs>', 'only these devices (ids or hostnames), comma-separated; the rest keeps running'),
  ).action(async (id: string, f: Flags & { ring?: string; device?: string }) => {
    const scope = { ...(f.ring !== undefined ? { ring: Number(f.ring) } : {}), ...(f.device ? { devices: list(f.device) } : {}) };
    if (scope.ring !== undefined && !Number.isInteger(scope.ring)) throw new PatchwardenError('E_VALIDATION', `--ring ${f.ring} is not a ring number`, { hint: 'rings count from 0' });
    const d = await ApiClient.from(f).call<DeploymentStatus>('POST', `/api/v1/deployments/${encodeURIComponent(id)}/undo`, scope);
    if (f.json) return printJson(d);
    console.log(`created ${d.undoJobs ?? 0} undo jobs`);
    printStatus(d);
  });

  withClient(
    program
      .command('approve')
      .description('approve (or decline) a patch for a group; compliance states do not change')
      .argument('<patch>', 'patch id')
      // required, but checked below: commander also checks a parent's required options for its
      // subcommands, and `approve rules …` takes no --group of approve's
      .option('--group <name>', 'group (required)')
      .option('--decline', 'decline instead of approve')
      .addHelpText(
        'after',
        `
A device may get a patch when at least one of its groups (static or dynamic) approved it and
none declined it: a decline wins. A group that requires a test-ring pass refuses an approval
until the patch passed the test ring. Approval rules: see \`patchwarden approve rules --help\`.`,
      ),
  ).action(async (patch: string, f: Flags & { group?: string; decline?: boolean }) => {
    if (!f.group) throw new PatchwardenError('E_VALIDATION', "required option '--group <name>' not specified", { hint: 'patchwarden approve PATCH --group GROUP [--decline]' });
    const r = await ApiClient.from(f).call<{ patch: string; group: string; decision: string }>('POST', '/api/v1/approvals', {
      patch,
      group: f.group,
      decision: f.decline ? 'decline' : 'approve',
    });
    if (f.json) return printJson(r);
    console.log(`${r.decision === 'approve' ? 'approved' : 'declined'} ${r.patch} for group ${r.group}`);
  });
}
