import { PatchwardenError } from '@patchwarden/core';

/**
 * A LIKE pattern that matches `text` literally anywhere (use with `escape '!'`). A NUL is refused:
 * SQLite's LIKE ends the pattern there (so `a\0b` would match everything ending in `a`) and
 * PostgreSQL cannot hold it in text at all.
 */
export function containsPattern(text: string): string {
  if (text.includes('\0')) throw new PatchwardenError('E_VALIDATION', 'a search may not contain a NUL character');
  return `%${text.toLowerCase().replace(/[!%_]/g, (c) => `!${c}`)}%`;
}
