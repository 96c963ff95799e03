/**
 * Freeze periods override every schedule: no install starts inside one, whatever the windows or
 * the deadline say.
 */
import { z } from 'zod';
import { assertTimeZone, DAY, dayFromDate, dayOf, dateOfDay, instantOf, wallOf } from './tz.js';
import { nextWindow, flattenWindows, type Interval, type WindowSets } from './windows.js';

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** MM-DD; 02-29 is refused, since most years lack it. */
const MonthDay = z
  .string()
  .regex(/^(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$/, 'expected a date MM-DD')
  .refine((s) => Number(s.slice(3)) <= DAYS_IN_MONTH[Number(s.slice(0, 2)) - 1]!, 'no such day in that month (02-29 is not allowed)');

export const AbsoluteFreeze = z
  .strictObject({
    kind: z.literal('absolute'),
    /** Epoch ms, inclusive. */
    start: z.number().int(),
    /** Epoch ms, exclusive. */
    end: z.number().int(),
    reason: z.string().max(200).optional(),
  })
  .refine((f) => f.end > f.start, 'a freeze must end after it starts');
export type AbsoluteFreeze = z.infer<typeof AbsoluteFreeze>;

export const YearlyFreeze = z.strictObject({
  kind: z.literal('yearly'),
  /** First frozen local day (from its 00:00). */
  from: MonthDay,
  /** Last frozen local day (to its end); earlier than `from` means it runs over New Year. */
  to: MonthDay,
  /** Zone of those local days; absent: the device's own zone. */
  timeZone: z.string().max(64).optional(),
  reason: z.string().max(200).optional(),
});
export type YearlyFreeze = z.infer<typeof YearlyFreeze>;

export const FreezePeriod = z.union([AbsoluteFreeze, YearlyFreeze]);
export type FreezePeriod = z.infer<typeof FreezePeriod>;

export interface FrozenInterval extends Interval {
  freeze: FreezePeriod;
}

function md(s: string): { month: number; day: number } {
  return { month: Number(s.slice(0, 2)), day: Number(s.slice(3)) };
}

/** The yearly freeze's occurrences that start in local year y−1 and y. */
function yearlyIntervals(f: YearlyFreeze, tz: string, t: number): Interval[] {
  const zone = f.timeZone ?? tz;
  const year = dateOfDay(dayOf(wallOf(zone, t))).year;
  const a = md(f.from);
  const b = md(f.to);
  const wraps = b.month * 100 + b.day < a.month * 100 + a.day;
  const out: Interval[] = [];
  for (const y of [year - 1, year]) {
    const startDay = dayFromDate(y, a.month, a.day);
    const endDay = dayFromDate(wraps ? y + 1 : y, b.month, b.day) + 1;
    out.push({ start: instantOf(zone, startDay * DAY), end: instantOf(zone, endDay * DAY) });
  }
  return out;
}

/** The freeze containing t (the one that lasts longest, when several do), or null. */
export function frozenAt(freezes: readonly FreezePeriod[], tz: string, t: number): FrozenInterval | null {
  assertTimeZone(tz);
  let best: FrozenInterval | null = null;
  for (const f of freezes) {
    const ivs = f.kind === 'absolute' ? [{ start: f.start, end: f.end }] : yearlyIntervals(f, tz, t);
    for (const iv of ivs) {
      if (iv.start <= t && t < iv.end && (!best || iv.end > best.end)) best = { ...iv, freeze: f };
    }
  }
  return best;
}

/** The first instant ≥ t outside every freeze (freezes can chain); null if none within the bound. */
export function thawedFrom(freezes: readonly FreezePeriod[], tz: string, t: number): number | null {
  let at = t;
  for (let i = 0; i < MAX_STEPS; i++) {
    const f = frozenAt(freezes, tz, at);
    if (!f) return at;
    at = f.end;
  }
  return null;
}

const MAX_STEPS = 1000;

export interface InstallSlotInput {
  /** The device's windows: one list or one per group (union). No window at all: any time. */
  windows: WindowSets;
  freezes: readonly FreezePeriod[];
  /** The device's IANA time zone (from its facts). */
  tz: string;
  /** Now, or when the device came back. */
  from: number;
  /** The deployment's (or ring's) start. */
  start: number;
  /** The deployment's deadline; absent: none. */
  deadline?: number;
}

export interface InstallSlot {
  at: number;
  /** window: inside a window; anytime: the device has no windows; deadline: the catch-up at the deadline. */
  by: 'window' | 'anytime' | 'deadline';
}

/**
 * When a device should install: the first instant ≥ max(from, start) that lies in one of its
 * windows and in no freeze. A device that was offline during its window gets the next one, or the
 * deadline when no window opens (unfrozen) before it; a device that comes back after the deadline
 * installs at once (`from`).
 *
 * Deadline inside a freeze: the freeze wins, since freezes override every schedule. The catch-up
 * moves to the first instant after the deadline that no freeze covers (the freeze's end), and is
 * still reported as `by: 'deadline'`. Null when no slot is found: no deadline and no unfrozen
 * window within the scan range (about a year and a half), or freezes that never end.
 */
export function nextInstallSlot(input: InstallSlotInput): InstallSlot | null {
  const { freezes, tz, deadline } = input;
  assertTimeZone(tz);
  const windows = flattenWindows(input.windows);
  let t = Math.max(input.from, input.start);
  const fallback = (): InstallSlot | null => {
    if (deadline === undefined) return null;
    const at = thawedFrom(freezes, tz, Math.max(deadline, t));
    return at === null ? null : { at, by: 'deadline' };
  };
  if (deadline !== undefined && t >= deadline) return fallback();
  if (windows.length === 0) {
    const at = thawedFrom(freezes, tz, t);
    if (at === null) return null;
    return deadline !== undefined && at >= deadline ? fallback() : { at, by: 'anytime' };
  }
  for (let i = 0; i < MAX_STEPS; i++) {
    const w = nextWindow(windows, tz, t);
    if (!w) return fallback();
    const candidate = Math.max(t, w.start);
    if (deadline !== undefined && candidate >= deadline) return fallback();
    const f = frozenAt(freezes, tz, candidate);
    if (!f) return { at: candidate, by: 'window' };
    t = f.end;
  }
  return fallback();
}
