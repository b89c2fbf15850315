// The live compile's full compile in a worker thread (compiler/full-compile-worker.ts), so a
// long-lived process (the portal) keeps answering while a big config is read, parsed and
// resolved: at 20,000 key files that is 3-7 s of CPU the event loop no longer holds. The
// worker hands back the result and what the live compile keeps (the LiveCapture) in slices
// (compiler/capture-handoff.ts); this thread pays only their clones, one turn each. Same signature and result as
// compileDirCapturing (compiler/index.ts), which it runs: the bytes and diagnostics are its.
//
// One long-lived worker (CompileWorker), one compile at a time: a worker's start (a thread, the
// compiler's modules, the schemas compiled) cost every later full compile 100-300 ms when each
// had its own. Between compiles the worker holds no config (every compile's state is local to
// its message) and does not keep the process alive; idle for IDLE_MS it is ended (its heap
// returned), at once when its owner says nothing needs it (release(): the portal's start-up
// compile is done), and a worker that died is started again at the next compile. close() ends it at
// once: the compile in flight rejects (CompileStopped), so a portal stopped during its start-up
// compile exits at once. Before a full compile the worker can compile the catalog alone (the
// config without the portal's key files: catalog()), so the portal shows its catalog while the
// keys compile.
import type { BundleApi, BundleContent } from '../bundle/types.ts';
import { expandContent } from '../bundle/wire.ts';
import { MessageChannel, type MessagePort, receiveMessageOnPort, type Worker } from 'node:worker_threads';
import { startWorker } from '../common/worker-thread.ts';
import type { CompileOptions, CompileResult, PortalPlan } from './compile-types.ts';
import { compileDirCapturing } from './index.ts';
import { CaptureAssembly, type HandoffRest, type HandoffSlice } from './capture-handoff.ts';
import type { LiveCapture } from './live-state.ts';
import { ConfigDirError } from './load.ts';

/** The options a worker can be handed (structured-clonable: no functions). */
export type WorkerCompileOptions = Omit<CompileOptions, 'accessTests' | 'onLoaded'>;

/** What the portal's catalog is made of: the policies with a `portal:` block and the compiled APIs. */
export interface CatalogParts {
  plans: PortalPlan[];
  apis: Record<string, BundleApi>;
}

export type FullCompileRequest =
  | {
      type: 'compile';
      id: number;
      dir: string;
      opts: WorkerCompileOptions;
      /** Where the slices and the result go (then 'answered' on the worker's own port). */
      answers: MessagePort;
      /** Tests: once the files are read the worker waits while hold[0] is 0 (Atomics.wait). */
      hold?: Int32Array;
    }
  /** The config without the files `exclude` names (gitignore patterns), no cache: its catalog, or null when it has errors. */
  | { type: 'catalog'; id: number; dir: string; opts: WorkerCompileOptions; exclude: string[] };

/** On `answers`: the slices, then the last message. */
export type FullCompileReply =
  | HandoffSlice
  /** `rest`: the capture came in slices (then `result.diagnostics` is in `rest`); else `capture` holds it whole, or null (errors). */
  | { type: 'done'; result: Omit<CompileResult, 'content'>; capture: LiveCapture | null; rest?: HandoffRest };

/** On the worker's own port, each naming its request. */
export type WorkerSignal = { id: number } & (
  | { type: 'loaded'; files: number }
  /** `heapBytes`: the worker's heap (V8's total_heap_size) once it has answered. */
  | { type: 'answered'; heapBytes: number }
  | { type: 'catalog'; catalog: CatalogParts | null; heapBytes: number }
  | { type: 'failed'; name: string; message: string; code?: string }
);

/** How a full compile is made: on this thread (compileDirCapturing) or in a worker (CompileWorker.compile). */
export type FullCompile = typeof compileDirCapturing;

/** A compile cut short by CompileWorker.close() (the process stopping). */
export class CompileStopped extends Error {
  constructor() {
    super('the compile was stopped (the portal is stopping)');
    this.name = 'CompileStopped';
  }
}

/**
 * An idle worker is ended after this long (its heap returned); the next compile starts another.
 * Long enough for a burst (a deploy that changes several files, each view of a config with
 * errors compiling it all again); a small config's worker costs the process ~50 MB of RSS, which
 * it held for 10 minutes after every full compile before session 15.
 */
export const IDLE_MS = 60_000;

/**
 * A worker whose heap a compile grew beyond this is ended at its answer, not kept idle: a small
 * config's worker holds 35 MB, one that compiled 20,000 key files 180 MB. A compile that big
 * takes seconds; starting a worker again adds 100-300 ms to the next.
 */
