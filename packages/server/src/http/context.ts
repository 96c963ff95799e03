import type { Kysely } from 'kysely';
import type { DB } from '../db/schema.js';
import type { Dialect } from '../db/database.js';
import type { SetCache } from '../inventory/store.js';
import type { ComplianceEngine } from '../compliance/engine.js';
import type { TufRepository } from '../catalog/tuf/repo.js';
import type { JobWakeups } from '../deployments/wakeups.js';
import type { EventBus } from '../console-api/bus.js';

/** What every feature's routes get: the database, the clock (injected, for tests) and settings. */
export interface AppContext {
  db: Kysely<DB>;
  dialect: Dialect;
  sets: SetCache;
  compliance: ComplianceEngine;
  /** the signed catalog */
  tuf: TufRepository;
  now: () => number;
  /** wakes agents that wait for jobs (long poll) */
  wakeups: JobWakeups;
  checkinIntervalSeconds: number;
  version: string;
  /** live events for the console (console-api/bus.ts) */
  bus?: EventBus;
  rateLimits: RateLimits;
  /** the CA devices pin, when the server speaks TLS */
  tls: { caPem: string; caSha256: string } | null;
}

/** Requests per minute and client (0: no limit). */
export interface RateLimits {
  loginPerMinute: number;
  enrollPerMinute: number;
  apiPerMinute: number;
}

export const DEFAULT_RATE_LIMITS: RateLimits = { loginPerMinute: 10, enrollPerMinute: 600, apiPerMinute: 6000 };
