/**
 * Local time ↔ instant conversion with Intl only (no time-zone dependency). A "wall" value is the
 * local date and time written as if it were UTC, in epoch ms: wall − instant = the zone's offset.
 */
import { PatchwardenError } from '../errors.js';

export const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(tz: string): Intl.DateTimeFormat {
  let f = formatters.get(tz);
  if (!f) {
    try {
      f = new Intl.DateTimeFormat('en-US', {
        timeZone: tz,
        hourCycle: 'h23',
        year: 'numeric',
        month: 'numeric',
        day: 'numeric',
        hour: 'numeric',
        minute: 'numeric',
        second: 'numeric',
        era: 'short',
      });
    } catch (cause) {
      throw new PatchwardenError('E_VALIDATION', `unknown time zone: ${JSON.stringify(tz)}`, {
        hint: 'use an IANA time zone name such as Europe/Berlin, America/New_York or UTC',
        details: { timeZone: tz },
        cause,
      });
    }
    formatters.set(tz, f);
  }
  return f;
}

/** Throws E_VALIDATION for a name the runtime's time-zone database does not know. */
export function assertTimeZone(tz: string): void {
  if (typeof tz !== 'string' || tz.length === 0 || tz.length > 64) {
    throw new PatchwardenError('E_VALIDATION', `unknown time zone: ${JSON.stringify(tz)}`, {
      hint: 'use an IANA time zone name such as Europe/Berlin, America/New_York or UTC',
      details: { timeZone: tz },
    });
  }
  formatter(tz);
}

export function isTimeZone(tz: string): boolean {
  try {
    assertTimeZone(tz);
    return true;
  } catch {
    return false;
  }
}

/** The local wall time of an instant (seconds precision of the zone, milliseconds kept). */
export function wallOf(tz: string, t: number): number {
  const ms = ((t % 1000) + 1000) % 1000;
  const parts = formatter(tz).formatToParts(t - ms);
  let year = 0;
  let month = 1;
  let day = 1;
  let hour = 0;
  let minute = 0;
  let second = 0;
  let bc = false;
  for (const p of parts) {
    switch (p.type) {
      case 'year':
        year = Number(p.value);
        break;
      case 'month':
        month = Number(p.value);
        break;
      case 'day':
        day = Number(p.value);
        break;
      case 'hour':
        hour = Number(p.value);
        break;
      case 'minute':
        minute = Number(p.value);
        break;
      case 'second':
        second = Number(p.value);
        break;
      case 'era':
        bc = p.value.startsWith('B');
        break;
    }
  }
  if (bc) year = 1 - year;
  const d = new Date(0);
  d.setUTCFullYear(year, month - 1, day);
  d.setUTCHours(hour, minute, second, ms);
  return d.getTime();
}

export function offsetAt(tz: string, t: number): number {
  return wallOf(tz, t) - t;
}

/**
 * The instant of a local wall time. A wall time that occurs twice (fall back) gives its first
 * occurrence; one that does not exist (spring forward) gives the first valid instant after it,
 * which is the instant of the transition itself (02:30 on a 02:00→03:00 night gives 03:00).
 */
export function instantOf(tz: string, wall: number): number {
  // many devices share a zone and a schedule: the same local times are converted over and over
  const key = `${tz}|${wall}`;
  const hit = instants.get(key);
  if (hit !== undefined) return hit;
  if (instants.size >= MAX_CACHED) instants.clear();
  const t = computeInstant(tz, wall);
  instants.set(key, t);
  return t;
}

const instants = new Map<string, number>();
const MAX_CACHED = 100_000;

function computeInstant(tz: string, wall: number): number {
  const offsets = new Set([offsetAt(tz, wall - DAY), offsetAt(tz, wall), offsetAt(tz, wall + DAY)]);
  let best: number | undefined;
  for (const off of offsets) {
    const t = wall - off;
    if (offsetAt(tz, t) === off && (best === undefined || t < best)) best = t;
  }
  if (best !== undefined) return best;
  // In a gap: every instant before the transition shows a wall time before `wall`, every
  // instant from it on shows one after. Bisect between the two readings.
  const sorted = [...offsets].sort((a, b) => a - b);
  let lo = wall - sorted[sorted.length - 1]!;
  let hi = wall - sorted[0]!;
  if (lo > hi) [lo, hi] = [hi, lo];
  // invariant: wallOf(lo) < wall <= wallOf(hi)
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (wallOf(tz, mid) < wall) lo = mid;
    else hi = mid;
  }
  return hi;
}

/** Days since 1970-01-01 of a wall value. */
export function dayOf(wall: number): number {
  return Math.floor(wall / DAY);
}

/** 0 = Sunday … 6 = Saturday. */
export function weekdayOfDay(day: number): number {
  return (((day + 4) % 7) + 7) % 7;
}

export function dayFromDate(year: number, month: number, day: number): number {
  return Math.round(Date.UTC(year, month - 1, day) / DAY);
}

export function dateOfDay(day: number): { year: number; month: number; day: number } {
  const d = new Date(day * DAY);
  return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate() };
}
