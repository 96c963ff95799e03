/**
 * The oracle for the parser tests: dpkg's own reading of a status file, through dpkg-query
 * on a private admin directory (so the host's database is only ever copied, never touched).
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { PackageFact } from '@patchwarden/core';

const FORMAT = '${Package}\\t${Version}\\t${Architecture}\\t${source:Package}\\t${source:Version}\\t${db:Status-Abbrev}\\n';

/** The second letter of ${db:Status-Abbrev}. */
const ABBREV_STATES: Record<string, PackageFact['state'] | 'not-installed'> = {
  n: 'not-installed',
  c: 'config-files',
  H: 'half-installed',
  U: 'unpacked',
  F: 'half-configured',
  W: 'triggers-awaited',
  t: 'triggers-pending',
  i: 'installed',
};

/** A fresh admin directory holding `status` (a copy of a file, or the given text). */
export function makeAdmindir(status: { file: string } | { text: string }): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pw-dpkg-'));
  mkdirSync(path.join(dir, 'info'));
  mkdirSync(path.join(dir, 'updates'));
  if ('file' in status) copyFileSync(status.file, path.join(dir, 'status'));
  else writeFileSync(path.join(dir, 'status'), status.text);
  return dir;
}

/** What dpkg-query lists, as package facts, not-installed entries left out as the parser does. */
export function dpkgQuery(admindir?: string): PackageFact[] {
  const args = [...(admindir ? [`--admindir=${admindir}`] : []), '-W', `-f=${FORMAT}`];
  const out = execFileSync('dpkg-query', args, {
    encoding: 'utf8',
    maxBuffer: 1 << 28,
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const facts: PackageFact[] = [];
  for (const line of out.split('\n')) {
    if (line === '') continue;
    const [name, version, arch, srcName, srcVersion, abbrev] = line.split('\t') as [string, string, string, string, string, string];
    const state = ABBREV_STATES[abbrev[1]!];
    if (state === undefined) throw new Error(`unknown status abbreviation in ${JSON.stringify(line)}`);
    if (state === 'not-installed') continue;
    const fact: PackageFact = { manager: 'dpkg', name, version, arch, state };
    if (srcName !== name) fact.source = srcName;
    if (srcVersion !== version) fact.sourceVersion = srcVersion;
    facts.push(fact);
  }
  return facts;
}
