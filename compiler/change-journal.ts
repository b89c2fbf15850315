// What changed on disk since the live compile last looked (compiler/live-compile.ts): one
// inotify watch (fs.watch, not recursive) per directory holding a config file or a certificate
// the compile read, collecting the paths their events name. Stat'ing 100,000 certificate files
// to find the one that changed costs ~0.4 s of CPU; a watch costs nothing until something
// changes. The journal only says *where* to look: the live compile then reads what it names and
// compares it with what it compiled, so an event for a file that did not really change (the
// portal's own temporary files, a rewrite with the same bytes) costs a read.
//
// When a watch fails, reports an error or an event without a file name, the journal is *lost*:
// the live compile then compiles everything, as `compile` does.
import { type FSWatcher, watch } from 'node:fs';
import { join } from 'node:path';

export class ChangeJournal {
  private readonly watchers = new Map<string, FSWatcher>();
  private paths = new Set<string>();
  private lost = false;
  /** Told of every event as it arrives (null: the journal was lost), for a caller that recompiles on change (`compile --watch`). */
  private listener: ((path: string | null) => void) | null = null;

  /** Calls `listener` on each event from now on (the paths are still collected for take). */
  onEvent(listener: (path: string | null) => void): void {
    this.listener = listener;
  }

  /** Whether `dir` is watched now. */
  watches(dir: string): boolean {
    return this.watchers.has(dir);
  }

  /** Watches each of `dirs` not watched yet; false when one could not be watched (the journal is lost). */
  watch(dirs: Iterable<string>): boolean {
    for (const dir of dirs) {
      if (this.watchers.has(dir)) continue;
      try {
        // persistent: false: a watch never keeps the process alive on its own.
        const w = watch(dir, { persistent: false }, (_event, name) => {
          if (name === null || name === undefined) this.lost = true;
          else this.paths.add(join(dir, name.toString()));
          this.listener?.(name === null || name === undefined ? null : join(dir, name.toString()));
        });
        w.on('error', () => {
          this.lost = true;
          w.close();
          this.watchers.delete(dir);
          this.listener?.(null);
        });
        this.watchers.set(dir, w);
      } catch {
        this.lost = true;
        return false;
      }
    }
    return true;
  }

  /**
   * The paths named since the last take (and whether the journal was lost meanwhile), once the
   * events already queued in the kernel have been delivered: a file written just before this
   * call (the portal's new key file) is always among them.
   */
  async take(): Promise<{ paths: Set<string>; lost: boolean }> {
    // Two turns of the event loop: the first setImmediate may run before this turn's poll
    // phase, the second runs after a poll phase has read the inotify queue.
    for (let i = 0; i < 2; i++) await new Promise<void>((resolve) => setImmediate(resolve));
    const out = { paths: this.paths, lost: this.lost };
    this.paths = new Set();
    this.lost = false;
    return out;
  }

  /** Puts paths back for the next take (a compile that used them did not keep its result). */
  requeue(paths: Iterable<string>): void {
    for (const p of paths) this.paths.add(p);
  }

  /** Forgets every event so far (a full compile is about to read everything). */
  clear(): void {
    this.paths = new Set();
    this.lost = false;
  }

  close(): void {
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
  }
}
