/** Cuts a string to at most `max` UTF-16 units (the unit zod's max() counts), never inside a surrogate pair. */
export function clip(s: string, max: number): string {
  if (s.length <= max) return s;
  let cut = max;
  const c = s.charCodeAt(cut - 1);
  if (c >= 0xd800 && c <= 0xdbff) cut--;
  return s.slice(0, cut);
}

/** A short excerpt for messages: a 10 MB line must not travel into a report or a log. */
export function snippet(s: string, max = 80): string {
  return s.length <= max ? s : `${clip(s, max)}…`;
}

export function firstLine(s: string): string {
  const nl = s.indexOf('\n');
  return (nl === -1 ? s : s.slice(0, nl)).trim();
}
