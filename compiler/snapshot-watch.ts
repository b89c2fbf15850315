// `compile --watch --cache DIR`: every compile, the first one included, is `compile --cache`'s
// (compileDir with the cache: the previous bundle kept in DIR/snapshot patched with the key files
// that changed, compiler/snapshot-compile.ts), so the watch starts from the snapshot a previous
// `compile --cache` or `compile --watch --cache` wrote instead of compiling everything (at
// 1,000,000 keys: seconds instead of minutes, and without the live compile's ~2 GB of state),
// and each recompile writes the snapshot back, so the next start is fast too.
//
// The directory watches (compiler/change-journal.ts) only say *when* to compile: what a compile
// takes from the snapshot is decided by the snapshot's own checks (each key file's stat or text,
// every certificate file's witness, the context digest, the clock), the checks `compile --cache`
// makes, so a change no watch saw (a certificate outside the watched directories) is still found
// at the next compile. A stale or foreign snapshot (another DIR, other options or APIs) is not
// used: that compile is the ordinary cached one, which writes a new snapshot.
import { lstatSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ChangeJournal } from './change-journal.ts';
import { IgnoreRules } from './ignore.ts';
import { compileDir } from './index.ts';
import type { CompileOptions, CompileResult } from './compile-types.ts';
import { walkDirs } from './live-files.ts';

/** How a compile was made: the snapshot patched, everything compiled (the snapshot not used), or the snapshot as it was. */
export type SnapshotWatchMode = 'snapshot' | 'full' | 'unchanged';
export type SnapshotWatchResult = CompileResult & { live: SnapshotWatchMode };

export class SnapshotWatchCompiler {
  private readonly journal = new ChangeJournal();
  private readonly root: string;
  /** The last bundle compiled: a compile that resolved nothing again and gave the same bytes is 'unchanged'. */
  private last: Buffer | null = null;
  /** Whether the tree must be walked (and its directories watched) before the next compile. */
  private walk = true;
  /** How many compiles took each path (tests read it). */
  readonly counts: Record<SnapshotWatchMode, number> = { snapshot: 0, full: 0, unchanged: 0 };

  constructor(
    readonly dir: string,
    private readonly opts: CompileOptions & { cacheDir: string },
  ) {
    this.root = resolve(dir);
  }

  /** Calls `listener` as each change is seen (a path; null: a watch was lost). */
  onChange(listener: (path: string | null) => void): void {
    this.journal.onEvent(listener);
  }

  close(): void {
    this.journal.close();
  }

  async compile(): Promise<SnapshotWatchResult> {
    const { paths, lost } = await this.journal.take();
    // A new directory is walked and watched (its files are read by the compile below anyway).
    if (lost || [...paths].some((p) => !this.journal.watches(p) && isDirectory(p))) this.walk = true;
    if (this.walk) {
      // Watches first, then the compile: whatever changes after a file is read is reported.
      const ignore = IgnoreRules.forDir(this.root, this.opts.exclude);
      let dirs: Set<string>;
      try {
        dirs = walkDirs(this.root, ignore).dirs;
      } catch {
        // An unreadable directory: the compile reports it (or throws ConfigDirError).
        dirs = new Set();
      }
      // Certificate files outside DIR can only be under --allow-outside paths.
      for (const p of this.opts.allowOutside ?? []) dirs.add(isDirectory(resolve(p)) ? resolve(p) : dirname(resolve(p)));
      this.walk = !this.journal.watch(dirs);
    }
    const result = (await compileDir(this.dir, this.opts)) as SnapshotWatchResult;
    const patched = result.cache?.patched;
    const fromSnapshot = patched !== undefined;
    const same = patched === 0 && this.last !== null && result.bundle?.equals(this.last) === true;
    result.live = same ? 'unchanged' : fromSnapshot ? 'snapshot' : 'full';
    this.counts[result.live]++;
    if (result.bundle !== null) this.last = result.bundle;
    return result;
  }
}

function isDirectory(path: string): boolean {
  try {
    return lstatSync(path).isDirectory();
  } catch {
    return false;
  }
}
