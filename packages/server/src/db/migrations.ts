/**
 * The schema, defined once for SQLite and PostgreSQL. Only the auto-increment key type differs
 * between the two, so migrations take the dialect.
 */
import { sql, type Kysely, type Migration, type MigrationProvider } from 'kysely';
import type { Dialect } from './database.js';

type Db = Kysely<unknown>;

function serial(dialect: Dialect) {
  return dialect === 'postgres' ? 'serial' : 'integer';
}

const initial = (dialect: Dialect): Migration => ({
  async up(db: Db) {
    await db.schema
      .createTable('groups')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull().unique())
      .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('enrollment_secrets')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('secret_hash', 'text', (c) => c.notNull().unique())
      .addColumn('group_id', 'text', (c) => c.references('groups.id').onDelete('set null'))
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('rotated_at', 'bigint')
      .addColumn('revoked_at', 'bigint')
      .addColumn('last_used_at', 'bigint')
      .addColumn('uses', 'integer', (c) => c.notNull().defaultTo(0))
      .execute();

    await db.schema
      .createTable('admin_tokens')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('token_hash', 'text', (c) => c.notNull().unique())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('revoked_at', 'bigint')
      .addColumn('last_used_at', 'bigint')
      .execute();

    await db.schema
      .createTable('packages')
      .addColumn('id', serial(dialect), (c) => (dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement()))
      .addColumn('key_hash', 'text', (c) => c.notNull().unique())
      .addColumn('manager', 'text', (c) => c.notNull())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('arch', 'text', (c) => c.notNull())
      .addColumn('version', 'text', (c) => c.notNull())
      .addColumn('source', 'text')
      .addColumn('source_version', 'text')
      .addColumn('state', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('packages_name').on('packages').columns(['name']).execute();

    await db.schema
      .createTable('package_sets')
      .addColumn('id', serial(dialect), (c) => (dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement()))
      .addColumn('hash', 'text', (c) => c.notNull().unique())
      .addColumn('package_count', 'integer', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('package_set_members')
      .addColumn('set_id', 'integer', (c) => c.notNull().references('package_sets.id').onDelete('cascade'))
      .addColumn('package_id', 'integer', (c) => c.notNull().references('packages.id'))
      .addPrimaryKeyConstraint('package_set_members_pk', ['set_id', 'package_id'])
      // one B-tree, appended to in order as sets are written (SQLite)
      .$call((t) => (dialect === 'sqlite' ? t.modifyEnd(sql`without rowid`) : t))
      .execute();
    // No index by package: it would take a random write per member (about 1,500 pages per new
    // set, measured as the bottleneck of inventory ingest); "which sets hold this package" is
    // answered by the evaluator's in-memory index instead.

    await db.schema
      .createTable('devices')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('hostname', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('group_id', 'text', (c) => c.references('groups.id').onDelete('set null'))
      .addColumn('token_hash', 'text', (c) => c.notNull().unique())
      .addColumn('secret_id', 'text')
      .addColumn('enrolled_at', 'bigint', (c) => c.notNull())
      .addColumn('last_seen_at', 'bigint')
      .addColumn('revoked_at', 'bigint')
      .addColumn('system_json', 'text')
      .addColumn('system_hash', 'text')
      .addColumn('os_pretty', 'text')
      .addColumn('package_set_id', 'integer', (c) => c.references('package_sets.id'))
      .addColumn('package_count', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('inventory_status', 'text', (c) => c.notNull().defaultTo('none'))
      .addColumn('inventory_message', 'text')
      .execute();
    await db.schema.createIndex('devices_hostname').on('devices').columns(['hostname']).execute();
    await db.schema.createIndex('devices_group').on('devices').columns(['group_id']).execute();
    await db.schema.createIndex('devices_set').on('devices').columns(['package_set_id']).execute();

    await db.schema
      .createTable('device_labels')
      .addColumn('device_id', 'text', (c) => c.notNull().references('devices.id').onDelete('cascade'))
      .addColumn('label', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('device_labels_pk', ['device_id', 'label'])
      .execute();
    await db.schema.createIndex('device_labels_label').on('device_labels').columns(['label']).execute();
  },
});

/** The catalog and compliance: patches, coverage, evaluation contexts and their states. */
const compliance = (dialect: Dialect): Migration => ({
  async up(db: Db) {
    const withoutRowid = <T extends { modifyEnd(x: unknown): T }>(t: T): T => (dialect === 'sqlite' ? t.modifyEnd(sql`without rowid`) : t);
    await db.schema
      .createTable('patches')
      .addColumn('pk', serial(dialect), (c) => (dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement()))
      .addColumn('id', 'text', (c) => c.notNull().unique())
      .addColumn('revision', 'integer', (c) => c.notNull())
      .addColumn('digest', 'text', (c) => c.notNull())
      .addColumn('title', 'text', (c) => c.notNull())
      .addColumn('severity', 'text', (c) => c.notNull())
      .addColumn('release_date', 'text')
      .addColumn('source_kind', 'text', (c) => c.notNull())
      .addColumn('manifest_json', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('coverage')
      .addColumn('key', 'text', (c) => c.primaryKey())
      .addColumn('platform_json', 'text', (c) => c.notNull())
      .addColumn('source_json', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('catalog_meta')
      .addColumn('key', 'text', (c) => c.primaryKey())
      .addColumn('value', 'bigint', (c) => c.notNull())
      .execute();

    // An evaluation context: one package set with the OS facts rules read. Identical devices
    // share one, so a thousand identical machines cost one evaluation and one set of states.
    await db.schema
      .createTable('eval_contexts')
      .addColumn('id', serial(dialect), (c) => (dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement()))
      .addColumn('key', 'text', (c) => c.notNull().unique())
      .addColumn('package_set_id', 'integer', (c) => c.notNull().references('package_sets.id'))
      .addColumn('system_json', 'text', (c) => c.notNull())
      .addColumn('generation', 'bigint', (c) => c.notNull())
      // 0: no feed covers its OS release and architecture, so every patch is not_assessed
      // (stored here once, not as a row per patch)
      .addColumn('covered', 'integer', (c) => c.notNull().defaultTo(1))
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .execute();

    await withoutRowid(
      db.schema
        .createTable('context_states')
        .addColumn('context_id', 'integer', (c) => c.notNull().references('eval_contexts.id').onDelete('cascade'))
        .addColumn('patch_pk', 'integer', (c) => c.notNull().references('patches.pk').onDelete('cascade'))
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('detail', 'text')
        .addPrimaryKeyConstraint('context_states_pk', ['context_id', 'patch_pk']),
    ).execute();
    // "who needs patch X" reads needed rows only; indexing every row by patch costs a random
    // page write per row (measured: most of a recompute), so the index is partial
    await db.schema.createIndex('context_states_needed').on('context_states').column('patch_pk').where(sql.ref('state'), '=', sql.lit('needed')).execute();

    await db.schema.alterTable('devices').addColumn('context_id', 'integer', (c) => c.references('eval_contexts.id')).execute();
    await db.schema.createIndex('devices_context').on('devices').column('context_id').execute();

    await withoutRowid(
      db.schema
        .createTable('compliance_history')
        .addColumn('day', 'text', (c) => c.notNull())
        .addColumn('device_id', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('severity', 'text', (c) => c.notNull())
        .addColumn('count', 'integer', (c) => c.notNull())
        .addPrimaryKeyConstraint('compliance_history_pk', ['day', 'device_id', 'state', 'severity']),
    ).execute();
  },
});

/**
 * Overlay contexts: a device that leaves a context it shared (one package changed) gets a
 * context that keeps only the states that differ from its parent's, instead of a copy of all
 * of them. `effective_states` is what every reader uses: own rows, then the parent's rows the
 * context does not override; `not_applicable` rows are overrides only and never shown.
 */
const overlays = (): Migration => ({
  async up(db: Db) {
    await db.schema.alterTable('eval_contexts').addColumn('parent_id', 'integer', (c) => c.references('eval_contexts.id')).execute();
    await sql`create view effective_states as
      select s.context_id, s.patch_pk, s.state, s.detail
        from context_states s
       where s.state <> 'not_applicable'
      union all
      select c.id as context_id, s.patch_pk, s.state, s.detail
        from eval_contexts c
        join context_states s on s.context_id = c.parent_id
       where c.parent_id is not null
         and not exists (select 1 from context_states o where o.context_id = c.id and o.patch_pk = s.patch_pk)`.execute(db);
  },
});

/**
 * The signed catalog: the content store (patch objects, bundles and cached vendor payloads by
 * sha256), every metadata file the TUF repository serves (by its path, kept byte for byte,
 * old consistent-snapshot versions too), the current version of each role, and each target's
 * entry. Bundles published by authors are also listed apart, for `patch list`.
 */
const signedCatalog = (dialect: Dialect): Migration => ({
  async up(db: Db) {
    const bytes = dialect === 'postgres' ? 'bytea' : 'blob';
    await db.schema
      .createTable('content')
      .addColumn('sha256', 'text', (c) => c.primaryKey())
      .addColumn('length', 'bigint', (c) => c.notNull())
      .addColumn('bytes', sql.raw(bytes), (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('tuf_files')
      .addColumn('path', 'text', (c) => c.primaryKey())
      .addColumn('role', 'text', (c) => c.notNull())
      .addColumn('version', 'integer', (c) => c.notNull())
      .addColumn('bytes', sql.raw(bytes), (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('tuf_roles')
      .addColumn('name', 'text', (c) => c.primaryKey())
      .addColumn('version', 'integer', (c) => c.notNull())
      .addColumn('expires_at', 'bigint', (c) => c.notNull())
      .addColumn('length', 'bigint', (c) => c.notNull())
      .addColumn('sha256', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('tuf_targets')
      .addColumn('path', 'text', (c) => c.primaryKey())
      .addColumn('role', 'text', (c) => c.notNull())
      .addColumn('length', 'bigint', (c) => c.notNull())
      .addColumn('sha256', 'text', (c) => c.notNull())
      .addColumn('patch_id', 'text')
      .addColumn('revision', 'integer')
      .execute();
    await db.schema.createIndex('tuf_targets_role').on('tuf_targets').column('role').execute();
    await db.schema.createIndex('tuf_targets_patch').on('tuf_targets').column('patch_id').execute();
    await db.schema
      .createTable('bundles')
      .addColumn('patch_id', 'text', (c) => c.notNull())
      .addColumn('revision', 'integer', (c) => c.notNull())
      .addColumn('sha256', 'text', (c) => c.notNull())
      .addColumn('length', 'bigint', (c) => c.notNull())
      .addColumn('signers', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('published_at', 'bigint', (c) => c.notNull())
      .addColumn('retracted_at', 'bigint')
      .addPrimaryKeyConstraint('bundles_pk', ['patch_id', 'revision'])
      .execute();
  },
});

/**
 * Local patch servers. On the central server, `sites`: the credential each local server syncs
 * with (sha256 of the token, like device tokens), its mode and what it last reported having. On
 * a local server, `mirror_state`: the metadata its last sync verified (root, timestamp, snapshot
 * bytes as trusted; the other roles' versions are the mirrored `tuf_roles`, written in the same
 * transaction), so a restart continues incrementally, and how the last attempt went.
 */
const sites = (dialect: Dialect): Migration => ({
  async up(db: Db) {
    const bytes = dialect === 'postgres' ? 'bytea' : 'blob';
    await db.schema
      .createTable('sites')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull().unique())
      .addColumn('mode', 'text', (c) => c.notNull())
      .addColumn('token_hash', 'text', (c) => c.notNull().unique())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('revoked_at', 'bigint')
      .addColumn('last_seen_at', 'bigint')
      .addColumn('reported_at', 'bigint')
      .addColumn('report_json', 'text')
      .execute();
    await db.schema
      .createTable('mirror_state')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('source', 'text', (c) => c.notNull())
      .addColumn('pinned_sha256', 'text', (c) => c.notNull())
      .addColumn('root', sql.raw(bytes), (c) => c.notNull())
      .addColumn('timestamp', sql.raw(bytes))
      .addColumn('snapshot', sql.raw(bytes))
      .addColumn('site_name', 'text')
      .addColumn('site_mode', 'text')
      .addColumn('last_attempt_at', 'bigint')
      .addColumn('last_success_at', 'bigint')
      .addColumn('last_error', 'text')
      .addColumn('last_result', 'text')
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .execute();
  },
});

/**
 * Deployments: approvals per patch and group, each group's maintenance windows and freezes (JSON,
 * checked with core's schemas on the way in), deployments (rings as JSON), one job per device and
 * patch (the ring it belongs to, its final report) and the job's events.
 */
const deployments = (): Migration => ({
  async up(db: Db) {
    await db.schema
      .createTable('approvals')
      .addColumn('patch_id', 'text', (c) => c.notNull())
      .addColumn('group_id', 'text', (c) => c.notNull().references('groups.id').onDelete('cascade'))
      .addColumn('decision', 'text', (c) => c.notNull())
      .addColumn('decided_at', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('approvals_pk', ['patch_id', 'group_id'])
      .execute();
    await db.schema
      .createTable('group_schedules')
      .addColumn('group_id', 'text', (c) => c.primaryKey().references('groups.id').onDelete('cascade'))
      .addColumn('windows_json', 'text', (c) => c.notNull())
      .addColumn('freezes_json', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('deployments')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('halt_reason', 'text')
      .addColumn('patches_json', 'text', (c) => c.notNull())
      .addColumn('target_json', 'text', (c) => c.notNull())
      .addColumn('rings_json', 'text', (c) => c.notNull())
      .addColumn('start_at', 'bigint', (c) => c.notNull())
      .addColumn('deadline_at', 'bigint')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('undone_at', 'bigint')
      .execute();
    await db.schema
      .createTable('jobs')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('deployment_id', 'text', (c) => c.notNull().references('deployments.id').onDelete('cascade'))
      .addColumn('device_id', 'text', (c) => c.notNull().references('devices.id').onDelete('cascade'))
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('patch_id', 'text', (c) => c.notNull())
      .addColumn('revision', 'integer', (c) => c.notNull())
      .addColumn('target', 'text', (c) => c.notNull())
      .addColumn('ring', 'integer', (c) => c.notNull())
      .addColumn('state', 'text', (c) => c.notNull())
      .addColumn('undoes', 'text')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('handed_at', 'bigint')
      .addColumn('finished_at', 'bigint')
      .addColumn('report_json', 'text')
      .execute();
    await db.schema.createIndex('jobs_device').on('jobs').columns(['device_id', 'state']).execute();
    await db.schema.createIndex('jobs_deployment').on('jobs').columns(['deployment_id', 'ring']).execute();
    await db.schema
      .createTable('job_events')
      .addColumn('job_id', 'text', (c) => c.notNull().references('jobs.id').onDelete('cascade'))
      .addColumn('seq', 'integer', (c) => c.notNull())
      .addColumn('at', 'bigint', (c) => c.notNull())
      .addColumn('state', 'text', (c) => c.notNull())
      .addColumn('message', 'text')
      .addPrimaryKeyConstraint('job_events_pk', ['job_id', 'seq'])
      .execute();
  },
});

/**
 * Webhooks: each subscription (URL, events as JSON, the secret the server signs with: kept as is,
 * because HMAC needs it, and never answered after creation or logged) and the durable outbox of
 * deliveries: one row per event and webhook, with the exact body to send, its attempts and the
 * next attempt's time, so a restart resumes what was pending.
 */
const webhooks = (): Migration => ({
  async up(db: Db) {
    await db.schema
      .createTable('webhooks')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('url', 'text', (c) => c.notNull())
      .addColumn('events_json', 'text', (c) => c.notNull())
      .addColumn('secret', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('webhook_deliveries')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('webhook_id', 'text', (c) => c.notNull().references('webhooks.id').onDelete('cascade'))
      .addColumn('event', 'text', (c) => c.notNull())
      .addColumn('body', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('next_attempt_at', 'bigint', (c) => c.notNull())
      .addColumn('last_attempt_at', 'bigint')
      .addColumn('last_status', 'integer')
      .addColumn('last_error', 'text')
      .addColumn('last_response', 'text')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('delivered_at', 'bigint')
      .execute();
    await db.schema.createIndex('webhook_deliveries_due').on('webhook_deliveries').columns(['status', 'next_attempt_at']).execute();
    await db.schema.createIndex('webhook_deliveries_webhook').on('webhook_deliveries').columns(['webhook_id', 'created_at']).execute();
  },
});

/**
 * Targeting: dynamic groups (a device query, JSON checked with core's parseDeviceQuery), test
 * rings, where an approval came from (a rule, or null: an administrator), approval rules per
 * group, and the CVEs flagged as exploited.
 */
const targeting = (): Migration => ({
  async up(db: Db) {
    await db.schema.alterTable('groups').addColumn('kind', 'text', (c) => c.notNull().defaultTo('static')).execute();
    await db.schema.alterTable('groups').addColumn('query_json', 'text').execute();
    await db.schema.alterTable('groups').addColumn('test_ring', 'integer', (c) => c.notNull().defaultTo(0)).execute();
    await db.schema.alterTable('groups').addColumn('require_test_pass', 'integer', (c) => c.notNull().defaultTo(0)).execute();
    await db.schema.alterTable('approvals').addColumn('rule_id', 'text').execute();
    await db.schema
      .createTable('approval_rules')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('group_id', 'text', (c) => c.notNull().references('groups.id').onDelete('cascade'))
      .addColumn('min_severity', 'text')
      .addColumn('vendors_json', 'text')
      .addColumn('min_age_days', 'integer')
      .addColumn('exploited_only', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('require_test_pass', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('approval_rules_group').on('approval_rules').columns(['group_id']).execute();
    await db.schema
      .createTable('exploited_cves')
      .addColumn('cve', 'text', (c) => c.primaryKey())
      .addColumn('marked_at', 'bigint', (c) => c.notNull())
      .execute();
    // "which deployments included this patch", for the test-ring check
    await db.schema.createIndex('jobs_patch').on('jobs').columns(['patch_id', 'deployment_id']).execute();
  },
});

/**
 * What the agents' work leaves behind: device events (a patch removed by hand after a job
 * installed it, reboots) and a deployment's reboot policy.
 */
const deviceEvents = (dialect: Dialect): Migration => ({
  async up(db: Db) {
    await db.schema
      .createTable('device_events')
      .addColumn('id', dialect === 'postgres' ? 'bigserial' : 'integer', (c) => (dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement()))
      .addColumn('device_id', 'text', (c) => c.notNull().references('devices.id').onDelete('cascade'))
      .addColumn('at', 'bigint', (c) => c.notNull())
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('patch_id', 'text')
      .addColumn('job_id', 'text')
      .addColumn('message', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('device_events_device').on('device_events').columns(['device_id', 'at']).execute();
    await db.schema.alterTable('deployments').addColumn('reboot_policy', 'text', (c) => c.notNull().defaultTo('never')).execute();
    // patches already announced as exploited-and-needed (announced once per revision)
    await db.schema
      .createTable('exploited_notified')
      .addColumn('patch_id', 'text', (c) => c.notNull())
      .addColumn('revision', 'integer', (c) => c.notNull())
      .addColumn('notified_at', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('exploited_notified_pk', ['patch_id', 'revision'])
      .execute();
  },
});

/**
 * A ring's verdict counts its jobs by state after every report: an index that holds every column
 * of that count lets the database answer from the index alone.
 */
const jobCounts = (): Migration => ({
  async up(db: Db) {
    await db.schema.createIndex('jobs_ring_counts').on('jobs').columns(['deployment_id', 'kind', 'ring', 'state', 'finished_at']).execute();
  },
});

/** "Scan now": the time an administrator asked a device for a fresh scan, until its agent hears it. */
const scanRequests = (): Migration => ({
  async up(db: Db) {
    await db.schema.alterTable('devices').addColumn('scan_requested_at', 'bigint').execute();
  },
});

/**
 * People and what they may do: users with a role (operators optionally limited to groups),
 * sign-in sessions, API tokens with a role, scopes and an expiry; and the audit log, a hash chain
 * whose every link is also sealed with a key kept outside the database.
 */
const accessAndAudit = (): Migration => ({
  async up(db: Db) {
    await db.schema
      .createTable('users')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull().unique())
      .addColumn('password_hash', 'text', (c) => c.notNull())
      .addColumn('role', 'text', (c) => c.notNull())
      .addColumn('groups_json', 'text')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('password_changed_at', 'bigint', (c) => c.notNull())
      .addColumn('disabled_at', 'bigint')
      .addColumn('failed_logins', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('locked_until', 'bigint')
      .addColumn('last_login_at', 'bigint')
      .execute();
    await db.schema
      .createTable('sessions')
      .addColumn('id_hash', 'text', (c) => c.primaryKey())
      .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
      .addColumn('csrf', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('expires_at', 'bigint', (c) => c.notNull())
      .addColumn('last_seen_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('sessions_user').on('sessions').column('user_id').execute();
    // tokens made before roles existed keep what they could do: everything
    await db.schema.alterTable('admin_tokens').addColumn('user_id', 'text', (c) => c.references('users.id').onDelete('cascade')).execute();
    await db.schema.alterTable('admin_tokens').addColumn('role', 'text', (c) => c.notNull().defaultTo('administrator')).execute();
    await db.schema.alterTable('admin_tokens').addColumn('scopes_json', 'text').execute();
    await db.schema.alterTable('admin_tokens').addColumn('expires_at', 'bigint').execute();
    await db.schema
      .createTable('audit_log')
      .addColumn('seq', 'bigint', (c) => c.primaryKey())
      .addColumn('at', 'bigint', (c) => c.notNull())
      .addColumn('actor_json', 'text', (c) => c.notNull())
      .addColumn('action', 'text', (c) => c.notNull())
      .addColumn('target', 'text')
      .addColumn('detail_json', 'text')
      .addColumn('ip', 'text')
      .addColumn('prev_hash', 'text', (c) => c.notNull())
      .addColumn('hash', 'text', (c) => c.notNull())
      .addColumn('mac', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('audit_log_at').on('audit_log').column('at').execute();
  },
});

/**
 * Enrollment secrets that expire and run out; devices that hold a key pair of their own (the
 * public half here), and re-enrollments of a known machine that wait for an administrator.
 */
const deviceTrust = (): Migration => ({
  async up(db: Db) {
    await db.schema.alterTable('enrollment_secrets').addColumn('expires_at', 'bigint').execute();
    await db.schema.alterTable('enrollment_secrets').addColumn('max_uses', 'integer').execute();
    await db.schema.alterTable('devices').addColumn('public_key', 'text').execute();
    await db.schema.alterTable('devices').addColumn('machine_id', 'text').execute();
    await db.schema.alterTable('devices').addColumn('duplicate_of', 'text').execute();
    await db.schema.createIndex('devices_machine').on('devices').column('machine_id').execute();
    // the check-in count the device last sent: one that goes back means two copies of the identity
    await db.schema.alterTable('devices').addColumn('last_sequence', 'bigint').execute();
    await db.schema.alterTable('devices').addColumn('clone_suspected_at', 'bigint').execute();
    await db.schema.alterTable('devices').addColumn('key_registered_at', 'bigint').execute();
    // each signed request's nonce, kept while its clock could still pass the skew check
    await db.schema
      .createTable('device_nonces')
      .addColumn('device_id', 'text', (c) => c.notNull())
      .addColumn('nonce', 'text', (c) => c.notNull())
      .addColumn('expires_at', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('device_nonces_pk', ['device_id', 'nonce'])
      .execute();
    await db.schema.createIndex('device_nonces_expiry').on('device_nonces').column('expires_at').execute();
  },
});

export function migrationProvider(dialect: Dialect): MigrationProvider {
  return {
    async getMigrations() {
      return {
        '0001_initial': initial(dialect),
        '0002_compliance': compliance(dialect),
        '0003_overlays': overlays(),
        '0004_signed_catalog': signedCatalog(dialect),
        '0005_sites': sites(dialect),
        '0006_deployments': deployments(),
        '0007_targeting': targeting(),
        '0008_webhooks': webhooks(),
        '0009_device_events': deviceEvents(dialect),
        '0010_job_counts': jobCounts(),
        '0011_scan_requests': scanRequests(),
        '0012_access_audit': accessAndAudit(),
        '0013_device_trust': deviceTrust(),
      };
    },
  };
}
