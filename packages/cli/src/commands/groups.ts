/**
 * Group targeting from the command line: dynamic groups (a device query), members, test-ring
 * settings. The basic `groups` commands are defined with the other admin commands; this adds to
 * that command (and gives `create` and `list` the dynamic form) so `groups --help` stays one list.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { parseDeviceQuery, PatchwardenError, type DeviceQuery } from '@patchwarden/core';
import { ApiClient, withClient, type ClientOptions } from '../client.js';
import { printJson, table } from '../output.js';

type Flags = ClientOptions & { json?: boolean };
const enc = encodeURIComponent;

export interface GroupView {
  id: string;
  name: string;
  description: string;
  createdAt: string;
  deviceCount: number;
  kind: 'static' | 'dynamic';
  query: DeviceQuery | null;
  testRing: boolean;
  requireTestPass: boolean;
}
interface Member {
  id: string;
  hostname: string;
  os: string | null;
  labels: string[];
  staticGroup: string | null;
}

export const QUERY_HELP = `
A dynamic group's members are the active devices its query matches, evaluated whenever it is
used (deployment, approval check, maintenance windows, members). The query is JSON, one key per
object:
  {"os": {"id": "debian", "version": "12", "codename": "bookworm"}}   os-release fields, exact
  {"arch": "arm64"}                      kernel (aarch64) or package (arm64) architecture
  {"label": "env=prod"}                  a label exactly;  {"label": "env="}  any env=… label
  {"hostname": "web-*"}                  glob: * and ?, any case
  {"package": {"name": "openssl"}}       installed, in any version
  {"package": {"name": "openssl", "version": {"lt": "3.0.15-1~deb12u1"}, "scheme": "deb"}}
                                         lt le eq ne ge gt; scheme deb (default) or rpm
  {"group": "web"}                       member of the static group web
  {"all": [...]}  {"any": [...]}  {"not": {...}}
Limits: 8 levels, 256 tests, 64 per list, 16 KiB.

Examples:
  patchwarden groups create bookworm-prod --query '{"all":[{"os":{"codename":"bookworm"}},{"label":"env=prod"}]}'
  patchwarden groups create old-openssl --query @old-openssl.json
  patchwarden groups members bookworm-prod`;

/** `--query JSON` or `--query @file`: checked here too, so a typo is reported before any request. */
export function readQuery(spec: string): DeviceQuery {
  let text = spec;
  if (spec.startsWith('@')) {
    try {
      text = readFileSync(spec.slice(1), 'utf8');
    } catch (err) {
      throw new PatchwardenError('E_VALIDATION', `cannot read the query file ${spec.slice(1)}: ${(err as Error).message}`);
    }
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new PatchwardenError('E_VALIDATION', `the query is not JSON: ${(err as Error).message}`, { hint: 'quote it in single quotes, or put it in a file and pass --query @FILE' });
  }
  const r = parseDeviceQuery(json);
  if (!r.ok) throw new PatchwardenError('E_VALIDATION', `invalid device query: ${r.reason}`, { hint: 'see `patchwarden groups create --help`' });
  return r.query;
}

function sub(parent: Command, name: string): Command | undefined {
  return parent.commands.find((c) => c.name() === name);
}

const settingsCell = (g: GroupView) => [g.testRing ? 'test ring' : '', g.requireTestPass ? 'requires test pass' : ''].filter(Boolean).join(', ') || undefined;

function printGroups(items: GroupView[]): void {
  console.log(
    table(items, [
      { header: 'name', get: (g) => g.name },
      { header: 'kind', get: (g) => g.kind },
      { header: 'devices', get: (g) => g.deviceCount, align: 'right' },
      { header: 'settings', get: settingsCell },
      { header: 'query', get: (g) => (g.query ? JSON.stringify(g.query) : undefined) },
      { header: 'description', get: (g) => g.description || undefined },
    ]),
  );
}