export const MAX_IDLE_HEAP_BYTES = 96 * 1024 * 1024;

/** Warned once: a worker that cannot run (dist/full-compile-worker.mjs not copied beside the CLI) compiles here. */
let warned = false;
function warnOnce(why: string): void {
  if (!warned) process.emitWarning(`${why}; mtlsgate compiles on its main thread instead (the same result, the event loop held meanwhile)`);
  warned = true;
}

/** The request in flight: what its worker's signals go to, and what happens if the worker is lost. */
interface Job {
  id: number;
  signal(m: WorkerSignal): void;
  /** The worker is gone (`stopped`: by close()). */
  lost(why: string, stopped: boolean): void;
}

export class CompileWorker {
  private worker: Worker | null = null;
  /** The worker cannot start here (its file is missing): every compile runs on this thread. */
  private unavailable = false;
  private closed = false;
  private job: Job | null = null;
  private chain: Promise<unknown> = Promise.resolve();
  private nextId = 1;
  private idleTimer: NodeJS.Timeout | null = null;
  /** Requests waiting for their turn (serial). */
  private queued = 0;
  /** Workers started so far (tests, the bench). */
  starts = 0;

  constructor(private readonly options: { hold?: Int32Array; idleMs?: number; maxIdleHeapBytes?: number } = {}) {}

  /**
   * compileDirCapturing in the worker. `opts.onLoaded` is called here when the worker has read
   * the files. Options a worker cannot take (an access test runner: a function) compile on this
   * thread, and so does a compile whose worker fails to start or dies (with a warning): the same
   * result, the event loop held as before. Rejects as compileDirCapturing does (ConfigDirError:
   * the directory is unreadable), or with CompileStopped once close() is called.
   */
  readonly compile: FullCompile = (dir, opts, capture) => this.serial(() => this.compileNow(dir, opts, capture));

  /**
   * The catalog of `dir` without the files `exclude` names, compiled in the worker (null: it has
   * errors, or no worker runs): the portal shows it while the full compile queued after it runs.
   */
  catalog(dir: string, opts: CompileOptions, exclude: string[]): Promise<CatalogParts | null> {
    return this.serial(async () => {
      const worker = opts.accessTests === undefined ? this.acquire() : null;
      if (worker === null) return null;
      const id = this.nextId++;
      return new Promise<CatalogParts | null>((resolve) => {
        const finish = (catalog: CatalogParts | null, heapBytes = 0) => this.settle(() => resolve(catalog), heapBytes);
        this.job = {
          id,
          signal: (m) => (m.type === 'catalog' ? finish(m.catalog, m.heapBytes) : m.type === 'failed' ? finish(null) : undefined),
          lost: (why, stopped) => {
            if (!stopped) warnOnce(why);
            finish(null);
          },
        };
        worker.postMessage({ type: 'catalog', id, dir, opts: cloneable(opts), exclude } satisfies FullCompileRequest);
      });
    });
  }

  /** Ends the worker now: the compile in flight and every one after reject with CompileStopped. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.endWorker('stopped');
  }

  /**
   * Ends the worker now if it waits for nothing (no compile in flight or queued): the portal's
   * start-up compile is done and nothing is expected to need it (the next full compile comes
   * after a change to an API or a policy file, and starts a worker again: 100-300 ms).
   */
  release(): void {
    if (this.job === null && !this.queued) this.endWorker('idle');
  }

  /** Whether a worker thread runs now (tests). */
  get running(): boolean {
    return this.worker !== null;
  }

