// bench/RESULTS.md from the results object: the machine, the targets, then one table per
// workload. Ratios divide by the bare Node proxy measured in the same run.
import type { BenchOptions } from './lib/context.ts';
import type { Machine } from './lib/machine.ts';
import type { LimitsSection } from './workloads/limits-e2e.ts';
import type { LogLineResult } from './workloads/log-line.ts';
import type { CompileResult } from './workloads/compile.ts';
import type { GeneratorRow } from './workloads/generator.ts';
import { CONTAMINATED, type LoadResult } from './workloads/load.ts';
import type { Http2Section } from './workloads/http2.ts';
import type { PairedSection } from './workloads/paired.ts';
import { RESUME_PROCESSES, type ContenderRun } from './workloads/proxy.ts';
import type { ReloadRun } from './workloads/reload.ts';
import type { ScaleRow } from './workloads/scale.ts';
import type { ShardReloadRow } from './workloads/shard-reload.ts';
import type { SwapRow } from './workloads/swap.ts';

export interface BenchResults {
  machine: Machine;
  options: BenchOptions;
  sections: {
    generator?: GeneratorRow[];
    paired?: PairedSection[];
    http2?: Http2Section[];
    proxy?: ContenderRun[];
    compile?: CompileResult;
    scale?: ScaleRow[];
    shards?: ShardReloadRow[];
    swap?: SwapRow[];
    reload?: ReloadRun[];
    limits?: LimitsSection;
    logLine?: LogLineResult;
  };
  /** Sections that failed as a whole. */
  errors: { section: string; message: string }[];
  durationS?: number;
  loadAverageAtEnd?: number[];
}

export interface Target {
  target: string;
  measured: string;
  /** null: nothing to judge (the section did not run or failed). */
  reached: boolean | null;
}

const BASELINE = 'node-bare';
const SCALE_APIS_LABEL = '1,000 APIs';
const pct = (x: number | null | undefined) => (x === null || x === undefined ? '?' : `${Math.round(x * 100)}%`);
const ratio = (a: number | undefined, b: number | undefined) => (a !== undefined && b !== undefined && b > 0 ? a / b : undefined);
const r2 = (x: number | undefined) => (x === undefined ? '–' : x.toFixed(2));

