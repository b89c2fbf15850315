// Throughput with and without reloads, measured in alternating windows of ONE keep-alive run.
//
// Why not two runs (one without reloads, one with): on this shared 2-core machine the gateway's
// throughput drifts by ±20-25% from one 8-second run to the next with nothing changed (other
// tenants, the host), so a single pair of runs gave 0.68x, 0.89x and 1.16x at 100,000 keys for
// the same code. Here ab runs once; after its connection burst the run is cut into windows of a
// few seconds, without and with a change written every second, in the order off, on, on, off
// (repeated: a linear drift cancels), and each window's throughput is read from the gateway's
// own request counter (one /metrics scrape at each window's end). Per window the bench also
// reads the gateway's CPU time, its main thread apart from its other threads (the reload worker,
// V8's GC helpers, the libuv pool), and prom-client's event-loop max (reset by each scrape), so
// what the reloads cost is seen beside the load's own loop delay in the windows without.
import { scrape, sumIn } from '../lib/admin.ts';
import { coreTicks, SERVER_CORE, threadCpuSeconds } from '../lib/proc.ts';
import { CONTAMINATED, type LoadResult, type LoadSpec, measureOnce, median, round } from './load.ts';

export interface Window {
  /** A change was written every second of this window. */
  reloads: boolean;
  seconds: number;
  /** Requests the gateway answered in the window (mtlsgate_requests_total). */
  requests: number;
  /** CPU seconds of the gateway's main thread, and of its other threads, in the window. */
  mainCpuS: number;
  otherCpuS: number;
  /** prom-client's event-loop max over the window (ms). */
  loopMaxMs: number;
  /** Reloads the gateway counted in the window. */
  reloadsTaken: number;
  /** Busy share of the server core NOT used by the gateway (another tenant): above CONTAMINATED the window's pair is left out. */
  coreOtherLoad: number;
}

export interface WindowedRun {
  /** ab's view of the whole run: failed requests, latency. */
  load: LoadResult;
  windows: Window[];
  /** Event-loop max over the first 2 s (ab opening its connections), not in any window. */
  burstLoopMaxMs: number;
  /** Date.now() of every change written, in order. */
  writtenAt: number[];
}

const BURST_S = 2;
/** off, on, on, off: a drift that is linear over four windows weighs both kinds the same. */
const PATTERN = [false, true, true, false];

/**
 * One keep-alive run of `windows` windows of `windowS` seconds after ab's burst; in every "on"
 * window `write()` is called 10 ms after its start and every second after (its last change has
 * most of a second to be taken before the window ends).
 */
export async function windowedRun(opts: {
  pid: number;
  adminUrl: string;
  spec: Omit<LoadSpec, 'durationS'>;
  windows: number;
  windowS: number;
  write: () => void;
}): Promise<WindowedRun> {
  const { pid, adminUrl, windowS } = opts;
  const loopMax = (text: string) => round(sumIn(text, 'mtlsgate_nodejs_eventloop_lag_max_seconds') * 1000, 1);
  await scrape(adminUrl); // resets the loop max
  // ab runs past the last window (a margin for the scrapes), then stops on its own.
  const running = measureOnce(pid, { ...opts.spec, durationS: BURST_S + opts.windows * windowS + 2 });
  let failed: unknown = null;
  running.catch((err) => (failed = err));
  await new Promise((r) => setTimeout(r, BURST_S * 1000));
  let text = await scrape(adminUrl);
  const burstLoopMaxMs = loopMax(text);
  let at = performance.now();
  let cpu = threadCpuSeconds(pid);
  let core = coreTicks(SERVER_CORE);
  const windows: Window[] = [];
  const writtenAt: number[] = [];
  for (let w = 0; w < opts.windows && failed === null; w++) {
    const reloads = PATTERN[w % PATTERN.length];
    const timers: NodeJS.Timeout[] = [];
    if (reloads)
      for (let s = 0; s < windowS; s++)
        timers.push(
          setTimeout(
            () => {
              opts.write();
              writtenAt.push(Date.now());
            },
            s * 1000 + 10,
          ),
        );
    await new Promise((r) => setTimeout(r, windowS * 1000));
    for (const t of timers) clearTimeout(t);
    const next = await scrape(adminUrl);
    const now = performance.now();
    const cpuNow = threadCpuSeconds(pid);
    const coreNow = coreTicks(SERVER_CORE);
    const seconds = (now - at) / 1000;
    const gateway = cpuNow.main - cpu.main + cpuNow.others - cpu.others;
    const busy = coreNow.total > core.total ? (coreNow.busy - core.busy) / (coreNow.total - core.total) : 0;
    windows.push({
      reloads,
      seconds,
      requests: sumIn(next, 'mtlsgate_requests_total') - sumIn(text, 'mtlsgate_requests_total'),
      mainCpuS: round(cpuNow.main - cpu.main, 2),
      otherCpuS: round(cpuNow.others - cpu.others, 2),
      loopMaxMs: loopMax(next),
      reloadsTaken: sumIn(next, 'mtlsgate_bundle_reloads_total', { result: 'ok' }) - sumIn(text, 'mtlsgate_bundle_reloads_total', { result: 'ok' }),
      coreOtherLoad: round(Math.max(0, busy - gateway / seconds), 3),
    });
    text = next;
    at = now;
    cpu = cpuNow;
    core = coreNow;
  }
  const load = await running;
  return { load, windows, burstLoopMaxMs, writtenAt };
}

