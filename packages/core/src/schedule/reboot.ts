/**
 * When a device reboots after a patch that needs one, by the deployment's policy: never; at the
 * end of the maintenance window it installs in (at once when it installs outside one, after the
 * deadline); or at the deadline (the window's end when there is no deadline). One function, so
 * the server states it in the job and the agent follows it.
 */
import type { RebootPolicy } from '../jobs.js';
import { windowAt, type WindowSets } from './windows.js';

export function rebootAt(policy: RebootPolicy, input: { windows: WindowSets; tz: string; now: number; deadline?: number | undefined }): number | null {
  if (policy === 'never') return null;
  const windowEnd = () => windowAt(input.windows, input.tz, input.now)?.end ?? input.now;
  if (policy === 'window-end') return windowEnd();
  return input.deadline !== undefined ? Math.max(input.deadline, input.now) : windowEnd();
}
