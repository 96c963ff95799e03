/**
 * The patch object's manifest: identity, metadata, scope, rules and relationships. Signing,
 * actions and payloads extend it (the catalog issue); detection needs what is here.
 */
import { z } from 'zod';
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

export const PatchManifest = z.strictObject({
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
});
export type PatchManifest = z.infer<typeof PatchManifest>;
