/**
 * Reads the binary records of a Packages index. Only Package, Version, Architecture and Source
 * matter; the ~20 other fields (and their continuation lines) are skipped without being
 * copied, which keeps a 50 MB index well under a second. Every name and version is checked
 * against dpkg's grammar here, before it goes anywhere; a bad record is reported with its file
 * and line and skipped, and the file goes on.
 */
import { ARCH_RE, DPKG_NAME_RE, LIMITS, parseDebVersion, scanParagraphs, type ScanIssue } from '@patchwarden/core';
import { quote, type Problems } from './problems.js';

export interface BinaryRecord {
  name: string;
  version: string;
  arch: string;
  source: string;
  sourceVersion: string;
  /** where the .deb lies below the repository, with its size and sha256 (absent in a status file) */
  file?: { path: string; size: number; sha256: string };
  /** 1-based line of the record's first field */
  line: number;
}

// Indexes into FIELDS: the fields this parser reads.
const FIELDS = ['Package', 'Version', 'Architecture', 'Source', 'Status', 'Filename', 'Size', 'SHA256'] as const;
const PACKAGE = 0;
const VERSION = 1;
const ARCH = 2;
const SOURCE = 3;
const STATUS = 4;
const FILENAME = 5;
const SIZE = 6;
const SHA256 = 7;
const FILENAME_RE = /^[A-Za-z0-9][A-Za-z0-9._~%+-]*(?:\/[A-Za-z0-9][A-Za-z0-9._~%+-]*)*$/;
/** longer values of the fields we read are refused unread */
const MAX_VALUE = 600;

function issueText(issue: ScanIssue): string {
  switch (issue.kind) {
    case 'leading-continuation':
      return 'the record starts with a continuation line';
    case 'continued':
      return `field ${FIELDS[issue.field]} continues on a second line`;
    case 'not-a-field':
      return `line is not a field: ${quote(issue.text.slice(0, 60))}`;
    case 'duplicate':
      return `field ${FIELDS[issue.field]} appears twice`;
    case 'too-long':
      return `field ${FIELDS[issue.field]} is ${issue.length} bytes long`;
  }
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
  scanParagraphs(
    text,
    FIELDS,
    ({ line: paraLine, values, lines, issue }) => {
      const name = values[PACKAGE];
      const fail = (line: number, message: string) =>
        problems.add({ level: 'error', file, line, ...(name && name.length <= 200 ? { package: name } : {}), message: `${message}; record skipped` });
      if (issue) return fail(issue.line, issueText(issue));
      if (values[STATUS] !== undefined) return fail(lines[STATUS]!, 'a Status field: this is a dpkg status record, not an index record');
      if (name === undefined) return fail(paraLine, 'no Package field');
      const version = values[VERSION];
      const arch = values[ARCH];
      if (version === undefined) return fail(paraLine, 'no Version field');
      if (arch === undefined) return fail(paraLine, 'no Architecture field');
      let why = nameProblem(name, 'package name');
      if (why) return fail(lines[PACKAGE]!, why);
      why = versionProblem(version, 'version');
      if (why) return fail(lines[VERSION]!, why);
      if (!ARCH_RE.test(arch) || arch.length > 64) return fail(lines[ARCH]!, `invalid architecture ${quote(arch)}`);
      if (opts.arch !== undefined && arch !== 'all' && arch !== opts.arch) return fail(lines[ARCH]!, `architecture ${arch} in an index of ${opts.arch}`);
      let source = name;
      let sourceVersion = version;
      const src = values[SOURCE];
      if (src !== undefined) {
        const m = /^(\S+)(?:[ \t]+\(([^()\s]+)\))?$/.exec(src);
        if (!m) return fail(lines[SOURCE]!, `invalid Source field ${quote(src)}`);
        why = nameProblem(m[1]!, 'source package name');
        if (why) return fail(lines[SOURCE]!, why);
        source = m[1]!;
        if (m[2] !== undefined) {
          why = versionProblem(m[2], 'source version');
          if (why) return fail(lines[SOURCE]!, why);
          sourceVersion = m[2];
        }
      }
      const rec: BinaryRecord = { name, version, arch, source, sourceVersion, line: paraLine };
      // the package file, as the signed index states it: what a server may fetch and cache; a
      // record whose file reference is malformed stays usable for detection, without it
      const filename = values[FILENAME];
      const size = values[SIZE];
      const sha = values[SHA256];
      if (filename !== undefined && size !== undefined && sha !== undefined) {
        if (FILENAME_RE.test(filename) && !filename.split('/').includes('..') && /^[1-9]\d{0,11}$/.test(size) && /^[0-9a-f]{64}$/.test(sha)) {
          rec.file = { path: filename, size: Number(size), sha256: sha };
        } else problems.warn(`${file}:${lines[FILENAME] ?? paraLine}`, `package ${name}: its Filename, Size or SHA256 is malformed; it can be detected but not cached`);
      }
      out.push(rec);
    },
    { maxValue: MAX_VALUE },
  );
  return out;
}
