/**
 * The OSV record (ossf/osv-schema, up to 1.7) as zod checks it: every field we know has its exact
 * type, limits keep a hostile record small, and the rules the JSON schema states beside the types
 * are checked too (an event has exactly one kind, a range has an `introduced`, `fixed` and
 * `last_affected` never share a range, a GIT range names its repo). Fields the schema may gain
 * later are ignored rather than refused: a new optional field must not reject a whole feed.
 */
import { z } from 'zod';

const TIMESTAMP_RE = /^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?Z$/;
const Timestamp = z.string().max(64).regex(TIMESTAMP_RE, 'expected an RFC 3339 UTC timestamp such as 2023-10-24T00:00:00Z');

/** `<DB>-<ENTRYID>`; it ends up in manifests and messages, so no path or control characters. */
export const OSV_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$/;
const Id = z.string().regex(OSV_ID_RE, 'an OSV id is letters, digits and . _ : - (at most 100)');

const Extra = z.record(z.string(), z.unknown());
const IdList = z.array(z.string().max(200)).max(5000);

const EVENT_KINDS = ['introduced', 'fixed', 'last_affected', 'limit'] as const;
export type EventKind = (typeof EVENT_KINDS)[number];

const Event = z
  .object({
    introduced: z.string().min(1).max(256).optional(),
    fixed: z.string().min(1).max(256).optional(),
    last_affected: z.string().min(1).max(256).optional(),
    limit: z.string().min(1).max(256).optional(),
  })
  .refine((e) => EVENT_KINDS.filter((k) => e[k] !== undefined).length === 1, 'an event has exactly one of introduced, fixed, last_affected, limit');

const Range = z
  .object({
    type: z.enum(['GIT', 'SEMVER', 'ECOSYSTEM']),
    repo: z.string().max(2000).optional(),
    events: z.array(Event).min(1).max(2000),
    database_specific: Extra.optional(),
  })
  .superRefine((r, ctx) => {
    if (!r.events.some((e) => e.introduced !== undefined)) ctx.addIssue({ code: 'custom', path: ['events'], message: 'a range has at least one introduced event' });
    if (r.events.some((e) => e.fixed !== undefined) && r.events.some((e) => e.last_affected !== undefined)) {
      ctx.addIssue({ code: 'custom', path: ['events'], message: 'a range has fixed or last_affected events, not both' });
    }
    if (r.type === 'GIT' && r.repo === undefined) ctx.addIssue({ code: 'custom', path: ['repo'], message: 'a GIT range names its repo' });
  });

const SeverityList = z
  .array(z.object({ type: z.string().min(1).max(32), score: z.string().min(1).max(512) }))
  .max(32)
  .nullable();

const Affected = z.object({
  package: z
    .object({
      ecosystem: z.string().min(1).max(100),
      name: z.string().min(1).max(1000),
      purl: z.string().max(2000).optional(),
    })
    .optional(),
  severity: SeverityList.optional(),
  ranges: z.array(Range).max(500).optional(),
  versions: z.array(z.string().max(256)).max(20_000).optional(),
  ecosystem_specific: Extra.optional(),
  database_specific: Extra.optional(),
});

export const OsvRecord = z.object({
  schema_version: z.string().max(32).optional(),
  id: Id,
  modified: Timestamp,
  published: Timestamp.optional(),
  withdrawn: Timestamp.optional(),
  aliases: IdList.nullable().optional(),
  related: IdList.optional(),
  upstream: IdList.optional(),
  summary: z.string().max(10_000).optional(),
  details: z.string().max(1_000_000).optional(),
  severity: SeverityList.optional(),
  affected: z.array(Affected).max(20_000).nullable().optional(),
  references: z
    .array(z.object({ type: z.string().max(32), url: z.string().max(5000) }))
    .max(10_000)
    .nullable()
    .optional(),
  credits: z.array(z.object({ name: z.string().max(1000) })).max(1000).optional(),
  database_specific: Extra.optional(),
});

export type OsvRecord = z.infer<typeof OsvRecord>;
export type OsvAffected = z.infer<typeof Affected>;
export type OsvRange = z.infer<typeof Range>;
export type OsvEvent = z.infer<typeof Event>;

export function eventKind(e: OsvEvent): EventKind {
  return EVENT_KINDS.find((k) => e[k] !== undefined)!;
}
