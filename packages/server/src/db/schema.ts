/** Table shapes as Kysely sees them. Times are epoch milliseconds (bigint in PostgreSQL). */
import type { Generated } from 'kysely';

export interface DevicesTable {
  id: string;
  /** an administrator's "scan now", until the device's agent hears it */
  scan_requested_at?: number | null;
  hostname: string;
  /** pending: a second enrollment of a machine that has an active record, waiting for an administrator */
  status: 'active' | 'pending' | 'revoked';
  group_id: string | null;
  token_hash: string;
  secret_id: string | null;
  enrolled_at: number;
  last_seen_at: number | null;
  revoked_at: number | null;
  system_json: string | null;
  system_hash: string | null;
  os_pretty: string | null;
  package_set_id: number | null;
  package_count: number;
  inventory_status: 'ok' | 'unsupported' | 'error' | 'absent' | 'none';
  inventory_message: string | null;
  context_id: number | null;
  /** 0013: the device's own Ed25519 public key (hex); with it every request must be signed */
  public_key?: string | null;
  key_registered_at?: number | null;
  /** SHA-256 of the machine's stable identity, as the agent reported it at enrollment */
  machine_id?: string | null;
  /** the active record of the same machine when this one was enrolled */
  duplicate_of?: string | null;
  last_sequence?: number | null;
  /** when a check-in count went back: two machines hold this identity */
  clone_suspected_at?: number | null;
}

export interface DeviceNoncesTable {
  device_id: string;
  nonce: string;
  expires_at: number;
}

export interface DeviceLabelsTable {
  device_id: string;
  label: string;
}

export interface GroupsTable {
  id: string;
  name: string;
  description: string;
  created_at: number;
  /** 0007: a dynamic group's members are the devices its query (query_json) matches */
  kind: Generated<'static' | 'dynamic'>;
  query_json: string | null;
  test_ring: Generated<number>;
  require_test_pass: Generated<number>;
}

export interface EnrollmentSecretsTable {
  id: string;
  name: string;
  secret_hash: string;
  group_id: string | null;
  created_at: number;
  rotated_at: number | null;
  revoked_at: number | null;
  last_used_at: number | null;
  uses: number;
  expires_at: number | null;
  max_uses: number | null;
}

export interface AdminTokensTable {
  id: string;
  name: string;
  token_hash: string;
  created_at: number;
  revoked_at: number | null;
  last_used_at: number | null;
  /** the user the token acts for (null: a service token with its own role) */
  user_id: string | null;
  role: Generated<string>;
  /** JSON array of permissions the token is narrowed to (null: all of its role's) */
  scopes_json: string | null;
  expires_at: number | null;
}

export interface UsersTable {
  id: string;
  name: string;
  password_hash: string;
  role: string;
  /** JSON array of group ids an operator is limited to (null: the whole fleet) */
  groups_json: string | null;
  created_at: number;
  password_changed_at: number;
  disabled_at: number | null;
  failed_logins: Generated<number>;
  locked_until: number | null;
  last_login_at: number | null;
}

export interface SessionsTable {
  id_hash: string;
  user_id: string;
  csrf: string;
  created_at: number;
  expires_at: number;
  last_seen_at: number;
}

export interface AuditLogTable {
  seq: number;
  at: number;
  actor_json: string;
  action: string;
  target: string | null;
  detail_json: string | null;
  ip: string | null;
  prev_hash: string;
  hash: string;
  mac: string;
}

export interface PackagesTable {
  id: Generated<number>;
  key_hash: string;
  manager: string;
  name: string;
  arch: string;
  version: string;
  source: string | null;
  source_version: string | null;
  state: string;
}

export interface PackageSetsTable {
  id: Generated<number>;
  hash: string;
  package_count: number;
  created_at: number;
}

export interface PackageSetMembersTable {
  set_id: number;
  package_id: number;
}

export interface PatchesTable {
  pk: Generated<number>;
  id: string;
  revision: number;
  digest: string;
  title: string;
  severity: string;
  release_date: string | null;
  source_kind: string;
  manifest_json: string;
  created_at: number;
  updated_at: number;
}

export interface CoverageTable {
  key: string;
  platform_json: string;
  source_json: string;
  updated_at: number;
}

export interface CatalogMetaTable {
  key: string;
  value: number;
}

export interface EvalContextsTable {
  id: Generated<number>;
  key: string;
  package_set_id: number;
  system_json: string;
  generation: number;
  covered: number;
  created_at: number;
  parent_id: number | null;
}

export interface ContextStatesTable {
  context_id: number;
  patch_pk: number;
  state: string;
  detail: string | null;
}

export interface ComplianceHistoryTable {
  day: string;
  device_id: string;
  state: string;
  severity: string;
  count: number;
}

export interface ContentTable {
  sha256: string;
  length: number;
  bytes: Buffer;
  created_at: number;
}

export interface TufFilesTable {
  path: string;
  role: string;
  version: number;
  bytes: Buffer;
  created_at: number;
}

export interface TufRolesTable {
  name: string;
  version: number;
  expires_at: number;
  length: number;
  sha256: string;
}

export interface TufTargetsTable {
  path: string;
  role: string;
  length: number;
  sha256: string;
  patch_id: string | null;
  revision: number | null;
}

