import { describe, expect, it } from 'vitest';
import { PatchwardenError } from '../errors.js';
import { MaintenanceWindow, nextWindow, parseWindows, windowAt, type Weekday, type WindowInput } from './windows.js';
import { instantOf, wallOf } from './tz.js';

const ms = (iso: string) => Date.parse(iso);
const iso = (t: number) => new Date(t).toISOString();
const span = (iv: { start: number; end: number } | null) => (iv ? [iso(iv.start), iso(iv.end)] : null);
const weekly = (days: Weekday[], start: string, durationMinutes: number): WindowInput => ({
  kind: 'weekly',
  days,
  start,
  durationMinutes,
});

describe('local time conversion', () => {
  it('reads wall times in real zones', () => {
    expect(iso(wallOf('Europe/Berlin', ms('2026-07-01T10:00:00Z')))).toBe('2026-07-01T12:00:00.000Z');
    expect(iso(wallOf('Asia/Kolkata', ms('2026-07-01T10:00:00Z')))).toBe('2026-07-01T15:30:00.000Z');
    expect(iso(wallOf('Australia/Lord_Howe', ms('2026-07-01T10:00:00Z')))).toBe('2026-07-01T20:30:00.000Z');
  });
  it('maps a non-existent local time to the transition and an ambiguous one to its first occurrence', () => {
    expect(iso(instantOf('Europe/Berlin', ms('2026-03-29T02:30:00Z')))).toBe('2026-03-29T01:00:00.000Z');
    expect(iso(instantOf('Europe/Berlin', ms('2026-10-25T02:30:00Z')))).toBe('2026-10-25T00:30:00.000Z');
  });
});

describe('weekly windows and DST', () => {
  it('Europe/Berlin spring forward: 02:30 does not exist, the window opens at 03:00 CEST and lasts 60 real minutes', () => {
    const w = [weekly(['sun'], '02:30', 60)];
    expect(span(nextWindow(w, 'Europe/Berlin', ms('2026-03-28T00:00:00Z')))).toEqual([
      '2026-03-29T01:00:00.000Z',
      '2026-03-29T02:00:00.000Z',
    ]);
    // the week before and after are ordinary
    expect(span(nextWindow(w, 'Europe/Berlin', ms('2026-03-21T00:00:00Z')))).toEqual([
      '2026-03-22T01:30:00.000Z',
      '2026-03-22T02:30:00.000Z',
    ]);
    expect(span(nextWindow(w, 'Europe/Berlin', ms('2026-03-29T02:00:00Z')))).toEqual([
      '2026-04-05T00:30:00.000Z',
      '2026-04-05T01:30:00.000Z',
    ]);
  });

  it('Europe/Berlin fall back: 02:30 happens twice, the window opens at the first', () => {
    const w = [weekly(['sun'], '02:30', 60)];
    expect(span(nextWindow(w, 'Europe/Berlin', ms('2026-10-24T00:00:00Z')))).toEqual([
      '2026-10-25T00:30:00.000Z',
      '2026-10-25T01:30:00.000Z',
    ]);
  });

  it('America/New_York: 02:00 on 2026-03-08 starts at 03:00 EDT; 01:30 on 2026-11-01 at 01:30 EDT', () => {
    expect(span(nextWindow([weekly(['sun'], '02:00', 90)], 'America/New_York', ms('2026-03-07T12:00:00Z')))).toEqual([
      '2026-03-08T07:00:00.000Z',
      '2026-03-08T08:30:00.000Z',
    ]);
    expect(span(nextWindow([weekly(['sun'], '01:30', 60)], 'America/New_York', ms('2026-10-31T12:00:00Z')))).toEqual([
      '2026-11-01T05:30:00.000Z',
      '2026-11-01T06:30:00.000Z',
    ]);
  });

  it('Australia/Lord_Howe shifts by 30 minutes', () => {
    // 2026-10-04 02:00 LHST (+10:30) → 02:30 LHDT (+11): 02:15 does not exist
    expect(span(nextWindow([weekly(['sun'], '02:15', 30)], 'Australia/Lord_Howe', ms('2026-10-03T00:00:00Z')))).toEqual([
      '2026-10-03T15:30:00.000Z',
      '2026-10-03T16:00:00.000Z',
    ]);
    // 2026-04-05 02:00 LHDT → 01:30 LHST: 01:45 happens twice, first at +11
    expect(span(nextWindow([weekly(['sun'], '01:45', 30)], 'Australia/Lord_Howe', ms('2026-04-04T00:00:00Z')))).toEqual([
      '2026-04-04T14:45:00.000Z',
      '2026-04-04T15:15:00.000Z',
    ]);
    // an ordinary Sunday in winter (+10:30)
    expect(span(nextWindow([weekly(['sun'], '01:45', 30)], 'Australia/Lord_Howe', ms('2026-07-01T00:00:00Z')))).toEqual([
      '2026-07-04T15:15:00.000Z',
      '2026-07-04T15:45:00.000Z',
    ]);
  });

  it('Asia/Kolkata has no DST; a window across midnight', () => {
    const w = [weekly(['mon'], '23:00', 120)];
    // Monday 2026-03-09 23:00 IST = 17:30Z, to Tuesday 01:00 IST
    expect(span(nextWindow(w, 'Asia/Kolkata', ms('2026-03-08T00:00:00Z')))).toEqual([
      '2026-03-09T17:30:00.000Z',
      '2026-03-09T19:30:00.000Z',
    ]);
    expect(span(windowAt(w, 'Asia/Kolkata', ms('2026-03-09T19:00:00Z')))).toEqual([
      '2026-03-09T17:30:00.000Z',
      '2026-03-09T19:30:00.000Z',
    ]);
    expect(windowAt(w, 'Asia/Kolkata', ms('2026-03-09T19:30:00Z'))).toBeNull();
    expect(windowAt(w, 'Asia/Kolkata', ms('2026-03-09T17:29:59.999Z'))).toBeNull();
  });

  it('a window across a DST change lasts its real duration', () => {
    // Saturday 2026-03-28 22:00 CET for 8 h: ends 07:00 CEST, not 06:00
    const w = [weekly(['sat'], '22:00', 480)];
    expect(span(windowAt(w, 'Europe/Berlin', ms('2026-03-29T04:59:59Z')))).toEqual([
      '2026-03-28T21:00:00.000Z',
      '2026-03-29T05:00:00.000Z',
    ]);
    expect(windowAt(w, 'Europe/Berlin', ms('2026-03-29T05:00:00Z'))).toBeNull();
    // over the fall-back night: Saturday 2026-10-24 22:00 CEST for 8 h ends at 05:00 CET
    expect(span(windowAt(w, 'Europe/Berlin', ms('2026-10-25T01:30:00Z')))).toEqual([
      '2026-10-24T20:00:00.000Z',
      '2026-10-25T04:00:00.000Z',
    ]);
  });

  it('a seven-day window is found from its last day', () => {
    const w = [weekly(['mon'], '00:00', 7 * 24 * 60 - 60)];
    expect(span(windowAt(w, 'UTC', ms('2026-06-07T22:30:00Z')))).toEqual(['2026-06-01T00:00:00.000Z', '2026-06-07T23:00:00.000Z']);
    expect(windowAt(w, 'UTC', ms('2026-06-07T23:30:00Z'))).toBeNull();
  });
});

