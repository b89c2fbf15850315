// `mtlsgate compile DIR -o OUT --watch`: compile once, write OUT, then recompile on every change
// under DIR (and to the certificate files the config reads) until SIGINT / SIGTERM. The compiles
// are the portal's live compile (compiler/live-compile.ts): its directory watches say which files
// changed, so a recompile after one key file changed reads and resolves that file alone, with no
// stat of the other certificate and key files (what `compile --cache` spends most of its time on
// at 1,000,000 keys). Its bytes are a full compile's. A change that does not compile prints its
// diagnostics and leaves OUT as it was: a gateway watching OUT keeps serving the last good bundle.
// With --cache every compile is `compile --cache`'s instead (compiler/snapshot-watch.ts): the
// first one starts from the snapshot a previous compile left in the cache (when its checks
// hold; otherwise one line says why not and everything is compiled), and each writes it back.
import type { KeyObject } from 'node:crypto';
import { basename, dirname, relative, resolve, sep } from 'node:path';
import { signBundle } from '../../bundle/sign.ts';
import { type CompileOptions, ConfigDirError, formatDiagnostics } from '../../compiler/index.ts';
import type { Diagnostic } from '../../compiler/diagnostics.ts';
import { LiveCompiler } from '../../compiler/live-compile.ts';
import { SnapshotWatchCompiler } from '../../compiler/snapshot-watch.ts';
import { oneAtATime } from '../../runtime/one-at-a-time.ts';
import { errnoMessage } from '../../common/errno.ts';
import { writeOutput } from '../io.ts';
import { count, info } from '../output.ts';

export interface WatchParams {
  dir: string;
  out: string;
  opts: CompileOptions;
  signingKey?: KeyObject;
  /** "1 API, 2 keys, ..., digest sha256:..." for a compiled bundle (cli/commands/compile.ts). */
  summary(result: Awaited<ReturnType<LiveCompiler['compile'] | SnapshotWatchCompiler['compile']>>): string;
}

/** Quiet time after the last event before a recompile: an editor's save is several events. */
const SETTLE_MS = 30;
/** At most this many changed paths are named on a recompile's line. */
const NAMED = 3;

const PREFIX = 'mtlsgate compile --watch:';

