/**
 * The JSON shapes of the server's API: the same types the server builds its answers with,
 * imported as types only (nothing of core runs in the browser).
 */
export type {
  CollectorReport,
  DeviceDetail,
  DeviceSort,
  DeviceStatus,
  DeviceSummary,
  InventoryStatus,
  OsFacts as OsSummary,
  PackageFact,
  Page,
  SortOrder,
  Whoami,
} from '@patchwarden/core';

import type { CollectorReport, DeviceSummary, TraceNode } from '@patchwarden/core';

export type CollectorStatus = CollectorReport['status'];

export type ApiError = { error: { code: string; message: string; hint?: string } };

export type { EnrollmentSecretInfo, FreezePeriod, GroupInfo, MaintenanceWindow, PatchDecision, TraceNode } from '@patchwarden/core';

export type Severity = 'critical' | 'high' | 'medium' | 'low' | 'none' | 'unknown';
export const SEVERITY_ORDER: Severity[] = ['critical', 'high', 'medium', 'low', 'none', 'unknown'];
export type PatchState =
  | 'not_assessed' | 'unknown' | 'not_applicable' | 'installed' | 'installed_pending_restart' | 'superseded' | 'blocked' | 'needed';
export const JOB_STATES = [
  'queued', 'downloading', 'verifying', 'preflight', 'snapshotting', 'installing', 'verifying-install', 'reporting',
  'done', 'failed', 'rolled-back', 'needs-attention',
] as const;
export type JobState = (typeof JOB_STATES)[number];

/** A device row as listed; `needed` when the server counts needed patches per device. */
export type DeviceRow = DeviceSummary & { needed?: number | null };

// --- dashboard ------------------------------------------------------------------------------

export type SeverityCounts = { critical: number; high: number; medium: number; low: number };

export interface Dashboard {
  devices: {
    total: number;
    fullyPatched: number;
    needing: SeverityCounts & { unknown: number };
    notAssessed: number;
    unknownState: number;
  };
  topPatches: { patch: { id: string; title: string; severity: Severity }; devices: number }[];
  devicesBehind: { device: { id: string; hostname: string }; needed: number; critical: number }[];
  deployments: { id: string; status: string; patches: string[]; createdAt: string; jobs: { total: number; finished: number; succeeded: number; failed: number } }[];
  trend: { day: string; devices: number; needing: number; bySeverity: SeverityCounts }[];
  sla: { severity: Severity; patched: number; medianHours: number | null; p90Hours: number | null }[];
}

// --- compliance -----------------------------------------------------------------------------

export interface DevicePatches {
  deviceId: string;
  assessed: 'pending' | 'not_assessed' | 'assessed';
  items: { patch: string; title: string; severity: Severity; state: PatchState; reason?: string; by?: string; missing?: string[] }[];
}

export interface Explain {
  device: { id: string; hostname: string };
  patch: { id: string; revision: number; title: string; severity: Severity };
  state: PatchState;
  reason?: string;
  by?: string;
  missing?: string[];
  applicability: TraceNode;
  installed: TraceNode;
}

export interface DeviceEvent { at: string; kind: string; patch: string | null; job: string | null; message: string }

// --- catalog --------------------------------------------------------------------------------

export interface CatalogPatch {
  id: string;
  revision: number;
  title: string;
  severity: Severity;
  releaseDate: string | null;
  source: string | null;
  devices?: number;
}

export interface PatchManifestView {
  id: string;
  revision: number;
  title: string;
  description?: string;
  vendor?: string;
  product?: string;
  severity: Severity;
  cves?: string[];
  advisories?: string[];
  releaseDate?: string;
  platforms?: unknown[];
  requires?: string[];
  supersedes?: string[];
  conflicts?: string[];
  restart?: { reboot: string; kernel?: boolean };
  fixes?: unknown[];
}

/** `state`: listed (in the catalog) or missing (named by a manifest only); `status` on older drafts. */
export type RelatedPatch = { id: string; title: string | null; state?: string; status?: string };
export interface PatchRelations {
  requires: RelatedPatch[];
  supersedes: RelatedPatch[];
  conflicts: RelatedPatch[];
  requiredBy: RelatedPatch[];
  supersededBy: RelatedPatch[];
  conflictedBy: RelatedPatch[];
}

export interface Approval {
  patch: string;
  group: string;
  decision: 'approve' | 'decline';
  decidedAt: string;
  source: 'manual' | 'rule';
  ruleId: string | null;
}

