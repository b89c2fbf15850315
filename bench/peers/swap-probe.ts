// Child process for the swap bench: loads bundle files into the runtime's BundleStore the way
// `mtlsgate serve` does (reloadAsync: verify, build the request-path snapshot, swap) while a 1 ms timer and monitorEventLoopDelay watch the
// event loop, and prints one JSON line per file.
// Usage: node --import tsx bench/peers/swap-probe.ts INITIAL.json FILE...
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { createHash } from 'node:crypto';
import { loadBundle } from '../../bundle/read.ts';
import { buildCompactSnapshot, buildSnapshot } from '../../runtime/snapshot.ts';
import { BundleStore } from '../../runtime/store.ts';

const [initial, ...files] = process.argv.slice(2);
// Built as `mtlsgate serve` builds it: big bundles are verified and parsed in a worker thread.
const store = BundleStore.create(readFileSync(initial), initial, buildSnapshot, { buildCompact: buildCompactSnapshot });

/** Longest gap between two ticks of a 1 ms interval, minus the 1 ms it asked for. */
function driftProbe() {
  let last = performance.now();
  let worst = 0;
  const t = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last - 1);
    last = now;
  }, 1);
  return { stop: () => (clearInterval(t), worst) };
}

for (const file of files) {
  await sleep(200);
  global.gc?.();
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  histogram.enable();
  const drift = driftProbe();
  await sleep(50);
  const started = performance.now();
  const bytes = await readFile(file);
  const readMs = performance.now() - started;
  const r = await store.reloadAsync(bytes, file);
  const totalMs = performance.now() - started;
  await sleep(100);
  histogram.disable();
  const worstDrift = drift.stop();
  if (r.status !== 'loaded') throw new Error(`${file}: ${r.status === 'failed' ? r.error.message : 'unchanged'}`);
  // Where the time goes, phase by phase, on the same bytes (after the measured swap).
  global.gc?.();
  let t = performance.now();
  createHash('sha256').update(bytes).digest('hex');
  const digestMs = performance.now() - t;
  t = performance.now();
  JSON.parse(bytes.toString('utf8'));
  const parseMs = performance.now() - t;
  global.gc?.();
  t = performance.now();
  const bundle = loadBundle(bytes);
  const loadBundleMs = performance.now() - t;
  t = performance.now();
  buildSnapshot(bundle);
  const buildSnapshotMs = performance.now() - t;
  console.log(
    JSON.stringify({
      file,
      keys: r.keys,
      bytes: bytes.length,
      readMs,
      verifyBuildSwapMs: r.ms,
      totalMs,
      maxEventLoopDelayMs: histogram.max / 1e6,
      maxTimerDriftMs: worstDrift,
      phases: { digestMs, parseMs, shapeMs: Math.max(0, loadBundleMs - digestMs - parseMs), buildSnapshotMs },
      rssMiB: Math.round(process.memoryUsage().rss / 2 ** 20),
      heapUsedMiB: Math.round(process.memoryUsage().heapUsed / 2 ** 20),
    }),
  );
}
