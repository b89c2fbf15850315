// Writes a file so that readers see the old bytes or the new bytes, never a mix: a temporary
// file in the same directory (same filesystem, so rename is atomic), fsync, rename, then fsync
// the directory so the rename itself survives a crash.
// The rename replaces whatever the path names, so the target is checked first: an existing
// device, directory, socket or FIFO (or a symlink to one) is refused, never replaced by a
// regular file (`-o /dev/stdout` as root used to turn /dev/stdout into a file). A symlink to a
// regular file is written through: the file it points at is replaced, the link stays.
import { closeSync, fstatSync, fsyncSync, linkSync, lstatSync, openSync, realpathSync, renameSync, rmSync, statSync, writeSync, type Stats } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';

/** The target exists and is not a regular file: nothing was written. */
export class UnsafeTargetError extends Error {
  override name = 'UnsafeTargetError';
}

function what(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isFIFO()) return 'a named pipe';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/** The path to rename onto: `path` itself, or the regular file a symlink at `path` points to. */
export function safeTarget(path: string): string {
  const l = lstatSync(path, { throwIfNoEntry: false });
  if (!l) return path;
  if (l.isFile()) return path;
  const hint = ' (use "-o -" for standard output)';
  if (!l.isSymbolicLink()) throw new UnsafeTargetError(`refusing to write ${path}: it is ${what(l)}, not a regular file${l.isDirectory() ? '' : hint}`);
  const st = statSync(path, { throwIfNoEntry: false });
  if (!st) throw new UnsafeTargetError(`refusing to write ${path}: it is a symlink to a path that does not exist`);
  const real = realpathSync(path);
  if (!st.isFile()) throw new UnsafeTargetError(`refusing to write ${path}: it is a symlink to ${real}, which is ${what(st)}${st.isDirectory() ? '' : hint}`);
  return real;
}

/**
 * A file that already holds exactly the bytes to write (the compile cache's copy of the bundle it
 * just wrote: compiler/compile-snapshot.ts), named with the identity it had when written.
 */
export interface SameBytesFile {
  path: string;
  dev: number;
  ino: number;
  size: number;
}

/**
 * Writes `bytes` to `path` atomically. With `same`, the file is hard-linked instead of written
 * (at 1,000,000 keys a 94 MB write less): only while it is still the file that was written (same
 * device, inode and size) and on the same filesystem; otherwise, or if the link fails, written.
 */
export function writeFileAtomic(path: string, bytes: Buffer | string, same?: SameBytesFile): void {
  const target = safeTarget(path);
  const tmp = join(dirname(target), `.${basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const data = typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : bytes;
  if (same && linkAtomic(target, tmp, same, data.length)) return syncDir(target);
  let fd = openSync(tmp, 'wx', 0o644);
  try {
    let off = 0;
    while (off < data.length) off += writeSync(fd, data, off, data.length - off);
    fsyncSync(fd);
    closeSync(fd);
    fd = -1;
    renameSync(tmp, target);
  } catch (err) {
    if (fd !== -1) closeSync(fd);
    rmSync(tmp, { force: true });
    throw err;
  }
  syncDir(target);
}

/** `same` linked as `tmp` and renamed onto `target` (its bytes made durable first); false when that could not be done (nothing left behind). */
function linkAtomic(target: string, tmp: string, same: SameBytesFile, size: number): boolean {
  const isSame = (st: { dev: number; ino: number; size: number } | undefined) =>
    st !== undefined && st.dev === same.dev && st.ino === same.ino && st.size === size;
  if (same.size !== size) return false;
  // The target is that very file already (nothing changed since the last compile): a rename of a
  // link onto itself does nothing, so only its bytes are made durable.
  const linked = isSame(statSync(target, { throwIfNoEntry: false })) ? target : tmp;
  try {
    if (linked === tmp) linkSync(same.path, tmp);
    const fd = openSync(linked, 'r');
    try {
      if (!isSame(fstatSync(fd))) throw new Error('not the file written');
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    if (linked === tmp) renameSync(tmp, target);
    return true;
  } catch {
    if (linked === tmp) rmSync(tmp, { force: true });
    return false;
  }
}

/** fsync of the directory, so that the rename itself survives a crash. */
function syncDir(target: string): void {
  try {
    const dirFd = openSync(dirname(target), 'r');
    try {
      fsyncSync(dirFd);
    } finally {
      closeSync(dirFd);
    }
  } catch {
    // Some filesystems refuse fsync on a directory; the rename is still atomic.
  }
}
