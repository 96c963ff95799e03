import { describe, expect, it } from 'vitest';
import { rebootAt } from './reboot.js';

const t = (s: string) => Date.parse(s);
// Saturdays 22:00 for 4 hours, Berlin time
const windows = [{ kind: 'weekly' as const, days: ['sat' as const], start: '22:00', durationMinutes: 240 }];

describe('rebootAt', () => {
  it('never reboots under "never"', () => {
    expect(rebootAt('never', { windows, tz: 'Europe/Berlin', now: t('2026-11-28T21:30:00Z') })).toBeNull();
  });
  it('reboots at the end of the window the install ran in, in the device time zone', () => {
    // 22:30 Berlin (21:30 UTC) is inside the window that ends at 02:00 Berlin = 01:00 UTC
    expect(rebootAt('window-end', { windows, tz: 'Europe/Berlin', now: t('2026-11-28T21:30:00Z') })).toBe(t('2026-11-29T01:00:00Z'));
  });
  it('reboots at once when the install ran outside any window (the deadline catch-up) or with no windows', () => {
    const now = t('2026-11-26T10:00:00Z');
    expect(rebootAt('window-end', { windows, tz: 'Europe/Berlin', now })).toBe(now);
    expect(rebootAt('window-end', { windows: [], tz: 'UTC', now })).toBe(now);
  });
  it('reboots at the deadline, or at once when it passed, or at the window end without one', () => {
    const now = t('2026-11-28T21:30:00Z');
    expect(rebootAt('deadline', { windows, tz: 'Europe/Berlin', now, deadline: t('2026-12-01T00:00:00Z') })).toBe(t('2026-12-01T00:00:00Z'));
    expect(rebootAt('deadline', { windows, tz: 'Europe/Berlin', now, deadline: t('2026-11-01T00:00:00Z') })).toBe(now);
    expect(rebootAt('deadline', { windows, tz: 'Europe/Berlin', now })).toBe(t('2026-11-29T01:00:00Z'));
  });
});
