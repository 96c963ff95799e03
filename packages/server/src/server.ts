/** Starts a server: opens (and migrates) the database, makes the first admin token, listens. */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildApp, type PatchwardenApp } from './app.js';
import type { TestClock } from './http/test-clock.js';
import { runPolicyPass } from './approvals/policy.js';
import { loadOrCreateRepoKeys } from './catalog/tuf/keystore.js';
import { databaseUrl, type ServerConfig } from './config.js';
import { openDatabase, type Database } from './db/database.js';
import { countAdminTokens, createAdminToken } from './auth/store.js';
import { countUsers, createUser } from './auth/users.js';
import { AUDIT_ANCHOR_FILE, loadOrCreateAuditKey } from './audit/chain.js';
import { fileSink, syslogSink } from './audit/sinks.js';
import type { AuditSink } from './audit/log.js';
import { DEFAULT_RATE_LIMITS } from './http/context.js';
import { randomBytes, X509Certificate } from 'node:crypto';
import { loadAdminTls, loadOrCreateTls, type TlsMaterial } from './tls/ca.js';
import { ADMIN_TOKEN_FILE, FIRST_PASSWORD_FILE, PatchwardenError } from '@patchwarden/core';
import { Cron } from 'croner';
import { dayOf, recordHistory } from './compliance/history.js';
import { parseRootPin } from './catalog/mirror/state.js';
import type { MirrorConfig } from './catalog/mirror/service.js';

export interface RunningServer {
  app: PatchwardenApp;
  database: Database;
  url: string;
  /** Set when this start created the first admin token: shown once, never logged. */
  firstAdminToken: string | null;
  /** Set when this start created the first user (`admin`): its password is in this file. */
  firstUserPasswordFile: string | null;
  /** the certificate devices pin (null: plain HTTP by the administrator's choice) */
  tls: { caSha256: string; caPem: string; names: string[]; notAfter: string } | null;
  adminTokenFile: string | null;
  close(): Promise<void>;
}


