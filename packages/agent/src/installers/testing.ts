/**
 * Test helpers: sandbox roots with busybox as /bin/sh (so maintainer scripts really run,
 * chrooted by dpkg) and .deb files built with dpkg-deb. Never used on the host's root.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const BUSYBOX_PATHS = ['/bin/busybox', '/usr/bin/busybox'];

export function findBusybox(): string {
  const found = BUSYBOX_PATHS.find((p) => existsSync(p));
  if (!found) throw new Error('busybox is needed for sandbox roots (apt-get install busybox-static)');
  return found;
}

/** A temporary directory; the caller removes it with removeTemp. */
export function makeTemp(prefix = 'pw-inst-'): string {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function removeTemp(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** An empty dpkg root with busybox as /bin/sh. */
export function makeSandboxRoot(parent: string): string {
  const root = path.join(parent, 'root');
  for (const d of ['var/lib/dpkg/info', 'var/lib/dpkg/updates', 'var/lib/dpkg/triggers', 'var/log', 'bin', 'tmp']) {
    mkdirSync(path.join(root, d), { recursive: true });
  }
  writeFileSync(path.join(root, 'var/lib/dpkg/status'), '');
  copyFileSync(findBusybox(), path.join(root, 'bin/busybox'));
  chmodSync(path.join(root, 'bin/busybox'), 0o755);
  symlinkSync('busybox', path.join(root, 'bin/sh'));
  return root;
}

export interface DebSpec {
  name: string;
  version: string;
  arch?: string;
  /** path inside the package → content */
  files?: Record<string, string>;
  preinst?: string;
  postinst?: string;
  prerm?: string;
  postrm?: string;
}

/** Builds NAME_VERSION_ARCH.deb in outDir with dpkg-deb --root-owner-group. */
export function buildDeb(outDir: string, spec: DebSpec): string {
  const arch = spec.arch ?? 'all';
  const work = mkdtempSync(path.join(outDir, 'build-'));
  mkdirSync(path.join(work, 'DEBIAN'));
  writeFileSync(
    path.join(work, 'DEBIAN/control'),
    `Package: ${spec.name}\nVersion: ${spec.version}\nArchitecture: ${arch}\nMaintainer: Patchwarden tests <tests@example.org>\nDescription: test package\n`,
  );
  for (const script of ['preinst', 'postinst', 'prerm', 'postrm'] as const) {
    const body = spec[script];
    if (body === undefined) continue;
    writeFileSync(path.join(work, 'DEBIAN', script), body);
    chmodSync(path.join(work, 'DEBIAN', script), 0o755);
  }
  for (const [p, content] of Object.entries(spec.files ?? {})) {
    const f = path.join(work, p);
    mkdirSync(path.dirname(f), { recursive: true });
    writeFileSync(f, content);
  }
  const out = path.join(outDir, `${spec.name}_${spec.version.replace(/^\d+:/, '')}_${arch}.deb`);
  execFileSync('dpkg-deb', ['--root-owner-group', '-b', work, out], { stdio: 'pipe' });
  rmSync(work, { recursive: true, force: true });
  return out;
}

/** What dpkg itself lists for a root: "name version abbrev" lines (an oracle beside our parser). */
export function dpkgQueryList(root: string): string {
  return execFileSync('dpkg-query', [`--admindir=${path.join(root, 'var/lib/dpkg')}`, '-W', '-f=${Package} ${Version} ${db:Status-Abbrev}\n'], {
    encoding: 'utf8',
  }).trim();
}
