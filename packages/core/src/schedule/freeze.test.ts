import { describe, expect, it } from 'vitest';
import { FreezePeriod, frozenAt, nextInstallSlot, type FreezePeriod as Freeze } from './freeze.js';
import type { WindowInput } from './windows.js';

const ms = (iso: string) => Date.parse(iso);
const iso = (t: number) => new Date(t).toISOString();
const slot = (s: { at: number; by: string } | null) => (s ? [iso(s.at), s.by] : null);

const tz = 'Europe/Berlin';
const newYear: Freeze = { kind: 'yearly', from: '12-20', to: '01-05', reason: 'year-end freeze' };
/** Tuesdays 02:00–04:00 local. */
const tuesdays: WindowInput[] = [{ kind: 'weekly', days: ['tue'], start: '02:00', durationMinutes: 120 }];

describe('frozenAt', () => {
  it('a yearly freeze over New Year covers Dec 20 00:00 to Jan 5 24:00 local', () => {
    const f = frozenAt([newYear], tz, ms('2027-01-01T12:00:00Z'));
    expect(f && [iso(f.start), iso(f.end), f.freeze.reason]).toEqual(['2026-12-19T23:00:00.000Z', '2027-01-05T23:00:00.000Z', 'year-end freeze']);
    const g = frozenAt([newYear], tz, ms('2026-12-25T00:00:00Z'));
    expect(g && [iso(g.start), iso(g.end)]).toEqual(['2026-12-19T23:00:00.000Z', '2027-01-05T23:00:00.000Z']);
    expect(frozenAt([newYear], tz, ms('2026-12-19T22:59:59.999Z'))).toBeNull();
    expect(frozenAt([newYear], tz, ms('2027-01-05T23:00:00Z'))).toBeNull();
    expect(frozenAt([newYear], tz, ms('2026-07-01T00:00:00Z'))).toBeNull();
  });

  it('yearly dates are local to the device unless the freeze names its zone', () => {
    const t = ms('2026-12-19T20:00:00Z'); // Dec 20 already in Kolkata (01:30), not yet in Berlin
    expect(frozenAt([newYear], 'Asia/Kolkata', t)).not.toBeNull();
    expect(frozenAt([newYear], tz, t)).toBeNull();
    expect(frozenAt([{ ...newYear, timeZone: 'Asia/Kolkata' }], tz, t)).not.toBeNull();
  });

  it('absolute freezes are half-open', () => {
    const f: Freeze = { kind: 'absolute', start: ms('2026-05-01T00:00:00Z'), end: ms('2026-05-02T00:00:00Z') };
    expect(frozenAt([f], tz, ms('2026-05-01T00:00:00Z'))).not.toBeNull();
    expect(frozenAt([f], tz, ms('2026-05-02T00:00:00Z'))).toBeNull();
  });

  it('checks the freeze schema', () => {
    expect(() => FreezePeriod.parse({ kind: 'yearly', from: '02-29', to: '03-01' })).toThrow();
    expect(() => FreezePeriod.parse({ kind: 'yearly', from: '04-31', to: '05-01' })).toThrow();
    expect(() => FreezePeriod.parse({ kind: 'absolute', start: 10, end: 10 })).toThrow();
    expect(FreezePeriod.parse({ kind: 'yearly', from: '12-20', to: '01-05' })).toEqual({ kind: 'yearly', from: '12-20', to: '01-05' });
  });
});

