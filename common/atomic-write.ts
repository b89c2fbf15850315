// The one way mtlsgate replaces a file (compile -o, shards and manifests, the portal's and
// approve's key files and bundles, the compile cache, serve --state-dir's state.json):
// readers see the old bytes or the new bytes, never a mix, and nothing already in the
// directory can redirect the write.
//
// - The temporary file is new: a random name beside the target, created O_CREAT|O_EXCL (and
//   O_NOFOLLOW), so a file or a symlink planted under a name the writer would use makes the
//   open fail instead of being written through. (A predictable `NAME.<pid>.tmp` opened with
//   'w' followed a planted symlink: the victim was overwritten, then renamed into place.)
// - Same directory, so the rename is atomic; the file is fsynced before the rename and the
//   directory after it, so a crash leaves the old file or the new one (`durable: false` skips
//   both fsyncs for caches that verify what they read and may be lost).
// - The rename replaces whatever the path names, so the target is checked first: an existing
//   device, directory, socket or FIFO (or a symlink to one) is refused, never replaced by a
//   regular file (`-o /dev/stdout` as root used to turn /dev/stdout into a file). A symlink to
//   a regular file is written through: the file it points at is replaced, the link stays.
// - `same`: a file that already holds these bytes (the compile cache's bundle.json) is
//   hard-linked under the random name and renamed instead (at 1,000,000 keys a 94 MB write less),
//   only while it is still the file that was written (same device, inode and size).
// The runtime writes with the async form, so an fsync never holds the event loop.
import { randomBytes } from 'node:crypto';
import { closeSync, constants, fstatSync, fsyncSync, linkSync, lstatSync, openSync, realpathSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { kindOfFile } from './regular-file.ts';

/** The target exists and is not a regular file: nothing was written. */
export class UnsafeTargetError extends Error {
  override name = 'UnsafeTargetError';
}

/** Which file a path held when it was written: device, inode, size. */
export interface FileIdentity {
  dev: number;
  ino: number;
  size: number;
}

/** A file that already holds exactly the bytes to write, with the identity it had when written. */
export interface SameBytesFile extends FileIdentity {
  path: string;
}

export interface AtomicWriteOptions {
  /** The new file's mode (before the umask); 0o644 unless given. */
  mode?: number;
  /** fsync the file and its directory (default true); false for caches whose every read is verified. */
  durable?: boolean;
  /** Link this file instead of writing (sync form only), while it is still the file written; otherwise written. */
  same?: SameBytesFile;
}

/** A new file only: fails (EEXIST) on anything already at the name, a symlink included, and never follows one. */
const CREATE_NEW = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | (constants.O_NOFOLLOW ?? 0);

/** The path to rename onto: `path` itself, or the regular file a symlink at `path` points to. Throws UnsafeTargetError. */
function safeTarget(path: string): string {
  const l = lstatSync(path, { throwIfNoEntry: false });
  if (!l) return path;
  if (l.isFile()) return path;
  const hint = ' (use "-o -" for standard output)';
  if (!l.isSymbolicLink()) throw new UnsafeTargetError(`refusing to write ${path}: it is ${kindOfFile(l)}, not a regular file${l.isDirectory() ? '' : hint}`);
  const st = statSync(path, { throwIfNoEntry: false });
  if (!st) throw new UnsafeTargetError(`refusing to write ${path}: it is a symlink to a path that does not exist`);
  const real = realpathSync(path);
  if (!st.isFile())
    throw new UnsafeTargetError(`refusing to write ${path}: it is a symlink to ${real}, which is ${kindOfFile(st)}${st.isDirectory() ? '' : hint}`);
  return real;
}

/** Where the target is, and the temporary file beside it: a name nobody can guess ahead. */
function plan(path: string, bytes: Uint8Array | string): { target: string; tmp: string; data: Uint8Array } {
  const target = safeTarget(path);
  const tmp = join(dirname(target), `.${basename(target)}.${randomBytes(8).toString('hex')}.tmp`);
  return { target, tmp, data: typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : bytes };
}

/**
 * Replaces `path` with `bytes` atomically (see above) and returns the identity of the file it
 * now names. Throws the I/O error, or UnsafeTargetError.
 */
export function writeFileAtomic(path: string, bytes: Uint8Array | string, options: AtomicWriteOptions = {}): FileIdentity {
  const { target, tmp, data } = plan(path, bytes);
  const durable = options.durable !== false;
  if (options.same && linkAtomic(target, tmp, options.same, data.length)) {
    syncDir(target);
    return options.same;
  }
  let fd = openSync(tmp, CREATE_NEW, options.mode ?? 0o644);
  let written: FileIdentity;
  try {
    for (let off = 0; off < data.length; ) off += writeSync(fd, data, off, data.length - off);
    if (durable) fsyncSync(fd);
    written = fstatSync(fd);
    closeSync(fd);
    fd = -1;
    renameSync(tmp, target);
  } catch (err) {
    if (fd !== -1) closeSync(fd);
    rmSync(tmp, { force: true });
    throw err;
  }
  if (durable) syncDir(target);
  return { dev: written.dev, ino: written.ino, size: written.size };
}

/** `same` linked under `tmp` and renamed onto `target` (its bytes made durable first); false when that could not be done (nothing left behind). */
function linkAtomic(target: string, tmp: string, same: SameBytesFile, size: number): boolean {
  const isSame = (st: FileIdentity | undefined) => st !== undefined && st.dev === same.dev && st.ino === same.ino && st.size === size;
  if (same.size !== size) return false;
  // The target is that very file already (nothing changed since the last compile): a rename of a
  // link onto itself does nothing, so only its bytes are made durable.
  const linked = isSame(statSync(target, { throwIfNoEntry: false })) ? target : tmp;
  try {
    // link() makes a new name: it fails (EEXIST) on anything there, which is then not ours to remove.
    if (linked === tmp) linkSync(same.path, tmp);
  } catch {
    return false;
  }
  try {
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

/** `writeFileAtomic` off the event loop: the runtime's form (the state file). */
export async function writeFileAtomicAsync(path: string, bytes: Uint8Array | string, options: AtomicWriteOptions = {}): Promise<void> {
  const { target, tmp, data } = plan(path, bytes);
  const durable = options.durable !== false;
  // Outside the try: a failed open made nothing of ours to remove.
  const file = await open(tmp, CREATE_NEW, options.mode ?? 0o644);
  try {
    try {
      await file.writeFile(data);
      if (durable) await file.sync();
    } finally {
      await file.close();
    }
    await rename(tmp, target);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  if (!durable) return;
  try {
    const dir = await open(dirname(target), 'r');
    await dir.sync().finally(() => dir.close());
  } catch {
    // As above: the rename is still atomic.
  }
}
