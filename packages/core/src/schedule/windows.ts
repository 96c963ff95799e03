/**
 * Maintenance windows that recur in each device's own time zone. One window function for server
 * and agent: both ask "is t inside a window" and "when is the next one" with the same answers.
 *
 * An occurrence starts at its local date and time (a start that does not exist because of a
 * spring-forward change starts at the transition; an ambiguous one at its first occurrence) and
 * lasts its duration in real elapsed time, so a 3-hour window over a fall-back night ends 3 hours
 * after it began, not at the same wall time.
 */
import { z } from 'zod';
import { DAY, MINUTE, HOUR, assertTimeZone, dateOfDay, dayFromDate, dayOf, instantOf, wallOf, weekdayOfDay } from './tz.js';

export const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
export const Weekday = z.enum(WEEKDAYS);
export type Weekday = z.infer<typeof Weekday>;

/** Longest window: 7 days. */
export const MAX_WINDOW_MINUTES = 7 * 24 * 60;

const LocalTime = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'expected a local time HH:MM (00:00 to 23:59)');
const DurationMinutes = z.number().int().min(1).max(MAX_WINDOW_MINUTES);

export const WeeklyWindow = z.strictObject({
  kind: z.literal('weekly'),
  /** Local days on which the window opens. */
  days: z.array(Weekday).min(1).max(7),
  /** Local start time, HH:MM. */
  start: LocalTime,
  durationMinutes: DurationMinutes,
});
export type WeeklyWindow = z.infer<typeof WeeklyWindow>;

export const MonthlyWindow = z.strictObject({
  kind: z.literal('monthly'),
  /** Which weekday of the month: 1st … 4th, or the last. */
  week: z.union([z.literal(1), z.literal(2), z.literal(3), z.literal(4), z.literal('last')]),
  weekday: Weekday,
  /** Days added to that weekday ("Patch Tuesday + 2" is week 2, tue, offsetDays 2). */
  offsetDays: z.number().int().min(-28).max(28).default(0),
  start: LocalTime,
  durationMinutes: DurationMinutes,
});
export type MonthlyWindow = z.infer<typeof MonthlyWindow>;

export const MaintenanceWindow = z.discriminatedUnion('kind', [WeeklyWindow, MonthlyWindow]);
export type MaintenanceWindow = z.infer<typeof MaintenanceWindow>;
/** What the functions accept: the windows a device's groups define (input form: offsetDays optional). */
export type WindowInput = z.input<typeof MaintenanceWindow>;

/** One list, or one list per group of the device: the device may install in any of them. */
export type WindowSets = readonly WindowInput[] | readonly (readonly WindowInput[])[];

/** An occurrence (or a union of overlapping occurrences) as a half-open interval [start, end). */
export interface Interval {
  start: number;
  end: number;
}

export function flattenWindows(windows: WindowSets): WindowInput[] {
  const out: WindowInput[] = [];
  for (const w of windows) {
    if (Array.isArray(w)) out.push(...(w as readonly WindowInput[]));
    else out.push(w as WindowInput);
  }
  return out;
}

function minutesOf(hhmm: string): number {
  const [h, m] = hhmm.split(':');
  return Number(h) * 60 + Number(m);
}

function nthWeekday(year: number, month: number, week: 1 | 2 | 3 | 4 | 'last', weekday: number): number {
  if (week === 'last') {
    const last = dayFromDate(year, month + 1, 0);
    return last - ((weekdayOfDay(last) - weekday + 7) % 7);
  }
  const first = dayFromDate(year, month, 1);
  return first + ((weekday - weekdayOfDay(first) + 7) % 7) + (week - 1) * 7;
}

