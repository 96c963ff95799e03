/**
 * Whether the console's browser suite can run: it drives Debian's Chromium (never a downloaded
 * browser). Kept free of playwright so test/global-setup.ts can read it cheaply.
 * PATCHWARDEN_CHROMIUM names another binary (a test of this rule sets it to a missing path).
 */
import { existsSync } from 'node:fs';

export const CHROMIUM = process.env.PATCHWARDEN_CHROMIUM ?? '/usr/bin/chromium';
export const CHROMIUM_MISSING = 'Chromium is missing: apt-get install chromium; .ci/run installs it';

export type Availability = 'ready' | 'skip' | 'fail';

/** ready: run; fail: CI without Chromium (the suite must fail); skip: a user's machine without it. */
export function browserAvailability(): Availability {
  if (existsSync(CHROMIUM)) return 'ready';
  return process.env.CI === 'true' ? 'fail' : 'skip';
}
