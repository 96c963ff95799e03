/** Deployments and approvals from the command line. */
import type { Command } from 'commander';
import { ApiClient, withClient, type ClientOptions } from '../client.js';
import { printJson, table } from '../output.js';

type Flags = ClientOptions & { json?: boolean };

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
  undoJobs?: number;
  unassigned?: string[];
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

function printStatus(d: DeploymentStatus): void {
  console.log(`deployment ${d.id}: ${d.status}${d.reason ? ` — ${d.reason}` : ''}`);
  console.log(`  patches ${d.patches.join(', ')}; start ${d.start}${d.deadline ? `, deadline ${d.deadline}` : ''}`);
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
      .description('deploy patches to groups or devices (only patches approved for their groups)')
      .argument('<patches...>', 'patch ids')
      .option('--group <names>', 'target groups, comma-separated')
      .option('--device <refs>', 'target devices (ids or hostnames), comma-separated')
      .option('--start <iso>', 'start (ISO 8601; default now)')
      .option('--deadline <iso>', 'deadline: devices that missed their windows install then')
      .option('--ring <spec...>', 'rings in order: PERCENT%[:BAKE_MINUTES] or group=NAME[,NAME][:BAKE_MINUTES] (default one ring of 100%)')
      .option('--failure-threshold <ratio>', 'halt a ring when failed ÷ finished goes above this', '0'),
  ).action(async (patches: string[], f: Flags & { group?: string; device?: string; start?: string; deadline?: string; ring?: string[]; failureThreshold: string }) => {
    const threshold = Number(f.failureThreshold);
    const body = {
      patches,
      ...(f.group ? { groups: list(f.group) } : {}),
      ...(f.device ? { devices: list(f.device) } : {}),
      start: f.start ?? new Date().toISOString(),
      ...(f.deadline ? { deadline: f.deadline } : {}),
      ...(f.ring ? { rings: f.ring.map((s, i) => parseRing(s, i, threshold)) } : {}),
    };
    const d = await ApiClient.from(f).call<DeploymentStatus>('POST', '/api/v1/deployments', body);
    if (f.json) return printJson(d);
    printStatus(d);
    if (d.unassigned?.length) console.log(`  ${d.unassigned.length} devices fell in no ring: ${d.unassigned.join(', ')}`);
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

  withClient(deploy.command('status').description('rings, verdicts and jobs of a deployment').argument('<id>', 'deployment id')).action(async (id: string, f: Flags) => {
    const d = await ApiClient.from(f).call<DeploymentStatus>('GET', `/api/v1/deployments/${encodeURIComponent(id)}`);
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

  withClient(deploy.command('undo').description('undo a deployment on every device whose install succeeded').argument('<id>', 'deployment id')).action(async (id: string, f: Flags) => {
    const d = await ApiClient.from(f).call<DeploymentStatus>('POST', `/api/v1/deployments/${encodeURIComponent(id)}/undo`);
    if (f.json) return printJson(d);
    console.log(`created ${d.undoJobs ?? 0} undo jobs`);
    printStatus(d);
  });

  withClient(
    program
      .command('approve')
      .description('approve (or decline) a patch for a group; compliance states do not change')
      .argument('<patch>', 'patch id')
      .requiredOption('--group <name>', 'group')
      .option('--decline', 'decline instead of approve'),
  ).action(async (patch: string, f: Flags & { group: string; decline?: boolean }) => {
    const r = await ApiClient.from(f).call<{ patch: string; group: string; decision: string }>('POST', '/api/v1/approvals', {
      patch,
      group: f.group,
      decision: f.decline ? 'decline' : 'approve',
    });
    if (f.json) return printJson(r);
    console.log(`${r.decision === 'approve' ? 'approved' : 'declined'} ${r.patch} for group ${r.group}`);
  });
}
