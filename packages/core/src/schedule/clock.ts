/**
 * The one clock interface. Core never reads the time: server and agent inject a clock (their own
 * real one), tests inject these, so 24-hour bakes, deadlines and DST changes run in milliseconds.
 */
export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
}

export interface ManualClock extends Clock {
  /** Moves the clock to an instant (epoch ms or ISO string); it may go backwards, as real clocks can. */
  set(at: number | string): void;
  /** Moves the clock forward by `ms` (negative moves it back). */
  advance(ms: number): void;
}

function toMs(at: number | string): number {
  const ms = typeof at === 'number' ? at : Date.parse(at);
  if (!Number.isFinite(ms)) throw new TypeError(`not an instant: ${String(at)}`);
  return ms;
}

/** A clock that always answers the same instant. */
export function fixedClock(at: number | string): Clock {
  const ms = toMs(at);
  return { now: () => ms };
}

/** A clock that moves only when told to. */
export function manualClock(start: number | string): ManualClock {
  let ms = toMs(start);
  return {
    now: () => ms,
    set(at) {
      ms = toMs(at);
    },
    advance(delta) {
      ms += delta;
    },
  };
}
