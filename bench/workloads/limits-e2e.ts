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
import { freePort } from '../lib/proc.ts';
import type { Upstream } from '../upstream.ts';
import { measure, round, type LoadResult } from './load.ts';
import { API_PATH } from './proxy.ts';

export interface LimitsRow {
  limiter: 'none' | 'in-process' | 'redis';
  load: LoadResult;
  /** rps relative to the unlimited gateway. */
  ratio: number;
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
  try {
    const variants: [LimitsRow['limiter'], MtlsgateVariant][] = [
      ['none', { mode: 'dynamic', keys: 0, id: 'limits-none' }],
      ['in-process', { mode: 'dynamic', keys: 0, limited: true, id: 'limits-memory' }],
      ['redis', { mode: 'dynamic', keys: 0, limited: true, redisUrl: redis.url, id: 'limits-redis' }],
    ];
    for (const [limiter, variant] of variants) {
      const c = mtlsgateContender(variant);
      const port = await freePort();
      const running = await c.start(ctx, { pki, upstream, port, dir: ctx.dir('contenders', `${c.id}-${alg}`) });
      try {
        const url = `https://127.0.0.1:${port}${API_PATH}`;
        if (!isAdmitted(await probe(url, pki.files['listed-1']))) throw new Error(`limits ${limiter}: the listed certificate is not admitted`);
        const spec = { url, combinedPem: pki.files['listed-1'].combined, keepAlive: true, concurrency: ctx.opts.connections, scratchDir: ctx.dir('scratch') };
        await measure(running.proc.pid, { ...spec, durationS: 1 });
        // Requests the gateway answered (ab's count misses those in flight when it stops).
        const answeredBefore = await metricSum(running.adminUrl!, 'mtlsgate_requests_total');
        const before = limiter === 'redis' ? await commandCalls(redis.port) : null;
        const load = await measure(running.proc.pid, { ...spec, durationS: ctx.opts.durationS });
        await new Promise((r) => setTimeout(r, 200));
        const trips = before ? redisRoundTrips(before, await commandCalls(redis.port)) : null;
        const answered = (await metricSum(running.adminUrl!, 'mtlsgate_requests_total')) - answeredBefore;
        rows.push({ limiter, load, ratio: 1, redisRoundTripsPerRequest: trips === null ? null : round(trips / Math.max(1, answered), 3) });
        ctx.log(
          `  limits ${limiter}: ${load.rps} req/s, p99 ${load.p99Ms} ms, ${load.errors} errors${trips === null ? '' : `, ${rows.at(-1)!.redisRoundTripsPerRequest} Redis round trips/request`}`,
        );
      } finally {
        await running.proc.stop();
      }
    }
  } finally {
    await redis.close();
  }
  const base = rows.find((r) => r.limiter === 'none')?.load.rps ?? 0;
  for (const r of rows) r.ratio = base ? round(r.load.rps / base, 3) : 0;
  let micro: LimitsSection['micro'];
  try {
    micro = await runLimitsBench({ durationMs: 2000, log: ctx.log });
  } catch (err) {
    micro = { error: (err as Error).message };
  }
  return { endToEnd: rows, micro };
}
