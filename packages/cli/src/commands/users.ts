/**
 * `patchwarden users`: people who sign in to the console, their roles and groups;
 * `patchwarden tokens`: API tokens over the API (yours, or all for administrators).
 */
import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import { PatchwardenError, PERMISSION_NAMES, ROLE_NAMES, type Permission } from '@patchwarden/core';
import { ApiClient, withClient, type ClientOptions } from '../client.js';
import { ago, printJson, table } from '../output.js';

type Flags = ClientOptions & { json?: boolean };

interface User {
  id: string;
  name: string;
  role: string;
  groups: string[] | null;
  createdAt: string;
  lastLoginAt: string | null;
  disabled: boolean;
  lockedUntil: string | null;
}
interface Token {
  id: string;
  name: string;
  user: string | null;
  role: string;
  scopes: string[] | null;
  createdAt: string;
  expiresAt: string | null;
  lastUsedAt: string | null;
  revoked: boolean;
}

const ROLE_HELP = `
Roles:
  administrator   everything, including users, enrollment, sites, webhooks and the catalog's keys
  operator        approve, deploy, undo and ask for scans; --groups limits that to some groups
  author          publish signed custom patches
  auditor         read everything, and the audit log`;

/** A password from stdin (--password-stdin), or asked for without echo on a terminal. */
export async function readPassword(fromStdin: boolean, prompt = 'password: '): Promise<string> {
  if (!fromStdin && !process.stdin.isTTY) {
    throw new PatchwardenError('E_VALIDATION', 'no password: stdin is not a terminal', { hint: 'pipe it in with --password-stdin' });
  }
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: !fromStdin });
  if (!fromStdin) {
    // the prompt is shown, the typing is not
    const out = rl as unknown as { _writeToOutput: (s: string) => void };
    process.stderr.write(prompt);
    out._writeToOutput = () => undefined;
  }
  const line = await new Promise<string>((resolve) => {
    rl.once('line', resolve);
    rl.once('close', () => resolve(''));
  });
  rl.close();
  if (!fromStdin) process.stderr.write('\n');
  if (!line) throw new PatchwardenError('E_VALIDATION', 'no password given');
  return line;
}

export function parseScopes(spec: string | undefined): Permission[] | undefined {
  if (spec === undefined) return undefined;
  const scopes = [...new Set(spec.split(',').map((s) => s.trim()).filter(Boolean))];
  const bad = scopes.filter((s) => !(PERMISSION_NAMES as string[]).includes(s));
  if (!scopes.length || bad.length) throw new PatchwardenError('E_VALIDATION', bad.length ? `unknown scope ${bad.map((b) => `'${b}'`).join(', ')}` : 'no scope given', { hint: `scopes: ${PERMISSION_NAMES.join(', ')}` });
  return scopes as Permission[];
}

const groupsOf = (spec: string | undefined) => (spec === undefined ? undefined : spec === '' ? null : spec.split(',').map((s) => s.trim()).filter(Boolean));

