// "-" as a file name: standard output for what a command writes (-o -), standard input for
// what it reads (check -, fingerprint -, diff - NEW). Any other path is a file; output files are
// written atomically and never over a device, a directory or a symlink to one.
import { readFileSync } from 'node:fs';
import { type SameBytesFile, writeFileAtomic } from '../common/atomic-write.ts';

export const STDIO = '-';

/** Reads a file, or standard input for "-" (to its end). */
export function readInput(path: string): Buffer {
  return readFileSync(path === STDIO ? 0 : path);
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
