// The demo's config watch: a YAML change under the config directory recompiles the bundle
// (which the gateway's own bundle watch then reloads). Certificates and dot-directories are
// not config.
import { watch } from 'chokidar';
import { oneAtATime } from '../runtime/one-at-a-time.ts';

interface ConfigWatch {
  /** Resolves once the watcher is ready to report changes. */
  ready: Promise<void>;
  /** Stops watching; resolves after a recompile in progress. */
  close(): Promise<void>;
}

/**
 * Watches `dir` recursively: `onChange` runs after `debounceMs` of quiet, never twice at
 * once; changes during a run bring one more run.
 */
export function watchConfigDir(dir: string, onChange: () => Promise<void>, debounceMs = 200): ConfigWatch {
  let timer: NodeJS.Timeout | null = null;
  let closed = false;
  const recompile = oneAtATime(async () => {
    if (!closed) await onChange();
  });
  const watcher = watch(dir, {
    ignoreInitial: true,
    ignored: (p, stats) => /(^|[/\\])(certs|\.[^/\\]+)([/\\]|$)/.test(p.slice(dir.length)) || (stats?.isFile() === true && !/\.ya?ml$/i.test(p)),
  });
  watcher.on('all', () => {
    if (closed) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      void recompile.run();
    }, debounceMs);
  });
  const ready = new Promise<void>((res) => watcher.once('ready', () => res()));
  return {
    ready,
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      await watcher.close();
      await recompile.idle();
    },
  };
}
