// The keys stage of a big config in worker threads. Key files (at 1,000,000 keys: 1,000 files,
// each naming 1,000 certificate files) are parsed, validated and resolved one file at a time in
// a pool of workers (compiler/keys-worker.ts), each file on its own (compiler/key-file.ts), so
// the main thread never holds their parsed documents and the CPU work spreads over the cores.
// Each file comes back as columns (compiler/key-file.ts), merged into one table
// (compiler/key-table.ts); whatever makes files interact (a key id, certificate or token in two
// files, a file that turns out to hold other documents or a certificate_match, a worker that
// fails) sends the compile back to one thread from the start: the same bytes and diagnostics
// by construction.
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { startWorker } from '../common/worker-thread.ts';
import type { KeyFileCacheFacts } from './key-file-cache.ts';
import type { KeyFileContext, KeyFileResult } from './key-file.ts';
import type { KeyGroup } from './key-table.ts';
import type { FromWorker, ToWorker } from './keys-worker.ts';
import type { SourceFile } from './source.ts';

/** Below this much key-file text (~10,000 keys) starting workers costs more than it saves. */
export const MIN_WORKER_TEXT = 1 << 20;
/** Files handed to a worker ahead of its current one, so it never waits for the next. */
const AHEAD = 2;

const KIND = /kind/g;
const KIND_KEY = /^kind[ \t]*:[ \t]*(?:key|'key'|"key")[ \t]*(?:#.*)?$/gm;

/**
 * Whether `text` looks like it holds key documents only, and no certificate_match: every
 * "kind" in it is a `kind: key` line. A guess that routes the file; a wrong one costs a
 * restart on one thread, never a different result (key-file.ts checks the parsed documents).
 */
export function looksLikeKeysOnly(text: string): boolean {
  if (text.includes('certificate_match')) return false;
  const kinds = text.match(KIND)?.length ?? 0;
  return kinds > 0 && (text.match(KIND_KEY)?.length ?? 0) === kinds;
}

/**
 * The files to resolve in workers and how many workers, or null for one thread: `workers` 0,
 * or (when undefined) less than MIN_WORKER_TEXT of key files, or one key file (a file is one
 * worker's: starting it would cost more than the thread it frees).
 */
export function planWorkers(files: readonly SourceFile[], workers: number | undefined): { keyFiles: Set<SourceFile>; workers: number } | null {
  if (workers === 0) return null;
  const keyFiles = new Set(files.filter((f) => looksLikeKeysOnly(f.text)));
  let text = 0;
  for (const f of keyFiles) text += f.text.length;
  if (keyFiles.size === 0 || (workers === undefined && (text < MIN_WORKER_TEXT || keyFiles.size < 2))) return null;
  return { keyFiles, workers: Math.max(1, Math.min(workers ?? availableParallelism(), keyFiles.size, 8)) };
}

/** A file's group, and with `compile --cache` its cache facts (compiler/key-file-cache.ts). */
export type PoolFile = KeyGroup & { cached?: KeyFileCacheFacts };
export type PoolOutcome = { restart: string } | { restart?: undefined; files: PoolFile[]; docs: number; parseDiagnostics: number; earlyError: boolean };

/**
 * A pool resolving `files` (in this order) in `count` workers. Started before the context is
 * known: the workers load and compile the schemas while the main thread resolves APIs and
 * policies; `run` hands them the context and collects every file.
 */
export class KeyWorkerPool {
  private readonly workers: Worker[] = [];

  constructor(
    private readonly files: readonly SourceFile[],
    count: number,
  ) {
    for (let i = 0; i < count; i++) this.workers.push(startWorker(import.meta.url, 'keys-worker'));
  }

  /** Every file's result, in file order; a restart as soon as one file (or a worker) asks for it. */
  run(ctx: KeyFileContext): Promise<PoolOutcome> {
    const results: (PoolFile | undefined)[] = new Array(this.files.length);
    let next = 0;
    let done = 0;
    let docs = 0;
    let parseDiagnostics = 0;
    let earlyError = false;
    return new Promise<PoolOutcome>((resolve) => {
      let settled = false;
      const finish = (outcome: PoolOutcome) => {
        if (settled) return;
        settled = true;
        this.close();
        resolve(outcome);
      };
      const feed = (w: Worker) => {
        if (next < this.files.length) {
          const index = next++;
          const f = this.files[index];
          // The text is copied to the worker; the SourceFile (line starts and all) stays here.
          w.postMessage({ type: 'file', index, file: { path: f.path, absPath: f.absPath, text: f.text } } satisfies ToWorker);
        }
      };
      for (const w of this.workers) {
        w.on('message', (m: FromWorker) => {
          if (settled) return;
          if ('error' in m) return finish({ restart: `a key worker failed on ${this.files[m.index].path}: ${m.error}` });
          const r: KeyFileResult = m.result;
          if (r.restart !== undefined) return finish({ restart: r.restart });
          docs += r.docs;
          parseDiagnostics += r.parseDiagnostics;
          earlyError ||= r.earlyError;
          results[m.index] = { keys: r.keys, diagnostics: r.diagnostics, ...(r.cached ? { cached: r.cached } : {}) };
          feed(w);
          if (++done === this.files.length) finish({ files: results as PoolFile[], docs, parseDiagnostics, earlyError });
        });
        w.on('error', (err) => finish({ restart: `a key worker failed: ${err.message}` }));
        w.on('exit', (code) => finish({ restart: `a key worker exited (code ${code})` }));
        w.postMessage({ type: 'context', ctx } satisfies ToWorker);
        for (let i = 0; i < AHEAD; i++) feed(w);
      }
      if (this.files.length === 0) finish({ files: [], docs, parseDiagnostics, earlyError });
    });
  }

  /** Stops every worker (after `run`, or instead of it when the compile does not need them). */
  close(): void {
    for (const w of this.workers) {
      w.removeAllListeners('exit');
      void w.terminate();
    }
  }
}
