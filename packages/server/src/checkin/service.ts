/**
 * Enrollment and check-in: the only writes an agent can make. Each check-in is applied in one
 * transaction (system facts, package set, device pointer) or not at all.
 */
import type { Kysely } from 'kysely';
import {
  applyDelta,
  canonicalDigest,
  inventoryHash,
  PatchwardenError,
  sortInventory,
  type CheckinEnvelope,
  type CheckinResponse,
  type EnrollRequest,
  type EnrollResponse,
  PackageFact,
  rawInventoryHash,
  type SystemFacts,
} from '@patchwarden/core';
import { z } from 'zod';
import type { DB, DevicesTable } from '../db/schema.js';
import type { Dialect } from '../db/database.js';
import { hashToken, newId, newToken } from '../auth/tokens.js';
import { useSecret } from '../enrollment/store.js';
import { ensureSet, findSet, loadSetPackages, type SetCache, type SetRef } from '../inventory/store.js';
import { changedKeys, type ComplianceEngine } from '../compliance/engine.js';
import { detectRemovedPatches, recordDeviceEvent } from '../devices/events.js';

export interface CheckinContext {
  db: Kysely<DB>;
  dialect: Dialect;
  compliance?: ComplianceEngine;
  sets: SetCache;
  now: () => number;
  checkinIntervalSeconds: number;
  bus?: { emit(name: 'checkin', event: { deviceId: string; hostname: string | null; at: string }): void };
}

export interface DeviceIdentity {
  kind: 'device';
  id: string;
  status: DevicesTable['status'];
  systemHash: string | null;
  setHash: string | null;
  contextId: number | null;
  /** the device's own public key: with one, every request of the device must be signed by it */
  publicKey: string | null;
  lastSequence: number | null;
  cloneSuspectedAt: number | null;
}

export async function findDeviceByToken(db: Kysely<DB>, token: string): Promise<DeviceIdentity | null> {
  const row = await db
    .selectFrom('devices as d')
    .leftJoin('package_sets as s', 's.id', 'd.package_set_id')
    .leftJoin('eval_contexts as c', 'c.id', 'd.context_id')
    .select(['d.id', 'd.status', 'd.system_hash', 'd.context_id', 'd.package_set_id', 's.hash as set_hash', 'c.package_set_id as context_set_id', 'd.public_key', 'd.last_sequence', 'd.clone_suspected_at'])
    .where('d.token_hash', '=', hashToken(token))
    .executeTakeFirst();
  return row
    ? {
        kind: 'device',
        id: row.id,
        status: row.status,
        systemHash: row.system_hash,
        setHash: row.set_hash,
        // a context for another inventory than the device's (a state write lost in a crash)
        contextId: row.context_id !== null && row.context_set_id === row.package_set_id ? row.context_id : null,
        publicKey: row.public_key ?? null,
        lastSequence: row.last_sequence ?? null,
        cloneSuspectedAt: row.clone_suspected_at ?? null,
      }
    : null;
}

function systemColumns(system: SystemFacts, systemHash: string) {
  // the collector that owns the inventory decides what "no packages" means
  const inv =
    system.collectors.find((c) => c.status === 'ok') ??
    system.collectors.find((c) => c.status === 'unsupported') ??
    system.collectors.find((c) => c.status === 'error') ??
    system.collectors[0];
  return {
    hostname: system.hostname,
    system_json: JSON.stringify(system),
    system_hash: systemHash,
    os_pretty: system.os.prettyName ?? system.os.name ?? system.os.distribution ?? system.os.family,
    inventory_status: inv?.status ?? ('none' as const),
    inventory_message: inv?.message ?? null,
  };
}