describe('nextInstallSlot', () => {
  it('the next window that is not frozen (the freeze skips three Tuesdays)', () => {
    // Tue Dec 15 after its window; Dec 22, Dec 29, Jan 5 are frozen; Jan 12 02:00 CET
    expect(slot(nextInstallSlot({ windows: [tuesdays], freezes: [newYear], tz, from: ms('2026-12-15T12:00:00Z'), start: 0 }))).toEqual([
      '2027-01-12T01:00:00.000Z',
      'window',
    ]);
  });

  it('inside a window: now; before the start: the first window after the start', () => {
    expect(slot(nextInstallSlot({ windows: tuesdays, freezes: [], tz, from: ms('2026-06-02T01:15:00Z'), start: 0 }))).toEqual([
      '2026-06-02T01:15:00.000Z',
      'window',
    ]);
    // a start inside the window (03:00 CEST): the start
    expect(
      slot(nextInstallSlot({ windows: tuesdays, freezes: [], tz, from: ms('2026-06-01T00:00:00Z'), start: ms('2026-06-02T01:00:00Z') })),
    ).toEqual(['2026-06-02T01:00:00.000Z', 'window']);
    // a start at the window's end (04:00 CEST, half-open): next Tuesday
    expect(
      slot(nextInstallSlot({ windows: tuesdays, freezes: [], tz, from: ms('2026-06-01T00:00:00Z'), start: ms('2026-06-02T02:00:00Z') })),
    ).toEqual(['2026-06-09T00:00:00.000Z', 'window']);
  });

  it('a freeze that ends inside a window lets the install start at its end', () => {
    const f: Freeze = { kind: 'absolute', start: ms('2026-06-01T00:00:00Z'), end: ms('2026-06-02T01:30:00Z') };
    expect(slot(nextInstallSlot({ windows: tuesdays, freezes: [f], tz, from: ms('2026-06-01T12:00:00Z'), start: 0 }))).toEqual([
      '2026-06-02T01:30:00.000Z',
      'window',
    ]);
  });

  it('an offline device catches up in the next window, or at the deadline when none comes first', () => {
    const from = ms('2026-06-03T08:00:00Z'); // came back on Wednesday, after Tuesday's window
    const deadline = ms('2026-06-05T18:00:00Z');
    expect(slot(nextInstallSlot({ windows: tuesdays, freezes: [], tz, from, start: 0, deadline }))).toEqual(['2026-06-05T18:00:00.000Z', 'deadline']);
    expect(slot(nextInstallSlot({ windows: tuesdays, freezes: [], tz, from, start: 0, deadline: ms('2026-06-10T00:00:00Z') }))).toEqual([
      '2026-06-09T00:00:00.000Z',
      'window',
    ]);
    // a deadline exactly at the window's start: the deadline
    expect(slot(nextInstallSlot({ windows: tuesdays, freezes: [], tz, from, start: 0, deadline: ms('2026-06-09T00:00:00Z') }))).toEqual([
      '2026-06-09T00:00:00.000Z',
      'deadline',
    ]);
    // back after the deadline: at once
    expect(slot(nextInstallSlot({ windows: tuesdays, freezes: [], tz, from, start: 0, deadline: ms('2026-06-01T00:00:00Z') }))).toEqual([
      '2026-06-03T08:00:00.000Z',
      'deadline',
    ]);
  });

  it('a deadline inside a freeze moves to the freeze’s end', () => {
    expect(
      slot(nextInstallSlot({ windows: tuesdays, freezes: [newYear], tz, from: ms('2026-12-16T00:00:00Z'), start: 0, deadline: ms('2027-01-04T00:00:00Z') })),
    ).toEqual(['2027-01-05T23:00:00.000Z', 'deadline']);
    // and before the freeze it stays where it is
    expect(
      slot(nextInstallSlot({ windows: tuesdays, freezes: [newYear], tz, from: ms('2026-12-16T00:00:00Z'), start: 0, deadline: ms('2026-12-18T00:00:00Z') })),
    ).toEqual(['2026-12-18T00:00:00.000Z', 'deadline']);
  });

  it('no windows: any time that is not frozen', () => {
    expect(slot(nextInstallSlot({ windows: [], freezes: [newYear], tz, from: ms('2026-12-24T00:00:00Z'), start: 0 }))).toEqual([
      '2027-01-05T23:00:00.000Z',
      'anytime',
    ]);
    expect(slot(nextInstallSlot({ windows: [[], []], freezes: [], tz, from: ms('2026-06-01T00:00:00Z'), start: 0 }))).toEqual([
      '2026-06-01T00:00:00.000Z',
      'anytime',
    ]);
  });

  it('windows of two groups: the earliest unfrozen one', () => {
    const weekend: WindowInput[] = [{ kind: 'weekly', days: ['sat'], start: '22:00', durationMinutes: 300 }];
    expect(slot(nextInstallSlot({ windows: [tuesdays, weekend], freezes: [], tz, from: ms('2026-06-03T08:00:00Z'), start: 0 }))).toEqual([
      '2026-06-06T20:00:00.000Z',
      'window',
    ]);
  });
});
