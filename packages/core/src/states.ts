/** The one enum of patch states on a device, in the order they are decided (DESIGN.md). */
export const PATCH_STATES = [
  'not_assessed',
  'unknown',
  'not_applicable',
  'installed',
  'installed_pending_restart',
  'superseded',
  'blocked',
  'needed',
] as const;
export type PatchState = (typeof PATCH_STATES)[number];

/** `unknown`: the source gave none (an apt index carries no severity). */
export const SEVERITIES = ['critical', 'high', 'medium', 'low', 'none', 'unknown'] as const;
export type Severity = (typeof SEVERITIES)[number];