export interface WindowSummary {
  windowS: number;
  /** Pairs of adjacent windows (one of each kind), and those where no other tenant took more than CONTAMINATED of the server core: the figures below are over the clean pairs (over all when fewer than 2 are clean). */
  pairs: number;
  cleanPairs: number;
  /** Mean req/s over the windows without and with reloads, and their ratio. */
  rpsNoReload: number;
  rpsReload: number;
  ratio: number;
  /** Each adjacent (off, on) pair's ratio: median, lowest, highest. */
  pairRatioMedian: number;
  pairRatioMin: number;
  pairRatioMax: number;
  /**
   * Requests per CPU-second of the gateway (all threads), with reloads against without: the
   * ratio another tenant taking part of the pinned core does not move.
   */
  cpuRatio: number;
  /** Share of a core the gateway used, without and with reloads. */
  serverCpuNoReload: number;
  serverCpuReload: number;
  /** CPU of the gateway's threads other than the main one, per reload, beyond the same threads without reloads (the reload worker, mostly). */
  otherThreadsMsPerReload: number;
  /** Main-thread CPU per request (µs), without and with reloads. */
  mainUsPerRequestNoReload: number;
  mainUsPerRequestReload: number;
  /** Event-loop max per window (prom-client): median and max over the windows without, and with, reloads. */
  loopMaxMedianMsNoReload: number;
  loopMaxMsNoReload: number;
  loopMaxMedianMsReload: number;
  loopMaxMsReload: number;
}

/** Adjacent windows (0-1, 2-3, ...) as [with reloads, without]. */
function pairsOf(windows: Window[]): [Window, Window][] {
  const out: [Window, Window][] = [];
  for (let i = 0; i + 1 < windows.length; i += 2) {
    const [a, b] = [windows[i], windows[i + 1]];
    if (a.reloads !== b.reloads) out.push(a.reloads ? [a, b] : [b, a]);
  }
  return out;
}

export function summarize(run: WindowedRun, windowS: number): WindowSummary {
  const all = pairsOf(run.windows);
  // A pair where another tenant took the server core is left out (both windows), as `cleanest` does for whole runs.
  const clean = all.filter(([x, y]) => x.coreOtherLoad <= CONTAMINATED && y.coreOtherLoad <= CONTAMINATED);
  const used = clean.length >= 2 ? clean : all;
  const on = used.map(([x]) => x);
  const off = used.map(([, y]) => y);
  const total = (ws: Window[], f: (w: Window) => number) => ws.reduce((s, w) => s + f(w), 0);
  const rps = (ws: Window[]) => total(ws, (w) => w.requests) / total(ws, (w) => w.seconds);
  const cpu = (ws: Window[]) => total(ws, (w) => w.mainCpuS + w.otherCpuS);
  const pairs = used.map(([x, y]) => x.requests / x.seconds / (y.requests / y.seconds));
  const reloads = total(on, (w) => w.reloadsTaken);
  const perSecond = (ws: Window[], f: (w: Window) => number) => total(ws, f) / total(ws, (w) => w.seconds);
  return {
    windowS,
    pairs: all.length,
    cleanPairs: clean.length,
    rpsNoReload: Math.round(rps(off)),
    rpsReload: Math.round(rps(on)),
    ratio: round(rps(on) / rps(off), 3),
    pairRatioMedian: round(median(pairs), 3),
    pairRatioMin: round(Math.min(...pairs), 3),
    pairRatioMax: round(Math.max(...pairs), 3),
    cpuRatio: round(total(on, (w) => w.requests) / cpu(on) / (total(off, (w) => w.requests) / cpu(off)), 3),
    serverCpuNoReload: round(
      perSecond(off, (w) => w.mainCpuS + w.otherCpuS),
      3,
    ),
    serverCpuReload: round(
      perSecond(on, (w) => w.mainCpuS + w.otherCpuS),
      3,
    ),
    otherThreadsMsPerReload:
      reloads > 0
        ? round(((perSecond(on, (w) => w.otherCpuS) - perSecond(off, (w) => w.otherCpuS)) * total(on, (w) => w.seconds) * 1000) / reloads, 1)
        : Number.NaN,
    mainUsPerRequestNoReload: round((total(off, (w) => w.mainCpuS) * 1e6) / total(off, (w) => w.requests), 1),
    mainUsPerRequestReload: round((total(on, (w) => w.mainCpuS) * 1e6) / total(on, (w) => w.requests), 1),
    loopMaxMedianMsNoReload: round(median(off.map((w) => w.loopMaxMs)), 1),
    loopMaxMsNoReload: Math.max(...off.map((w) => w.loopMaxMs)),
    loopMaxMedianMsReload: round(median(on.map((w) => w.loopMaxMs)), 1),
    loopMaxMsReload: Math.max(...on.map((w) => w.loopMaxMs)),
  };
}
