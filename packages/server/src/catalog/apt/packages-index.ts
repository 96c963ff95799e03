/**
 * Reads the binary records of a Packages index. Only Package, Version, Architecture and Source
 * matter; the ~20 other fields (and their continuation lines) are skipped without being
 * copied, which keeps a 50 MB index well under a second. Every name and version is checked
 * against dpkg's grammar here, before it goes anywhere; a bad record is reported with its file
 * and line and skipped, and the file goes on.
 */
import { ARCH_RE, DPKG_NAME_RE, LIMITS, parseDebVersion } from '@patchwarden/core';
import { quote, type Problems } from './problems.js';

export interface BinaryRecord {
  name: string;
  version: string;
  arch: string;
  source: string;
  sourceVersion: string;
  /** 1-based line of the record's first field */
  line: number;
}

const enum F {
  None,
  Package,
  Version,
  Architecture,
  Source,
  Status,
}
const LABEL = ['', 'Package', 'Version', 'Architecture', 'Source', 'Status'];
/** longer values of the fields we read are refused unread */
const MAX_VALUE = 600;

function fieldOf(text: string, start: number, end: number): F {
  const len = end - start;
  // the length test spares lowercasing the other fields of every record
  if (len !== 6 && len !== 7 && len !== 12) return F.None;
  switch (text.slice(start, end).toLowerCase()) {
    case 'package':
      return F.Package;
    case 'version':
      return F.Version;
    case 'architecture':
      return F.Architecture;
    case 'source':
      return F.Source;
    case 'status':
      return F.Status;
    default:
      return F.None;
  }
}

const isBlank = (c: number) => c === 32 || c === 9;

function blankLine(text: string, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (!isBlank(text.charCodeAt(i))) return false;
  return true;
}

function nameProblem(name: string, what: string): string | null {
  if (name.length > LIMITS.maxNameLength) return `${what} is ${name.length} characters long`;
  if (!DPKG_NAME_RE.test(name)) return `invalid ${what} ${quote(name)}`;
  return null;
}

function versionProblem(v: string, what: string): string | null {
  if (v.length > LIMITS.maxVersionLength) return `${what} is ${v.length} characters long`;
  const r = parseDebVersion(v);
  return r.ok ? null : `invalid ${what} ${quote(v)}: ${r.reason}`;
}

export interface IndexOptions {
  /** the index's architecture (binary-amd64): records must be of it or `all` */
  arch?: string;
}

/**
 * `text` is the index decoded as latin1: the fields we read are ASCII by grammar, and latin1
 * never fails on bytes that are not UTF-8 (binary garbage is reported, not thrown).
 */
export function parsePackagesIndex(text: string, file: string, problems: Problems, opts: IndexOptions = {}): BinaryRecord[] {
  const out: BinaryRecord[] = [];
  const n = text.length;
  const values: (string | undefined)[] = [];
  const lines: number[] = [];
  let inPara = false;
  let paraLine = 0;
  let bad: { line: number; message: string } | null = null;
  let last = F.None;
  let lineNo = 0;

  const flush = () => {
    inPara = false;
    const name = values[F.Package];
    const fail = (line: number, message: string) => problems.add({ level: 'error', file, line, ...(name && name.length <= 200 ? { package: name } : {}), message: `${message}; record skipped` });
    if (bad) return fail(bad.line, bad.message);
    if (values[F.Status] !== undefined) return fail(lines[F.Status]!, 'a Status field: this is a dpkg status record, not an index record');
    if (name === undefined) return fail(paraLine, 'no Package field');
    const version = values[F.Version];
    const arch = values[F.Architecture];
    if (version === undefined) return fail(paraLine, 'no Version field');
    if (arch === undefined) return fail(paraLine, 'no Architecture field');
    let why = nameProblem(name, 'package name');
    if (why) return fail(lines[F.Package]!, why);
    why = versionProblem(version, 'version');
    if (why) return fail(lines[F.Version]!, why);
    if (!ARCH_RE.test(arch) || arch.length > 64) return fail(lines[F.Architecture]!, `invalid architecture ${quote(arch)}`);
    if (opts.arch !== undefined && arch !== 'all' && arch !== opts.arch) return fail(lines[F.Architecture]!, `architecture ${arch} in an index of ${opts.arch}`);
    let source = name;
    let sourceVersion = version;
    const src = values[F.Source];
    if (src !== undefined) {
      const m = /^(\S+)(?:[ \t]+\(([^()\s]+)\))?$/.exec(src);
      if (!m) return fail(lines[F.Source]!, `invalid Source field ${quote(src)}`);
      why = nameProblem(m[1]!, 'source package name');
      if (why) return fail(lines[F.Source]!, why);
      source = m[1]!;
      if (m[2] !== undefined) {
        why = versionProblem(m[2], 'source version');
        if (why) return fail(lines[F.Source]!, why);
        sourceVersion = m[2];
      }
    }
    out.push({ name, version, arch, source, sourceVersion, line: paraLine });
  };

  let pos = 0;
  while (pos < n) {
    let eol = text.indexOf('\n', pos);
    if (eol === -1) eol = n;
    lineNo++;
    let end = eol;
    if (end > pos && text.charCodeAt(end - 1) === 13) end--;
    const c = text.charCodeAt(pos);
    if (end === pos || (isBlank(c) && blankLine(text, pos, end))) {
      if (inPara) flush();
    } else {
      if (!inPara) {
        inPara = true;
        paraLine = lineNo;
        bad = null;
        last = F.None;
        values.length = 0;
        lines.length = 0;
      }
      if (isBlank(c)) {
        // continuation of a field we read: those are single-line by grammar
        if (!bad && paraLine === lineNo) bad = { line: lineNo, message: 'the record starts with a continuation line' };
        else if (!bad && last !== F.None) bad = { line: lineNo, message: `field ${LABEL[last]} continues on a second line` };
      } else if (!bad) {
        let colon = -1;
        for (let i = pos; i < end; i++) {
          const ch = text.charCodeAt(i);
          if (ch === 58) {
            colon = i;
            break;
          }
          // a field name is printable ASCII without space; stop early on a garbage line
          if (ch <= 32 || ch >= 127) break;
        }
        if (colon <= pos) {
          bad = { line: lineNo, message: `line is not a field: ${quote(text.slice(pos, Math.min(end, pos + 60)))}` };
          last = F.None;
        } else {
          last = fieldOf(text, pos, colon);
          if (last !== F.None) {
            if (values[last] !== undefined) bad = { line: lineNo, message: `field ${LABEL[last]} appears twice` };
            else if (end - colon > MAX_VALUE) bad = { line: lineNo, message: `field ${LABEL[last]} is ${end - colon - 1} bytes long` };
            else {
              values[last] = text.slice(colon + 1, end).trim();
              lines[last] = lineNo;
            }
          }
        }
      }
    }
    pos = eol + 1;
  }
  if (inPara) flush();
  return out;
}