export async function startServer(config: ServerConfig, opts: { now?: () => number; testClock?: TestClock } = {}): Promise<RunningServer> {
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const database = await openDatabase({ url: databaseUrl(config) });
  let firstAdminToken: string | null = null;
  let adminTokenFile: string | null = null;
  if ((await countAdminTokens(database.db)) === 0) {
    firstAdminToken = (await createAdminToken(database.db, 'first administrator', (opts.now ?? Date.now)())).token;
    // like a first-run password file: readable by the owner only, for the CLI on this machine
    adminTokenFile = join(config.dataDir, ADMIN_TOKEN_FILE);
    writeFileSync(adminTokenFile, `${firstAdminToken}\n`, { mode: 0o600 });
  }
  // the first person to sign in to the console: 'admin', with a random password in a file only
  // the server's owner can read (change it, or make named users, once signed in)
  let firstUserPasswordFile: string | null = null;
  if ((await countUsers(database.db)) === 0) {
    const password = randomBytes(12).toString('base64url');
    await createUser(database.db, (opts.now ?? Date.now)(), { name: 'admin', password, role: 'administrator' });
    firstUserPasswordFile = join(config.dataDir, FIRST_PASSWORD_FILE);
    writeFileSync(firstUserPasswordFile, `${password}\n`, { mode: 0o600 });
  }
  // TLS unless the administrator said otherwise: their certificate, or the server's own CA
  let tls: TlsMaterial | null = null;
  if (config.tlsCert && config.tlsKey) tls = loadAdminTls(config.tlsCert, config.tlsKey, config.tlsCa);
  else if (!config.insecureHttp) tls = await loadOrCreateTls(config.dataDir, { names: (config.tlsNames ?? '').split(',').map((n) => n.trim()).filter(Boolean) });
  const auditSinks: AuditSink[] = [];
  if (config.auditFile) auditSinks.push(fileSink(config.auditFile));
  // a local server pins the central root and holds no catalog key; a central one keeps its
  // keys in the data directory, never in the database
  const mirror: MirrorConfig | undefined = config.upstreamRoot
    ? {
        pin: parseRootPin(config.upstreamRoot),
        workDir: join(config.dataDir, 'import'),
        ...(config.upstream ? { upstream: config.upstream } : {}),
        ...(config.upstreamToken ? { token: config.upstreamToken } : {}),
        ...(config.upstreamCa ? { ca: upstreamCa(config.upstreamCa) } : {}),
      }
    : undefined;
  const catalogKeys = mirror ? undefined : await loadOrCreateRepoKeys(config.dataDir, { allowLocalRoot: config.localRoot ?? true });
  const app = await buildApp({
    ...(catalogKeys ? { catalogKeys } : {}),
    ...(mirror ? { mirror } : {}),
    db: database.db,
    dialect: database.dialect,
    checkinIntervalSeconds: config.checkinIntervalSeconds,
    logger: config.logLevel === 'silent' ? false : { level: config.logLevel },
    ...(opts.now ? { now: opts.now } : {}),
    ...(opts.testClock ? { testClock: opts.testClock } : {}),
    ...(tls ? { tls } : {}),
    auditKey: loadOrCreateAuditKey(config.dataDir),
    auditAnchorFile: join(config.dataDir, AUDIT_ANCHOR_FILE),
    auditSinks,
    rateLimits: {
      loginPerMinute: config.loginPerMinute ?? DEFAULT_RATE_LIMITS.loginPerMinute,
      enrollPerMinute: config.enrollPerMinute ?? DEFAULT_RATE_LIMITS.enrollPerMinute,
      apiPerMinute: config.apiPerMinute ?? DEFAULT_RATE_LIMITS.apiPerMinute,
    },
  });
  if (config.auditSyslog) auditSinks.push(syslogSink(config.auditSyslog, (err) => app.log.error({ err }, 'audit entry not sent to syslog')));
  try {
    await app.listen({ host: config.host, port: config.port });
  } catch (err) {
    await app.close();
    await database.close();
    throw err;
  }
  // webhook deliveries, pending ones from before a restart first
  app.webhooks.start();
  // today's compliance snapshot, rewritten every hour so the day's last one stands for it
  const clock = opts.now ?? Date.now;
  const historyJob = new Cron('7 * * * *', { timezone: 'UTC', protect: true }, async () => {
    try {
      await recordHistory(database.db, dayOf(clock()));
    } catch (err) {
      app.log.error({ err }, 'compliance history snapshot failed');
    }
  });
  // approval rules and exploited-CVE announcements, every 10 minutes
  const policyJob = new Cron('3-59/10 * * * *', { protect: true }, async () => {
    try {
      const r = await runPolicyPass(database.db, clock());
      if (r.approved.length || r.announced.length) app.log.info({ approved: r.approved.length, announced: r.announced.length }, 'policy pass');
    } catch (err) {
      app.log.error({ err }, 'policy pass failed');
    }
  });
  // online catalog roles are re-signed well before they expire (a local server signs nothing)
  const resignJob = new Cron('*/10 * * * *', { protect: true, paused: !!mirror }, async () => {
    try {
      const r = await app.catalogContext.tuf.refreshExpiring();
      if (r.resigned.length) app.log.info({ roles: r.resigned.length }, 'catalog metadata re-signed');
      for (const o of r.offlineExpiring) app.log.warn({ role: o.role, expires: new Date(o.expiresAt).toISOString() }, 'an offline catalog role expires soon: sign a new version');
    } catch (err) {
      app.log.error({ err }, 'catalog re-signing failed');
    }
  });
  // a local server syncs at start, then on its interval; each sync fetches only what changed
  const minutes = config.upstreamSyncMinutes ?? 5;
  const syncNow = async () => {
    try {
      await app.mirror!.sync();
    } catch {
      // logged by the mirror, kept in its status, reported to the central server
    }
  };
  const syncJob = app.mirror && config.upstream && minutes > 0 ? new Cron('* * * * *', { protect: true, interval: minutes * 60 }, syncNow) : null;
  if (syncJob) void syncNow();
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  return {
    app,
    database,
    url: `${tls ? 'https' : 'http'}://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`,
    tls: tls ? { caSha256: tls.caSha256, caPem: tls.caPem, names: tls.names, notAfter: tls.notAfter } : null,
    firstAdminToken,
    adminTokenFile,
    firstUserPasswordFile,
    async close() {
      historyJob.stop();
      policyJob.stop();
      resignJob.stop();
      syncJob?.stop();
      await app.mirror?.close();
      await app.close();
      await database.close();
    },
  };
}

/** --upstream-ca: a fingerprint as given, or the PEM file read (and checked) now. */
function upstreamCa(value: string): string {
  if (value.startsWith('sha256:')) return value;
  let pem: string;
  try {
    pem = readFileSync(value, 'utf8');
    new X509Certificate(pem);
  } catch (err) {
    throw new PatchwardenError('E_CONFIG_INVALID', `--upstream-ca ${value} is not a readable PEM certificate: ${(err as Error).message}`, { hint: 'pass the central server\'s tls/ca.crt, or sha256:HEX of it' });
  }
  return pem;
}
