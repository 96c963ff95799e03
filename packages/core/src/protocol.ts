/**
 * The agent ↔ server protocol: enrollment and check-in bodies. Both sides import these
 * schemas, so a field cannot drift between them.
 */
import { z } from 'zod';
import { LIMITS, PackageFact, PackageKey, Sha256Hex, SystemFacts } from './facts.js';
import { DevicePublicKey } from './device-signing.js';

export const PROTOCOL_VERSION = 1;

export const EnrollRequest = z.strictObject({
  secret: z.string().min(16).max(256),
  system: SystemFacts,
  /** The device's own Ed25519 public key (made on the device); from then on every request is signed with it. */
  publicKey: DevicePublicKey.optional(),
});
export type EnrollRequest = z.infer<typeof EnrollRequest>;

export const EnrollResponse = z.object({
  deviceId: z.string(),
  token: z.string(),
  checkinIntervalSeconds: z.number().int().positive(),
  /** pending: the machine has an active record already; an administrator approves this one first */
  status: z.enum(['active', 'pending']).default('active'),
});
export type EnrollResponse = z.infer<typeof EnrollResponse>;

const SameInventory = z.strictObject({ mode: z.literal('same'), hash: Sha256Hex });
const DeltaInventory = z.strictObject({
  mode: z.literal('delta'),
  base: Sha256Hex,
  hash: Sha256Hex,
  add: z.array(PackageFact).max(LIMITS.maxPackages),
  remove: z.array(PackageKey).max(LIMITS.maxPackages),
});
const fullInventory = <T extends z.ZodType>(item: T) =>
  z.strictObject({ mode: z.literal('full'), hash: Sha256Hex, packages: z.array(item).max(LIMITS.maxPackages) });

export const InventoryUpdate = z.discriminatedUnion('mode', [SameInventory, DeltaInventory, fullInventory(PackageFact)]);
export type InventoryUpdate = z.infer<typeof InventoryUpdate>;

export const CheckinRequest = z.strictObject({
  protocol: z.literal(PROTOCOL_VERSION),
  /** The catalog generation whose collect directive the agent follows. */
  catalog: z.number().int().nonnegative().optional(),
  systemHash: Sha256Hex,
  /** Sent only when systemHash differs from the one the server last acknowledged. */
  system: SystemFacts.optional(),
  inventory: InventoryUpdate,
  /** Counts up by one per check-in the agent makes; a count that goes back means two copies of one identity. */
  sequence: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER).optional(),
});
export type CheckinRequest = z.infer<typeof CheckinRequest>;

/** What the agent must collect beyond its defaults: the files catalog rules name. */
export const CollectDirective = z.object({
  files: z.array(z.string().min(1).max(1024)).max(256),
  registry: z.array(z.string().min(1).max(1024)).max(256),
});
export type CollectDirective = z.infer<typeof CollectDirective>;

export const CheckinResponse = z.object({
  inventoryHash: Sha256Hex,
  systemHash: Sha256Hex,
  nextCheckinSeconds: z.number().int().positive(),
  /** Sent when the catalog generation differs from the one the agent echoed. */
  catalogGeneration: z.number().int().nonnegative().optional(),
  collect: CollectDirective.optional(),
});
export type CheckinResponse = z.infer<typeof CheckinResponse>;

/**
 * The check-in with its package lists unchecked: what the server validates first, so that an
 * inventory identical to a stored set can be recognised by its hash before the costly
 * per-package checks (which then run only for new content). See rawInventoryHash.
 */
export const CheckinEnvelope = z.strictObject({
  protocol: z.literal(PROTOCOL_VERSION),
  catalog: z.number().int().nonnegative().optional(),
  systemHash: Sha256Hex,
  system: SystemFacts.optional(),
  inventory: z.discriminatedUnion('mode', [SameInventory, DeltaInventory, fullInventory(z.unknown())]),
  sequence: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER).optional(),
});
export type CheckinEnvelope = z.infer<typeof CheckinEnvelope>;
