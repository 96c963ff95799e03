/**
 * A movable clock for tests of real server processes: `server --test-clock` makes the server's
 * time `Date.now() + offset`, and `POST /api/v1/test/clock` moves the offset forward, so a
 * 24-hour bake or a deadline passes in a second. The route exists only with that flag.
 */
import { z } from 'zod';
import { can } from './auth.js';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { AppContext } from './context.js';

export interface TestClock {
  advance(ms: number): void;
  offsetMs(): number;
}

export function movableClock(): { now: () => number; clock: TestClock } {
  let offset = 0;
  return {
    now: () => Date.now() + offset,
    clock: {
      advance: (ms) => {
        offset += ms;
      },
      offsetMs: () => offset,
    },
  };
}

export function testClockRoutes(ctx: AppContext, clock: TestClock): FastifyPluginAsyncZod {
  return async (app) => {
    app.post(
      '/api/v1/test/clock',
      {
        config: can('manage'),
        schema: {
          tags: ['server'],
          summary: 'Move the test clock forward (only with `server --test-clock`)',
          body: z.strictObject({ advanceMinutes: z.number().min(0).max(366 * 24 * 60) }),
        },
      },
      async (req) => {
        clock.advance(req.body.advanceMinutes * 60_000);
        // bakes and windows may have ended: let waiting agents ask again
        ctx.wakeups.wakeAll();
        return { now: new Date(ctx.now()).toISOString(), offsetMinutes: clock.offsetMs() / 60_000 };
      },
    );
  };
}
