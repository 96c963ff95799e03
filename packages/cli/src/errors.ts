import { PatchwardenError } from '@patchwarden/core';

/** Prints an error the way every command does: code, message, what to do next; returns the exit code. */
export function reportError(err: unknown): number {
  if (err instanceof PatchwardenError) {
    console.error(`error ${err.code}: ${err.message}`);
    if (err.hint) console.error(`  → ${err.hint}`);
    return err.exitCode;
  }
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'EADDRINUSE') {
    console.error(`error E_CONFLICT: the port is in use already (${e.message})`);
    console.error('  → pass another --port, or stop the other server');
    return 5;
  }
  if (e?.code === 'EACCES' || e?.code === 'EPERM') {
    console.error(`error E_FORBIDDEN: permission denied: ${e.message}`);
    return 3;
  }
  console.error(`error E_INTERNAL: ${e?.stack ?? String(err)}`);
  return 1;
}
