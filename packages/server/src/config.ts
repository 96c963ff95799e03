/**
 * The server's one typed configuration: defaults < config file < PATCHWARDEN_* environment <
 * command-line flags, validated once at start.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { DEFAULT_DATA_DIR, DEFAULT_HOST, DEFAULT_PORT, PatchwardenError } from '@patchwarden/core';

export const ServerConfig = z.strictObject({
  dataDir: z.string().min(1),
  /** `postgres://…`, or a SQLite file; default `<dataDir>/patchwarden.db`. */
  database: z.string().min(1).optional(),
  host: z.string().min(1),
  port: z.coerce.number().int().min(0).max(65535),
  checkinIntervalSeconds: z.coerce.number().int().min(5).max(86_400),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
  /**
   * Local mode: the server makes and keeps the catalog's root key itself (fine for trying
   * Patchwarden; a production catalog keeps root offline and sets this to false).
   */
  localRoot: z.boolean().optional(),
  /**
   * A local patch server: the central server it mirrors (`https://…`), its site token, and the
   * central root it trusts first (a root.json file, or `sha256:HEX` of the root it fetches).
   * With upstreamRoot alone, the server takes export files only (an air-gapped site).
   */
  upstream: z.url({ protocol: /^https?$/ }).optional(),
  upstreamToken: z.string().regex(/^pws_[A-Za-z0-9_-]{20,100}$/, 'a site token (pws_…) made by the central server').optional(),
  upstreamRoot: z.string().min(1).optional(),
  /** the central server's certificate authority: a PEM file, or sha256:HEX of the one it serves (its own CA) */
  upstreamCa: z.string().min(1).optional(),
  /** minutes between syncs (0: only when asked); the first one runs at start */
  upstreamSyncMinutes: z.coerce.number().int().min(0).max(1440).optional(),
  /** plain HTTP instead of TLS (tokens and sessions travel in clear text: a lab or a TLS proxy in front only) */
  insecureHttp: z.preprocess((v) => (v === '1' || v === 'true' ? true : v === '0' || v === 'false' ? false : v), z.boolean()).optional(),
  /** the administrator's certificate (PEM, with its chain) and key; default: the server's own CA in <dataDir>/tls */
  tlsCert: z.string().min(1).optional(),
  tlsKey: z.string().min(1).optional(),
  /** the certificate devices pin (default: the first in tlsCert, or the server's own CA) */
  tlsCa: z.string().min(1).optional(),
  /** extra names and addresses the server's own certificate covers, comma-separated */
  tlsNames: z.string().max(4000).optional(),
  /** every audit entry also appended to this JSON-lines file */
  auditFile: z.string().min(1).optional(),
  /** every audit entry also sent to syslog: udp://HOST:PORT */
  auditSyslog: z.string().regex(/^udp:\/\//, 'udp://HOST:PORT').optional(),
  /** requests per minute and client address: sign-in attempts and enrollments (0: no limit) */
  loginPerMinute: z.coerce.number().int().min(0).max(1_000_000).optional(),
  enrollPerMinute: z.coerce.number().int().min(0).max(1_000_000).optional(),
  /** requests per minute and credential (or address) on every other route (0: no limit) */
  apiPerMinute: z.coerce.number().int().min(0).max(10_000_000).optional(),
});
export type ServerConfig = z.infer<typeof ServerConfig>;

export const SERVER_DEFAULTS = {
  dataDir: DEFAULT_DATA_DIR,
  host: DEFAULT_HOST,
  port: DEFAULT_PORT,
  checkinIntervalSeconds: 300,
  logLevel: 'info',
} as const;

