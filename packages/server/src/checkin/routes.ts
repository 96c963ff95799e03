import { validatorCompiler, type FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { CheckinEnvelope, CheckinRequest, DevicePublicKey, EnrollRequest } from '@patchwarden/core';
import { z } from 'zod';
import type { AppContext } from '../http/context.js';
import { requireDevice } from '../http/auth.js';
import { checkin, enroll, registerDeviceKey } from './service.js';

/** Decoded-size ceiling of a check-in: 50,000 packages at about 200 bytes each, with room. */
export const CHECKIN_BODY_LIMIT = 16 * 1024 * 1024;

export function checkinRoutes(ctx: AppContext): FastifyPluginAsyncZod {
  return async (app) => {
    app.post(
      '/api/v1/enroll',
      {
        // per address: an enrolling device has no credential yet
        config: { auth: 'public', rateLimit: ctx.rateLimits.enrollPerMinute > 0 ? { max: ctx.rateLimits.enrollPerMinute, timeWindow: 60_000, keyGenerator: (req) => req.ip } : false },
        bodyLimit: 64 * 1024,
        schema: { tags: ['agent'], summary: 'Enroll a device with an enrollment secret', body: EnrollRequest },
      },
      async (req) => enroll({ ...ctx }, req.body),
    );

    app.post(
      '/api/v1/agent/checkin',
      {
        config: { auth: 'device' },
        bodyLimit: CHECKIN_BODY_LIMIT,
        schema: {
          tags: ['agent'],
          summary: 'Report facts: full, as a delta against a known inventory, or only its hash',
          // documented as the full request; checked first as the envelope, then in the handler
          body: CheckinRequest,
        },
        validatorCompiler: (route) => validatorCompiler({ ...route, schema: CheckinEnvelope }),
      },
      async (req) => checkin(ctx, requireDevice(req), req.body as unknown as CheckinEnvelope),
    );

    app.post(
      '/api/v1/agent/key',
      {
        config: { auth: 'device' },
        schema: {
          tags: ['agent'],
          summary: 'A device enrolled before device keys registers the public half of the key pair it made; once only, and from then on it signs every request',
          body: z.strictObject({ publicKey: DevicePublicKey }),
        },
      },
      async (req) => registerDeviceKey(ctx, requireDevice(req), req.body.publicKey),
    );
  };
}
