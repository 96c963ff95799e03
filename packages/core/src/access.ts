/**
 * Who may do what. A route declares one permission; a role is a fixed set of permissions; an API
 * token may narrow its role further with scopes. Nothing here grants anything by default.
 */
import { z } from 'zod';

export const PERMISSIONS = {
  /** read devices, patches, compliance, deployments and reports */
  view: 'read everything but the audit log',
  /** approve or decline patches for groups, approval rules, exploited CVE flags */
  approve: 'approve and decline patches',
  /** create, halt and resume deployments; ask devices for a scan */
  deploy: 'deploy patches and ask devices to scan',
  /** undo deployments, rings or devices */
  undo: 'undo deployments',
  /** upload signed custom patches and the signed custom listing */
  publish: 'publish signed custom patches',
  /** groups, devices, enrollment, sites, webhooks, the catalog's keys and feeds, users */
  manage: 'manage the server: groups, devices, enrollment, sites, webhooks, catalog, users',
  /** read and export the audit log */
  audit: 'read the audit log',
} as const;
export type Permission = keyof typeof PERMISSIONS;
export const PERMISSION_NAMES = Object.keys(PERMISSIONS) as Permission[];
export const PermissionName = z.enum(PERMISSION_NAMES as [Permission, ...Permission[]]);

export const ROLES = {
  administrator: ['view', 'approve', 'deploy', 'undo', 'publish', 'manage', 'audit'],
  operator: ['view', 'approve', 'deploy', 'undo'],
  author: ['view', 'publish'],
  auditor: ['view', 'audit'],
} as const satisfies Record<string, readonly Permission[]>;
export type Role = keyof typeof ROLES;
export const ROLE_NAMES = Object.keys(ROLES) as Role[];
export const RoleName = z.enum(ROLE_NAMES as [Role, ...Role[]]);

/** The permissions of a role, narrowed by a token's scopes when it has any. */
export function effectivePermissions(role: Role, scopes: readonly Permission[] | null): Permission[] {
  const granted: readonly Permission[] = ROLES[role];
  return scopes === null ? [...granted] : granted.filter((p) => scopes.includes(p));
}

/** Only an operator's device actions are limited to groups; other roles act on the whole fleet. */
export function roleTakesGroupScope(role: Role): boolean {
  return role === 'operator';
}

/** A user name: what people type at sign-in. */
export const UserName = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[a-zA-Z0-9][a-zA-Z0-9._@-]*$/, 'letters, digits and . _ @ - (starting with a letter or digit)');

/** Long enough to resist guessing once throttled; no composition rules (NIST SP 800-63B). */
export const Password = z.string().min(12, 'a password has at least 12 characters').max(256);

export interface WhoAmI {
  kind: 'user' | 'token';
  id: string;
  name: string;
  user: string | null;
  role: Role;
  permissions: Permission[];
  /** group names an operator is limited to (null: the whole fleet) */
  groups: string[] | null;
  expiresAt: string | null;
  /** the CSRF token to send as X-CSRF-Token with every change (sessions only) */
  csrf?: string;
}
