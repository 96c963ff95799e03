/**
 * os-release(5): shell-compatible assignments. We read the file, never source it, so anything
 * a shell would expand or execute ($, `, ;, |, …) makes the line invalid and it is ignored,
 * rather than guessed at.
 */
import { OsFacts } from '@patchwarden/core';
import type { OS_FAMILIES, OsFacts as OsFactsT } from '@patchwarden/core';
import { clip } from '../text.js';

export type OsFamily = (typeof OS_FAMILIES)[number];

const KEY_RE = /^[ \t]*([A-Za-z_][A-Za-z0-9_]*)=/;
const DQ_ESCAPABLE = '"\\$`';
const UNQUOTED_SPECIAL = '$`;|&<>()';

/** The value of one assignment starting at `i`, or null when the line is not valid. */
function parseValue(s: string, i: number): string | null {
  let out = '';
  while (i < s.length) {
    const c = s[i]!;
    if (c === ' ' || c === '\t') {
      const rest = s.slice(i).trimStart();
      return rest === '' || rest.startsWith('#') ? out : null;
    }
    if (c === "'") {
      const close = s.indexOf("'", i + 1);
      if (close === -1) return null;
      out += s.slice(i + 1, close);
      i = close + 1;
    } else if (c === '"') {
      i++;
      for (;;) {
        const d = s[i];
        if (d === undefined || d === '$' || d === '`') return null;
        if (d === '"') break;
        if (d === '\\') {
          const n = s[i + 1];
          if (n === undefined) return null;
          // POSIX: inside double quotes a backslash escapes only these; elsewhere it stays.
          if (DQ_ESCAPABLE.includes(n)) {
            out += n;
            i += 2;
            continue;
          }
        }
        out += d;
        i++;
      }
      i++;
    } else if (c === '\\') {
      const n = s[i + 1];
      if (n === undefined) return null; // a line continuation: multi-line values are not allowed
      out += n;
      i += 2;
    } else if (UNQUOTED_SPECIAL.includes(c)) {
      return null;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

export function parseOsRelease(text: string): Record<string, string> {
  // No prototype: a key such as __proto__ must stay a plain key.
  const fields = Object.create(null) as Record<string, string>;
  for (const raw of text.split('\n')) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    const m = KEY_RE.exec(line);
    if (!m) continue; // blank, comment or invalid
    const value = parseValue(line, m[0].length);
    if (value !== null) fields[m[1]!] = value;
  }
  return fields;
}

export interface OsFactsExtra {
  family?: OsFamily;
  packageArch?: string;
}

const nonEmpty = (s: string | undefined, max: number) => {
  const t = s?.trim();
  return t ? clip(t, max) : undefined;
};

export function osFactsFromRelease(fields: Record<string, string>, machine: string, extra: OsFactsExtra = {}): OsFactsT {
  const candidate: Record<string, unknown> = {
    family: extra.family ?? 'linux',
    machine: nonEmpty(machine, 64) ?? 'unknown',
    distribution: nonEmpty(fields.ID?.toLowerCase(), 64),
    idLike: fields.ID_LIKE?.split(/\s+/).filter((w) => w !== '' && w.length <= 64).slice(0, 16),
    name: nonEmpty(fields.NAME, 512),
    prettyName: nonEmpty(fields.PRETTY_NAME, 512),
    version: nonEmpty(fields.VERSION_ID, 64),
    versionCodename: nonEmpty(fields.VERSION_CODENAME ?? fields.UBUNTU_CODENAME, 64),
    packageArch: nonEmpty(extra.packageArch, 64),
  };
  for (const k of Object.keys(candidate)) if (candidate[k] === undefined) delete candidate[k];
  if ((candidate.idLike as string[] | undefined)?.length === 0) delete candidate.idLike;
  // An odd os-release must not cost the whole report: drop each optional field that fails.
  for (let attempt = 0; attempt < 16; attempt++) {
    const r = OsFacts.safeParse(candidate);
    if (r.success) return r.data;
    for (const issue of r.error.issues) {
      const key = issue.path[0];
      if (key === 'family') candidate.family = 'other';
      else if (key === 'machine') candidate.machine = 'unknown';
      else if (typeof key === 'string') delete candidate[key];
      else break;
    }
  }
  return OsFacts.parse({ family: candidate.family === 'other' ? 'other' : (extra.family ?? 'linux'), machine: 'unknown' });
}