export async function enroll(ctx: CheckinContext, req: EnrollRequest): Promise<EnrollResponse> {
  const secret = await useSecret(ctx.db, req.secret, ctx.now());
  if (!secret) {
    throw new PatchwardenError('E_ENROLLMENT_SECRET_INVALID', 'the enrollment secret is not valid (unknown, rotated or revoked)', {
      hint: 'ask an administrator for a current secret (`patchwarden secrets create`)',
    });
  }
  const token = newToken('device');
  const id = newId();
  const now = ctx.now();
  let duplicateOf: string | null = null;
  await ctx.db.transaction().execute(async (tx) => {
    // the same machine enrolling again while its record is active: a reinstall, a restored
    // image or a copied identity. The new record waits for an administrator.
    const machineId = req.system.machineId ?? null;
    if (machineId) {
      const known = await tx.selectFrom('devices').select('id').where('machine_id', '=', machineId).where('status', '=', 'active').orderBy('enrolled_at', 'desc').executeTakeFirst();
      duplicateOf = known?.id ?? null;
    }
    await tx
      .insertInto('devices')
      .values({
        id,
        status: duplicateOf ? 'pending' : 'active',
        public_key: req.publicKey ?? null,
        key_registered_at: req.publicKey ? now : null,
        machine_id: machineId,
        duplicate_of: duplicateOf,
        group_id: secret.groupId,
        token_hash: hashToken(token),
        secret_id: secret.id,
        enrolled_at: now,
        last_seen_at: null,
        revoked_at: null,
        package_set_id: null,
        context_id: null,
        package_count: 0,
        ...systemColumns(req.system, canonicalDigest(req.system)),
        // the inventory itself arrives with the first check-in, which then writes these
        system_hash: null,
        inventory_status: 'none',
        inventory_message: null,
      })
      .execute();
    // counted in the same transaction, and only while uses remain: two devices racing for the
    // last use of a secret cannot both get it
    let bump = tx
      .updateTable('enrollment_secrets')
      .set((eb) => ({ uses: eb('uses', '+', 1), last_used_at: now }))
      .where('id', '=', secret.id);
    if (secret.maxUses !== null) bump = bump.where('uses', '<', secret.maxUses);
    const r = await bump.executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) throw new PatchwardenError('E_ENROLLMENT_SECRET_INVALID', 'the enrollment secret has enrolled all the devices it may', { hint: 'ask an administrator for a new secret' });
    if (duplicateOf) {
      await recordDeviceEvent(tx, { deviceId: id, at: now, kind: 'enrollment-pending', message: `enrolled again while device ${duplicateOf} of the same machine is active: waits for an administrator` });
      await recordDeviceEvent(tx, { deviceId: duplicateOf, at: now, kind: 'enrolled-again', message: `the machine enrolled again as ${id}, waiting for approval` });
    }
  });
  return { deviceId: id, token, checkinIntervalSeconds: ctx.checkinIntervalSeconds, status: duplicateOf ? 'pending' : 'active' };
}

/**
 * The public key of a device that enrolled before device keys. Only a device without one may
 * register it: whoever holds the key signs from then on, and a stolen token cannot replace it.
 */
export async function registerDeviceKey(ctx: CheckinContext, device: DeviceIdentity, publicKey: string): Promise<{ deviceId: string; signed: true }> {
  const now = ctx.now();
  // the same key again is the agent retrying after a lost answer
  if (device.publicKey === publicKey) return { deviceId: device.id, signed: true };
  const r = await ctx.db.updateTable('devices').set({ public_key: publicKey, key_registered_at: now }).where('id', '=', device.id).where('public_key', 'is', null).executeTakeFirst();
  if (Number(r.numUpdatedRows) !== 1) {
    throw new PatchwardenError('E_CONFLICT', 'this device has a key already: it cannot be replaced over the network', {
      hint: 'an agent that lost its key must be enrolled again (`patchwarden agent enroll`)',
    });
  }
  await recordDeviceEvent(ctx.db, { deviceId: device.id, at: now, kind: 'key-registered', message: 'the agent registered its own key: every request is signed from now on' });
  return { deviceId: device.id, signed: true };
}

const baseUnknown = (what: string) =>
  new PatchwardenError('E_INVENTORY_BASE_UNKNOWN', `the server does not know the ${what} this check-in builds on`, {
    hint: 'the agent resends its facts in full',
  });

async function knownSet(ctx: CheckinContext, hash: string): Promise<SetRef | null> {
  const cached = ctx.sets.get(hash);
  if (cached) return cached;
  const found = await findSet(ctx.db, hash);
  if (found) ctx.sets.put(found);
  return found;
}

function checkedInventory(packages: PackageFact[], declared: string): PackageFact[] {
  const dup = sortInventory(packages);
  if (dup !== null) throw new PatchwardenError('E_VALIDATION', `the inventory lists package ${dup.replace(/\t/g, ' ')} twice`);
  const actual = inventoryHash(packages);
  if (actual !== declared) {
    throw new PatchwardenError('E_INVENTORY_HASH_MISMATCH', `the inventory hashes to ${actual}, not the declared ${declared}`, {
      hint: 'the agent resends its inventory in full',
    });
  }
  return packages;
}

const PackageList = z.array(PackageFact);

/** The per-package checks of a full inventory, with the failing item's path in the error. */
function checkedPackages(items: unknown[]): PackageFact[] {
  const r = PackageList.safeParse(items);
  if (r.success) return r.data;
  const details = r.error.issues.slice(0, 20).map((i) => ({ path: `/inventory/packages/${i.path.join('/')}`, message: i.message }));
  throw new PatchwardenError('E_VALIDATION', `invalid request body: ${details[0]!.path} ${details[0]!.message}`, { details });
}

