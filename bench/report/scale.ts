// The bundle-at-scale sections: compile (and compile --cache), the bundle at 100,000 and
// 1,000,000 keys, and sharded reloads.
import type { CompileResult } from '../workloads/compile.ts';
import { section, table } from './markdown.ts';
import type { BenchResults } from './results.ts';

const SCALE_APIS_LABEL = '1,000 APIs';

/** The compile of the generated config, and its --cache steps. */
export function compileSection(res: BenchResults): string {
  const c = res.sections.compile;
  if (!c) return '';
  const s: string[] = [];
  s.push(`## Compile: ${c.apis} APIs, ${c.keys} keys, each key with its own certificate file\n`);
  s.push(
    table(
      ['wall s', 'CPU s', 'keys/s', 'peak RSS MiB', 'bundle MiB', 'exit', 'config generated this run (s)'],
      [[c.wallS, c.cpuS ?? '?', c.keysPerS, c.peakRssMiB ?? '?', c.bundleMiB, c.exitCode ?? '?', c.generatedInS || 'cached']],
    ),
  );
  if (c.error) s.push('\n```\n' + c.error + '\n```');
  s.push('');
  if (c.cache?.length) s.push(compileCacheSection(c.cache));
  if (c.watch?.length) s.push(compileWatchSection(c.watch));
  return s.join('\n');
}

/** Compile, bundle size and serve start-up at each key count. */
export function scaleSection(res: BenchResults): string {
  if (!res.sections.scale) return '';
  const s: string[] = [];
  s.push(`## The bundle at scale: ${SCALE_APIS_LABEL}, each key with its own certificate file (compile, bundle size, serve start-up)\n`);
  s.push(
    'Compiled by `mtlsgate compile` (wall, user+system CPU and peak RSS from GNU time), then served by `mtlsgate serve`: time from spawn to the first HTTPS answer (the bundle loaded and routing), the CPU it had used by then, and its RSS. Both run pinned to the server core: when another tenant uses that core, wall times stretch and the CPU columns are the work of the process itself.\n',
  );
  s.push(
    table(
      [
        'keys',
        'compile wall s',
        'compile CPU s',
        'compile peak RSS MiB',
        'bundle MiB',
        'bytes/key',
        'serve first answer ms',
        'serve CPU s by then',
        'serve RSS MiB',
        'serve peak RSS MiB',
      ],
      res.sections.scale.map((r) => [
        r.keys,
        r.compileWallS,
        r.compileCpuS ?? '?',
        r.compilePeakRssMiB ?? '?',
        r.bundleMiB,
        r.bytesPerKey,
        r.serveFirstAnswerMs ?? '–',
        r.serveCpuS ?? '–',
        r.serveRssMiB ?? '–',
        r.servePeakRssMiB ?? '–',
      ]),
    ),
  );
  for (const r of res.sections.scale) if (r.error) s.push(`\n${r.keys} keys: ${r.error}`);
  s.push('');
  return s.join('\n');
}

