import type { Severity } from '../api/types';

const TONE: Record<string, string> = {
  critical: 'critical',
  high: 'danger',
  medium: 'warn',
  low: 'neutral',
  none: 'neutral',
  unknown: 'neutral',
};

export function SeverityBadge({ severity }: { severity: Severity | string }) {
  return <span className={`badge badge--${TONE[severity] ?? 'neutral'}`}>{severity}</span>;
}

const STATE_TONE: Record<string, string> = {
  needed: 'danger',
  installed: 'ok',
  installed_pending_restart: 'warn',
  superseded: 'neutral',
  blocked: 'warn',
  unknown: 'neutral',
  not_assessed: 'neutral',
  not_applicable: 'neutral',
  // jobs and deployments
  done: 'ok',
  succeeded: 'ok',
  healthy: 'ok',
  complete: 'ok',
  handed: 'info',
  failed: 'danger',
  halted: 'danger',
  'rolled-back': 'warn',
  'needs-attention': 'danger',
  undone: 'neutral',
  baking: 'warn',
  running: 'info',
  active: 'info',
  queued: 'neutral',
  pending: 'neutral',
  'not in catalog': 'warn',
  approve: 'ok',
  decline: 'danger',
};

/** A state word (patch, job, ring, deployment) as a badge; underscores read as spaces. */
export function StateBadge({ state }: { state: string }) {
  return <span className={`badge badge--${STATE_TONE[state] ?? 'info'}`}>{state.replace(/_/g, ' ')}</span>;
}
