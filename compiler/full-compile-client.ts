// The live compile's full compile in a worker thread (compiler/full-compile-worker.ts), so a
// long-lived process (the portal) keeps answering while a big config is read, parsed and
// resolved: at 20,000 key files that is 3-7 s of CPU the event loop no longer holds. The
// worker hands back the result and what the live compile keeps (the LiveCapture) in slices
// (compiler/capture-handoff.ts); this thread pays only their clones, one turn each. Same signature and result as
// compileDirCapturing (compiler/index.ts), which it runs: the bytes and diagnostics are its.
// One short-lived worker per full compile: full compiles are rare (the start, a change to
// anything but key files), and an idle worker would hold a second copy of the config.
import { expandContent } from '../bundle/wire.ts';
import type { BundleContent } from '../bundle/types.ts';
import { MessageChannel, type MessagePort, receiveMessageOnPort } from 'node:worker_threads';
import { startWorker } from '../common/worker-thread.ts';
import type { CompileOptions, CompileResult } from './compile-types.ts';
import { compileDirCapturing } from './index.ts';
import { CaptureAssembly, type HandoffRest, type HandoffSlice } from './capture-handoff.ts';
import type { LiveCapture } from './live-state.ts';
import { ConfigDirError } from './load.ts';

/** The options a worker can be handed (structured-clonable: no functions). */
export type WorkerCompileOptions = Omit<CompileOptions, 'accessTests' | 'onLoaded'>;

export interface FullCompileRequest {
  dir: string;
  opts: WorkerCompileOptions;
  /** Where the slices and the result go (then 'answered' on the worker's own port). */
  answers: MessagePort;
  /** Tests: once the files are read the worker waits while hold[0] is 0 (Atomics.wait). */
  hold?: Int32Array;
}

export type FullCompileReply =
  | { type: 'loaded'; files: number }
  | HandoffSlice
  /** `rest`: the capture came in slices (then `result.diagnostics` is in `rest`); else `capture` holds it whole, or null (errors). */
  | { type: 'done'; result: Omit<CompileResult, 'content'>; capture: LiveCapture | null; rest?: HandoffRest }
  | { type: 'failed'; name: string; message: string; code?: string };

/** How a full compile is made: on this thread (compileDirCapturing) or in a worker (offThreadCompile). */
export type FullCompile = typeof compileDirCapturing;

/** Warned once: a worker that cannot run (dist/full-compile-worker.mjs not copied beside the CLI) compiles here. */
let warned = false;

/**
 * compileDirCapturing in a worker thread. `opts.onLoaded` is called here when the worker has
 * read the files. Options a worker cannot take (an access test runner: a function) compile on
 * this thread, and so does a compile whose worker fails to start or dies (with a warning): the
 * same result, the event loop held as before. Rejects as compileDirCapturing does
 * (ConfigDirError: the directory is unreadable). A compile in flight keeps the process alive
 * (a portal stopped during its start-up compile exits once it is done).
 */
export function offThreadCompile(hold?: Int32Array): FullCompile {
  return (dir, opts, capture) => {
    if (opts.accessTests !== undefined) return compileDirCapturing(dir, opts, capture);
    const { onLoaded, accessTests: _none, ...cloneable } = opts;
    const worker = startWorker(import.meta.url, 'full-compile-worker');
    const assembly = new CaptureAssembly();
    return new Promise<CompileResult>((resolve, reject) => {
      let settled = false;
      const settle = (done: () => void) => {
        if (settled) return;
        settled = true;
        worker.removeAllListeners();
        void worker.terminate();
        done();
      };
      // The answer: the slices and the last message wait on `answers`, a port with no listener;
      // one is taken a turn (receiveMessageOnPort, as the runtime's shard worker answers), so
      // their clones never add up in one turn of the event loop.
      const { port1: answers, port2: answersOut } = new MessageChannel();
      const take = () => {
        const m = receiveMessageOnPort(answers)?.message as FullCompileReply | undefined;
        if (m === undefined || m.type === 'loaded' || m.type === 'failed') {
          answered = false;
          onThisThread('the compile worker answered in part');
          return;
        }
        if (m.type === 'files' || m.type === 'perFile') {
          assembly.add(m);
          setImmediate(take);
          return;
        }
        // A Buffer arrives as a plain Uint8Array: the same bytes, viewed as a Buffer again (not copied).
        const bundle = m.result.bundle === null ? null : Buffer.from(m.result.bundle.buffer, m.result.bundle.byteOffset, m.result.bundle.byteLength);
        const handed = m.rest ? assembly.finish(m.rest) : null;
        const kept = handed?.capture ?? m.capture;
        if (kept !== null && capture !== undefined) Object.assign(capture, kept, { bundle });
        const diagnostics = handed?.resultDiagnostics ?? m.result.diagnostics;
        settle(() => {
          answers.close();
          resolve(withContent({ ...m.result, diagnostics, bundle }));
        });
      };
      worker.on('message', (m: FullCompileReply | { type: 'answered' }) => {
        if (m.type === 'loaded') return onLoaded?.(m.files);
        if (m.type === 'failed') {
          const err = m.name === 'ConfigDirError' ? new ConfigDirError(m.message) : new Error(m.message);
          return settle(() => reject(m.code === undefined ? err : Object.assign(err, { code: m.code })));
        }
        // Everything is on `answers`: taken from there; the worker is terminated after the last.
        if (m.type === 'answered') {
          answered = true;
          take();
        }
      });
      let answered = false;
      const onThisThread = (why: string) =>
        answered ||
        settle(() => {
          if (!warned) process.emitWarning(`${why}; mtlsgate compiles on its main thread instead (the same result, the event loop held meanwhile)`);
          warned = true;
          resolve(compileDirCapturing(dir, opts, capture));
        });
      worker.on('error', (err) => onThisThread(`the compile worker failed: ${err.message}`));
      worker.on('exit', (code) => onThisThread(`the compile worker exited (code ${code}) before its answer`));
      worker.postMessage({ dir, opts: cloneable, answers: answersOut, ...(hold ? { hold } : {}) } satisfies FullCompileRequest, [answersOut]);
    });
  };
}

/** The result with its `content` getter again (made from `wire` when first read, as the compiler's own). */
function withContent(result: Omit<CompileResult, 'content'>): CompileResult {
  let content: BundleContent | undefined;
  return Object.defineProperty(result, 'content', {
    get: () => (result.wire === null ? null : (content ??= expandContent(result.wire))),
    enumerable: true,
  }) as CompileResult;
}