export function userCommands(program: Command): void {
  const users = program.command('users').description('people who sign in: roles, groups, passwords, lockouts').addHelpText('after', ROLE_HELP);

  withClient(users.command('list').description('users with role, groups, last sign-in and lock state')).action(async (f: Flags) => {
    const r = await ApiClient.from(f).call<{ items: User[] }>('GET', '/api/v1/users');
    if (f.json) return printJson(r);
    console.log(
      table(r.items, [
        { header: 'name', get: (u) => u.name },
        { header: 'role', get: (u) => u.role },
        { header: 'groups', get: (u) => (u.groups === null ? 'all' : u.groups.join(',') || 'none') },
        { header: 'last sign-in', get: (u) => (u.lastLoginAt ? ago(u.lastLoginAt) : 'never') },
        { header: 'state', get: (u) => (u.disabled ? 'disabled' : u.lockedUntil ? `locked until ${u.lockedUntil}` : 'active') },
      ]),
    );
  });

  withClient(
    users
      .command('create')
      .description('create a user (asks for the password, or reads it with --password-stdin)')
      .argument('<name>', 'the sign-in name')
      .requiredOption('--role <role>', ROLE_NAMES.join(', '))
      .option('--groups <list>', 'operators only: the groups (comma-separated) the user may act on')
      .option('--password-stdin', 'read the password from standard input (at least 12 characters)'),
  ).action(async (name: string, f: Flags & { role: string; groups?: string; passwordStdin?: boolean }) => {
    const password = await readPassword(!!f.passwordStdin);
    const u = await ApiClient.from(f).call<User>('POST', '/api/v1/users', { name, password, role: f.role, ...(f.groups !== undefined ? { groups: groupsOf(f.groups) } : {}) });
    if (f.json) return printJson(u);
    console.log(`user '${u.name}' created (${u.role}${u.groups ? `, groups ${u.groups.join(', ')}` : ''}); they sign in at the console`);
  });

  withClient(
    users
      .command('set')
      .description("change a user's role, groups or password, disable, enable or unlock it (its sessions end)")
      .argument('<name>', 'user name or id')
      .option('--role <role>', ROLE_NAMES.join(', '))
      .option('--groups <list>', "operators: the groups they may act on ('' for the whole fleet)")
      .option('--password', 'set a new password (asked for, or --password-stdin)')
      .option('--password-stdin', 'read the new password from standard input')
      .option('--disable', 'the user can no longer sign in; their tokens stop working')
      .option('--enable', 'undo --disable')
      .option('--unlock', 'clear a lockout after failed sign-ins'),
  ).action(async (name: string, f: Flags & { role?: string; groups?: string; password?: boolean; passwordStdin?: boolean; disable?: boolean; enable?: boolean; unlock?: boolean }) => {
    const body: Record<string, unknown> = {};
    if (f.role) body.role = f.role;
    if (f.groups !== undefined) body.groups = groupsOf(f.groups);
    if (f.password || f.passwordStdin) body.password = await readPassword(!!f.passwordStdin, 'new password: ');
    if (f.disable) body.disabled = true;
    if (f.enable) body.disabled = false;
    if (f.unlock) body.unlock = true;
    if (!Object.keys(body).length) throw new PatchwardenError('E_VALIDATION', 'nothing to change', { hint: 'give --role, --groups, --password, --disable, --enable or --unlock' });
    const u = await ApiClient.from(f).call<User>('PATCH', `/api/v1/users/${encodeURIComponent(name)}`, body);
    if (f.json) return printJson(u);
    console.log(`user '${u.name}': ${u.role}, ${u.groups === null ? 'whole fleet' : `groups ${u.groups.join(', ') || 'none'}`}, ${u.disabled ? 'disabled' : u.lockedUntil ? 'locked' : 'active'}`);
  });

  const tokens = program.command('tokens').description('API tokens over the API: yours (all of them for administrators)');
  withClient(tokens.command('list').description('tokens: who, role, scopes, expiry, last use')).action(async (f: Flags) => {
    const r = await ApiClient.from(f).call<{ items: Token[] }>('GET', '/api/v1/tokens');
    if (f.json) return printJson(r);
    console.log(
      table(r.items, [
        { header: 'id', get: (t) => t.id },
        { header: 'name', get: (t) => t.name },
        { header: 'user', get: (t) => t.user ?? '(service)' },
        { header: 'role', get: (t) => t.role },
        { header: 'scopes', get: (t) => t.scopes?.join(',') ?? 'all of the role' },
        { header: 'expires', get: (t) => t.expiresAt ?? 'never' },
        { header: 'last used', get: (t) => (t.lastUsedAt ? ago(t.lastUsedAt) : 'never') },
        { header: 'state', get: (t) => (t.revoked ? 'revoked' : t.expiresAt && Date.parse(t.expiresAt) <= Date.now() ? 'expired' : 'active') },
      ]),
    );
  });
  withClient(
    tokens
      .command('create')
      .description('a token that acts for you, never with more than you hold (shown once)')
      .argument('<name>', 'what the token is for')
      .option('--scopes <list>', `narrow it to some permissions: ${PERMISSION_NAMES.join(', ')}`)
      .option('--expires-days <n>', 'it stops working after this many days')
      .option('--service-role <role>', `administrators: a service token acting for no user, with this role (${ROLE_NAMES.join(', ')})`),
  ).action(async (name: string, f: Flags & { scopes?: string; expiresDays?: string; serviceRole?: string }) => {
    const scopes = parseScopes(f.scopes);
    const r = await ApiClient.from(f).call<{ id: string; token: string; scopes: string[]; expiresAt: string | null }>('POST', '/api/v1/tokens', {
      name,
      ...(scopes ? { scopes } : {}),
      ...(f.expiresDays ? { expiresInDays: Number(f.expiresDays) } : {}),
      ...(f.serviceRole ? { service: { role: f.serviceRole } } : {}),
    });
    if (f.json) return printJson(r);
    console.log(`token ${r.id} (${r.scopes.join(', ')}; ${r.expiresAt ? `expires ${r.expiresAt}` : 'does not expire'}), shown only now:\n${r.token}`);
  });
  withClient(tokens.command('revoke').description('revoke a token').argument('<id>', 'token id')).action(async (id: string, f: Flags) => {
    const r = await ApiClient.from(f).call<{ revoked: string }>('POST', `/api/v1/tokens/${encodeURIComponent(id)}/revoke`);
    if (f.json) return printJson(r);
    console.log(`token ${r.revoked} revoked`);
  });
}
