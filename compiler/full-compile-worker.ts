// Worker thread entry of compiler/full-compile-client.ts: one full compile of a config
// directory, capturing what the live compile keeps (compiler/live-state.ts), posted back in
// slices and a last message (compiler/capture-handoff.ts). Built beside the CLI as
// dist/full-compile-worker.mjs (scripts/build.mjs).
import { parentPort } from 'node:worker_threads';
import { sliceCapture } from './capture-handoff.ts';
import type { FullCompileReply, FullCompileRequest } from './full-compile-client.ts';
import { compileDirCapturing } from './index.ts';
import type { LiveCapture } from './live-state.ts';

const port = parentPort!;

// `on`, not `once`: the worker stays up (its end of `answers` open) until the main thread has
// taken the whole answer and terminates it.
port.on('message', async ({ dir, opts, answers, hold }: FullCompileRequest) => {
  const capture = {} as LiveCapture;
  const onLoaded = (files: number) => {
    port.postMessage({ type: 'loaded', files } satisfies FullCompileReply);
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
    reply = { type: 'failed', name: e.name, message: e.message, ...(e.code === undefined ? {} : { code: e.code }) };
  }
  if (reply.type === 'failed') return port.postMessage(reply);
  answers.postMessage(reply);
  port.postMessage({ type: 'answered' });
});
