/**
 * The JSON shapes of the server's API, mirrored by hand from packages/server (the console imports
 * no server code). Keep in step with the server's routes.
 */

export type InventoryStatus = 'ok' | 'unsupported' | 'error' | 'absent' | 'none';
export type CollectorStatus = 'ok' | 'unsupported' | 'error' | 'absent';
export type DeviceStatus = 'active' | 'revoked';

export type OsSummary = {
  family: string;
  distribution?: string;
  name?: string;
  prettyName?: string;
  version?: string;
  versionCodename?: string;
  machine: string;
  packageArch?: string;
};

export type DeviceSummary = {
  id: string;
  hostname: string;
  status: DeviceStatus;
  group: { id: string; name: string } | null;
  labels: string[];
  os: OsSummary | null;
  kernel: string | null;
  enrolledAt: string;
  lastSeenAt: string | null;
  packageCount: number;
  inventory: { status: InventoryStatus; message?: string };
};

export type CollectorReport = {
  name: string;
  status: CollectorStatus;
  message?: string;
  count?: number;
};

export type DeviceDetail = DeviceSummary & {
  timezone: string | null;
  rebootRequired: boolean;
  agentVersion: string | null;
  machineId: string | null;
  collectors: CollectorReport[];
  inventoryHash: string | null;
};

export type PackageFact = {
  manager: 'dpkg';
  name: string;
  version: string;
  arch: string;
  source?: string;
  sourceVersion?: string;
  state: string;
};

export type Page<T> = { items: T[]; total: number };

export type Whoami = { kind: 'admin'; name: string };

export type ApiError = { error: { code: string; message: string; hint?: string } };

export type DeviceSort = 'hostname' | 'lastSeen' | 'packages' | 'os';
export type SortOrder = 'asc' | 'desc';
