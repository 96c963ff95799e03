import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { Command } from 'commander';
import { ADMIN_TOKEN_FILE, FIRST_PASSWORD_FILE } from '@patchwarden/core';
import type { RunningServer } from '@patchwarden/server';

interface ServerFlags {
  port?: string;
  host?: string;
  dataDir?: string;
  database?: string;
  config?: string;
  logLevel?: string;
  checkinInterval?: string;
  upstream?: string;
  upstreamToken?: string;
  upstreamRoot?: string;
  upstreamCa?: string;
  upstreamSyncMinutes?: string;
  testClock?: boolean;
  insecureHttp?: boolean;
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  tlsNames?: string;
  auditFile?: string;
  auditSyslog?: string;
  loginPerMinute?: string;
  enrollPerMinute?: string;
  apiPerMinute?: string;
}

function serverOptions(cmd: Command): Command {
  return cmd
    .option('--port <port>', 'TCP port (default 8060; 0 picks a free one)')
    .option('--host <host>', 'address to listen on (default 127.0.0.1)')
    .option('--data-dir <dir>', 'data directory (default ./.patchwarden)')
    .option('--database <url>', 'postgres://user@host:5432/db, or a SQLite file (default <data-dir>/patchwarden.db)')
    .option('--config <file>', 'JSON config file (default <data-dir>/server.json if present)')
    .option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent')
    .option('--checkin-interval <seconds>', 'how often agents check in (default 300)')
    .option('--upstream <url>', 'run as a local patch server mirroring this central server')
    .option('--upstream-token <token>', 'the site token (pws_…) the central server made for this site (or $PATCHWARDEN_UPSTREAM_TOKEN)')
    .option('--upstream-root <file|sha256:hex>', "the central root this server trusts first: its root.json, or sha256:HEX of it (alone: an air-gapped site that imports export files)")
    .option('--upstream-ca <file|sha256:hex>', "the central server's certificate authority: its ca.crt, or sha256:HEX of it (the central server prints it); default: this machine's CAs")
    .option('--upstream-sync-minutes <n>', 'minutes between syncs from the upstream (default 5; 0: only `patchwarden catalog sync`)')
    .option('--insecure-http', 'plain HTTP instead of TLS: tokens and passwords travel in clear text (a lab, or behind a TLS proxy)')
    .option('--tls-cert <file>', "your own certificate (PEM, with its chain) instead of the server's own CA")
    .option('--tls-key <file>', 'the key of --tls-cert')
    .option('--tls-ca <file>', 'the certificate devices pin (default: the first in --tls-cert)')
    .option('--tls-names <list>', "extra host names and addresses the server's own certificate covers (comma-separated)")
    .option('--audit-file <file>', 'also append every audit entry to this JSON-lines file')
    .option('--audit-syslog <udp://host:port>', 'also send every audit entry to syslog (RFC 5424 over UDP)')
    .option('--login-per-minute <n>', 'sign-in attempts a minute per address (default 10; 0: no limit)')
    .option('--enroll-per-minute <n>', 'enrollments a minute per address (default 600; 0: no limit)')
    .option('--api-per-minute <n>', 'requests a minute per credential or address on every other route (default 6000; 0: no limit)')
    .option('--test-clock', 'for tests only: a clock that POST /api/v1/test/clock moves forward (bakes and deadlines in seconds)');
}

