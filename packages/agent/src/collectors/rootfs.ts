/**
 * Reading a device's files under an explicit root. A sandbox or image root is full of absolute
 * symlinks (/var/run -> /run, /etc/os-release -> /usr/lib/os-release); following them with the
 * kernel would read the host's files, so below a root other than '/' we resolve links ourselves,
 * as chroot would. Nothing here writes.
 */
import { constants } from 'node:fs';
import { lstat, open, readlink, stat } from 'node:fs/promises';
import path from 'node:path';

const MAX_LINKS = 40; // Linux's own limit (ELOOP)

export function isHostRoot(root: string): boolean {
  return path.resolve(root) === '/';
}

export function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** The real path of the device path `p` below `root`; the last component is followed only if `followLast`. */
export async function resolveInRoot(root: string, p: string, followLast = true): Promise<string> {
  const base = path.resolve(root);
  if (base === '/') return path.resolve('/', p);
  const done: string[] = [];
  let todo = p.split('/');
  let links = 0;
  while (todo.length > 0) {
    const c = todo.shift()!;
    if (c === '' || c === '.') continue;
    if (c === '..') {
      done.pop(); // '..' at the root stays at the root, as in a chroot
      continue;
    }
    const real = path.join(base, ...done, c);
    if (todo.length === 0 && !followLast) return real;
    let isLink: boolean;
    try {
      isLink = (await lstat(real)).isSymbolicLink();
    } catch (err) {
      if (isMissing(err)) return path.join(real, ...todo);
      throw err;
    }
    if (!isLink) {
      done.push(c);
      continue;
    }
    if (++links > MAX_LINKS) throw Object.assign(new Error(`too many symbolic links resolving ${p}`), { code: 'ELOOP' });
    const target = await readlink(real);
    if (target.startsWith('/')) done.length = 0;
    todo = [...target.split('/'), ...todo];
  }
  return path.join(base, ...done);
}

export async function existsIn(root: string, p: string): Promise<boolean> {
  try {
    await stat(await resolveInRoot(root, p));
    return true;
  } catch (err) {
    if (isMissing(err)) return false;
    throw err;
  }
}

/**
 * The text of a regular file, or null when it does not exist. Anything else (a FIFO, a device,
 * a directory) is an error: reading /dev/zero or a pipe would never end.
 */
export async function readTextIn(root: string, p: string, limit = Infinity): Promise<string | null> {
  const real = await resolveInRoot(root, p);
  let fh;
  try {
    fh = await open(real, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    if (isMissing(err)) return null;
    throw err;
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw Object.assign(new Error(`${p} is not a regular file`), { code: 'EINVAL' });
    if (st.size <= limit) return await fh.readFile('utf8');
    const buf = Buffer.alloc(limit);
    const { bytesRead } = await fh.read(buf, 0, limit, 0);
    return buf.subarray(0, bytesRead).toString('utf8');
  } finally {
    await fh.close();
  }
}

/** Small configuration files: absent, unreadable or odd ones just count as absent. */
export async function readSmallTextIn(root: string, p: string): Promise<string | null> {
  try {
    return await readTextIn(root, p, 64 * 1024);
  } catch {
    return null;
  }
}

export async function readlinkIn(root: string, p: string): Promise<string | null> {
  try {
    return await readlink(await resolveInRoot(root, p, false));
  } catch {
    return null;
  }
}
