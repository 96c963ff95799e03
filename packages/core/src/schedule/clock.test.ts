import { describe, expect, it } from 'vitest';
import { fixedClock, manualClock } from './clock.js';

describe('clocks', () => {
  it('a fixed clock never moves', () => {
    const c = fixedClock('2026-03-29T01:00:00Z');
    expect(c.now()).toBe(Date.parse('2026-03-29T01:00:00Z'));
    expect(c.now()).toBe(c.now());
  });
  it('a manual clock moves when told', () => {
    const c = manualClock(0);
    c.advance(24 * 3_600_000);
    expect(new Date(c.now()).toISOString()).toBe('1970-01-02T00:00:00.000Z');
    c.set('2026-11-01T06:00:00Z');
    expect(c.now()).toBe(Date.parse('2026-11-01T06:00:00Z'));
    expect(() => c.set('not a date')).toThrow(TypeError);
  });
});
