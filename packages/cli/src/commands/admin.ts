/** Commands that talk to the admin API: devices, groups, enrollment secrets. */
import type { Command } from 'commander';
import { PatchwardenError, type DeviceDetail, type DeviceSummary, type EnrollmentSecretInfo, type GroupInfo, type PackageFact, type Page } from '@patchwarden/core';
import { ApiClient, withClient, type ClientOptions } from '../client.js';
import { ago, printJson, table, type Column } from '../output.js';

type Flags = ClientOptions & { json?: boolean };


const client = (f: Flags) => ApiClient.from(f);
const q = (params: Record<string, string | number | undefined>) => {
  const s = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') s.set(k, String(v));
  const t = s.toString();
  return t ? `?${t}` : '';
};
const enc = encodeURIComponent;

const inventoryCell = (d: DeviceSummary) =>
  d.inventory.status === 'unsupported' ? 'unsupported' : d.inventory.status === 'none' ? 'pending' : String(d.packageCount);

const deviceColumns: Column<DeviceSummary>[] = [
  { header: 'id', get: (d) => d.id.slice(0, 8) },
  { header: 'hostname', get: (d) => d.hostname },
  { header: 'os', get: (d) => d.os?.prettyName ?? d.os?.family },
  { header: 'group', get: (d) => d.group?.name },
  { header: 'labels', get: (d) => d.labels.join(',') || undefined },
  { header: 'packages', get: inventoryCell, align: 'right' },
  { header: 'last check-in', get: (d) => ago(d.lastSeenAt) },
  { header: 'status', get: (d) => (d.identity.cloneSuspectedAt ? `${d.status}, clone?` : d.status) },
];