const ENV: Record<string, keyof ServerConfig> = {
  PATCHWARDEN_DATA_DIR: 'dataDir',
  PATCHWARDEN_DATABASE: 'database',
  PATCHWARDEN_HOST: 'host',
  PATCHWARDEN_PORT: 'port',
  PATCHWARDEN_CHECKIN_INTERVAL: 'checkinIntervalSeconds',
  PATCHWARDEN_LOG_LEVEL: 'logLevel',
  PATCHWARDEN_UPSTREAM: 'upstream',
  PATCHWARDEN_UPSTREAM_TOKEN: 'upstreamToken',
  PATCHWARDEN_UPSTREAM_ROOT: 'upstreamRoot',
  PATCHWARDEN_UPSTREAM_CA: 'upstreamCa',
  PATCHWARDEN_UPSTREAM_SYNC_MINUTES: 'upstreamSyncMinutes',
  PATCHWARDEN_INSECURE_HTTP: 'insecureHttp',
  PATCHWARDEN_TLS_CERT: 'tlsCert',
  PATCHWARDEN_TLS_KEY: 'tlsKey',
  PATCHWARDEN_TLS_CA: 'tlsCa',
  PATCHWARDEN_TLS_NAMES: 'tlsNames',
  PATCHWARDEN_AUDIT_FILE: 'auditFile',
  PATCHWARDEN_AUDIT_SYSLOG: 'auditSyslog',
  PATCHWARDEN_LOGIN_PER_MINUTE: 'loginPerMinute',
  PATCHWARDEN_ENROLL_PER_MINUTE: 'enrollPerMinute',
  PATCHWARDEN_API_PER_MINUTE: 'apiPerMinute',
};

function defined(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined && v !== ''));
}

export function loadServerConfig(input: {
  flags?: Partial<Record<keyof ServerConfig, unknown>>;
  env?: NodeJS.ProcessEnv;
  configFile?: string;
}): ServerConfig {
  const env = input.env ?? process.env;
  const fromEnv: Record<string, unknown> = {};
  for (const [name, key] of Object.entries(ENV)) if (env[name]) fromEnv[key] = env[name];
  const flags = defined(input.flags ?? {});
  const dataDir = String(flags.dataDir ?? fromEnv.dataDir ?? SERVER_DEFAULTS.dataDir);
  const file = input.configFile ?? env.PATCHWARDEN_CONFIG ?? join(dataDir, 'server.json');
  let fromFile: Record<string, unknown> = {};
  if (existsSync(file)) {
    try {
      fromFile = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    } catch (err) {
      throw new PatchwardenError('E_CONFIG_INVALID', `cannot read config file ${file}: ${(err as Error).message}`);
    }
  } else if (input.configFile) {
    throw new PatchwardenError('E_CONFIG_INVALID', `config file ${file} does not exist`);
  }
  const merged = { ...SERVER_DEFAULTS, ...fromFile, ...fromEnv, ...flags };
  const r = ServerConfig.safeParse(merged);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new PatchwardenError('E_CONFIG_INVALID', `invalid configuration: ${i.path.join('.') || '(root)'}: ${i.message}`, {
      hint: 'check the flags, PATCHWARDEN_* variables and the config file',
    });
  }
  const c = r.data;
  if (c.upstream && (!c.upstreamToken || !c.upstreamRoot)) {
    throw new PatchwardenError('E_CONFIG_INVALID', 'a local server needs --upstream-token and --upstream-root with --upstream', {
      hint: 'the central server\'s administrator makes the site token (POST /api/v1/sites); pin its root with the root.json file or sha256:HEX',
    });
  }
  if (!!c.tlsCert !== !!c.tlsKey) throw new PatchwardenError('E_CONFIG_INVALID', '--tls-cert and --tls-key go together', { hint: 'give both, or neither to use the server\'s own certificate authority' });
  if (c.insecureHttp && c.tlsCert) throw new PatchwardenError('E_CONFIG_INVALID', '--insecure-http and --tls-cert contradict each other');
  if (c.upstreamToken && !c.upstream) throw new PatchwardenError('E_CONFIG_INVALID', '--upstream-token needs --upstream URL');
  if (c.upstreamCa && !c.upstream?.startsWith('https:')) throw new PatchwardenError('E_CONFIG_INVALID', '--upstream-ca needs an https:// --upstream');
  if (c.upstreamCa?.startsWith('sha256:') && !/^[0-9a-f]{64}$/.test(c.upstreamCa.slice(7).toLowerCase().replace(/:/g, ''))) {
    throw new PatchwardenError('E_CONFIG_INVALID', '--upstream-ca sha256:… needs the 64 hex digits of the central server\'s CA fingerprint');
  }
  return { ...c, dataDir: resolve(c.dataDir), ...(c.auditFile ? { auditFile: resolve(c.auditFile) } : {}), ...(c.upstreamRoot && !c.upstreamRoot.startsWith('sha256:') ? { upstreamRoot: resolve(c.upstreamRoot) } : {}) };
}

export function databaseUrl(config: ServerConfig): string {
  return config.database ?? join(config.dataDir, 'patchwarden.db');
}