export async function checkin(ctx: CheckinContext, device: DeviceIdentity, req: CheckinEnvelope): Promise<CheckinResponse> {
  if (device.status !== 'active') {
    throw new PatchwardenError('E_DEVICE_REVOKED', 'this device has been revoked', { hint: 'an administrator must enroll it again' });
  }
  if (req.system) {
    const actual = canonicalDigest(req.system);
    if (actual !== req.systemHash) {
      throw new PatchwardenError('E_INVENTORY_HASH_MISMATCH', `the system facts hash to ${actual}, not the declared ${req.systemHash}`);
    }
  } else if (req.systemHash !== device.systemHash) {
    throw baseUnknown('system facts');
  }

  const inv = req.inventory;
  let set: SetRef | null = null;
  let newPackages: PackageFact[] | null = null;
  let changed: Set<string> | undefined;
  if (inv.mode === 'same') {
    set = await knownSet(ctx, inv.hash);
    if (!set) throw baseUnknown('inventory');
  } else if (inv.mode === 'delta') {
    set = await knownSet(ctx, inv.hash);
    if (!set) {
      const base = await knownSet(ctx, inv.base);
      if (!base) throw baseUnknown('inventory');
      const before = await loadSetPackages(ctx.db, base.id);
      newPackages = checkedInventory(applyDelta(before, inv), inv.hash);
      changed = changedKeys(before, newPackages);
    }
  } else {
    // identical to a stored (so already checked) set: recognised by hashing the items as sent
    const known = rawInventoryHash(inv.packages) === inv.hash ? await knownSet(ctx, inv.hash) : null;
    if (known) set = known;
    else newPackages = checkedInventory(checkedPackages(inv.packages), inv.hash);
  }

  const now = ctx.now();
  // a count that does not go up: two machines check in with one identity (a cloned disk or a copied data directory)
  const sequence = req.sequence ?? null;
  const cloned = sequence !== null && device.lastSequence !== null && sequence <= device.lastSequence;
  if (cloned && device.cloneSuspectedAt === null) {
    await recordDeviceEvent(ctx.db, { deviceId: device.id, at: now, kind: 'clone-suspected', message: `check-in number ${sequence} after number ${device.lastSequence}: two machines seem to hold this device's identity` });
  }
  const pointDevice = (db: Kysely<DB>, s: SetRef) =>
    db
      .updateTable('devices')
      .set({
        last_seen_at: now,
        package_set_id: s.id,
        package_count: s.packageCount,
        ...(req.system && req.systemHash !== device.systemHash ? systemColumns(req.system, req.systemHash) : {}),
        ...(sequence !== null && !cloned ? { last_sequence: sequence } : {}),
        ...(cloned && device.cloneSuspectedAt === null ? { clone_suspected_at: now } : {}),
      })
      .where('id', '=', device.id)
      .where('status', '=', 'active')
      .execute();
  if (newPackages) {
    const pk = newPackages;
    set = await ctx.db.transaction().execute(async (tx) => {
      const s = await ensureSet(tx, ctx.dialect, pk, inv.hash, now);
      await pointDevice(tx, s);
      return s;
    });
  } else {
    // one statement is atomic on its own: no transaction round trips for the common case
    await pointDevice(ctx.db, set!);
  }
  if (set) ctx.sets.put(set);
  const s = set!;
  // nothing rules read changed: the device's states are current already
  const moved = (req.system !== undefined && req.systemHash !== device.systemHash) || s.hash !== device.setHash || device.contextId === null;
  if (ctx.compliance && moved) {
    const system =
      req.system ??
      (JSON.parse(
        (await ctx.db.selectFrom('devices').select('system_json').where('id', '=', device.id).executeTakeFirstOrThrow()).system_json ?? 'null',
      ) as SystemFacts | null);
    const known = { ...(newPackages ? { packages: newPackages } : {}), ...(changed ? { changed } : {}) };
    if (system) await ctx.compliance.assignDevice(device.id, s, system, device.contextId, known);
    // a patch a job installed that is needed again was removed by hand: say so in the device's history
    await detectRemovedPatches(ctx.db, now, device.id);
  }
  ctx.bus?.emit('checkin', { deviceId: device.id, hostname: req.system?.hostname ?? null, at: new Date(now).toISOString() });
  const res: CheckinResponse = { inventoryHash: inv.hash, systemHash: req.systemHash, nextCheckinSeconds: ctx.checkinIntervalSeconds };
  if (ctx.compliance) {
    const cat = await ctx.compliance.recentCatalog();
    if (req.catalog !== cat.generation) {
      res.catalogGeneration = cat.generation;
      res.collect = cat.collect;
    }
  }
  return res;
}
