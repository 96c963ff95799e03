import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { can } from '../http/auth.js';
import { assertDevicesInScope } from '../auth/scope.js';
import { listDeviceEvents } from './events.js';
import type { AppContext } from '../http/context.js';
import { DEVICE_SORT_FIELDS } from '@patchwarden/core';
import { changeDeviceLabels, getDevice, listDevicePackages, listDevices, resolveDeviceId, approveDevice, revokeDevice, setDeviceGroup } from './store.js';

export const LABEL_RE = /^[A-Za-z0-9][A-Za-z0-9._:=/-]{0,62}$/;
const Label = z.string().regex(LABEL_RE, 'a label is 1–63 letters, digits and . _ : = / -, starting with a letter or digit');
const Ref = z.object({ ref: z.string().min(1).max(255) });
const Paging = {
  limit: z.coerce.number().int().min(1).max(1000).default(50),
  offset: z.coerce.number().int().min(0).max(10_000_000).default(0),
};

export function deviceRoutes(ctx: AppContext): FastifyPluginAsyncZod {
  const { db } = ctx;
  return async (app) => {
    app.get(
      '/api/v1/devices',
      {
        config: can('view'),
        schema: {
          tags: ['devices'],
          summary: 'List devices (search, filter, sort, page)',
          querystring: z.strictObject({
            search: z.string().max(200).optional(),
            os: z.string().max(200).optional(),
            group: z.string().max(200).optional(),
            label: Label.optional(),
            status: z.enum(['active', 'pending', 'revoked']).optional(),
            sort: z.enum(DEVICE_SORT_FIELDS).optional(),
            order: z.enum(['asc', 'desc']).optional(),
            ...Paging,
          }),
        },
      },
      async (req) => listDevices(db, req.query),
    );

    app.get(
      '/api/v1/devices/:ref',
      { config: can('view'), schema: { tags: ['devices'], summary: 'One device by id or hostname', params: Ref } },
      async (req) => getDevice(db, req.params.ref),
    );

    app.get(
      '/api/v1/devices/:ref/packages',
      {
        config: can('view'),
        schema: {
          tags: ['devices'],
          summary: "A device's installed packages",
          params: Ref,
          querystring: z.strictObject({ search: z.string().max(200).optional(), ...Paging, limit: Paging.limit.default(100) }),
        },
      },
      async (req) => listDevicePackages(db, req.params.ref, req.query),
    );

    app.post(
      '/api/v1/devices/:ref/revoke',
      { config: can('manage'), schema: { tags: ['devices'], summary: 'Revoke a device: its token stops working at once', params: Ref } },
      async (req) => revokeDevice(db, req.params.ref, ctx.now()),
    );

    app.post(
      '/api/v1/devices/:ref/approve',
      {
        config: can('manage'),
        schema: {
          tags: ['devices'],
          summary: "Approve a pending re-enrollment (the machine's older record is revoked unless keepOriginal) or clear a clone suspicion",
          params: Ref,
          body: z.strictObject({ keepOriginal: z.boolean().default(false) }).default({ keepOriginal: false }),
        },
      },
      async (req) => approveDevice(db, req.params.ref, ctx.now(), { keepOriginal: req.body.keepOriginal }),
    );

    app.put(
      '/api/v1/devices/:ref/group',
      {
        config: can('manage'),
        schema: {
          tags: ['devices'],
          summary: 'Put a device in a static group (null: no group)',
          params: Ref,
          body: z.strictObject({ group: z.string().min(1).max(200).nullable() }),
        },
      },
      async (req) => setDeviceGroup(db, req.params.ref, req.body.group),
    );

    app.post(
      '/api/v1/devices/:ref/labels',
      {
        config: can('manage'),
        schema: {
          tags: ['devices'],
          summary: 'Add and remove labels',
          params: Ref,
          body: z.strictObject({ add: z.array(Label).max(100).default([]), remove: z.array(Label).max(100).default([]) }),
        },
      },
      async (req) => changeDeviceLabels(db, req.params.ref, req.body.add, req.body.remove),
    );

    app.post(
      '/api/v1/devices/:ref/scan',
      { config: can('deploy'), schema: { tags: ['devices'], summary: 'Scan now: the device collects its facts and checks in at once (its agent hears it on its next job request, within seconds when it is running)', params: Ref } },
      async (req) => {
        const id = await resolveDeviceId(db, req.params.ref);
        await assertDevicesInScope(db, req.admin, [id]);
        await db.updateTable('devices').set({ scan_requested_at: ctx.now() }).where('id', '=', id).execute();
        ctx.wakeups.wake([id]);
        return { requested: true, deviceId: id, at: new Date(ctx.now()).toISOString() };
      },
    );

    app.get(
      '/api/v1/devices/:ref/events',
      {
        config: can('view'),
        schema: {
          tags: ['devices'],
          summary: "A device's events, newest first (a patch removed by hand after a job installed it, …)",
          params: Ref,
          querystring: z.strictObject({ limit: z.coerce.number().int().min(1).max(1000).default(100), offset: z.coerce.number().int().min(0).max(10_000_000).default(0) }),
        },
      },
      async (req) => listDeviceEvents(db, req.params.ref, req.query),
    );
  };
}