/** Runs until SIGINT or SIGTERM; returns the exit status (0: stopped by a signal, 2: DIR unreadable at the start). */
export async function watchCompile(p: WatchParams): Promise<number> {
  const root = resolve(p.dir);
  const outAbs = resolve(p.out);
  const cacheAbs = p.opts.cacheDir === undefined ? null : resolve(p.opts.cacheDir);
  const live = cacheAbs === null ? new LiveCompiler(p.dir, p.opts) : new SnapshotWatchCompiler(p.dir, { ...p.opts, cacheDir: p.opts.cacheDir! });
  // OUT, its temporary file (common/atomic-write.ts) and the cache are written by this process:
  // their events are not changes to compile (with --cache each would be a compile).
  const outTemp = `.${basename(outAbs)}.`;
  const ownWrite = (path: string) =>
    path === outAbs ||
    (cacheAbs !== null && (path === cacheAbs || path.startsWith(cacheAbs + sep))) ||
    (dirname(path) === dirname(outAbs) && basename(path).startsWith(outTemp) && path.endsWith('.tmp'));
  // Changed paths since the last recompile; null: a watch was lost (everything is compiled).
  let changed = new Set<string>();
  let lost = false;
  let timer: NodeJS.Timeout | null = null;
  let written: Buffer | null = null;
  let shown = new Set<string>();
  let first = true;
  let failed = false;

  const recompile = oneAtATime(async () => {
    const paths = changed;
    const wasLost = lost;
    changed = new Set();
    lost = false;
    const started = performance.now();
    let result;
    try {
      result = await live.compile();
    } catch (err) {
      if (first) throw err;
      // The last good OUT stays, and the process keeps watching: the next change compiles again.
      const message = err instanceof ConfigDirError ? err.message : `internal error: ${(err as Error).stack ?? err}`;
      process.stderr.write(`${PREFIX} ${message}; ${p.out} left as it was\n`);
      return;
    }
    const what = first ? `compiled ${p.dir}` : `${describeChange(paths, wasLost)} changed`;
    // The snapshot not used at the start: one line says why (the compile was a full one).
    const miss = result.cache?.snapshotMiss;
    if (first && miss !== undefined) info(`${PREFIX} the snapshot in ${p.opts.cacheDir} was not used (${miss}): compiled everything`);
    const isFirst = first;
    first = false;
    const ok = result.errorCount === 0 && result.bundle !== null;
    if (!ok) {
      const ms = Math.round(performance.now() - started);
      info(`${PREFIX} ${what}: ${count(result.errorCount, 'error')} in ${ms} ms; ${p.out} left as it was`);
      process.stderr.write(formatDiagnostics(result, 'text', p.dir));
      shown = new Set();
      failed = true;
      return;
    }
    // An event that changed nothing compiled (OUT's own temporary file, a save with the same bytes).
    // After a failed change the line says the config compiles again, even to the same bytes.
    if (written !== null && !failed && result.live === 'unchanged' && result.bundle!.equals(written)) return;
    failed = false;
    const bundle = p.signingKey ? signBundle(result.bundle!, p.signingKey) : result.bundle!;
    try {
      // Unsigned, the bundle is the bytes the cache just wrote: OUT is a link to them (as compile --cache).
      writeOutput(p.out, bundle, p.signingKey ? undefined : result.bundleFile);
    } catch (err) {
      const message = (err as Error).name === 'UnsafeTargetError' ? (err as Error).message : `cannot write ${p.out}: ${errnoMessage(err)}`;
      process.stderr.write(`${PREFIX} ${what}: ${message}\n`);
      return;
    }
    written = result.bundle!;
    const ms = Math.round(performance.now() - started);
    info(`${PREFIX} ${what}: wrote ${p.out} in ${ms} ms (${modeOf(result)}): ${p.summary(result)}`);
    // Warnings in full on the first compile; afterwards only those the change brought.
    const fresh = isFirst ? result.diagnostics : result.diagnostics.filter((d) => !shown.has(diagnosticKey(d)));
    if (fresh.length > 0) process.stderr.write(formatDiagnostics({ diagnostics: fresh, errorCount: 0, warningCount: fresh.length }, 'text', p.dir));
    shown = new Set(result.diagnostics.map(diagnosticKey));
  });

  const describeChange = (paths: Set<string>, wasLost: boolean): string => {
    if (wasLost) return 'a directory watch was lost: everything';
    const names = [...paths]
      .filter((f) => !f.startsWith(outAbs) && (cacheAbs === null || !f.startsWith(cacheAbs + sep)))
      .map((f) => relative(root, f).split(sep).join('/') || '.')
      .sort();
    if (names.length === 0) return 'nothing';
    const more = names.length > NAMED ? ` and ${names.length - NAMED} more` : '';
    return names.slice(0, NAMED).join(', ') + more;
  };

  live.onChange((path) => {
    if (path !== null && ownWrite(path)) return;
    if (path === null) lost = true;
    else changed.add(path);
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      void recompile.run();
    }, SETTLE_MS);
  });

  // The directory watches do not keep the process alive (the portal's live compile shares them).
  const keepAlive = setInterval(() => {}, 1 << 30);
  try {
    await recompile.run();
  } catch (err) {
    clearInterval(keepAlive);
    live.close();
    if (err instanceof ConfigDirError) return 2;
    throw err;
  }
  info(`${PREFIX} watching ${p.dir} (Ctrl-C to stop)`);
  await new Promise<void>((done) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      done();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  if (timer) clearTimeout(timer);
  live.close();
  // A recompile under way finishes (OUT is written whole or not at all).
  await recompile.idle();
  clearInterval(keepAlive);
  return 0;
}

/** The line's "(mode)": with --cache, how much the snapshot spared ("snapshot: 1 key file resolved again, 999 kept"). */
function modeOf(result: Awaited<ReturnType<LiveCompiler['compile'] | SnapshotWatchCompiler['compile']>>): string {
  const c = result.cache;
  if (result.live === 'snapshot' && c?.patched !== undefined) return `snapshot: ${count(c.patched, 'key file')} resolved again, ${c.hits} kept`;
  if (result.live === 'full' && c?.snapshotMiss !== undefined) return `full: snapshot not used: ${c.snapshotMiss}`;
  return result.live;
}

function diagnosticKey(d: Diagnostic): string {
  return JSON.stringify(d);
}
