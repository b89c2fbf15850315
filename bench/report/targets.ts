// The issue targets the report judges, from what the run measured.
import { r2 } from './markdown.ts';
import { BASELINE, type BenchResults, find, type Target } from './results.ts';

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
        measured: st.error ?? `${st.wallS} s (CPU ${st.cpuS ?? '?'} s, load average ${st.loadAverage ?? '?'}), ${st.identical ? 'identical' : 'DIFFERENT'}`,
        reached: st.error?.startsWith('void:') ? null : st.exitCode === 0 && st.wallS < 5 && st.identical === true,
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