function table(head: string[], rows: (string | number)[][]): string {
  const line = (cells: (string | number)[]) => `| ${cells.map((c) => String(c).replace(/\|/g, '\\|')).join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n');
}

function find(runs: ContenderRun[], id: string, alg: string): ContenderRun | undefined {
  return runs.find((r) => r.contender === id && r.alg === alg && r.status === 'ok');
}

export function computeTargets(res: BenchResults): Target[] {
  const t: Target[] = [];
  const runs = res.sections.proxy ?? [];
  for (const alg of res.options.algs) {
    const base = find(runs, BASELINE, alg);
    for (const id of ['mtlsgate-static', 'mtlsgate-dynamic']) {
      const m = find(runs, id, alg);
      if (base?.keepAlive && m?.keepAlive) {
        const tr = m.keepAlive.rps / base.keepAlive.rps;
        const lr = m.keepAlive.p99Ms / base.keepAlive.p99Ms;
        t.push({
          target: `${id} keep-alive ≥ 0.9× bare Node (${alg})`,
          measured: `${r2(tr)}× (per CPU µs: ${r2(base.keepAlive.serverUsPerRequest / m.keepAlive.serverUsPerRequest)}×)`,
          reached: tr >= 0.9,
        });
        t.push({ target: `${id} keep-alive p99 ≤ 1.2× bare Node (${alg}, closed loop)`, measured: `${r2(lr)}×`, reached: lr <= 1.2 });
      }
      if (base?.fixedRate && m?.fixedRate) {
        const lr = m.fixedRate.p99Ms / base.fixedRate.p99Ms;
        t.push({
          target: `${id} p99 ≤ 1.2× bare Node at ${m.fixedRate.offeredRps} req/s offered (${alg})`,
          measured: `${r2(lr)}× (${m.fixedRate.p99Ms} vs ${base.fixedRate.p99Ms} ms)`,
          reached: lr <= 1.2,
        });
      }
      const caddy = find(runs, 'caddy', alg);
      if (caddy?.keepAlive && m?.keepAlive)
        t.push({
          target: `${id} keep-alive ≥ Caddy (${alg})`,
          measured: `${r2(m.keepAlive.rps / caddy.keepAlive.rps)}×`,
          reached: m.keepAlive.rps >= caddy.keepAlive.rps,
        });
      for (const peer of ['nginx', 'haproxy']) {
        const p = find(runs, peer, alg);
        if (p?.keepAlive && m?.keepAlive)
          t.push({ target: `${id} keep-alive vs ${peer} (${alg}), reported`, measured: `${r2(m.keepAlive.rps / p.keepAlive.rps)}×`, reached: null });
      }
      if (base?.newConnection && m?.newConnection) {
        const hr = m.newConnection.rps / base.newConnection.rps;
        t.push({
          target: `${id} new connections (full handshake) ≥ 0.9× bare Node (${alg})`,
          measured: `${r2(hr)}× (per CPU µs: ${r2(base.newConnection.serverUsPerRequest / m.newConnection.serverUsPerRequest)}×)`,
          reached: hr >= 0.9,
        });
      }
      if (base?.resumed && m?.resumed) {
        const hr = m.resumed.perSecond / base.resumed.perSecond;
        t.push({
          target: `${id} new connections (resumed session) ≥ 0.9× bare Node (${alg})`,
          measured: `${r2(hr)}× (per CPU µs: ${r2(base.resumed.serverUsPerConnection / m.resumed.serverUsPerConnection)}×)`,
          reached: hr >= 0.9,
        });
      }
    }
  }
  for (const r of res.sections.reload ?? []) {
    t.push({
      target: `reload every second ≥ 0.95× no reload, 0 failed (${r.bundle})`,
      measured: `${r2(r.ratio)}×, ${r.failedRequests} failed, ${r.reloadsTaken} reloads taken`,
      reached: r.ratio >= 0.95 && r.failedRequests === 0 && r.lastVersionServed,
    });
  }
  const swap = res.sections.swap?.find((s) => s.keys >= 100_000);
  if (swap)
    t.push({ target: '100k-key bundle swap: event-loop stall < 100 ms', measured: `${swap.maxEventLoopDelayMs} ms`, reached: swap.maxEventLoopDelayMs < 100 });
  const c = res.sections.compile;
  if (c && c.exitCode === 0) {
    t.push({ target: `compile ${c.apis} APIs / ${c.keys} keys < 10 s`, measured: `${c.wallS} s`, reached: c.wallS < 10 });
    t.push({
      target: `compile ${c.apis} APIs / ${c.keys} keys < 1 GiB peak RSS`,
      measured: `${c.peakRssMiB ?? '?'} MiB`,
      reached: c.peakRssMiB === null ? null : c.peakRssMiB < 1024,
    });
  }
  for (const row of c?.cache ?? []) {
    for (const st of row.steps.filter((x) => x.step === 'added' || x.step === 'swap')) {
      t.push({
        target: `compile --cache ${row.keys.toLocaleString('en')} keys, one key file changed (${st.step}) < 5 s, same bytes`,
        measured: `${st.wallS} s (CPU ${st.cpuS ?? '?'} s), ${st.identical ? 'identical' : 'DIFFERENT'}`,
        reached: st.exitCode === 0 && st.wallS < 5 && st.identical === true,
      });
    }
  }
  for (const row of (res.sections.scale ?? []).filter((x) => x.keys >= 1_000_000 && !x.error)) {
    const at = `${row.keys.toLocaleString('en')} keys`;
    t.push({ target: `bundle at ${at} ≤ 150 MB`, measured: `${row.bundleMiB} MiB`, reached: row.bundleMiB * 2 ** 20 <= 150e6 });
    t.push({ target: `compile ${at} < 60 s`, measured: `${row.compileWallS} s (CPU ${row.compileCpuS ?? '?'} s)`, reached: row.compileWallS < 60 });
    t.push({
      target: `compile ${at} < 3 GiB peak RSS`,
      measured: `${row.compilePeakRssMiB ?? '?'} MiB`,
      reached: row.compilePeakRssMiB === null ? null : row.compilePeakRssMiB < 3072,
    });
    if (row.serveFirstAnswerMs !== null) {
      t.push({
        target: `serve ${at}: first answer < 5 s`,
        measured: `${(row.serveFirstAnswerMs / 1000).toFixed(1)} s (CPU ${row.serveCpuS ?? '?'} s)`,
        reached: row.serveFirstAnswerMs < 5000,
      });
      t.push({ target: `serve ${at}: RSS < 1 GiB`, measured: `${row.serveRssMiB} MiB`, reached: (row.serveRssMiB ?? Infinity) < 1024 });
    }
  }
  const lim = res.sections.limits?.endToEnd;
  const mem = lim?.find((r) => r.limiter === 'in-process');
  if (mem)
    t.push({ target: 'in-process rate limiting costs < 5% throughput', measured: `${r2(mem.ratio)}× the unlimited gateway`, reached: mem.ratio >= 0.95 });
  const logLine = res.sections.logLine;
  if (logLine)
    t.push({
      target: 'request log line: at most 3 µs of CPU per request',
      measured: `${logLine.medianUsPerLine} µs per line (rounds ${Math.min(...logLine.roundsUsPerLine)}–${Math.max(...logLine.roundsUsPerLine)})`,
      reached: logLine.medianUsPerLine <= 3,
    });
  const red = lim?.find((r) => r.limiter === 'redis');
  if (red?.redisRoundTripsPerRequest !== null && red?.redisRoundTripsPerRequest !== undefined)
    t.push({
      target: 'Redis rate limiting: 1 round trip per request',
      measured: `${red.redisRoundTripsPerRequest}`,
      reached: red.redisRoundTripsPerRequest <= 1.01,
    });
  return t;
}

function loadRow(label: string, l: LoadResult, base: LoadResult | undefined, extra: (string | number)[]): (string | number)[] {
  return [
    label,
    l.rps,
    r2(ratio(l.rps, base?.rps)),
    l.p50Ms,
    l.p99Ms,
    r2(ratio(l.p99Ms, base?.p99Ms)),
    pct(l.serverCpu),
    l.serverUsPerRequest,
    pct(l.clientCpu),
    `${pct(l.serverCoreOtherLoad)}${l.retried ? ' (retried)' : ''}`,
    l.errors,
    ...extra,
  ];
}

function proxySection(res: BenchResults): string {
  const runs = res.sections.proxy;
  if (!runs) return '';
  const out: string[] = [];
  for (const alg of res.options.algs) {
    const algName = alg === 'ec' ? 'ECDSA P-256' : 'RSA-2048';
    const mine = runs.filter((r) => r.alg === alg);
    const base = find(runs, BASELINE, alg);
    const ka = mine.filter((r) => r.keepAlive);
    if (ka.length) {
      out.push(`### Keep-alive, ${res.options.connections} connections, ${algName}\n`);
      out.push(
        table(
          [
            'contender',
            'req/s',
            '× bare Node',
            'p50 ms',
            'p99 ms',
            'p99 × bare',
            'server CPU',
            'server µs/req',
            'client CPU',
            'other load on server core',
            'errors',
            'keep-alive reqs',
            'server RSS MiB',
          ],
          ka.map((r) =>
            loadRow(r.label, r.keepAlive!, base?.keepAlive, [`${pct(r.keepAlive!.keepAliveRequests / Math.max(1, r.keepAlive!.complete))}`, r.rssMiB ?? '?']),
          ),
        ),
      );
      out.push('');
    }
    const fr = mine.filter((r) => r.fixedRate);
    if (fr.length) {
      out.push(
        `### Latency at a fixed ${fr[0].fixedRate!.offeredRps} req/s offered, open loop (latency from each request's due time), up to 16 connections, ${algName}\n`,
      );
      out.push(
        table(
          ['contender', 'req/s achieved', 'p50 ms', 'p90 ms', 'p99 ms', 'p99 × bare', 'max ms', 'server CPU', 'other load on server core', 'errors'],
          fr.map((r) => {
            const f = r.fixedRate!;
            return [
              r.label,
              f.achievedRps,
              f.p50Ms,
              f.p90Ms,
              f.p99Ms,
              r2(ratio(f.p99Ms, base?.fixedRate?.p99Ms)),
              f.maxMs,
              pct(f.serverCpu),
              `${pct(f.serverCoreOtherLoad)}${f.retried ? ' (retried)' : ''}`,
              f.errors,
            ];
          }),
        ),
      );
      out.push('');
    }
    const nc = mine.filter((r) => r.newConnection);
    if (nc.length) {
      out.push(`### New TLS connection per request (full handshake, client certificate), ${res.options.handshakeConnections} concurrent, ${algName}\n`);
      out.push(
        table(
          [
            'contender',
            'handshakes/s',
            '× bare Node',
            'p50 ms',
            'p99 ms',
            'p99 × bare',
            'server CPU',
            'server µs/handshake',
            'client CPU',
            'other load on server core',
            'errors',
          ],
          nc.map((r) => loadRow(r.label, r.newConnection!, base?.newConnection, [])),
        ),
      );
      out.push('');
    }
    const rs = mine.filter((r) => r.resumed);
    if (rs.length) {
      out.push(`### Resumed TLS session per request (openssl s_time -reuse, one request each, ${RESUME_PROCESSES} processes in parallel), ${algName}\n`);
      out.push(
        table(
          [
            'contender',
            'connections/s',
            '× bare Node',
            'server CPU',
            'server µs/connection',
            'client CPU',
            'other load on server core',
            'same answer as a full handshake',
          ],
          rs.map((r) => {
            const x = r.resumed!;
            return [
              r.label,
              x.perSecond,
              r2(ratio(x.perSecond, base?.resumed?.perSecond)),
              pct(x.serverCpu),
              x.serverUsPerConnection,
              pct(x.clientCpu),
              `${pct(x.serverCoreOtherLoad)}${x.retried ? ' (retried)' : ''}`,
              x.sameAnswer ? 'yes' : '**no**',
            ];
          }),
        ),
      );
      out.push('');
    }
    const other = mine.filter((r) => r.status !== 'ok');
    if (other.length) out.push(other.map((r) => `- ${r.label} (${algName}): **${r.status}**${r.error ? `: ${r.error}` : ''}`).join('\n') + '\n');
  }
  out.push('### Pin check before load (curl, ECDSA and RSA alike)\n');
  const checks = runs.filter((r) => r.check && r.alg === res.options.algs[0]);
  out.push(
    table(
      ['contender', 'listed certificate', 'unlisted, same CA', 'other CA', 'notes'],
      checks.map((r) => [r.label, r.check!.listed, r.check!.unlisted, r.check!.otherCa, r.notes.join('; ')]),
    ),
  );
  return out.join('\n');
}