async function start(flags: ServerFlags, defaults: { logLevel: string }) {
  const { loadServerConfig, startServer, movableClock } = await import('@patchwarden/server');
  const config = loadServerConfig({
    flags: {
      port: flags.port,
      host: flags.host,
      dataDir: flags.dataDir,
      database: flags.database,
      logLevel: flags.logLevel ?? (process.env.PATCHWARDEN_LOG_LEVEL ? undefined : defaults.logLevel),
      checkinIntervalSeconds: flags.checkinInterval,
      upstream: flags.upstream,
      upstreamToken: flags.upstreamToken,
      upstreamRoot: flags.upstreamRoot,
      upstreamCa: flags.upstreamCa,
      upstreamSyncMinutes: flags.upstreamSyncMinutes,
      insecureHttp: flags.insecureHttp,
      tlsCert: flags.tlsCert,
      tlsKey: flags.tlsKey,
      tlsCa: flags.tlsCa,
      tlsNames: flags.tlsNames,
      auditFile: flags.auditFile,
      auditSyslog: flags.auditSyslog,
      loginPerMinute: flags.loginPerMinute,
      enrollPerMinute: flags.enrollPerMinute,
      apiPerMinute: flags.apiPerMinute,
    },
    ...(flags.config ? { configFile: flags.config } : {}),
  });
  const test = flags.testClock ? movableClock() : null;
  if (test) console.error('warning: --test-clock: the server clock can be moved forward over the API; never use this in production');
  const server = await startServer(config, test ? { now: test.now, testClock: test.clock } : {});
  const stop = async () => {
    await server.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
  return { config, server };
}

/** The catalog line: where its root comes from, and the fingerprint devices are told to expect. */
async function catalogLine(server: RunningServer): Promise<string | null> {
  const tuf = server.app.catalogContext.tuf;
  // a local server says where its catalog comes from in its own line (printUpstream)
  if (server.app.mirror) return null;
  if (!(await tuf.initialized())) return '  Root:      none yet: make one offline (`patchwarden keys root-init`) and import it (`patchwarden catalog import-metadata`)';
  const sha = createHash('sha256').update(await tuf.currentRoot()).digest('hex');
  const where = tuf.holdsTargetsKeys ? 'local mode: this server holds its root key' : 'kept offline';
  return `  Root:      sha256 ${sha}\n             (${where}; agents check it with \`agent enroll --root-sha256 …\`)`;
}

function printBanner(url: string, dataDir: string, dbLocation: string, dialect: string, firstToken: string | null, passwordFile: string | null, tls: RunningServer['tls']) {
  const rel = relative(process.cwd(), dataDir) || '.';
  console.log(`\nPatchwarden is running.`);
  if (passwordFile) {
    console.log(`  Sign in:   as 'admin' with the password in ${join(rel, FIRST_PASSWORD_FILE)} (readable by you alone);`);
    console.log(`             make named users with \`patchwarden users create\``);
  }
  if (firstToken) {
    console.log(`  Console:   ${url}/#token=${firstToken}`);
    console.log(`             (this link signs you in: it holds the first admin token, shown only now;`);
    console.log(`              the token is also in ${join(rel, ADMIN_TOKEN_FILE)}, readable by you alone)`);
  } else {
    console.log(`  Console:   ${url}/`);
    const file = join(dataDir, ADMIN_TOKEN_FILE);
    console.log(
      existsSync(file)
        ? `             (sign in with the admin token in ${join(rel, ADMIN_TOKEN_FILE)})`
        : `             (sign in with an admin token; \`patchwarden token create\` makes one)`,
    );
  }
  console.log(`  API docs:  ${url}/api/docs`);
  if (tls) {
    console.log(`  TLS:       certificate authority sha256 ${tls.caSha256}`);
    console.log(`             (${join(rel, 'tls', 'ca.crt')} unless you gave --tls-cert: import it into your browser to trust the console;`);
    console.log('              enrollment strings carry this fingerprint, so devices pin it)');
  } else console.log('  TLS:       off (--insecure-http): tokens and passwords travel in clear text');
  console.log(`  Database:  ${dialect === 'sqlite' ? 'SQLite' : 'PostgreSQL'} ${dialect === 'sqlite' ? relative(process.cwd(), dbLocation) : dbLocation}`);
}

function printUpstream(config: { upstream?: string | undefined; upstreamRoot?: string | undefined }) {
  if (!config.upstreamRoot) return;
  const pin = config.upstreamRoot.startsWith('sha256:') ? config.upstreamRoot : relative(process.cwd(), config.upstreamRoot);
  console.log(
    config.upstream
      ? `  Catalog:   mirrored from ${config.upstream} (pinned root ${pin}); \`patchwarden catalog sync\` syncs now`
      : `  Catalog:   air-gapped (pinned root ${pin}); \`patchwarden catalog import FILE\` takes an export file`,
  );
}

export function serverCommands(program: Command): void {
  serverOptions(program.command('server').description('run the Patchwarden server (API and console)')).action(async (flags: ServerFlags) => {
    const { config, server } = await start(flags, { logLevel: 'info' });
    printBanner(server.url, config.dataDir, server.database.location, server.database.dialect, server.firstAdminToken, server.firstUserPasswordFile, server.tls);
    const root = await catalogLine(server);
    if (root) console.log(root);
    printUpstream(config);
  });

  serverOptions(
    program
      .command('start')
      .description('run the server and a built-in, report-only agent for this machine (what `npm start` runs)'),
  )
    .option('--no-agent', 'do not run the built-in agent')
    .option('--no-import', "do not import this machine's apt lists as a first catalog")
    .action(async (flags: ServerFlags & { agent: boolean; import: boolean }) => {
      const { config, server } = await start(flags, { logLevel: 'warn' });
      printBanner(server.url, config.dataDir, server.database.location, server.database.dialect, server.firstAdminToken, server.firstUserPasswordFile, server.tls);
      const root = await catalogLine(server);
      if (root) console.log(root);
      if (flags.agent) {
        const { startBuiltInAgent } = await import('../local-agent.js');
        try {
          await startBuiltInAgent(server, config.dataDir);
        } catch (err) {
          // the server stays useful without it
          console.error(`  The built-in agent could not report this machine: ${(err as Error).message}`);
        }
      }
      if (flags.import) {
        // in the background: the console is usable meanwhile
        const { importLocalCatalog } = await import('../local-catalog.js');
        importLocalCatalog(server).then(
          (summary) => {
            if (summary) console.log(`  Catalog:   ${summary}; see \`npx patchwarden report needed\``);
          },
          (err: Error) => console.error(`  The first catalog could not be imported: ${err.message}`),
        );
      }
      console.log('\nPress Ctrl+C to stop.');
    });
}
