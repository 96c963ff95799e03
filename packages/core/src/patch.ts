/**
 * The patch object's manifest: identity, metadata, scope, rules, relationships, the install and
 * undo actions and the payload files they read. Detection needs only the first part; every
 * later field is optional with a default, so manifests written before them still validate.
 */
import { z } from 'zod';
import { ActionSchema, actionPayloadRef, MAX_ACTIONS, PayloadPath, type Action } from './actions.js';
import { Sha256Hex } from './facts.js';
import { parseRule, type Rule } from './rules/schema.js';
import { SEVERITIES } from './states.js';

/** `namespace/name`: segments of [a-z0-9][a-z0-9._+~-]*, joined by '/'. */
export const PATCH_ID_RE = /^[a-z0-9][a-z0-9._+~-]*(?:\/[a-z0-9][a-z0-9._+~-]*)+$/;
export const PatchId = z.string().max(255).regex(PATCH_ID_RE, 'a patch id is namespace/name in lowercase letters, digits and . _ + ~ -');

const RuleField = z.unknown().transform((v, ctx): Rule => {
  const r = parseRule(v);
  if (!r.ok) {
    ctx.addIssue({ code: 'custom', message: r.reason });
    return z.NEVER;
  }
  return r.rule;
});

export const Platform = z.strictObject({
  family: z.string().max(32),
  distribution: z.string().max(64).optional(),
  /** a release version (`12`) or codename (`bookworm`) */
  release: z.string().max(64).optional(),
  arch: z.array(z.string().max(32)).min(1).max(16).optional(),
});
export type Platform = z.infer<typeof Platform>;

export const PackageFix = z.strictObject({
  manager: z.string().max(16),
  name: z.string().max(200),
  arch: z.string().max(32).optional(),
  version: z.string().max(256),
});
export type PackageFix = z.infer<typeof PackageFix>;

/** Bytes; a full Windows update package can be well over 1 GiB. */
export const MAX_PAYLOAD_SIZE = 4 * 1024 ** 3;

export const PayloadFile = z.strictObject({
  path: PayloadPath,
  size: z.number().int().min(0).max(MAX_PAYLOAD_SIZE),
  sha256: Sha256Hex,
});
export type PayloadFile = z.infer<typeof PayloadFile>;

export interface ManifestProblem {
  path: (string | number)[];
  message: string;
}

/**
 * The rules between fields: payload paths are unique, and every file an action reads is one
 * the payload lists (the bundle's signature covers only those). Unique means unique where a
 * bundle is unpacked too: `A.msi` and `a.msi` are one file on Windows and macOS, and `a` cannot
 * be a file and the directory of `a/b` at once.
 */
export function checkManifest(m: { payload: readonly PayloadFile[]; install: readonly Action[]; undo: readonly Action[] }): ManifestProblem[] {
  const out: ManifestProblem[] = [];
  const byPath = new Map<string, PayloadFile>();
  const folded = new Map<string, string>();
  m.payload.forEach((f, i) => {
    const key = f.path.toLowerCase();
    const seen = folded.get(key);
    if (seen === undefined) folded.set(key, f.path);
    else if (seen === f.path) out.push({ path: ['payload', i, 'path'], message: `payload path '${f.path}' is listed twice` });
    else out.push({ path: ['payload', i, 'path'], message: `payload paths '${seen}' and '${f.path}' differ only in case` });
    byPath.set(f.path, f);
  });
  for (const f of m.payload) {
    const segments = f.path.split('/');
    for (let n = 1; n < segments.length; n++) {
      const file = folded.get(segments.slice(0, n).join('/').toLowerCase());
      if (file === undefined) continue;
      out.push({ path: ['payload'], message: `payload path '${file}' is a file and also the directory of '${f.path}'` });
      break;
    }
  }
  for (const list of ['install', 'undo'] as const) {
    m[list].forEach((a, i) => out.push(...actionPayloadProblems(a, byPath, [list, i])));
  }
  return out;
}

function actionPayloadProblems(a: Action, byPath: Map<string, PayloadFile>, at: (string | number)[]): ManifestProblem[] {
  const ref = actionPayloadRef(a);
  if (ref === undefined) return [];
  const field = a.type === 'package' ? 'file' : 'source';
  const f = byPath.get(ref);
  if (!f) return [{ path: [...at, field], message: `${at[0]} action ${at[1]} reads '${ref}', which the payload does not list` }];
  // placing a file from the payload gives the payload's content; another hash can never verify
  if (a.type === 'file' && a.sha256 !== undefined && a.sha256 !== f.sha256) {
    return [{ path: [...at, 'sha256'], message: `${at[0]} action ${at[1]} expects sha256 ${a.sha256}, but its source '${ref}' has ${f.sha256}` }];
  }
  return [];
}

/**
 * The fields alone, without the rules between them: zod refuses .pick(), .omit() and .partial()
 * on an object with refinements, so derived schemas start here (and call checkManifest).
 */
export const PatchManifestFields = z.strictObject({
  id: PatchId,
  revision: z.number().int().min(1).max(1_000_000),
  title: z.string().min(1).max(300),
  description: z.string().max(20_000).optional(),
  vendor: z.string().max(100).optional(),
  product: z.string().max(200).optional(),
  severity: z.enum(SEVERITIES),
  cves: z.array(z.string().regex(/^CVE-\d{4}-\d{4,}$/)).max(1000).default([]),
  advisories: z.array(z.string().max(100)).max(1000).default([]),
  releaseDate: z.iso.date().optional(),
  platforms: z.array(Platform).min(1).max(64),
  applicability: RuleField,
  installed: RuleField,
  requires: z.array(PatchId).max(256).default([]),
  supersedes: z.array(PatchId).max(4096).default([]),
  conflicts: z.array(PatchId).max(256).default([]),
  restart: z
    .strictObject({ reboot: z.enum(['never', 'possible', 'required']), kernel: z.boolean().default(false) })
    .default({ reboot: 'never', kernel: false }),
  /** The package versions that fix it, for reports and `scan` (which package, to what version). */
  fixes: z.array(PackageFix).max(10_000).default([]),
  /** The files of the bundle that the actions read; the signature covers their hashes. */
  payload: z.array(PayloadFile).max(1024).default([]),
  install: z.array(ActionSchema).max(MAX_ACTIONS).default([]),
  /** What an undo job runs, in order. */
  undo: z.array(ActionSchema).max(MAX_ACTIONS).default([]),
});

export const PatchManifest = PatchManifestFields.superRefine((m, ctx) => {
  for (const p of checkManifest(m)) ctx.addIssue({ code: 'custom', message: p.message, path: p.path });
});
export type PatchManifest = z.infer<typeof PatchManifest>;