export interface BundlesTable {
  patch_id: string;
  revision: number;
  sha256: string;
  length: number;
  signers: string;
  status: string;
  published_at: number;
  retracted_at: number | null;
}

export interface SitesTable {
  id: string;
  name: string;
  mode: 'replica' | 'autonomous';
  token_hash: string;
  created_at: number;
  revoked_at: number | null;
  last_seen_at: number | null;
  reported_at: number | null;
  /** what the site last reported: versions it serves, targets, its last error */
  report_json: string | null;
}

/** One row ('central') on a local server: the trusted state of its mirror. */
export interface MirrorStateTable {
  id: string;
  /** the upstream URL, or `file:NAME` of the last import */
  source: string;
  /** sha256 of the root the first sync was pinned to */
  pinned_sha256: string;
  root: Buffer;
  timestamp: Buffer | null;
  snapshot: Buffer | null;
  site_name: string | null;
  site_mode: string | null;
  last_attempt_at: number | null;
  last_success_at: number | null;
  last_error: string | null;
  last_result: string | null;
  updated_at: number;
}

export interface ApprovalsTable {
  patch_id: string;
  group_id: string;
  decision: 'approve' | 'decline';
  decided_at: number;
  /** 0007: the approval rule that made it; null: an administrator's decision */
  rule_id: string | null;
}

export interface ApprovalRulesTable {
  id: string;
  group_id: string;
  min_severity: string | null;
  vendors_json: string | null;
  min_age_days: number | null;
  exploited_only: number;
  require_test_pass: number;
  created_at: number;
}

export interface ExploitedCvesTable {
  cve: string;
  marked_at: number;
}

export interface GroupSchedulesTable {
  group_id: string;
  windows_json: string;
  freezes_json: string;
  updated_at: number;
}

export interface DeploymentsTable {
  id: string;
  status: 'active' | 'halted' | 'undone';
  halt_reason: string | null;
  patches_json: string;
  target_json: string;
  rings_json: string;
  start_at: number;
  deadline_at: number | null;
  created_at: number;
  undone_at: number | null;
  /** never | window-end | deadline: when a device reboots after a patch that needs it (column default 'never') */
  reboot_policy?: string;
}

export interface JobsTable {
  id: string;
  deployment_id: string;
  device_id: string;
  kind: 'install' | 'undo';
  patch_id: string;
  revision: number;
  target: string;
  ring: number;
  state: string;
  undoes: string | null;
  created_at: number;
  handed_at: number | null;
  finished_at: number | null;
  report_json: string | null;
}

export interface JobEventsTable {
  job_id: string;
  seq: number;
  at: number;
  state: string;
  message: string | null;
}

export interface WebhooksTable {
  id: string;
  url: string;
  events_json: string;
  /** kept as given: the server signs with it (HMAC); never answered after creation, never logged */
  secret: string;
  created_at: number;
}

export interface WebhookDeliveriesTable {
  id: string;
  webhook_id: string;
  event: string;
  /** the exact JSON body, so every attempt sends the same bytes */
  body: string;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  next_attempt_at: number;
  last_attempt_at: number | null;
  last_status: number | null;
  last_error: string | null;
  /** the start of the last answer's body, at most 1 KiB */
  last_response: string | null;
  created_at: number;
  delivered_at: number | null;
}

export interface DB {
  patches: PatchesTable;
  coverage: CoverageTable;
  catalog_meta: CatalogMetaTable;
  eval_contexts: EvalContextsTable;
  context_states: ContextStatesTable;
  /** a view: the states of every context, overlays resolved */
  effective_states: ContextStatesTable;
  compliance_history: ComplianceHistoryTable;
  devices: DevicesTable;
  device_nonces: DeviceNoncesTable;
  device_labels: DeviceLabelsTable;
  groups: GroupsTable;
  enrollment_secrets: EnrollmentSecretsTable;
  admin_tokens: AdminTokensTable;
  users: UsersTable;
  sessions: SessionsTable;
  audit_log: AuditLogTable;
  packages: PackagesTable;
  package_sets: PackageSetsTable;
  package_set_members: PackageSetMembersTable;
  content: ContentTable;
  tuf_files: TufFilesTable;
  tuf_roles: TufRolesTable;
  tuf_targets: TufTargetsTable;
  bundles: BundlesTable;
  sites: SitesTable;
  mirror_state: MirrorStateTable;
  approvals: ApprovalsTable;
  group_schedules: GroupSchedulesTable;
  deployments: DeploymentsTable;
  jobs: JobsTable;
  job_events: JobEventsTable;
  approval_rules: ApprovalRulesTable;
  exploited_cves: ExploitedCvesTable;
  webhooks: WebhooksTable;
  webhook_deliveries: WebhookDeliveriesTable;
  device_events: DeviceEventsTable;
  exploited_notified: ExploitedNotifiedTable;
}

export interface DeviceEventsTable {
  id: Generated<number>;
  device_id: string;
  at: number;
  kind: string;
  patch_id: string | null;
  job_id: string | null;
  message: string;
}

export interface ExploitedNotifiedTable {
  patch_id: string;
  revision: number;
  notified_at: number;
}
