// Watches a bundle file and says "it may have changed"; the caller reads and verifies it.
//
// The three ways a bundle file gets replaced, and why this watches directories:
//  - in-place write (`cp new.json bundle.json`, `>`): the file's inode stays, its bytes change;
//  - atomic rename (write bundle.json.tmp, rename it over bundle.json): a new inode takes the
//    name, so a watch on the old inode would go quiet forever;
//  - Kubernetes ConfigMap volume: bundle.json -> ..data/bundle.json, ..data -> ..2026_x/; an
//    update writes ..2026_y/, points a temporary link at it and renames that link over ..data.
//    Neither bundle.json nor its inode changes; only a "..*" entry in the directory does.
// So the watch is on the directory holding the file (depth 0), plus the directory of the
// file's resolved path when a symlink leads elsewhere, and any event on the file's name or a
// "..*" entry counts. Events are debounced (an editor's save or a rename is several events),
// then the caller re-reads the file through its path, which resolves the links again.
// A rename event that starts a burst is taken at once (`onEarly`): a file renamed into place
// is whole (compile, the portal and ConfigMap updates all rename), and waiting out the quiet
// time would be a quarter of a one-key change's 200 ms budget. The debounced call still comes
// when more events followed, or when the early read did not take (a file created by that name
// and then written in place was read half-written).
// A read that catches a slow in-place write half done fails verification; the writer's next
// event brings a retry, and the old bundle serves meanwhile.
//
// node:fs `watch` on each directory (inotify on Linux), not chokidar: chokidar answers every
// event in a watched directory with a stat of the entry and a directory scan (readdir + stat
// of every entry through the thread pool, run again back to back while events keep coming).
// A request log written next to the bundle (`serve > gateway.log` in the bundle's directory,
// as the bench does) kept those scans running under load: ~2 context switches and ~50 µs of
// CPU per request. Here an event on another entry costs a string comparison.
import { type FSWatcher, realpathSync, watch } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';

interface FileWatchOptions {
  /** Quiet time after the last event before `onChange` fires. Default 50 ms. */
  debounceMs?: number;
  /**
   * Called at once for a rename event that starts a burst; resolves false when the read did not
   * take. Without it, every event waits out the quiet time.
   */
  onEarly?: () => Promise<boolean>;
  onError?: (err: Error) => void;
}

interface FileWatch {
  /** Resolves once the watcher is ready to report changes. */
  ready: Promise<void>;
  close(): Promise<void>;
}

function resolvedPath(file: string): string | null {
  try {
    return realpathSync(file);
  } catch {
    return null; // the file is missing right now (mid-rename): the next event resolves it
  }
}

export function watchFile(path: string, onChange: () => void, opts: FileWatchOptions = {}): FileWatch {
  const file = resolve(path);
  const name = basename(file);
  const dir = dirname(file);
  const debounceMs = opts.debounceMs ?? 50;
  let real = resolvedPath(file);
  let realDir = real && dirname(real);
  let timer: NodeJS.Timeout | null = null;
  let closed = false;
  /** One fs.watch per watched directory. */
  const watchers = new Map<string, FSWatcher>();

  // An event names an entry of the directory being watched (null: the platform did not say).
  const relevant = (entry: string | null): boolean => entry === null || entry === name || entry.startsWith('..') || (real !== null && entry === basename(real));
  /** The early call of the current burst (resolves: did it take?), and whether events came after it. */
  let early: Promise<boolean> | null = null;
  let eventsSinceEarly = false;
  const poke = () => {
    if (closed) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(fire, debounceMs);
  };
  // A directory watch names the entry (its base name) as a string (utf8, the default encoding).
  const onEvent = (event: string, entry: string | null) => {
    if (!relevant(entry) || closed) return;
    if (event === 'rename' && opts.onEarly && timer === null && early === null) {
      early = opts.onEarly().catch(() => false);
    } else if (early !== null) eventsSinceEarly = true;
    poke();
  };
  const add = (d: string) => {
    if (watchers.has(d)) return;
    try {
      const w = watch(d, { persistent: true }, onEvent);
      w.on('error', (err) => opts.onError?.(err));
      watchers.set(d, w);
    } catch (err) {
      opts.onError?.(err as Error);
    }
  };
  const remove = (d: string) => {
    watchers.get(d)?.close();
    watchers.delete(d);
  };

  function fire(): void {
    timer = null;
    if (closed) return;
    // A symlink may now lead to another directory: watch that one too from now on.
    const nowReal = resolvedPath(file);
    const nowRealDir = nowReal && dirname(nowReal);
    if (nowRealDir && nowRealDir !== realDir) {
      if (realDir && realDir !== dir) remove(realDir);
      if (nowRealDir !== dir) add(nowRealDir);
    }
    if (nowReal) {
      real = nowReal;
      realDir = nowRealDir;
    }
    const earlyCall = early;
    const again = eventsSinceEarly;
    early = null;
    eventsSinceEarly = false;
    if (earlyCall === null) onChange();
    else
      void earlyCall.then((took) => {
        if ((!took || again) && !closed) onChange();
      });
  }

  add(dir);
  if (realDir && realDir !== dir) add(realDir);

  return {
    // inotify watches are in place once watch() returns.
    ready: Promise.resolve(),
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      for (const d of [...watchers.keys()]) remove(d);
    },
  };
}