/** Local start days of a window's occurrences in [fromDay, toDay]. */
function startDays(w: WindowInput, fromDay: number, toDay: number): number[] {
  const days: number[] = [];
  if (w.kind === 'weekly') {
    const wanted = new Set(w.days.map((d) => WEEKDAYS.indexOf(d)));
    for (let d = fromDay; d <= toDay; d++) if (wanted.has(weekdayOfDay(d))) days.push(d);
    return days;
  }
  const weekday = WEEKDAYS.indexOf(w.weekday);
  const offset = w.offsetDays ?? 0;
  // offsets reach at most 28 days, so one month either side covers every candidate
  const a = dateOfDay(fromDay);
  const b = dateOfDay(toDay);
  let y = a.year;
  let m = a.month - 1;
  const endIndex = b.year * 12 + b.month + 1;
  if (m < 1) {
    m += 12;
    y -= 1;
  }
  while (y * 12 + m <= endIndex) {
    const d = nthWeekday(y, m, w.week, weekday) + offset;
    if (d >= fromDay && d <= toDay) days.push(d);
    m += 1;
    if (m > 12) {
      m = 1;
      y += 1;
    }
  }
  return days;
}

/** Every occurrence starting on a local day in [fromDay, toDay], merged where they overlap or touch. */
function mergedOccurrences(windows: readonly WindowInput[], tz: string, fromDay: number, toDay: number): Interval[] {
  const occ: Interval[] = [];
  for (const w of windows) {
    const startMin = minutesOf(w.start);
    for (const d of startDays(w, fromDay, toDay)) {
      const start = instantOf(tz, d * DAY + startMin * MINUTE);
      occ.push({ start, end: start + w.durationMinutes * MINUTE });
    }
  }
  occ.sort((x, y) => x.start - y.start || x.end - y.end);
  const out: Interval[] = [];
  for (const o of occ) {
    const last = out[out.length - 1];
    if (last && o.start <= last.end) last.end = Math.max(last.end, o.end);
    else out.push({ ...o });
  }
  return out;
}

/** A start more than 7 days + a day of offsets and gap shifts before t cannot reach t. */
const LOOKBACK_DAYS = 9;
const FIRST_SPAN_DAYS = 40;
/** Scanning stops here: a union of windows open around the clock is reported up to this far. */
const MAX_SPAN_DAYS = 640;
/** Largest UTC offset (+14:00, Kiribati): the earliest instant a local day can begin before its UTC day. */
const MAX_OFFSET = 14 * HOUR;

/**
 * The first (merged) occurrence that ends after `from`: the one containing it, or the next one.
 * Occurrences that started more than LOOKBACK_DAYS local days before `from` are not seen, so the
 * start of a chain of back-to-back occurrences is reported from there at the earliest.
 */
function firstEndingAfter(windows: readonly WindowInput[], tz: string, from: number): Interval | null {
  if (windows.length === 0) return null;
  const d0 = dayOf(wallOf(tz, from));
  for (let span = FIRST_SPAN_DAYS; span <= MAX_SPAN_DAYS; span *= 2) {
    const toDay = d0 + span;
    // no occurrence starting on a later local day begins before this instant
    const horizon = (toDay + 1) * DAY - MAX_OFFSET;
    const found = mergedOccurrences(windows, tz, d0 - LOOKBACK_DAYS, toDay).find((iv) => iv.end > from);
    if (found && (found.end < horizon || span * 2 > MAX_SPAN_DAYS)) return found;
  }
  return null;
}

/** The occurrence (merged across windows and groups) that contains t, or null. */
export function windowAt(windows: WindowSets, tz: string, t: number): Interval | null {
  assertTimeZone(tz);
  const iv = firstEndingAfter(flattenWindows(windows), tz, t);
  return iv && iv.start <= t ? iv : null;
}

/**
 * The occurrence that contains `from`, or else the first one starting after it; null when the
 * windows never open (an empty list). Across several lists (one per group) it is the union.
 */
export function nextWindow(windows: WindowSets, tz: string, from: number): Interval | null {
  assertTimeZone(tz);
  return firstEndingAfter(flattenWindows(windows), tz, from);
}

/** Edge check for windows from outside (API bodies, group settings); throws zod's error. */
export function parseWindows(value: unknown): MaintenanceWindow[] {
  return z.array(MaintenanceWindow).max(64).parse(value);
}
