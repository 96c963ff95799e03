/**
 * JSON text to a value, or the byte offset where it stops being JSON. V8's JSON.parse names a
 * position for most errors but not for an unexpected token ("Unexpected token '}'…"), so on
 * failure a small scanner walks the text again to find the offset itself: a problem without a
 * position would leave the administrator to search a 100 MB file by hand.
 */
import { isUtf8 } from 'node:buffer';

export type JsonResult = { ok: true; value: unknown } | { ok: false; position: string; reason: string };

/** `byte N (line L, column C)` for a character offset into `text`. */
export function bytePosition(text: string, offset: number): string {
  let line = 1;
  let start = 0;
  for (let i = text.indexOf('\n'); i !== -1 && i < offset; i = text.indexOf('\n', i + 1)) {
    line++;
    start = i + 1;
  }
  return `byte ${Buffer.byteLength(text.slice(0, offset), 'utf8')} (line ${line}, column ${offset - start + 1})`;
}

const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;

/** The character offset of the first syntax error in `s`, or -1 when there is none. */
export function jsonErrorOffset(s: string): number {
  let i = 0;
  const fail = (): never => {
    throw i;
  };
  const ws = () => {
    while (i < s.length && (s[i] === ' ' || s[i] === '\t' || s[i] === '\n' || s[i] === '\r')) i++;
  };
  const string = () => {
    i++;
    while (i < s.length) {
      const c = s.charCodeAt(i);
      if (c === 34) {
        i++;
        return;
      }
      if (c < 32) fail();
      if (c === 92) {
        const e = s[i + 1];
        if (e !== undefined && '"\\/bfnrt'.includes(e)) i += 2;
        else if (e === 'u' && /^[0-9a-fA-F]{4}$/.test(s.slice(i + 2, i + 6))) i += 6;
        else {
          i++;
          fail();
        }
      } else i++;
    }
    fail();
  };
  // iterative over containers: a hostile file nests deeper than any call stack
  const stack: ('{' | '[')[] = [];
  const value = () => {
    ws();
    const c = s[i];
    if (c === '"') return string();
    if (c === '{' || c === '[') {
      stack.push(c);
      i++;
      ws();
      if (s[i] === (c === '{' ? '}' : ']')) {
        stack.pop();
        i++;
        return;
      }
      if (c === '{') member();
      return 'open';
    }
    NUMBER.lastIndex = i;
    if (NUMBER.test(s)) {
      i = NUMBER.lastIndex;
      return;
    }
    for (const lit of ['true', 'false', 'null']) {
      if (s.startsWith(lit, i)) {
        i += lit.length;
        return;
      }
    }
    fail();
  };
  const member = () => {
    ws();
    if (s[i] !== '"') fail();
    string();
    ws();
    if (s[i] !== ':') fail();
    i++;
  };
  try {
    let pending = value() === 'open';
    for (;;) {
      if (pending) {
        pending = value() === 'open';
        continue;
      }
      ws();
      const top = stack[stack.length - 1];
      if (top === undefined) break;
      if (s[i] === ',') {
        i++;
        if (top === '{') member();
        pending = true;
      } else if (s[i] === (top === '{' ? '}' : ']')) {
        i++;
        stack.pop();
      } else fail();
    }
    ws();
    return i < s.length ? i : -1;
  } catch (at) {
    return typeof at === 'number' ? at : 0;
  }
}

/** Parses a feed file's bytes: UTF-8 (a byte-order mark is allowed), then JSON. */
export function parseJsonBytes(buf: Buffer): JsonResult {
  const all = buf.toString('utf8');
  if (!isUtf8(buf)) {
    // everything before the first replacement character decoded as it stands
    const at = all.indexOf('\uFFFD');
    return { ok: false, position: bytePosition(all, Math.max(0, at)), reason: 'not UTF-8 text' };
  }
  // positions count from the file's first byte, the mark included
  const skip = all.charCodeAt(0) === 0xfeff ? 1 : 0;
  const text = skip ? all.slice(1) : all;
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (err) {
    const message = (err as Error).message;
    const at = jsonErrorOffset(text);
    // the scanner finds no syntax error: V8 refused it for another reason (its own limits)
    if (at < 0) return { ok: false, position: bytePosition(all, skip), reason: `cannot be read: ${message}` };
    const offset = at;
    const why = message.replace(/, (?:\.\.\.)?".*" is not valid JSON$/s, '').replace(/ in JSON at position \d+.*$/s, '');
    const reason =
      text.trim() === '' ? 'empty file' : offset >= text.length ? `not JSON: the text ends too early (truncated?): ${why}` : `not JSON: ${why}`;
    return { ok: false, position: bytePosition(all, offset + skip), reason };
  }
}
