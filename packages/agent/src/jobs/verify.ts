/**
 * What the agent checks about a patch object before anything of it is used, beyond tuf-js's
 * verification of the catalog: the object is the job's patch; a vendor object (signed by an
 * online role) holds package-manager actions only; a bundle carries enough signatures of the
 * author keys that the pinned catalog delegates `custom/*` to; and the object sits at the path
 * its id names, so a `custom/*` patch is only ever taken from the role its authors sign (an
 * online key could otherwise list an author's bundle, even one the author retracted, under a
 * vendor path).
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import {
  actionsNeedAuthor,
  parseManifest,
  PatchwardenError,
  ruleFactKeys,
  verifyBundle,
  type AgentJob,
  type PatchManifest,
  type TufPublicKey,
} from '@patchwarden/core';

export interface VerifiedObject {
  manifest: PatchManifest;
  /** bundle payload by payload path; empty for a vendor object */
  payload: Map<string, Buffer>;
}

interface DelegatedRole {
  name: string;
  keyids: string[];
  threshold: number;
  paths?: string[];
}

/** The keys and threshold of the `custom` role, as the verified `targets` metadata on disk delegates them. */
function authorKeys(dataDir: string): { trusted: Map<string, TufPublicKey>; threshold: number } {
  const file = path.join(dataDir, 'tuf', 'metadata', 'targets.json');
  if (!existsSync(file)) throw new PatchwardenError('E_SIGNATURE_INVALID', 'no verified targets metadata on this agent, so no author key is known');
  const doc = JSON.parse(readFileSync(file, 'utf8')) as { signed?: { delegations?: { keys?: Record<string, TufPublicKey>; roles?: DelegatedRole[] } } };
  const del = doc.signed?.delegations;
  const role = del?.roles?.find((r) => r.name === 'custom');
  if (!del || !role) throw new PatchwardenError('E_SIGNATURE_INVALID', 'the catalog delegates custom patches to no author keys');
  const trusted = new Map<string, TufPublicKey>();
  for (const id of role.keyids) {
    const k = del.keys?.[id];
    if (k) trusted.set(id, k);
  }
  return { trusted, threshold: Math.max(1, role.threshold) };
}

/** Where the signed catalog keeps a patch object (the server's `targetPathOf`). */
export function targetPathOf(id: string, kind: 'json' | 'bundle'): string {
  const at = id.indexOf('/');
  return `${id.slice(0, at)}/${id.slice(at + 1).replaceAll('/', '.S.')}.${kind}`;
}

export function verifyPatchObject(dataDir: string, job: AgentJob, kind: 'json' | 'bundle', bytes: Buffer): VerifiedObject {
  const v = readPatchObject(dataDir, job.target, kind, bytes);
  const manifest = v.manifest;
  if (manifest.id !== job.patch.id || manifest.revision !== job.patch.revision) {
    throw new PatchwardenError('E_SIGNATURE_INVALID', `the job names ${job.patch.id} r${job.patch.revision}, but the signed object is ${manifest.id} r${manifest.revision}`, {
      hint: 'the catalog moved on since the deployment was made; deploy the current revision',
    });
  }
  return v;
}

/** The files a verified patch object's rules read (what the agent may be asked to report). */
export function ruleFilesOf(dataDir: string, targetPath: string, bytes: Buffer): { files: string[] } {
  const { manifest } = readPatchObject(dataDir, targetPath, targetPath.endsWith('.bundle') ? 'bundle' : 'json', bytes);
  const keys = [...ruleFactKeys(manifest.applicability), ...ruleFactKeys(manifest.installed)];
  return { files: [...new Set(keys.filter((k) => k.startsWith('file:')).map((k) => k.slice(5)))] };
}

function readPatchObject(dataDir: string, target: string, kind: 'json' | 'bundle', bytes: Buffer): VerifiedObject {
  let manifest: PatchManifest;
  let payload = new Map<string, Buffer>();
  if (kind === 'bundle') {
    const keys = authorKeys(dataDir);
    const b = verifyBundle(bytes, { trusted: keys.trusted, threshold: keys.threshold });
    manifest = b.manifest;
    payload = b.payload;
  } else {
    let json: unknown;
    try {
      json = JSON.parse(bytes.toString('utf8'));
    } catch (err) {
      throw new PatchwardenError('E_VALIDATION', `the patch object ${target} is not JSON: ${(err as Error).message}`);
    }
    manifest = parseManifest(json);
    // the agent holds this line itself, even against a server whose online key was stolen
    if (actionsNeedAuthor(manifest)) {
      throw new PatchwardenError('E_SIGNATURE_INVALID', `${manifest.id} is signed by an online key only, but holds scripts, file operations or bundled packages, which need an author's signature`, {
        hint: 'the server may be compromised; nothing of this patch was run',
      });
    }
  }
  if (target !== targetPathOf(manifest.id, kind)) {
    throw new PatchwardenError('E_SIGNATURE_INVALID', `${manifest.id} r${manifest.revision} was found at ${target}, not at ${targetPathOf(manifest.id, kind)} where the catalog keeps it`, {
      hint: 'a patch object listed under another path was signed for another role; the server may be compromised; nothing of it was run',
    });
  }
  return { manifest, payload };
}
