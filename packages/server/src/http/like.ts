/** A LIKE pattern that matches `text` literally anywhere (use with `escape '!'`). */
export function containsPattern(text: string): string {
  return `%${text.toLowerCase().replace(/[!%_]/g, (c) => `!${c}`)}%`;
}