export function renderReport(res: BenchResults): string {
  const m = res.machine;
  const o = res.options;
  const s: string[] = [];
  s.push('# mtlsgate benchmark results\n');
  s.push(
    `Generated by \`npm run bench\` on ${m.date} (${res.durationS ?? '?'} s). Compare ratios within this run; absolute figures on shared 2-core VMs drift ±15% between runs.\n`,
  );
  s.push('## Machine\n');
  s.push(
    table(
      ['', ''],
      [
        ['CPU', `${m.cpuModel}, ${m.cores} cores, ${m.memoryGiB} GiB`],
        ['kernel', m.kernel],
        ['Node', `${m.node} (OpenSSL ${m.nodeOpenssl})`],
        ['system OpenSSL (NGINX, HAProxy, ab)', m.systemOpenssl],
        ...Object.entries(m.peers).map(([k, v]) => [k, v]),
        ['pinning', m.pinning],
        ['load average at start / end', `${m.loadAverageAtStart.join(', ')} / ${res.loadAverageAtEnd?.join(', ') ?? '?'}`],
        ['commit', m.gitCommit],
        [
          'options',
          `keep-alive ${o.durationS} s × ${o.connections} connections; new connections ${o.handshakeDurationS} s × ${o.handshakeConnections}; dynamic bundle ${o.dynamicKeys} keys`,
        ],
      ],
    ),
  );
  s.push('');
  const targets = computeTargets(res);
  if (targets.length) {
    s.push('## Targets\n');
    s.push(
      'Throughput ratios are req/s in this run; "per CPU µs" divides the server CPU each request cost, the ratio that holds when another tenant took part of the server core (see "other load on server core" below).\n',
    );
    s.push(
      table(
        ['target', 'measured', 'reached'],
        targets.map((t) => [t.target, t.measured, t.reached === null ? 'reported' : t.reached ? 'yes' : '**no**']),
      ),
    );
    s.push('');
  }
  if (res.sections.generator) {
    s.push('## Load generator ceiling (ECDSA, keep-alive)\n');
    s.push(
      table(
        ['generator', 'target', 'req/s', 'p99 ms', 'server CPU', 'client CPU', 'keep-alive share'],
        res.sections.generator.map((g) => [
          g.generator,
          g.target,
          g.rps,
          g.p99Ms,
          pct(g.serverCpu),
          pct(g.clientCpu),
          g.keepAliveShare === null ? '–' : pct(g.keepAliveShare),
        ]),
      ),
    );
    s.push('');
  }
  if (res.sections.paired?.length) {
    const p = res.sections.paired[0];
    s.push(`## Keep-alive, interleaved: ratio to the bare Node proxy (${p.rounds} rounds × ${p.turnS} s per contender)\n`);
    s.push(
      'All contenders run at once on the server core; the load visits them in turn, in a rotating order, every round. Each round gives a ratio from runs seconds apart; the median round is the figure, min–max the spread. The most robust ratio on a noisy machine.\n',
    );
    s.push(
      table(
        ['contender', 'alg', 'req/s ratio (median)', 'min–max', 'CPU-per-request ratio (median)', 'server µs/req (median)', 'req/s (median)', 'errors'],
        res.sections.paired.flatMap((sec) =>
          sec.rows.map((r) => [
            r.label,
            r.alg,
            r2(r.medianRatio),
            `${r2(r.minRatio)}–${r2(r.maxRatio)}`,
            r2(r.medianCpuRatio),
            r.medianUsPerRequest,
            r.medianRps,
            r.errors,
          ]),
        ),
      ),
    );
    s.push('');
  }
  if (res.sections.http2?.length) {
    const h = res.sections.http2[0];
    s.push(`## HTTP/2 against HTTP/1.1 through mtlsgate (static mTLS, keep-alive, ${h.rounds} alternating rounds × ${h.turnS} s)\n`);
    s.push(
      "Same gateway, same client certificate, 64 requests in flight: 64 HTTP/1.1 connections (ab) against 4 HTTP/2 connections × 16 streams (a Node client: ab and wrk speak HTTP/1.x only). The client CPU column is the load generator's share of its core: near 100% means the client was the ceiling, and the server µs/req is the figure to compare.\n",
    );
    s.push(
      table(
        ['protocol', 'alg', 'connections', 'req/s (median)', 'server µs/req (median)', 'client CPU', 'p99 ms', 'errors'],
        res.sections.http2.flatMap((sec) =>
          sec.rows.map((r) => [r.protocol, sec.alg, r.connections, r.medianRps, r.medianUsPerRequest, pct(r.medianClientCpu), r.p99Ms, r.errors]),
        ),
      ),
    );
    s.push('');
  }
  if (res.sections.proxy) {
    s.push('## Side by side: "only these pinned client certificates may call /api/"\n');
    s.push(proxySection(res));
    s.push('');
  }
  const c = res.sections.compile;
  if (c) {
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
  }
  if (res.sections.scale) {
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
  }
  if (res.sections.shards) {
    s.push('## Sharded bundle: reloads that cost what changed (`compile --shards auto`, `serve --bundle DIR`)\n');
    s.push(
      "Synthetic dynamic-mTLS keys. One-key change: the changed shard and the manifest written, until /health reports the new digest (idle gateway; the number of changes in the column). Reload stall: the longest synchronous run of the gateway's main thread a reload made (its `stall_ms` log field); loop delay: the event loop's longest delay while a reload ran (`loop_delay_ms`, 1 ms resolution, anything else the thread ran included). Throughput: ONE keep-alive run cut into windows (after ab's 2 s connection burst) without and with a one-key change written every second, in the order off, on, on, off, each window's req/s from the gateway's request counter (bench/workloads/reload-windows.ts): windows in a pair where another tenant took more than 15% of the server core are left out; the ratio of the two kinds' req/s, the lowest and highest ratio of adjacent window pairs, and the ratio of requests per CPU-second of the gateway (another tenant on the core does not move it). Reload CPU: the gateway's threads other than the main one (the reload worker, GC helpers) per reload, beyond the same threads in the windows without. Event-loop max: prom-client's, per window (median / max over the windows of each kind).\n",
    );
    s.push(
      table(
        [
          'keys',
          'shards',
          'bundle MiB',
          'change KiB',
          'ready ms',
          'RSS MiB',
          'one-key change ms (median / worst of n)',
          'reload stall ms (idle max; load median / max)',
          'loop delay in reload ms (idle / load)',
          'window pairs: clean / all (s each)',
          'req/s no reload → reload 1/s',
          'ratio (pairs min..max; per CPU-s)',
          'reload CPU off the main thread ms',
          'main thread µs/request (no / 1/s)',
          'event-loop max per window ms (no / 1/s: median, max; burst)',
          'failed',
          'written / taken',
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
            `${r.oneKeyMedianMs} / ${r.oneKeyWorstMs} of ${r.oneKeyChanges}`,
            `${r.idleStallMaxMs}; ${r.loadStallMedianMs} / ${r.loadStallMaxMs}`,
            `${r.idleLoopDelayMaxMs} / ${r.loadLoopDelayMaxMs}`,
            `${w.cleanPairs} / ${w.pairs} (${w.windowS})`,
            `${w.rpsNoReload} → ${w.rpsReload}`,
            `${w.ratio} (${w.pairRatioMin}..${w.pairRatioMax}; ${w.cpuRatio})`,
            w.otherThreadsMsPerReload,
            `${w.mainUsPerRequestNoReload} / ${w.mainUsPerRequestReload}`,
            `${w.loopMaxMedianMsNoReload}, ${w.loopMaxMsNoReload} / ${w.loopMaxMedianMsReload}, ${w.loopMaxMsReload}; ${r.loopMaxMsStartBurst}`,
            r.failedRequests,
            `${r.reloadsWritten} / ${r.reloadsTaken}`,
            r.servedUnderLoadMaxMs,
            r.lastServedWithin2s ? 'yes' : 'no',
          ];
        }),
      ),
    );
    s.push('');
  }
  if (res.sections.swap) {
    s.push('## Bundle load and swap (runtime BundleStore.reloadAsync, as `mtlsgate serve` reloads: read, verify digest and shape, build snapshot, swap)\n');
    s.push(
      'The phases column re-runs the same work synchronously on the main thread (loadBundle, then buildSnapshot) to show where the time goes; the stall columns measure the real reload path (big bundles verified and parsed in a worker thread).\n',
    );
    s.push(
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
    s.push('');
  }
  if (res.sections.reload) {
    s.push('## Throughput during a reload every second (keep-alive, ECDSA)\n');
    s.push(
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
    s.push('');
  }
  const lim = res.sections.limits;
  if (lim) {
    s.push('## Rate limiting (dynamic mTLS, key limited but never refused, keep-alive, ECDSA)\n');
    s.push(
      'The three gateways run at once; the load visits them in turns, in a rotating order, each round. "× unlimited" is the median round (min–max the spread); the other columns are that round\'s.\n',
    );
    s.push(
      table(
        ['limiter', 'req/s', '× unlimited', 'min–max', 'p50 ms', 'p99 ms', 'server µs/req', 'errors', 'Redis round trips/request'],
        lim.endToEnd.map((r) => [
          r.limiter,
          r.load.rps,
          r2(r.ratio),
          r.minRatio === undefined ? '–' : `${r2(r.minRatio)}–${r2(r.maxRatio)}`,
          r.load.p50Ms,
          r.load.p99Ms,
          r.load.serverUsPerRequest,
          r.load.errors,
          r.redisRoundTripsPerRequest ?? '–',
        ]),
      ),
    );
    s.push('');
    if ('scenarios' in lim.micro) {
      s.push('Limiter alone (bench/limits.ts: decisions without TLS or proxy):\n');
      s.push(
        table(
          ['scenario', 'decisions/s', 'p50 µs', 'p99 µs', 'Redis round trips/decision'],
          lim.micro.scenarios.map((x) => [x.name, x.decisionsPerSec, x.p50Us, x.p99Us, x.redisRoundTripsPerDecision ?? '–']),
        ),
      );
    } else s.push(`Limiter micro-benchmark failed: ${lim.micro.error}`);
    s.push('');
  }
  const logLine = res.sections.logLine;
  if (logLine) {
    s.push('## The request log line (bench/peers/log-line-probe.ts)\n');
    s.push(
      `${logLine.lines.toLocaleString('en-US')} request lines through the gateway's own logger (batched writes to a file on fd 1, as \`serve > gateway.log\`), against the same loop without them, pinned on the server core; process CPU (main thread and the threads that write): **${logLine.medianUsPerLine} µs per line** (median; rounds ${logLine.roundsUsPerLine.join(', ')}), ${logLine.bytesPerLine} bytes per line.\n`,
    );
  }
  if (res.errors.length) {
    s.push('## Sections that failed\n');
    s.push(res.errors.map((e) => `- ${e.section}: ${e.message}`).join('\n'));
    s.push('');
  }
  s.push('## How to read this\n');
  s.push(
    [
      '- Every contender gets one core (`taskset -c 0`); ab, the upstream (NGINX `return 200` on plain HTTP) and the bench driver share the other. One client, one upstream, one certificate set for all.',
      "- **server CPU** is the contender's busy share of its core from `/proc/<pid>/stat` (all its processes). Below ~90% the server was waiting on the client: read that row as a client limit, not a server one. **client CPU** near 100% says the same from the other side.",
      `- **other load on server core** is the core's busy share (\`/proc/stat\`) not used by the contender: another tenant of a shared machine (or kernel network work not charged to the server). A run above ${Math.round(CONTAMINATED * 100)}% is measured once more and the cleaner attempt kept ("retried"); a row still high there is contaminated: compare µs/req, not req/s.`,
      '- Latencies are closed-loop (ab waits for each answer before the next request on a connection), so p50 ≈ connections ÷ throughput; compare p99 ratios, not absolute values.',
      '- "keep-alive reqs" must be 100%: ab speaks HTTP/1.0, and a response without Content-Length would silently close the connection and turn the row into a handshake benchmark.',
      "- New-connection rows are full handshakes with a client certificate (ab does not resume sessions): public-key cryptography dominates and is OpenSSL's (Go's for Caddy) work in every contender.",
      '- The bare Node proxy checks nothing: it is the ceiling for any Node gateway, not a contender for the rule.',
    ].join('\n'),
  );
  s.push('');
  return s.join('\n');
}

/** The short "Performance" section for the top-level README (bench/README-PERF-SNIPPET.md). */
export function renderPerfSnippet(res: BenchResults): string {
  const runs = res.sections.proxy ?? [];
  const m = res.machine;
  const lines: string[] = ['## Performance', ''];
  lines.push(
    `Measured side by side in one run (\`npm run bench\`, ${m.date.slice(0, 10)}; ${m.cpuModel}, ${m.cores} cores, Node ${m.node}, OpenSSL ${m.nodeOpenssl}): every contender on one core, enforcing "only these pinned client certificates may call /api/" in front of the same upstream, the same client (ab, TLS 1.3, ECDSA P-256 certificates) on the other core. Ratios, because absolute numbers on a shared VM drift ±15%.`,
    '',
  );
  const base = find(runs, BASELINE, 'ec');
  const rows: (string | number)[][] = [];
  for (const id of ['mtlsgate-static', 'mtlsgate-dynamic', 'caddy', 'nginx', 'haproxy']) {
    const r = find(runs, id, 'ec');
    if (!r?.keepAlive || !base?.keepAlive) continue;
    rows.push([
      r.label,
      r.keepAlive.rps,
      r2(r.keepAlive.rps / base.keepAlive.rps),
      r.keepAlive.serverUsPerRequest,
      r.newConnection && base.newConnection ? r2(r.newConnection.rps / base.newConnection.rps) : '–',
      r.fixedRate && base.fixedRate ? r2(r.fixedRate.p99Ms / base.fixedRate.p99Ms) : '–',
    ]);
  }
  if (base?.keepAlive) rows.unshift([base.label, base.keepAlive.rps, '1.00', base.keepAlive.serverUsPerRequest, '1.00', '1.00']);
  if (rows.length) {
    lines.push(table(['', 'keep-alive req/s', '× bare Node', 'server CPU µs/req', 'new connections × bare Node', 'p99 at fixed rate × bare Node'], rows), '');
    const dirty = [base, ...['mtlsgate-static', 'mtlsgate-dynamic', 'caddy', 'nginx', 'haproxy'].map((id) => find(runs, id, 'ec'))].filter(
      (r) => r?.keepAlive && r.keepAlive.serverCoreOtherLoad > CONTAMINATED,
    );
    if (dirty.length)
      lines.push(
        `Another tenant took part of the server core during ${dirty.map((r) => r!.label).join(', ')} (see RESULTS.md): there, compare server CPU µs/req rather than req/s.`,
        '',
      );
  }
  const facts: string[] = [];
  const noLog = find(runs, 'mtlsgate-static-nolog', 'ec');
  const stat = find(runs, 'mtlsgate-static', 'ec');
  if (noLog?.keepAlive && stat?.keepAlive && base?.keepAlive)
    facts.push(
      `the per-request JSON log line is most of mtlsgate's overhead: ${stat.keepAlive.serverUsPerRequest} µs of server CPU per request with it, ${noLog.keepAlive.serverUsPerRequest} µs without (\`--log-level warn\`), against ${base.keepAlive.serverUsPerRequest} µs for the bare Node proxy`,
    );
  const c = res.sections.compile;
  if (c && c.exitCode === 0)
    facts.push(
      `compiling ${c.apis.toLocaleString('en')} APIs and ${c.keys.toLocaleString('en')} keys (each with its own certificate file) takes ${c.wallS} s and ${c.peakRssMiB ?? '?'} MiB peak RSS`,
    );
  for (const r of (res.sections.scale ?? []).filter((x) => !x.error))
    facts.push(
      `at ${r.keys.toLocaleString('en')} keys (1,000 APIs) the bundle is ${r.bundleMiB} MiB (${r.bytesPerKey} bytes a key), compiled in ${r.compileWallS} s (${r.compileCpuS ?? '?'} s CPU, ${r.compilePeakRssMiB ?? '?'} MiB peak RSS); \`serve\` answers ${r.serveFirstAnswerMs ?? '?'} ms after it starts, at ${r.serveRssMiB ?? '?'} MiB RSS`,
    );
  const sw = res.sections.swap?.find((x) => x.keys >= 100_000);
  if (sw)
    facts.push(
      `swapping in a ${sw.keys.toLocaleString('en')}-key bundle (${sw.bundleMiB} MiB) takes ${Math.round(sw.verifyBuildSwapMs)} ms end to end (verified and parsed off the event loop), with a longest event-loop stall of ${Math.round(sw.maxEventLoopDelayMs)} ms`,
    );
  for (const r of res.sections.reload ?? [])
    facts.push(`with the bundle replaced every second (${r.bundle}), throughput is ${r2(r.ratio)}× that without reloads, ${r.failedRequests} failed requests`);
  const mem = res.sections.limits?.endToEnd.find((x) => x.limiter === 'in-process');
  const red = res.sections.limits?.endToEnd.find((x) => x.limiter === 'redis');
  if (mem && red)
    facts.push(
      `with every request rate-limited, throughput is ${r2(mem.ratio)}× the unlimited gateway's in-process and ${r2(red.ratio)}× through Redis (${red.redisRoundTripsPerRequest} Redis round trip per request)`,
    );
  if (facts.length) lines.push(facts.map((f) => `- ${f[0].toUpperCase()}${f.slice(1)}.`).join('\n'), '');
  lines.push(
    'Full tables, RSA-2048, the machine and how to read them: [bench/RESULTS.md](bench/RESULTS.md). Reproduce (Debian: `apt-get install nginx caddy haproxy apache2-utils redis-server`):',
    '',
    '```sh',
    'npm run bench',
    '```',
    '',
  );
  return lines.join('\n');
}

function compileCacheSection(rows: NonNullable<CompileResult['cache']>): string {
  const out = [
    '### `compile --cache`: cold, warm, one key file changed (1,000 APIs, each key its own certificate file)\n',
    'Each step is the CLI in a child process (`--timings`), pinned to the server core. After each change an uncached compile of the same config is the reference: "same bytes" compares the SHA-256 of both outputs.\n',
    table(
      ['keys', 'step', 'wall s', 'CPU s', 'peak RSS MiB', 'same bytes as uncached', 'uncached wall s', 'cache MiB', 'stages'],
      rows.flatMap((r) =>
        r.steps.map((st) => [
          r.keys,
          st.step,
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
