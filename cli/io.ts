// "-" as a file name: standard output for what a command writes (-o -), standard input for
// what it reads (check -, fingerprint -, diff - NEW, explain --bundle - / --cert -, who
// --bundle -). Any other path is a file; output files are written atomically and never over a
// device, a directory or a symlink to one. A command that writes a directory or a pair of files
// refuses "-" rather than create a file or directory named "-".
import { loadBundle } from '../bundle/read.ts';
import { readBundleAt } from '../bundle/read-sharded.ts';
import type { Bundle } from '../bundle/types.ts';
import { type SameBytesFile, writeFileAtomic } from '../common/atomic-write.ts';
import { readRegularFile, readStdinBounded } from '../common/regular-file.ts';
import { MAX_BUNDLE_BYTES } from '../common/size-limits.ts';
import { UsageError } from './command.ts';

export const STDIO = '-';

/**
 * A file named on the command line, or standard input for "-": at most `maxBytes`, and a file
 * only when it is a regular one (common/regular-file.ts), decided before a byte is read. A named
 * pipe is refused rather than waited on, /dev/zero rather than read until memory runs out; the
 * error (NotARegularFileError, or the errno one) says why, and the caller names the file.
 */
export function readInput(path: string, maxBytes: number): Buffer {
  return path === STDIO ? readStdinBounded(maxBytes) : readRegularFile(path, maxBytes);
}

/** Writes a result file: stdout for "-", otherwise atomically (refusing non-regular targets; `same`: a file holding these bytes, linked). */
export function writeOutput(path: string, bytes: Buffer | string, same?: SameBytesFile): void {
  if (path === STDIO) process.stdout.write(bytes);
  else writeFileAtomic(path, bytes, { same });
}

/** "standard input" / "standard output" for "-", else the path: for messages. */
export function describePath(path: string, dir: 'in' | 'out'): string {
  return path === STDIO ? (dir === 'in' ? 'standard input' : 'standard output') : path;
}

/** A bundle named on the command line: a bundle file, a sharded bundle (its directory or manifest), or "-": one bundle file on standard input. */
export function readBundleInput(path: string): Bundle {
  return path === STDIO ? loadBundle(readInput(path, MAX_BUNDLE_BYTES)) : readBundleAt(path);
}

/** For a command whose output is not one stream (a directory, a pair of files): "-" is refused, with what to give instead. */
export function refuseStdout(path: string, writes: string, instead: string): void {
  if (path === STDIO) throw new UsageError(`"-" would be standard output, but this command writes ${writes}: give ${instead}`);
}
