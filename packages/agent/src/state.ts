/**
 * What the agent keeps in its data directory: its identity (agent.json, owner-only) and the
 * last inventory the server acknowledged (the base of the next delta). Files are replaced
 * atomically, so a crash leaves the old or the new file, never half of one.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { devicePublicKeyOf, PackageFact, PatchwardenError, Sha256Hex, type DeviceKeyPair } from '@patchwarden/core';
import { generateKeyPairSync } from 'node:crypto';
import { trustServerCa, useDeviceKey } from './transport.js';

export const AgentState = z.object({
  server: z.string(),
  deviceId: z.string(),
  token: z.string(),
  enrolledAt: z.string(),
  checkinIntervalSeconds: z.number().int().positive(),
  /** Report-only agents collect and report; they never install (the default). */
  installs: z.boolean().default(false),
  acked: z.object({ systemHash: Sha256Hex, inventoryHash: Sha256Hex }).nullable().default(null),
  /** What the server asked this agent to collect, and for which catalog generation. */
  collect: z.object({ generation: z.number().int(), files: z.array(z.string()), registry: z.array(z.string()) }).nullable().default(null),
  /** the server's certificate authority (PEM), pinned at enrollment: over HTTPS only it is trusted */
  caPem: z.string().max(65_536).nullable().default(null),
  /** the device's own key pair, made here; the server holds only the public half */
  key: z.object({ privateKey: z.string().regex(/^[0-9a-f]{64}$/), publicKey: z.string().regex(/^[0-9a-f]{64}$/) }).nullable().default(null),
  /** false until the server has the public key (a device enrolled before device keys registers it) */
  keyRegistered: z.boolean().default(false),
  /** counts check-ins up, saved before each is sent: a count that goes back tells the server of a copied identity */
  sequence: z.number().int().nonnegative().default(0),
});
export type AgentState = z.infer<typeof AgentState>;

const STATE_FILE = 'agent.json';
const INVENTORY_FILE = 'acked-inventory.json';

function writeAtomic(path: string, data: string, mode = 0o600): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data, { mode });
  renameSync(tmp, path);
}

export function stateExists(dataDir: string): boolean {
  return existsSync(join(dataDir, STATE_FILE));
}

export function loadState(dataDir: string): AgentState {
  const path = join(dataDir, STATE_FILE);
  if (!existsSync(path)) {
    throw new PatchwardenError('E_NOT_ENROLLED', `this agent is not enrolled (no ${path})`, {
      hint: 'run `patchwarden agent enroll --server URL --secret S` first',
    });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new PatchwardenError('E_CONFIG_INVALID', `cannot read ${path}: ${(err as Error).message}`, { hint: 'enroll the agent again' });
  }
  const r = AgentState.safeParse(raw);
  if (!r.success) throw new PatchwardenError('E_CONFIG_INVALID', `${path} is damaged: ${r.error.issues[0]?.message}`, { hint: 'enroll again' });
  // every request to this server from here on trusts the pinned CA alone
  if (r.data.caPem) trustServerCa(r.data.server, r.data.caPem);
  // and every request made with the device's token is signed with its key
  if (r.data.key) {
    if (devicePublicKeyOf(r.data.key.privateKey) !== r.data.key.publicKey) {
      throw new PatchwardenError('E_CONFIG_INVALID', `${path} is damaged: its key pair does not belong together`, { hint: 'enroll again' });
    }
    useDeviceKey(r.data.token, r.data.key);
  }
  return r.data;
}

export function saveState(dataDir: string, state: AgentState): void {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  writeAtomic(join(dataDir, STATE_FILE), `${JSON.stringify(state, null, 2)}\n`);
}

const AckedInventory = z.object({ hash: Sha256Hex, packages: z.array(PackageFact) });

/** The acknowledged inventory, or null when missing or unreadable (the next report is full). */
export function loadAckedInventory(dataDir: string): z.infer<typeof AckedInventory> | null {
  try {
    const r = AckedInventory.safeParse(JSON.parse(readFileSync(join(dataDir, INVENTORY_FILE), 'utf8')));
    return r.success ? r.data : null;
  } catch {
    return null;
  }
}

export function saveAckedInventory(dataDir: string, hash: string, packages: PackageFact[]): void {
  writeAtomic(join(dataDir, INVENTORY_FILE), JSON.stringify({ hash, packages }));
}

/** A new Ed25519 key pair for this device, as hex (the seed and the raw public key). */
export function newDeviceKey(): DeviceKeyPair {
  const { privateKey } = generateKeyPairSync('ed25519');
  const jwk = privateKey.export({ format: 'jwk' });
  return { privateKey: Buffer.from(jwk.d!, 'base64url').toString('hex'), publicKey: Buffer.from(jwk.x!, 'base64url').toString('hex') };
}
