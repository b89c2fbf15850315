// How a large CRL crosses between the processes of `serve --workers N` (docs/security.md section
// 58): as a file in a private directory, never through node:cluster's JSON channel. A list of
// 1,000,000 entries is 52 MB of JSON there, and node:cluster parses it on the primary's event
// loop before any mtlsgate code runs (102-252 ms), which then checked its base64 (90-390 ms)
// and cloned it for the CRL thread: every worker's lease request and /health waited meanwhile.
// Now the worker's CRL thread writes the bytes to a file of a random name in the directory the
// primary made (mode 0700) and the message carries the name, the size and the SHA-256; the
// primary's CRL thread reads the file and checks both before it checks the CA's signature.
//
// The message comes from a worker, which may be buggy or taken over through its request path:
// what it names must not make the primary read anything else. So the name is 32 hex digits and
// ".crl" (no separator, no "..": the file is in the directory or nowhere), the file is opened
// without following a symbolic link and without waiting on a FIFO, must be a regular file of
// exactly the size stated (at most MAX_CRL_BYTES), and its bytes must have the digest stated.
// The other workers read the primary's copy the same way, against the digest the primary sends.
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, constants, fstatSync, lstatSync, mkdtempSync, openSync, readdirSync, readSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { errnoMessage } from '../../common/errno.ts';
import { MAX_CRL_BYTES } from '../../common/size-limits.ts';

/** A CRL handed over as a file: its name in the hand-off directory, its size and its SHA-256 (hex). */
export interface HandedCrl {
  name: string;
  bytes: number;
  sha256: string;
}

/** The same, with the path to read it at (the directory joined to a name already checked). */
export interface HandedCrlPath {
  path: string;
  bytes: number;
  sha256: string;
}

/** What a hand-off file may be named: what handCrlFile writes. */
export const HANDED_NAME = /^[0-9a-f]{32}\.crl$/;

/**
 * What a hand-off directory is named: this host (8 hex digits of its name's SHA-256: a temp
 * directory shared between containers holds other hosts' primaries, whose pids say nothing
 * here), the primary's pid, and mkdtemp's six random characters.
 */
const HANDOFF_DIR = /^mtlsgate-crl-([0-9a-f]{8})-([1-9][0-9]{0,9})-[A-Za-z0-9]{6}$/;

const hostTag = () => createHash('sha256').update(hostname()).digest('hex').slice(0, 8);

export function handoffDirPrefix(pid = process.pid): string {
  return `mtlsgate-crl-${hostTag()}-${pid}-`;
}

/** The primary's private hand-off directory (mode 0700, a fresh random name under the temp directory). */
export function makeHandoffDir(parent = tmpdir()): string {
  return mkdtempSync(join(parent, handoffDirPrefix()));
}

/** Whether process `pid` runs (EPERM: it does, as another user's). */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes the hand-off directories a primary of this host left when it was killed (SIGKILL, the
 * OOM killer, a power cut: its exit handler never ran), with the CRLs in them: those named as
 * makeHandoffDir names them, of a pid that no longer runs, directories themselves (lstat: a
 * symbolic link of that name is left alone, not followed) owned by this user. rmSync removes
 * what is inside without following a link. In a sticky temp directory (/tmp) no other user can
 * rename or replace an entry this user owns, so what was checked is what is removed. A pid
 * reused by another process since keeps its directory (left, not wrongly removed). The names of
 * those removed.
 */
export function sweepStaleHandoffDirs(parent = tmpdir()): string[] {
  const host = hostTag();
  const uid = process.getuid?.();
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(parent);
  } catch {
    return removed;
  }
  for (const name of names) {
    const m = HANDOFF_DIR.exec(name);
    if (m === null || m[1] !== host) continue;
    const pid = Number(m[2]);
    if (pid === process.pid || running(pid)) continue;
    const path = join(parent, name);
    try {
      const st = lstatSync(path);
      if (!st.isDirectory() || (uid !== undefined && st.uid !== uid)) continue;
      rmSync(path, { recursive: true, force: true });
      removed.push(name);
    } catch {
      // Gone meanwhile, or not ours to remove: left.
    }
  }
  return removed;
}

export function removeHandoffDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** `dir` joined to `name`, once `name` is one a hand-off file may have (else null). */
export function handedPath(dir: string, file: HandedCrl): HandedCrlPath | null {
  return HANDED_NAME.test(file.name) ? { path: join(dir, file.name), bytes: file.bytes, sha256: file.sha256 } : null;
}

/** Removes the hand-off file `name` in `dir` (never a path: a name that is not one is left alone). */
export function dropHandedFile(dir: string, name: string): void {
  if (!HANDED_NAME.test(name)) return;
  try {
    unlinkSync(join(dir, name));
  } catch {
    // Gone already (removed with its directory, or by whoever wrote it).
  }
}

/** Writes `crl` to a new file of a random name in `dir` (never over an existing one, mode 0600); what names it. Sync: the CRL thread runs it. */
export function handCrlFile(dir: string, crl: Uint8Array): HandedCrl {
  const name = `${randomBytes(16).toString('hex')}.crl`;
  // 'wx': O_CREAT|O_EXCL, which also refuses a symbolic link put at that name.
  writeFileSync(join(dir, name), crl, { flag: 'wx', mode: 0o600 });
  return { name, bytes: crl.byteLength, sha256: createHash('sha256').update(crl).digest('hex') };
}

/**
 * The bytes of the hand-off file at `file.path`, or why they cannot be taken: not a regular file
 * (a symbolic link is not followed, a FIFO not waited on), not of the size stated or over the
 * CRL ceiling, or another digest. Sync: the CRL thread runs it (the primary's main thread only
 * if that thread cannot run).
 */
export function readHandedFile(file: HandedCrlPath, maxBytes = MAX_CRL_BYTES): Buffer | string {
  if (!Number.isSafeInteger(file.bytes) || file.bytes < 1 || file.bytes > maxBytes) return `its stated size (${file.bytes} bytes) is not 1 to ${maxBytes}`;
  let fd: number;
  try {
    fd = openSync(file.path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ELOOP'
      ? 'the file named is a symbolic link: not followed'
      : `the file named cannot be opened (${errnoMessage(err)})`;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return 'the file named is not a regular file';
    if (st.size !== file.bytes) return `the file named holds ${st.size} bytes, the message says ${file.bytes}`;
    const bytes = Buffer.allocUnsafe(file.bytes);
    let at = 0;
    while (at < bytes.length) {
      const n = readSync(fd, bytes, at, bytes.length - at, at);
      if (n === 0) return `the file named ended after ${at} of ${file.bytes} bytes`;
      at += n;
    }
    if (createHash('sha256').update(bytes).digest('hex') !== file.sha256) return 'the file named does not have the SHA-256 the message says';
    return bytes;
  } finally {
    closeSync(fd);
  }
}
