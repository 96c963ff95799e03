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
  return { ...r.data, dataDir: resolve(r.data.dataDir) };
}

export function databaseUrl(config: ServerConfig): string {
  return config.database ?? join(config.dataDir, 'patchwarden.db');
}
