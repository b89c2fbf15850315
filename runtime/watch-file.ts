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
// A read that catches a slow in-place write half done fails verification; the writer's next
// event brings a retry, and the old bundle serves meanwhile.
import { watch, type FSWatcher } from 'chokidar';
import { realpathSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';

interface FileWatchOptions {
  /** Quiet time after the last event before `onChange` fires. Default 50 ms. */
  debounceMs?: number;
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

  const watcher: FSWatcher = watch(realDir && realDir !== dir ? [dir, realDir] : [dir], {
    depth: 0,
    ignoreInitial: true,
    // The "atomic" heuristic would hold an unlink+add back for 100 ms; the debounce below
    // already merges those, and faster is better for revocations.
    atomic: false,
    followSymlinks: false,
  });

  const fire = () => {
    timer = null;
    if (closed) return;
    // A symlink may now lead to another directory: watch that one too from now on.
    const nowReal = resolvedPath(file);
    const nowRealDir = nowReal && dirname(nowReal);
    if (nowRealDir && nowRealDir !== realDir) {
      if (realDir && realDir !== dir) watcher.unwatch(realDir);
      if (nowRealDir !== dir) watcher.add(nowRealDir);
    }
    if (nowReal) {
      real = nowReal;
      realDir = nowRealDir;
    }
    onChange();
  };

  // chokidar's own events are throttled (a second "change" within 50 ms, a second directory
  // scan within 1 s are dropped), and two quick writes must never leave the older one
  // serving. So the unthrottled raw fs.watch events drive the reload; the debounce above
  // merges their bursts. A raw event names an entry of the directory being watched.
  const relevant = (entry: string): boolean => {
    const b = basename(entry);
    return b === name || b.startsWith('..') || (real !== null && b === basename(real));
  };
  const poke = () => {
    if (closed) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(fire, debounceMs);
  };
  watcher.on('raw', (_event, entry: string | null, details) => {
    if (relevant(entry || (details as { watchedPath?: string }).watchedPath || '')) poke();
  });
  watcher.on('all', (_event, p) => {
    if (relevant(p)) poke();
  });
  watcher.on('error', (err) => opts.onError?.(err as Error));

  const ready = new Promise<void>((res) => watcher.once('ready', () => res()));
  return {
    ready,
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      await watcher.close();
    },
  };
}