export interface Group {
  id: string;
  name: string;
  description: string;
  createdAt: string;
  deviceCount: number;
  kind: 'static' | 'dynamic';
  query: unknown;
  testRing: boolean;
  requireTestPass: boolean;
}

// --- deployments ----------------------------------------------------------------------------

export type RingInput = { name: string; bakeMinutes?: number; failureThreshold?: number; maxNotReporting?: number } & (
  { percent: number } | { groups: string[] });

export interface DeploymentBody {
  patches: string[];
  groups?: string[];
  labels?: string[];
  devices?: string[];
  exclude?: { groups?: string[]; labels?: string[]; devices?: string[] };
  start: string;
  deadline?: string;
  rings?: RingInput[];
  reboot?: 'never' | 'window-end' | 'deadline';
}

export interface DeploymentPreview {
  targeted?: number;
  /** exact false: a percentage ring whose members are drawn again at creation (sizes hold) */
  rings: { name: string; exact?: boolean; devices: { id: string; hostname: string }[]; jobs: number }[];
  unassigned: ({ id: string; hostname: string } | string)[];
  undoLimits: { patch: string; reasons: string[] }[];
  /** per patch, why the approvals block it (older servers: just the patch ids) */
  notApproved: ({ patch: string; message: string; hint: string | null } | string)[];
}

export type RingCounts = { total: number; succeeded: number; failed: number; unfinished: number };

export interface Deployment {
  id: string;
  status: string;
  reason: string | null;
  createdAt: string;
  start: string;
  deadline: string | null;
  patches: string[];
  target: Record<string, unknown>;
  currentRing: number;
  rings: { name: string; status: string; reason: string | null; bakeEndsAt: string | null; counts: RingCounts }[];
  jobs: { install: Record<string, number>; undo: Record<string, number> };
}

export interface DeploymentListItem {
  id: string;
  status: string;
  reason: string | null;
  createdAt: string;
  start: string;
  deadline: string | null;
  patches: string[];
  currentRing: number;
  rings: number;
  jobs: { total: number; succeeded: number; failed: number };
}

export interface JobSummary {
  id: string;
  deploymentId: string;
  kind: 'install' | 'undo';
  device: { id: string; hostname: string };
  patch: { id: string; revision: number };
  ring: number;
  state: JobState;
  undoes: string | null;
  createdAt: string;
  handedAt: string | null;
  finishedAt: string | null;
}

export interface JobDetail extends JobSummary {
  events: { at: string; state: string; message?: string }[];
  detail: Record<string, unknown> | null;
}

// --- reports, settings ----------------------------------------------------------------------

/** One page of the report; `total` counts every item, `notAssessedTotal` every device not assessed. */
export type NeededReport =
  | { by: 'device'; total?: number; notAssessedTotal?: number; items: { device: { id: string; hostname: string }; needed: { patch: string; title: string; severity: Severity }[] }[]; notAssessed: { id: string; hostname: string }[] }
  | { by: 'patch'; total?: number; notAssessedTotal?: number; items: { patch: { id: string; title: string; severity: Severity }; deviceCount?: number; devices: { id: string; hostname: string }[] }[]; notAssessed: { id: string; hostname: string }[] };

/** GET /api/v1/reports/cves: CVEs of patches that active devices need, exploited first. */
export interface OpenCve {
  cve: string;
  exploited: boolean;
  /** the highest severity of its patches */
  severity: Severity;
  /** the needed patches that fix it */
  patches: { id: string; title: string; severity: Severity }[];
  /** active devices needing at least one of the patches */
  devices: number;
}
export interface OpenCveReport { total: number; items: OpenCve[] }

export interface ApprovalRule {
  id: string;
  group: string;
  minSeverity: 'critical' | 'high' | 'medium' | 'low' | null;
  vendors: string[] | null;
  minAgeDays: number | null;
  exploitedOnly: boolean;
  requireTestPass: boolean;
  createdAt: string;
}

export const WEBHOOK_EVENTS = ['deployment.halted', 'job.failed', 'job.needs-attention', 'patch.exploited-needed', 'ping'] as const;
export interface Webhook { id: string; url: string; events: string[]; createdAt: string; secret?: string }

export interface GroupMembers {
  group: string;
  kind: string;
  items: { id: string; hostname: string; os: string | null; labels: string[]; staticGroup: string | null }[];
  total: number;
}

export type LiveEvent =
  | { type: 'checkin'; data: { deviceId: string; hostname: string; at: string } }
  | { type: 'job'; data: { jobId: string; deploymentId: string; deviceId: string; kind: string; state: string; at: string } }
  | { type: 'deployment'; data: { id: string; status: string; reason: string | null } };
