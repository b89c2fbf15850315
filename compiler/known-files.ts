// Key files the compile snapshot (compiler/compile-snapshot.ts) knows by their stat, as git's
// index knows a work-tree file: a file whose size, mtime and ctime (nanoseconds), inode and device
// all equal what the snapshot recorded beside its text's SHA-256 has that text, so `compile
// --cache` neither reads nor hashes it (at 1,000,000 keys: 1,000 files, ~95 MB, ~0.6 s of the
// recompile). Any write to a file sets its ctime to the current time, and utimes cannot set it
// back, so a changed file shows a changed stat; except a write within the same timestamp tick as
// the recorded one. Hence the racy rule: a stat is recorded only for a file whose mtime and ctime
// were at least RACY_MS older than the compile that read it (a write after that read lands in a
// later tick, whatever the filesystem's granularity up to 2 s); a file changed more recently is
// read and hashed every time until it has settled.
import { statSync } from 'node:fs';
import { RACY_MS } from './certs.ts';
import { readConfigBytes, type SourceFile, withoutBom } from './source.ts';

/** The stat of a regular file as one comparable string, or undefined (missing, not a file, or changed since `settledBefore` ms). */
export function statKey(absPath: string, settledBefore: number): string | undefined {
  let st;
  try {
    st = statSync(absPath, { bigint: true, throwIfNoEntry: false });
  } catch {
    return undefined;
  }
  if (st === undefined || !st.isFile()) return undefined;
  const limit = BigInt(settledBefore) * 1_000_000n;
  if (st.mtimeNs >= limit || st.ctimeNs >= limit) return undefined;
  return `${st.size}:${st.mtimeNs}:${st.ctimeNs}:${st.ino}:${st.dev}`;
}

/** What the snapshot recorded: absolute path -> its stat key and text SHA-256. */
export class KnownFiles {
  private readonly byPath = new Map<string, { stat: string; text: string }>();

  constructor(files: readonly { path: string; text: string; stat?: string }[]) {
    for (const f of files) if (typeof f.stat === 'string') this.byPath.set(f.path, { stat: f.stat, text: f.text });
  }

  /** The time (ms) before which a file's mtime and ctime must lie for its stat to be recorded. */
  settledBefore(): number {
    return Date.now() - RACY_MS;
  }

  /** The recorded text SHA-256 when the stat is the recorded one. */
  textOf(absPath: string, stat: string): string | undefined {
    const was = this.byPath.get(absPath);
    return was !== undefined && was.stat === stat ? was.text : undefined;
  }
}

/** A config file not read yet: its text is read (as loadConfigFiles reads it) on first use. */
export function lazySourceFile(path: string, absPath: string, textSha256: string, stat: string): SourceFile {
  const file = { path, absPath, textSha256, stat } as SourceFile;
  Object.defineProperty(file, 'text', {
    configurable: true,
    enumerable: true,
    get(): string {
      const text = withoutBom(readConfigBytes(absPath).toString('utf8'));
      Object.defineProperty(file, 'text', { value: text, writable: true, configurable: true, enumerable: true });
      return text;
    },
  });
  return file;
}