describe('edge cases', () => {
  it('a window at a midnight that does not exist (America/Santiago, 2026-09-06) opens at 01:00', () => {
    expect(span(nextWindow([weekly(['sun'], '00:00', 60)], 'America/Santiago', ms('2026-09-05T00:00:00Z')))).toEqual([
      '2026-09-06T04:00:00.000Z',
      '2026-09-06T05:00:00.000Z',
    ]);
  });

  it('windows open around the clock merge into one long interval without hanging', () => {
    const w = [weekly(['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'], '00:00', 24 * 60)];
    const iv = windowAt(w, 'UTC', ms('2026-06-03T12:00:00Z'));
    expect(iv && iv.start <= ms('2026-06-03T12:00:00Z') && iv.end > ms('2027-01-01T00:00:00Z')).toBe(true);
  });
});

describe('union of groups', () => {
  it('a device in two groups may install in either group’s windows', () => {
    const a = [weekly(['mon'], '20:00', 60)];
    const b = [weekly(['wed'], '01:00', 120)];
    // Monday 2026-11-23 21:30 CET: A's window is over, B's opens Wednesday 01:00 CET
    expect(span(nextWindow([a, b], 'Europe/Berlin', ms('2026-11-23T20:30:00Z')))).toEqual([
      '2026-11-25T00:00:00.000Z',
      '2026-11-25T02:00:00.000Z',
    ]);
    expect(span(nextWindow([a, b], 'Europe/Berlin', ms('2026-11-25T02:00:00Z')))).toEqual([
      '2026-11-30T19:00:00.000Z',
      '2026-11-30T20:00:00.000Z',
    ]);
    expect(windowAt([a], 'Europe/Berlin', ms('2026-11-25T01:00:00Z'))).toBeNull();
    expect(windowAt([a, b], 'Europe/Berlin', ms('2026-11-25T01:00:00Z'))).not.toBeNull();
  });

  it('overlapping windows of two groups merge into one interval', () => {
    const a = [weekly(['mon'], '20:00', 60)];
    const b = [weekly(['mon'], '20:30', 90)];
    expect(span(windowAt([a, b], 'Europe/Berlin', ms('2026-11-23T19:10:00Z')))).toEqual([
      '2026-11-23T19:00:00.000Z',
      '2026-11-23T21:00:00.000Z',
    ]);
  });

  it('no windows at all: never open', () => {
    expect(nextWindow([], 'UTC', 0)).toBeNull();
    expect(nextWindow([[], []], 'UTC', 0)).toBeNull();
  });
});

