/** Sandbox filesystem roots that an agent reads instead of the host. */
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** A root with os-release, hostname, time zone and a dpkg database (or, with `rpm`, an RPM one). */
export function makeRoot(dir: string, opts: { hostname: string; statusFrom?: string; rpm?: boolean }): string {
  mkdirSync(join(dir, 'etc'), { recursive: true });
  mkdirSync(join(dir, 'var/lib/dpkg'), { recursive: true });
  writeFileSync(
    join(dir, 'etc/os-release'),
    'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nVERSION="12 (bookworm)"\nVERSION_CODENAME=bookworm\nID=debian\n',
  );
  writeFileSync(join(dir, 'etc/hostname'), `${opts.hostname}\n`);
  writeFileSync(join(dir, 'etc/timezone'), 'Europe/Berlin\n');
  if (opts.rpm) {
    mkdirSync(join(dir, 'var/lib/rpm'), { recursive: true });
    writeFileSync(join(dir, 'var/lib/rpm/rpmdb.sqlite'), '');
  } else {
    copyFileSync(opts.statusFrom ?? '/var/lib/dpkg/status', join(dir, 'var/lib/dpkg/status'));
  }
  return dir;
}

/** Changes the version of one installed package in the root's dpkg status file. */
export function bumpPackage(root: string, name: string, newVersion: string): void {
  const file = join(root, 'var/lib/dpkg/status');
  const text = readFileSync(file, 'utf8');
  const paragraphs = text.split('\n\n');
  let hit = false;
  const out = paragraphs.map((p) => {
    if (!p.startsWith(`Package: ${name}\n`)) return p;
    hit = true;
    return p.replace(/^Version: .*$/m, `Version: ${newVersion}`);
  });
  if (!hit) throw new Error(`no package ${name} in ${file}`);
  writeFileSync(file, out.join('\n\n'));
}
