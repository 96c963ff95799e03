/**
 * The JSON shapes of the admin API's answers, shared by the server that builds them, the CLI
 * and the console that read them (types only: nothing here runs).
 */
import type { CollectorReport, OsFacts, PackageFact } from './facts.js';

export type InventoryStatus = 'ok' | 'unsupported' | 'error' | 'absent' | 'none';
/** pending: a second enrollment of a machine that has an active record, waiting for an administrator */
export type DeviceStatus = 'active' | 'pending' | 'revoked';

export interface DeviceSummary {
  id: string;
  hostname: string;
  status: DeviceStatus;
  group: { id: string; name: string } | null;
  labels: string[];
  os: OsFacts | null;
  kernel: string | null;
  enrolledAt: string;
  lastSeenAt: string | null;
  packageCount: number;
  inventory: { status: InventoryStatus; message?: string };
  /** patches needed on the device now (0 also when it has not been assessed yet) */
  needed: number;
  /** how the device proves who it is, and what looks wrong about its identity */
  identity: {
    /** true: every request is signed with the device's own key; false: bearer token only (enrolled before device keys) */
    signed: boolean;
    /** the active record of the same machine when this one enrolled */
    duplicateOf: string | null;
    /** when two machines were seen checking in with this identity */
    cloneSuspectedAt: string | null;
  };
}

export interface DeviceDetail extends DeviceSummary {
  timezone: string | null;
  rebootRequired: boolean;
  agentVersion: string | null;
  machineId: string | null;
  collectors: CollectorReport[];
  inventoryHash: string | null;
  /** packages held at their version on the device (apt-mark hold): patches leave them alone */
  heldPackages: string[];
}

export interface Page<T> {
  items: T[];
  total: number;
}

export type DevicePackagesPage = Page<PackageFact>;

export interface GroupInfo {
  id: string;
  name: string;
  description: string;
  createdAt: string;
  deviceCount: number;
}

export interface EnrollmentSecretInfo {
  id: string;
  name: string;
  group: { id: string; name: string } | null;
  createdAt: string;
  rotatedAt: string | null;
  revokedAt: string | null;
  lastUsedAt: string | null;
  uses: number;
  /** after this the secret enrolls nothing (null: until revoked) */
  expiresAt: string | null;
  /** how many devices it may enroll in all (null: no limit) */
  maxUses: number | null;
  /** Present only in the answer that created or rotated it. */
  secret?: string;
  /** `pw1.SECRET.CA.ROOT`: the secret with what the device must pin (core enrollment.ts); with `secret` only */
  enrollmentString?: string;
}

/** GET /api/v1/whoami (see access.ts). */
export type { WhoAmI as Whoami } from './access.js';

export const DEVICE_SORT_FIELDS = ['hostname', 'lastSeen', 'packages', 'os', 'needed'] as const;
export type DeviceSort = (typeof DEVICE_SORT_FIELDS)[number];
export type SortOrder = 'asc' | 'desc';