describe('monthly windows', () => {
  const patchTuesdayPlus2: WindowInput = { kind: 'monthly', week: 2, weekday: 'tue', offsetDays: 2, start: '03:00', durationMinutes: 240 };

  it('second Tuesday + 2 days, month after month', () => {
    const tz = 'Europe/Berlin';
    // 2nd Tuesday of Nov 2026 is the 10th → Thursday the 12th, 03:00 CET
    expect(span(nextWindow([patchTuesdayPlus2], tz, ms('2026-11-01T00:00:00Z')))).toEqual([
      '2026-11-12T02:00:00.000Z',
      '2026-11-12T06:00:00.000Z',
    ]);
    // Dec 2026: 2nd Tuesday is the 8th → the 10th
    expect(span(nextWindow([patchTuesdayPlus2], tz, ms('2026-11-12T06:00:00Z')))).toEqual([
      '2026-12-10T02:00:00.000Z',
      '2026-12-10T06:00:00.000Z',
    ]);
    // Jan 2027: 2nd Tuesday is the 12th → the 14th (across the year)
    expect(span(nextWindow([patchTuesdayPlus2], tz, ms('2026-12-11T00:00:00Z')))).toEqual([
      '2027-01-14T02:00:00.000Z',
      '2027-01-14T06:00:00.000Z',
    ]);
    // summer time: Jul 2026, 2nd Tuesday the 14th → the 16th, 03:00 CEST
    expect(span(nextWindow([patchTuesdayPlus2], tz, ms('2026-07-01T00:00:00Z')))).toEqual([
      '2026-07-16T01:00:00.000Z',
      '2026-07-16T05:00:00.000Z',
    ]);
  });

  it('an offset that crosses into the next month, and the last weekday', () => {
    const w: WindowInput = { kind: 'monthly', week: 'last', weekday: 'fri', offsetDays: 3, start: '22:00', durationMinutes: 60 };
    // last Friday of Jan 2027 is the 29th → Monday Feb 1
    expect(span(nextWindow([w], 'UTC', ms('2027-01-20T00:00:00Z')))).toEqual(['2027-02-01T22:00:00.000Z', '2027-02-01T23:00:00.000Z']);
    // from Feb 2: last Friday of Feb 2027 is the 26th → Monday Mar 1
    expect(span(nextWindow([w], 'UTC', ms('2027-02-02T00:00:00Z')))).toEqual(['2027-03-01T22:00:00.000Z', '2027-03-01T23:00:00.000Z']);
  });

  it('offsetDays defaults to 0', () => {
    const w = MaintenanceWindow.parse({ kind: 'monthly', week: 1, weekday: 'mon', start: '01:00', durationMinutes: 30 });
    expect(w).toMatchObject({ offsetDays: 0 });
    // first Monday of June 2026 is the 1st
    expect(span(nextWindow([w], 'UTC', ms('2026-05-20T00:00:00Z')))).toEqual(['2026-06-01T01:00:00.000Z', '2026-06-01T01:30:00.000Z']);
  });
});

describe('validation', () => {
  it('refuses an unknown time zone with E_VALIDATION', () => {
    const w = [weekly(['mon'], '01:00', 60)];
    expect(() => nextWindow(w, 'Mars/Olympus_Mons', 0)).toThrowError(PatchwardenError);
    try {
      windowAt(w, 'Europe/Berlinn', 0);
      expect.unreachable();
    } catch (e) {
      expect((e as PatchwardenError).code).toBe('E_VALIDATION');
      expect((e as PatchwardenError).message).toContain('Europe/Berlinn');
    }
  });

  it('checks the window schema', () => {
    expect(() => parseWindows([{ kind: 'weekly', days: ['mon'], start: '24:00', durationMinutes: 60 }])).toThrow();
    expect(() => parseWindows([{ kind: 'weekly', days: ['mon'], start: '01:00', durationMinutes: 7 * 24 * 60 + 1 }])).toThrow();
    expect(() => parseWindows([{ kind: 'weekly', days: [], start: '01:00', durationMinutes: 60 }])).toThrow();
    expect(() => parseWindows([{ kind: 'monthly', week: 5, weekday: 'tue', start: '01:00', durationMinutes: 60 }])).toThrow();
    expect(parseWindows([{ kind: 'weekly', days: ['sat', 'sun'], start: '23:59', durationMinutes: 7 * 24 * 60 }])).toHaveLength(1);
  });
});