  private serial<T>(task: () => Promise<T>): Promise<T> {
    this.queued++;
    const start = () => {
      this.queued--;
      return task();
    };
    const run = this.chain.then(start, start);
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** The worker for the next request, started if none runs, and keeping the process alive until it answers; null: compile here. */
  private acquire(): Worker | null {
    if (this.idleTimer !== null) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    if (this.closed || this.unavailable) return null;
    if (this.worker === null) this.worker = this.start();
    this.worker.ref();
    return this.worker;
  }

  private start(): Worker {
    const worker = startWorker(import.meta.url, 'full-compile-worker');
    this.starts++;
    let answeredOnce = false;
    const lost = (why: string) => {
      if (this.worker !== worker) return;
      this.worker = null;
      // Never answered: it cannot run here (a missing file); one that answered before is started again next time.
      if (!answeredOnce) this.unavailable = true;
      const job = this.job;
      this.job = null;
      job?.lost(why, false);
    };
    worker.on('message', (m: WorkerSignal) => {
      answeredOnce = true;
      if (this.worker === worker && m.id === this.job?.id) this.job.signal(m);
    });
    worker.on('error', (err) => lost(`the compile worker failed: ${err.message}`));
    worker.on('exit', (code) => lost(`the compile worker exited (code ${code}) before its answer`));
    return worker;
  }

  /**
   * The request in flight is answered: the worker waits for the next one without keeping the
   * process alive, for IDLE_MS at most, unless its heap grew beyond MAX_IDLE_HEAP_BYTES.
   */
  private settle(done: () => void, heapBytes = 0): void {
    this.job = null;
    this.worker?.unref();
    if (heapBytes > (this.options.maxIdleHeapBytes ?? MAX_IDLE_HEAP_BYTES)) this.endWorker('idle');
    else if (this.worker !== null && !this.closed) {
      this.idleTimer = setTimeout(() => this.endWorker('idle'), this.options.idleMs ?? IDLE_MS);
      this.idleTimer.unref();
    }
    done();
  }

  private endWorker(why: string): void {
    if (this.idleTimer !== null) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    const worker = this.worker;
    this.worker = null;
    const job = this.job;
    this.job = null;
    if (worker !== null) {
      worker.removeAllListeners();
      worker.on('error', () => undefined);
      void worker.terminate();
    }
    job?.lost(why, why === 'stopped');
  }

  private compileNow(dir: string, opts: CompileOptions, capture?: LiveCapture): Promise<CompileResult> {
    if (this.closed) return Promise.reject(new CompileStopped());
    const worker = opts.accessTests === undefined ? this.acquire() : null;
    if (worker === null) return compileDirCapturing(dir, opts, capture);
    const id = this.nextId++;
    const assembly = new CaptureAssembly();
    const { hold } = this.options;
    return new Promise<CompileResult>((resolve, reject) => {
      // The answer: the slices and the last message wait on `answers`, a port with no listener;
      // one is taken a turn (receiveMessageOnPort, as the runtime's shard worker answers), so
      // their clones never add up in one turn of the event loop.
      const { port1: answers, port2: answersOut } = new MessageChannel();
      const finish = (done: () => void, heapBytes = 0) =>
        this.settle(() => {
          answers.close();
          done();
        }, heapBytes);
      let heapBytes = 0;
      const onThisThread = (why: string) => {
        warnOnce(why);
        resolve(compileDirCapturing(dir, opts, capture));
      };
      const take = () => {
        const m = receiveMessageOnPort(answers)?.message as FullCompileReply | undefined;
        if (m === undefined) {
          // Cut short: that worker is not used again.
          this.job = null;
          this.endWorker('the compile worker answered in part');
          answers.close();
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
        finish(() => resolve(withContent({ ...m.result, diagnostics, bundle })), heapBytes);
      };
      this.job = {
        id,
        signal: (m) => {
          if (m.type === 'loaded') opts.onLoaded?.(m.files);
          else if (m.type === 'answered') {
            heapBytes = m.heapBytes;
            take();
          } else if (m.type === 'failed') {
            const err = m.name === 'ConfigDirError' ? new ConfigDirError(m.message) : new Error(m.message);
            finish(() => reject(m.code === undefined ? err : Object.assign(err, { code: m.code })));
          }
        },
        lost: (why, stopped) => finish(() => (stopped ? reject(new CompileStopped()) : onThisThread(why))),
      };
      worker.postMessage({ type: 'compile', id, dir, opts: cloneable(opts), answers: answersOut, ...(hold ? { hold } : {}) } satisfies FullCompileRequest, [
        answersOut,
      ]);
    });
  }
}

/** compileDirCapturing in a worker thread of its own CompileWorker (tests; the portal keeps one CompileWorker). */
export function offThreadCompile(hold?: Int32Array): FullCompile {
  return new CompileWorker(hold ? { hold } : {}).compile;
}

function cloneable(opts: CompileOptions): WorkerCompileOptions {
  const { onLoaded: _fn, accessTests: _none, ...rest } = opts;
  return rest;
}

/** The result with its `content` getter again (made from `wire` when first read, as the compiler's own). */
function withContent(result: Omit<CompileResult, 'content'>): CompileResult {
  let content: BundleContent | undefined;
  return Object.defineProperty(result, 'content', {
    get: () => (result.wire === null ? null : (content ??= expandContent(result.wire))),
    enumerable: true,
  }) as CompileResult;
}
