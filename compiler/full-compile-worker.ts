// Worker thread entry of compiler/full-compile-client.ts: full compiles of a config directory,
// one at a time for as long as the worker lives, each capturing what the live compile keeps
// (compiler/live-state.ts), posted back in slices and a last message (compiler/capture-handoff.ts);
// and catalog compiles (the config without the portal's key files). Nothing of a compile is kept
// after its answer. Built beside the CLI as dist/full-compile-worker.mjs (scripts/build.mjs).
import { getHeapStatistics } from 'node:v8';
import { parentPort } from 'node:worker_threads';
import { sliceCapture } from './capture-handoff.ts';
import type { CatalogParts, FullCompileReply, FullCompileRequest, WorkerSignal } from './full-compile-client.ts';
import { compileDirCapturing } from './index.ts';
import type { LiveCapture } from './live-state.ts';

const port = parentPort!;
const signal = (m: WorkerSignal) => port.postMessage(m);

/** Requests run one after another (a compile awaits inside; the next must not start meanwhile). */
let chain: Promise<void> = Promise.resolve();
port.on('message', (req: FullCompileRequest) => {
  chain = chain.then(() => (req.type === 'catalog' ? catalog(req) : compile(req)));
});

async function catalog({ id, dir, opts, exclude }: Extract<FullCompileRequest, { type: 'catalog' }>): Promise<void> {
  // No cache: its entries and snapshot are the whole config's. One thread: the catalog is a few files.
  const { cacheDir: _whole, ...rest } = opts;
  let parts: CatalogParts | null = null;
  try {
    // Without its keys: the plans and APIs are all it is for (their certificate files were read twice before).
    const r = await compileDirCapturing(dir, { ...rest, exclude: [...(opts.exclude ?? []), ...exclude], keyWorkers: 0, withoutKeys: true });
    if (r.errorCount === 0 && r.wire !== null) parts = { plans: r.portalPlans, apis: r.wire.apis };
  } catch {
    // The full compile after it says why (an unreadable directory).
  }
  signal({ id, type: 'catalog', catalog: parts, heapBytes: getHeapStatistics().total_heap_size });
}

async function compile({ id, dir, opts, answers, hold }: Extract<FullCompileRequest, { type: 'compile' }>): Promise<void> {
  const capture = {} as LiveCapture;
  const onLoaded = (files: number) => {
    signal({ id, type: 'loaded', files });
    // Held (tests): the files are read; the compile waits here until the holder lets it go.
    if (hold) Atomics.wait(hold, 0, 0);
  };
  let reply: FullCompileReply;
  try {
    const r = await compileDirCapturing(dir, { ...opts, onLoaded }, capture);
    // Every field but `content`, a getter the client makes again from `wire` (a record per key: never cloned).
    const { diagnostics, errorCount, warningCount, wire, bundle, timings, tests, cache, bundleFile, portalPlans, keyWorkers } = r;
    const result = {
      diagnostics,
      errorCount,
      warningCount,
      wire,
      bundle,
      timings,
      tests,
      portalPlans,
      keyWorkers,
      ...(cache ? { cache } : {}),
      ...(bundleFile ? { bundleFile } : {}),
    };
    // The capture is filled only by a compile without errors (compiler/index.ts); it goes in slices
    // (compiler/capture-handoff.ts), each its own turn of the main thread's event loop.
    const kept = errorCount === 0 && bundle !== null;
    const rest = kept ? sliceCapture(capture, diagnostics, (slice) => answers.postMessage(slice satisfies FullCompileReply)) : null;
    if (rest !== null) reply = { type: 'done', result: { ...result, diagnostics: [] }, capture: null, rest };
    else reply = { type: 'done', result, capture: kept ? capture : null };
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return signal({ id, type: 'failed', name: e.name, message: e.message, ...(e.code === undefined ? {} : { code: e.code }) });
  }
  // The main thread takes the answer a message a turn, then closes `answers` (both ends).
  answers.postMessage(reply);
  // The heap this compile grew the worker to: the client ends a worker that would sit idle on a big one.
  signal({ id, type: 'answered', heapBytes: getHeapStatistics().total_heap_size });
}