function printDevice(d: DeviceDetail) {
  const rows: [string, string][] = [
    ['id', d.id],
    ['hostname', d.hostname],
    ['status', d.status],
    ['group', d.group?.name ?? '-'],
    ['labels', d.labels.join(', ') || '-'],
    ['os', d.os ? `${d.os.prettyName ?? d.os.family} (${d.os.machine}${d.os.packageArch ? `, ${d.os.packageArch}` : ''})` : '-'],
    ['kernel', d.kernel ?? '-'],
    ['time zone', d.timezone ?? '-'],
    ['reboot required', d.rebootRequired ? 'yes' : 'no'],
    ['agent', d.agentVersion ?? '-'],
    ['enrolled', d.enrolledAt],
    ['identity', identityCell(d)],
    ['last check-in', d.lastSeenAt ? `${d.lastSeenAt} (${ago(d.lastSeenAt)})` : 'never'],
    ['packages', inventoryCell(d)],
    ...d.collectors.map((c): [string, string] => [`collector ${c.name}`, `${c.status}${c.message ? `: ${c.message}` : ''}`]),
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  for (const [k, v] of rows) console.log(`${k.padEnd(w)}  ${v}`);
}

function identityCell(d: DeviceDetail): string {
  const parts = [d.identity.signed ? 'signs its requests with its own key' : 'bearer token only (enrolled before device keys; its agent registers a key at its next check-in)'];
  if (d.status === 'pending') parts.push(`waits for approval: the machine's active record is ${d.identity.duplicateOf ?? 'unknown'}`);
  else if (d.identity.duplicateOf) parts.push(`re-enrollment of ${d.identity.duplicateOf}`);
  if (d.identity.cloneSuspectedAt) parts.push(`CLONE SUSPECTED since ${d.identity.cloneSuspectedAt}: two machines check in with this identity`);
  return parts.join('; ');
}

export function adminCommands(program: Command): void {
  const devices = program.command('devices').description('list and manage enrolled devices');

  withClient(devices.command('list').description('list devices'))
    .option('--search <text>', 'match hostname or OS')
    .option('--group <name>', 'only this group')
    .option('--label <label>', 'only devices with this label')
    .option('--status <status>', 'active, pending (re-enrollments waiting for approval) or revoked')
    .option('--sort <field>', 'hostname, lastSeen, packages or os', 'hostname')
    .option('--order <order>', 'asc or desc', 'asc')
    .option('--limit <n>', 'page size (max 1000)', '100')
    .option('--offset <n>', 'skip this many', '0')
    .action(async (f: Flags & Record<string, string | undefined>) => {
      const res = await client(f).call<Page<DeviceSummary>>(
        'GET',
        `/api/v1/devices${q({ search: f.search, group: f.group, label: f.label, status: f.status, sort: f.sort, order: f.order, limit: f.limit, offset: f.offset })}`,
      );
      if (f.json) return printJson(res);
      if (res.items.length === 0) {
        console.log(res.total === 0 ? 'No devices yet. Enroll one: patchwarden agent enroll --server URL --secret S' : 'No devices on this page.');
        return;
      }
      console.log(table(res.items, deviceColumns));
      console.log(`\n${res.items.length} of ${res.total} devices`);
    });

  withClient(devices.command('show').description('one device: facts and installed packages').argument('<device>', 'device id or hostname'))
    .option('--search <text>', 'only packages whose name or source contains this')
    .option('--limit <n>', 'packages to show (max 1000)', '1000')
    .option('--offset <n>', 'skip this many packages', '0')
    .action(async (ref: string, f: Flags & { search?: string; limit: string; offset: string }) => {
      const c = client(f);
      const d = await c.call<DeviceDetail>('GET', `/api/v1/devices/${enc(ref)}`);
      const pk = await c.call<Page<PackageFact>>(
        'GET',
        `/api/v1/devices/${enc(d.id)}/packages${q({ search: f.search, limit: f.limit, offset: f.offset })}`,
      );
      if (f.json) return printJson({ ...d, packages: pk });
      printDevice(d);
      if (pk.total > 0) {
        console.log('');
        console.log(table(pk.items, [
          { header: 'package', get: (p) => p.name },
          { header: 'version', get: (p) => p.version },
          { header: 'arch', get: (p) => p.arch },
          { header: 'source', get: (p) => (p.source || p.sourceVersion ? `${p.source ?? p.name} ${p.sourceVersion ?? p.version}` : undefined) },
          { header: 'state', get: (p) => p.state },
        ]));
        console.log(`\n${pk.items.length} of ${pk.total} packages`);
      }
    });

  withClient(devices.command('revoke').description('revoke a device: its token stops working at once').argument('<device>', 'device id or hostname')).action(
    async (ref: string, f: Flags) => {
      const d = await client(f).call<DeviceDetail>('POST', `/api/v1/devices/${enc(ref)}/revoke`);
      if (f.json) printJson(d);
      else console.log(`revoked device ${d.id} (${d.hostname})`);
    },
  );

  withClient(
    devices
      .command('approve')
      .description("approve a pending re-enrollment (the machine's older record is revoked) or clear a clone suspicion after checking the machine")
      .argument('<device>', 'device id or hostname'),
  )
    .option('--keep-original', 'keep the older record active too (two machines that share an identity by design)')
    .action(async (ref: string, f: Flags & { keepOriginal?: boolean }) => {
      const r = await client(f).call<{ device: DeviceDetail; revoked: string | null }>('POST', `/api/v1/devices/${enc(ref)}/approve`, { keepOriginal: !!f.keepOriginal });
      if (f.json) return printJson(r);
      console.log(`device ${r.device.id} (${r.device.hostname}) is ${r.device.status}${r.revoked ? `; the older record ${r.revoked} is revoked` : ''}`);
    });

  withClient(
    devices
      .command('group')
      .description('put a device in a static group')
      .argument('<device>', 'device id or hostname')
      .argument('[group]', 'group name; omit with --none'),
  )
    .option('--none', 'take the device out of its group')
    .action(async (ref: string, group: string | undefined, f: Flags & { none?: boolean }) => {
      if (!group && !f.none) throw new PatchwardenError('E_VALIDATION', 'name a group, or pass --none');
      const d = await client(f).call<DeviceDetail>('PUT', `/api/v1/devices/${enc(ref)}/group`, { group: f.none ? null : group });
      if (f.json) printJson(d);
      else console.log(`${d.hostname}: group ${d.group?.name ?? '(none)'}`);
    });

  withClient(devices.command('scan').description('scan now: the device collects its facts and checks in at once (within seconds while its agent runs)').argument('<device>', 'device id or hostname')).action(
    async (ref: string, f: Flags) => {
      const r = await client(f).call<{ deviceId: string; at: string }>('POST', `/api/v1/devices/${enc(ref)}/scan`);
      if (f.json) printJson(r);
      else console.log(`scan requested for ${ref} (device ${r.deviceId}); its agent checks in as soon as it hears it`);
    },
  );

  withClient(
    devices
      .command('history')
      .description("a device's jobs (installs and undos with their outcome) and events (a patch removed by hand …)")
      .argument('<device>', 'device id or hostname')
      .option('--limit <n>', 'how many of each', '50'),
  ).action(async (ref: string, f: Flags & { limit: string }) => {
    type Job = { id: string; kind: string; patch: { id: string; revision: number }; state: string; createdAt: string; finishedAt: string | null; deploymentId: string };
    type Ev = { at: string; kind: string; patch: string | null; message: string };
    const [jobs, events] = await Promise.all([
      client(f).call<{ items: Job[]; total: number }>('GET', `/api/v1/jobs?device=${enc(ref)}&limit=${enc(f.limit)}`),
      client(f).call<{ items: Ev[]; total: number }>('GET', `/api/v1/devices/${enc(ref)}/events?limit=${enc(f.limit)}`),
    ]);
    if (f.json) return printJson({ jobs, events });
    console.log(
      jobs.items.length
        ? table(jobs.items, [
            { header: 'job', get: (j) => j.id },
            { header: 'kind', get: (j) => j.kind },
            { header: 'patch', get: (j) => `${j.patch.id} r${j.patch.revision}` },
            { header: 'state', get: (j) => j.state },
            { header: 'created', get: (j) => j.createdAt },
            { header: 'finished', get: (j) => j.finishedAt },
          ])
        : 'no jobs',
    );
    console.log('');
    console.log(events.items.length ? table(events.items, [{ header: 'at', get: (e) => e.at }, { header: 'event', get: (e) => e.kind }, { header: 'message', get: (e) => e.message }]) : 'no events');
  });

  withClient(devices.command('label').description('add or remove labels').argument('<device>', 'device id or hostname'))
    .option('--add <labels...>', 'labels to add')
    .option('--remove <labels...>', 'labels to remove')
    .action(async (ref: string, f: Flags & { add?: string[]; remove?: string[] }) => {
      if (!f.add && !f.remove) throw new PatchwardenError('E_VALIDATION', 'pass --add and/or --remove');
      const d = await client(f).call<DeviceDetail>('POST', `/api/v1/devices/${enc(ref)}/labels`, { add: f.add ?? [], remove: f.remove ?? [] });
      if (f.json) printJson(d);
      else console.log(`${d.hostname}: labels ${d.labels.join(', ') || '(none)'}`);
    });

  const groups = program.command('groups').description('static device groups');
  type Group = GroupInfo;
  withClient(groups.command('list').description('list groups')).action(async (f: Flags) => {
    const res = await client(f).call<{ items: Group[] }>('GET', '/api/v1/groups');
    if (f.json) return printJson(res);
    if (res.items.length === 0) return console.log('No groups yet. Create one: patchwarden groups create NAME');
    console.log(table(res.items, [
      { header: 'name', get: (g) => g.name },
      { header: 'devices', get: (g) => g.deviceCount, align: 'right' },
      { header: 'description', get: (g) => g.description || undefined },
      { header: 'id', get: (g) => g.id },
    ]));
  });
  withClient(groups.command('create').description('create a group').argument('<name>', 'group name'))
    .option('--description <text>', 'what the group is for', '')
    .action(async (name: string, f: Flags & { description: string }) => {
      const g = await client(f).call<Group>('POST', '/api/v1/groups', { name, description: f.description });
      if (f.json) printJson(g);
      else console.log(`created group ${g.name} (${g.id})`);
    });
  withClient(groups.command('delete').description('delete a group; its devices stay, without a group').argument('<group>', 'name or id')).action(
    async (ref: string, f: Flags) => {
      await client(f).call('DELETE', `/api/v1/groups/${enc(ref)}`);
      if (f.json) printJson({ deleted: ref });
      else console.log(`deleted group ${ref}`);
    },
  );

  const secrets = program.command('secrets').description('enrollment secrets: what a new agent needs to enroll');
  type Secret = EnrollmentSecretInfo;
  const showSecret = (s: Secret, f: Flags) => {
    if (f.json) return printJson(s);
    const limits = [s.maxUses !== null ? `${s.maxUses} device(s)` : null, s.expiresAt ? `until ${s.expiresAt}` : null].filter(Boolean).join(', ');
    console.log(`enrollment secret ${s.id} (${s.name}${s.group ? `, joins group ${s.group.name}` : ''}${limits ? `; ${limits}` : ''})`);
    console.log(`  enrollment string: ${s.enrollmentString ?? s.secret}`);
    console.log('  shown only now: store it safely. It holds the secret and the fingerprints the device pins. On a device:');
    console.log(`  patchwarden agent enroll --server ${client(f).server} --enrollment-string '<enrollment string>'`);
  };
  withClient(secrets.command('list').description('list secrets (never their values)')).action(async (f: Flags) => {
    const res = await client(f).call<{ items: Secret[] }>('GET', '/api/v1/enrollment-secrets');
    if (f.json) return printJson(res);
    if (res.items.length === 0) return console.log('No enrollment secrets. Create one: patchwarden secrets create NAME');
    console.log(table(res.items, [
      { header: 'id', get: (s) => s.id },
      { header: 'name', get: (s) => s.name },
      { header: 'group', get: (s) => s.group?.name },
      { header: 'uses', get: (s) => s.uses, align: 'right' },
      { header: 'last used', get: (s) => (s.lastUsedAt ? ago(s.lastUsedAt) : 'never') },
      { header: 'limits', get: (s) => [s.maxUses !== null ? `${s.uses}/${s.maxUses}` : null, s.expiresAt ? `until ${s.expiresAt.slice(0, 10)}` : null].filter(Boolean).join(', ') },
      { header: 'status', get: (s) => (s.revokedAt ? 'revoked' : s.expiresAt && Date.parse(s.expiresAt) <= Date.now() ? 'expired' : s.maxUses !== null && s.uses >= s.maxUses ? 'used up' : 'active') },
    ]));
  });
  withClient(secrets.command('create').description('create a secret (its value is shown once)').argument('<name>', 'what it is for'))
    .option('--group <group>', 'devices enrolled with it join this group')
    .option('--expires-days <n>', 'it enrolls nothing after this many days')
    .option('--max-uses <n>', 'it enrolls at most this many devices')
    .action(async (name: string, f: Flags & { group?: string; expiresDays?: string; maxUses?: string }) => {
      const n = (v: string | undefined, what: string) => {
        if (v === undefined) return undefined;
        const x = Number(v);
        if (!Number.isInteger(x) || x < 1) throw new PatchwardenError('E_VALIDATION', `${what} takes a whole number of at least 1`);
        return x;
      };
      const body = { name, group: f.group ?? null, expiresInDays: n(f.expiresDays, '--expires-days'), maxUses: n(f.maxUses, '--max-uses') };
      showSecret(await client(f).call<Secret>('POST', '/api/v1/enrollment-secrets', body), f);
    });
  withClient(secrets.command('rotate').description('give a secret a new value; the old value stops working').argument('<id>', 'secret id')).action(
    async (id: string, f: Flags) => showSecret(await client(f).call<Secret>('POST', `/api/v1/enrollment-secrets/${enc(id)}/rotate`), f),
  );
  withClient(secrets.command('revoke').description('revoke a secret').argument('<id>', 'secret id')).action(async (id: string, f: Flags) => {
    const s = await client(f).call<Secret>('POST', `/api/v1/enrollment-secrets/${enc(id)}/revoke`);
    if (f.json) printJson(s);
    else console.log(`revoked enrollment secret ${s.id} (${s.name})`);
  });
}