export function groupTargetingCommands(program: Command): void {
  const groups = sub(program, 'groups') ?? program.command('groups');
  groups.description('device groups: static (devices assigned to them) and dynamic (a query over device facts)');

  const list = sub(groups, 'list') ?? withClient(groups.command('list'));
  list.description('list groups: kind, members, test-ring settings, query').action(async (f: Flags) => {
    const res = await ApiClient.from(f).call<{ items: GroupView[] }>('GET', '/api/v1/groups');
    if (f.json) return printJson(res);
    if (res.items.length === 0) return console.log('No groups yet. Create one: patchwarden groups create NAME [--query JSON]');
    printGroups(res.items);
  });

  const create = sub(groups, 'create') ?? withClient(groups.command('create').argument('<name>', 'group name')).option('--description <text>', 'what the group is for', '');
  create
    .description('create a group: static, or dynamic with --query')
    .option('--query <json|@file>', 'make it dynamic: its members are the devices this query matches (see below)')
    .option('--test-ring', 'a test ring: a patch passes when a deployment to it ends with every job done and the bake over')
    .option('--require-test-pass', 'approvals for this group wait until the patch passed the test ring')
    .addHelpText('after', QUERY_HELP)
    .action(async (name: string, f: Flags & { description: string; query?: string; testRing?: boolean; requireTestPass?: boolean }) => {
      const body = {
        name,
        description: f.description ?? '',
        ...(f.query === undefined ? {} : { query: readQuery(f.query) }),
        ...(f.testRing ? { testRing: true } : {}),
        ...(f.requireTestPass ? { requireTestPass: true } : {}),
      };
      const g = await ApiClient.from(f).call<GroupView>('POST', '/api/v1/groups', body);
      if (f.json) return printJson(g);
      console.log(`created ${g.kind} group ${g.name} (${g.id})${g.kind === 'dynamic' ? `: ${g.deviceCount} devices match now` : ''}`);
    });

  withClient(
    groups
      .command('members')
      .description('the active devices of a group (static or dynamic), by hostname')
      .argument('<group>', 'name or id')
      .option('--limit <n>', 'how many', '100')
      .option('--offset <n>', 'skip this many', '0'),
  ).action(async (ref: string, f: Flags & { limit: string; offset: string }) => {
    const q = new URLSearchParams({ limit: f.limit, offset: f.offset });
    const r = await ApiClient.from(f).call<{ group: string; kind: string; items: Member[]; total: number }>('GET', `/api/v1/groups/${enc(ref)}/members?${q}`);
    if (f.json) return printJson(r);
    if (r.items.length === 0) return console.log(r.total ? `No members past offset ${f.offset} (${r.total} in all).` : `Group ${r.group} has no active devices.`);
    console.log(
      table(r.items, [
        { header: 'hostname', get: (m) => m.hostname },
        { header: 'os', get: (m) => m.os },
        { header: 'static group', get: (m) => m.staticGroup },
        { header: 'labels', get: (m) => m.labels.join(',') || undefined },
        { header: 'id', get: (m) => m.id },
      ]),
    );
    if (r.total > r.items.length) console.log(`(${r.items.length} of ${r.total}; --offset ${Number(f.offset) + r.items.length} for more)`);
  });

  withClient(
    groups
      .command('set')
      .description("change a group's settings: test ring, require test pass, query (dynamic groups), description")
      .argument('<group>', 'name or id')
      .option('--test-ring', 'mark it as a test ring')
      .option('--no-test-ring', 'no longer a test ring')
      .option('--require-test-pass', 'approvals for it wait until the patch passed the test ring')
      .option('--no-require-test-pass', 'approvals for it do not wait for the test ring')
      .option('--query <json|@file>', "replace a dynamic group's query")
      .option('--description <text>', 'what the group is for')
      .addHelpText(
        'after',
        `
Examples:
  patchwarden groups set canary --test-ring
  patchwarden groups set production --require-test-pass
  patchwarden groups set production --no-require-test-pass`,
      ),
  ).action(async (ref: string, f: Flags & { testRing?: boolean; requireTestPass?: boolean; query?: string; description?: string }, cmd: Command) => {
    // commander sets a --no- option's default (true) even when it was not given: send only what was
    const given = (name: string) => cmd.getOptionValueSource(name) === 'cli';
    const body = {
      ...(given('testRing') ? { testRing: f.testRing } : {}),
      ...(given('requireTestPass') ? { requireTestPass: f.requireTestPass } : {}),
      ...(f.query === undefined ? {} : { query: readQuery(f.query) }),
      ...(f.description === undefined ? {} : { description: f.description }),
    };
    if (Object.keys(body).length === 0) throw new PatchwardenError('E_VALIDATION', 'nothing to change', { hint: 'give --test-ring, --require-test-pass (or their --no- forms), --query or --description' });
    const g = await ApiClient.from(f).call<GroupView>('PATCH', `/api/v1/groups/${enc(ref)}`, body);
    if (f.json) return printJson(g);
    printGroups([g]);
  });
}
