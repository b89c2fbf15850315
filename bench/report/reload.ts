// The single-file bundle's reload sections: one swap's cost, and throughput with a reload every second.
import { r2, section, table } from './markdown.ts';
import type { BenchResults } from './results.ts';

/** One bundle load and swap, phase by phase. */
export function swapSection(res: BenchResults): string {
  if (!res.sections.swap) return '';
  return section(
    '## Bundle load and swap (runtime BundleStore.reloadAsync, as `mtlsgate serve` reloads: read, verify digest and shape, build snapshot, swap)\n',
    'The phases column re-runs the same work synchronously on the main thread (loadBundle, then buildSnapshot) to show where the time goes; the stall columns measure the real reload path (big bundles verified and parsed in a worker thread).\n',
    table(
      [
        'keys',
        'bundle MiB',
        'read ms (async)',
        'verify+build+swap ms',
        'longest event-loop stall ms',
        'worst 1 ms timer drift ms',
        'RSS after MiB',
        'sync phases: digest / JSON.parse / shape check / buildSnapshot ms',
      ],
      res.sections.swap.map((w) => [
        w.keys,
        w.bundleMiB,
        w.readMs,
        w.verifyBuildSwapMs,
        w.maxEventLoopDelayMs,
        w.maxTimerDriftMs,
        w.rssMiB,
        `${w.phases.digestMs} / ${w.phases.parseMs} / ${w.phases.shapeMs} / ${w.phases.buildSnapshotMs}`,
      ]),
    ),
  );
}

/** Throughput with the bundle replaced every second. */
export function reloadSection(res: BenchResults): string {
  if (!res.sections.reload) return '';
  return section(
    '## Throughput during a reload every second (keep-alive, ECDSA)\n',
    table(
      [
        'bundle',
        'req/s no reload',
        'req/s reload every 1 s',
        'ratio',
        'p99 ms (no / with)',
        'max ms (no / with)',
        'reloads written / taken / refused',
        'failed requests',
        'last version served',
      ],
      res.sections.reload.map((r) => [
        r.bundle,
        r.noReload.rps,
        r.reloadEverySecond.rps,
        r2(r.ratio),
        `${r.noReload.p99Ms} / ${r.reloadEverySecond.p99Ms}`,
        `${r.noReload.maxMs} / ${r.reloadEverySecond.maxMs}`,
        `${r.reloadsWritten} / ${r.reloadsTaken} / ${r.reloadsRefused}`,
        r.failedRequests,
        r.lastVersionServed ? 'yes' : '**no**',
      ]),
    ),
  );
}