/** Sharded bundles: one-key changes and throughput with a reload every second. */
export function shardsSection(res: BenchResults): string {
  if (!res.sections.shards) return '';
  return section(
    '## Sharded bundle: reloads that cost what changed (`compile --shards auto`, `serve --bundle DIR`)\n',
    "Synthetic dynamic-mTLS keys. One-key change: the changed shard and the manifest written, until /health reports the new digest (idle gateway): the first, made right after the gateway's first answer, waits for the reload worker's start and warm-up and is given apart; then the median and worst of the others. Reload stall: the longest synchronous run of the gateway's main thread a reload made (its `stall_ms` log field); loop delay: the event loop's longest delay while a reload ran (`loop_delay_ms`, 1 ms resolution, anything else the thread ran included). Throughput: ONE keep-alive run cut into windows (after ab's 2 s connection burst) without and with a one-key change written every second (a different key each time, so each change touches another shard and the gateway's routing overlay is folded into its base now and then; the shards column counts the distinct shards changed), in the order off, on, on, off, each window's req/s from the gateway's request counter (bench/workloads/reload-windows.ts): windows in a pair where another tenant took more than 15% of the server core are left out; the ratio of the two kinds' req/s, the lowest and highest ratio of adjacent window pairs, and the ratio of requests per CPU-second of the gateway (another tenant on the core does not move it). Reload CPU: the gateway's threads other than the main one (the reload worker, GC helpers) per reload, beyond the same threads in the windows without. Event-loop max: prom-client's, per window (median / max over the windows of each kind).\n",
    table(
      [
        'keys',
        'shards',
        'bundle MiB',
        'change KiB',
        'ready ms',
        'RSS MiB',
        'one-key change ms (first after start; median / worst of n)',
        'reload stall ms (idle max; load median / max)',
        'loop delay in reload ms (idle / load)',
        'window pairs: clean / all (s each)',
        'req/s no reload → reload 1/s',
        'ratio (pairs min..max; per CPU-s)',
        'reload CPU off the main thread ms',
        'main thread µs/request (no / 1/s)',
        'event-loop max per window ms (no / 1/s: median, max; burst)',
        'failed',
        'written (shards) / taken',
        'served under load, max ms',
        'last served ≤2 s',
      ],
      res.sections.shards.map((r) => {
        if (r.error) return [r.keys, r.shards, r.error, ...Array(16).fill('')];
        const w = r.windows;
        return [
          r.keys,
          r.shards,
          r.bundleMiB,
          r.changeKiB,
          r.readyMs,
          r.rssMiB,
          `${r.firstChangeMs === undefined ? '' : `${r.firstChangeMs}; `}${r.oneKeyMedianMs} / ${r.oneKeyWorstMs} of ${r.oneKeyChanges}`,
          `${r.idleStallMaxMs}; ${r.loadStallMedianMs} / ${r.loadStallMaxMs}`,
          `${r.idleLoopDelayMaxMs} / ${r.loadLoopDelayMaxMs}`,
          `${w.cleanPairs} / ${w.pairs} (${w.windowS})`,
          `${w.rpsNoReload} → ${w.rpsReload}`,
          `${w.ratio} (${w.pairRatioMin}..${w.pairRatioMax}; ${w.cpuRatio})`,
          w.otherThreadsMsPerReload,
          `${w.mainUsPerRequestNoReload} / ${w.mainUsPerRequestReload}`,
          `${w.loopMaxMedianMsNoReload}, ${w.loopMaxMsNoReload} / ${w.loopMaxMedianMsReload}, ${w.loopMaxMsReload}; ${r.loopMaxMsStartBurst}`,
          r.failedRequests,
          `${r.reloadsWritten}${r.shardsChanged === undefined ? '' : ` (${r.shardsChanged})`} / ${r.reloadsTaken}`,
          r.servedUnderLoadMaxMs,
          r.lastServedWithin2s ? 'yes' : 'no',
        ];
      }),
    ),
  );
}

function compileCacheSection(rows: NonNullable<CompileResult['cache']>): string {
  const out = [
    '### `compile --cache`: cold, warm, one key file changed (1,000 APIs, each key its own certificate file)\n',
    'Each step is the CLI in a child process (`--timings`), pinned to the server core. After each change an uncached compile of the same config is the reference: "same bytes" compares the SHA-256 of both outputs.\n',
    table(
      ['keys', 'step', 'load avg (1 min) at start', 'wall s', 'CPU s', 'peak RSS MiB', 'same bytes as uncached', 'uncached wall s', 'cache MiB', 'stages'],
      rows.flatMap((r) =>
        r.steps.map((st) => [
          r.keys,
          st.step,
          st.loadAverage ?? '?',
          st.wallS,
          st.cpuS ?? '?',
          st.peakRssMiB ?? '?',
          st.identical === undefined ? '–' : st.identical ? 'yes' : 'NO',
          st.uncachedWallS ?? '–',
          st.step === 'cold' ? r.cacheMiB : '',
          (st.error ?? st.timings).replace(/\n/g, ' '),
        ]),
      ),
    ),
    '',
  ];
  return out.join('\n');
}

/** `compile --watch`: from a key file renamed into place to the line saying OUT was rewritten. */
function compileWatchSection(rows: NonNullable<CompileResult['watch']>): string {
  const s = ['### `compile --watch`: one key file changed, to OUT rewritten\n'];
  s.push(
    'The CLI watching the same config (pinned to the server core); `start` is spawn to watching (the first full compile, no cache). A change is one key file written beside and renamed over: a key appended (`added`), then one key given another certificate file (`swap`). The line is what the CLI printed; `identical`: OUT has the SHA-256 of an uncached `compile` of the same config.\n',
  );
  const body = rows.flatMap((r) =>
    r.steps.map((st) => [
      r.keys,
      st.step,
      st.wallMs,
      /in (\d+ ms \(\w+\))/.exec(st.line)?.[1] ?? '',
      st.identical === undefined ? '–' : st.identical ? 'yes' : 'NO',
      st.loadAverage,
      st.error ?? '',
    ]),
  );
  s.push(table(['keys', 'step', 'wall ms', 'its line', 'identical', 'load average', 'error'], body));
  s.push('');
  return s.join('\n');
}
