// Rate limiting end to end: the same dynamic-mTLS API with its key unlimited, limited in-process
// and limited through Redis (limits set so high no request is refused: the limiter decides every
// request and admits it), one gateway at a time under the same keep-alive load. Plus the
// limiter's own micro-benchmark (bench/limits.ts, engineer E's).
import type { KeyAlg } from '../../cli/pki.ts';
import { commandCalls, redisRoundTrips, runLimitsBench, startBenchRedis, type LimitsBenchResult } from '../limits.ts';
import { mtlsgateContender, type MtlsgateVariant } from '../contenders/mtlsgate.ts';
import { metricSum } from '../lib/admin.ts';
import type { BenchContext } from '../lib/context.ts';
import { benchPki } from '../lib/pki.ts';
import { isAdmitted, probe } from '../lib/probe.ts';
import { freePort } from '../../common/listen.ts';
import type { Upstream } from '../upstream.ts';
import { measure, round, type LoadResult } from './load.ts';
import { API_PATH } from './proxy.ts';

export interface LimitsRow {
  limiter: 'none' | 'in-process' | 'redis';
  load: LoadResult;
  /** rps relative to the unlimited gateway: the median round of the interleaved turns. */
  ratio: number;
  /** The spread of the per-round ratios. */
  minRatio?: number;
  maxRatio?: number;
  /** Redis commands per proxied request (redis row only). */
  redisRoundTripsPerRequest: number | null;
}

export interface LimitsSection {
  endToEnd: LimitsRow[];
  micro: LimitsBenchResult | { error: string };
}

export async function runLimitsSection(ctx: BenchContext, upstream: Upstream, alg: KeyAlg = 'ec'): Promise<LimitsSection> {
  const pki = await benchPki(ctx.dir(), alg);
  const redis = await startBenchRedis();
  const rows: LimitsRow[] = [];
  // All three gateways run at once and the load visits them in short turns, rounds in a rotating
  // order (as the paired section, bench/workloads/paired.ts): one after the other, the drift of a
  // shared VM between runs was larger than what a limiter costs (a sequential run once showed the
  // Redis limiter faster than the in-process one, which decides in 0.25 µs).
  const variants: [LimitsRow['limiter'], MtlsgateVariant][] = [
    ['none', { mode: 'dynamic', keys: 0, id: 'limits-none' }],
    ['in-process', { mode: 'dynamic', keys: 0, limited: true, id: 'limits-memory' }],
    ['redis', { mode: 'dynamic', keys: 0, limited: true, redisUrl: redis.url, id: 'limits-redis' }],
  ];
  const started: { limiter: LimitsRow['limiter']; pid: number; adminUrl: string; url: string; stop: () => Promise<void> }[] = [];
  try {
    for (const [limiter, variant] of variants) {
      const c = mtlsgateContender(variant);
      const port = await freePort();
      const running = await c.start(ctx, { pki, upstream, port, dir: ctx.dir('contenders', `${c.id}-${alg}`) });
      started.push({
        limiter,
        pid: running.proc.pid,
        adminUrl: running.adminUrl!,
        url: `https://127.0.0.1:${port}${API_PATH}`,
        stop: () => running.proc.stop(),
      });
      if (!isAdmitted(await probe(started.at(-1)!.url, pki.files['listed-1']))) throw new Error(`limits ${limiter}: the listed certificate is not admitted`);
    }
    const spec = (url: string, durationS: number) => ({
      url,
      combinedPem: pki.files['listed-1'].combined,
      keepAlive: true,
      concurrency: ctx.opts.connections,
      scratchDir: ctx.dir('scratch'),
      durationS,
    });
    for (const s of started) await measure(s.pid, spec(s.url, 1)); // warm-up
    const runs: LoadResult[][] = started.map(() => []);
    let trips = 0;
    let answeredRedis = 0;
    for (let r = 0; r < ctx.opts.rounds; r++) {
      for (let k = 0; k < started.length; k++) {
        const i = (k + r) % started.length;
        const s = started[i];
        // Requests the gateway answered (ab's count misses those in flight when it stops).
        const answeredBefore = await metricSum(s.adminUrl, 'mtlsgate_requests_total');
        const before = s.limiter === 'redis' ? await commandCalls(redis.port) : null;
        runs[i].push(await measure(s.pid, spec(s.url, ctx.opts.turnS)));
        if (before) {
          await new Promise((res) => setTimeout(res, 200));
          trips += redisRoundTrips(before, await commandCalls(redis.port));
          answeredRedis += (await metricSum(s.adminUrl, 'mtlsgate_requests_total')) - answeredBefore;
        }
      }
      ctx.log(`  limits round ${r + 1}/${ctx.opts.rounds}: ${started.map((s, i) => `${s.limiter} ${runs[i][r].rps}`).join(', ')}`);
    }
    started.forEach((s, i) => {
      const ratios = runs[i].map((x, r) => x.rps / runs[0][r].rps);
      const order = ratios.map((_, r) => r).sort((a, b) => ratios[a] - ratios[b]);
      const mid = order[order.length >> 1]; // the median round (its load figures are reported)
      rows.push({
        limiter: s.limiter,
        load: runs[i][mid],
        ratio: round(ratios[mid], 3),
        minRatio: round(Math.min(...ratios), 3),
        maxRatio: round(Math.max(...ratios), 3),
        redisRoundTripsPerRequest: s.limiter === 'redis' ? round(trips / Math.max(1, answeredRedis), 3) : null,
      });
      ctx.log(
        `  limits ${s.limiter}: ${rows.at(-1)!.ratio}× the unlimited gateway (median of ${runs[i].length} rounds, ${rows.at(-1)!.minRatio}–${rows.at(-1)!.maxRatio})`,
      );
    });
  } finally {
    for (const s of started) await s.stop();
    await redis.close();
  }
  let micro: LimitsSection['micro'];
  try {
    micro = await runLimitsBench({ durationMs: 2000, log: ctx.log });
  } catch (err) {
    micro = { error: (err as Error).message };
  }
  return { endToEnd: rows, micro };
}
