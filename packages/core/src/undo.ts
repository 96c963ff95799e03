/**
 * Whether an agent can undo a patch exactly, decided from its manifest alone, so that a
 * deployment can say so before it starts. Packages (dpkg) and file operations are snapshotted
 * by the agent and restored; a script changes things no snapshot sees, so it needs an undo
 * script of its own; other package managers have no snapshot support in the agent yet.
 */
import type { PatchManifest } from './patch.js';

const SNAPSHOT_MANAGERS = new Set(['dpkg', 'apt']);

/** Why undo of `m` would not restore the exact prior state; empty when it would. */
export function undoLimits(m: Pick<PatchManifest, 'install' | 'undo'>): string[] {
  const out: string[] = [];
  const scripts = m.install.filter((a) => a.type === 'script').length;
  const undoScripts = m.undo.filter((a) => a.type === 'script').length;
  if (scripts > 0 && undoScripts === 0) out.push(`its ${scripts === 1 ? 'install script has' : `${scripts} install scripts have`} no undo script, so undo restores packages and files only`);
  const managers = [...new Set(m.install.flatMap((a) => (a.type === 'package' && !SNAPSHOT_MANAGERS.has(a.manager) ? [a.manager] : [])))];
  if (managers.length) out.push(`${managers.join(', ')} ${managers.length === 1 ? 'actions are' : 'actions are'} not snapshotted by the agent yet, so they cannot be undone`);
  return out;
}
