// Limiter benchmark: what a rate-limited key costs per request, in-process and with Redis, and
// how many Redis round trips one decision takes (target: one).
//
// This measures the limiter alone (no TLS, no proxy), so the numbers are the limiter's own cost;
// the end-to-end comparison (same dynamic-mTLS API, unlimited vs limited in-process vs limited
// with Redis) belongs to the gateway bench in bench/run.ts, which can reuse `startBenchRedis`
// and `redisRoundTrips` from here. Bounded in time: `durationMs` per scenario (default 2 s,
// 4 scenarios). Standalone: `node --import tsx bench/limits.ts [durationMs]`.
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type { BundleKey } from '../bundle/types.ts';
import { createLimiter } from '../runtime/limits/index.ts';
import type { Limiter } from '../runtime/limits/limiter.ts';
import { commandCalls, RedisServer, roundTripsBetween } from '../test/helpers/redis.ts';
import { keyWithDefaults } from '../test/helpers/bundle-builder.ts';

export interface LimitsBenchOptions {
  /** Per scenario. Default 2000 ms. */
  durationMs?: number;
  /** Decisions in flight at once against Redis (a gateway serving that many concurrent requests). Default 16. */
  redisConcurrency?: number;
  log?: (line: string) => void;
}

export interface ScenarioResult {
  name: string;
  decisions: number;
  decisionsPerSec: number;
  p50Us: number;
  p99Us: number;
  /** Redis commands sent per decision (round trips); null in-process. */
  redisRoundTripsPerDecision: number | null;
}

export interface LimitsBenchResult {
  scenarios: ScenarioResult[];
  /** In-process decision cost as a share of a typical proxied mTLS request (BENCH-NOTES: ~164 µs of server CPU). */
  inProcessShareOfRequest: number;
}

/** A key that is limited but never denied, so every decision takes the full "allowed" path. */
function benchKey(id: string): BundleKey {
  return keyWithDefaults(id, { rate: { rate: 1e9, per: 1 }, quota: { max: 1e12, renewal: 3600 } });
}

function percentile(sortedUs: Float64Array, p: number): number {
  if (sortedUs.length === 0) return 0;
  return sortedUs[Math.min(sortedUs.length - 1, Math.floor((p / 100) * sortedUs.length))];
}

function round(n: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/** Synchronous in-process decisions back to back; every 64th one is timed on its own. */
function benchInProcess(limiter: Limiter, durationMs: number): ScenarioResult {
  const key = benchKey('bench-memory');
  const samples: number[] = [];
  let n = 0;
  const start = performance.now();
  const end = start + durationMs;
  while (performance.now() < end) {
    for (let i = 0; i < 1024; i++) limiter.check(key, Date.now());
    n += 1024;
    for (let i = 0; i < 16; i++) {
      const t = performance.now();
      limiter.check(key, Date.now());
      samples.push((performance.now() - t) * 1000);
    }
    n += 16;
  }
  const elapsed = performance.now() - start;
  const sorted = Float64Array.from(samples).sort();
  return {
    name: 'in-process',
    decisions: n,
    decisionsPerSec: Math.round((n / elapsed) * 1000),
    p50Us: round(percentile(sorted, 50)),
    p99Us: round(percentile(sorted, 99)),
    redisRoundTripsPerDecision: null,
  };
}

/** `concurrency` request loops sharing one Redis limiter, as a gateway's concurrent requests would. */
async function benchRedis(limiter: Limiter, port: number, durationMs: number, concurrency: number): Promise<ScenarioResult> {
  const key = benchKey(`bench-redis-c${concurrency}`);
  await limiter.check(key, Date.now()); // loads the script
  const latencies: number[] = [];
  const before = await commandCalls(port);
  const start = performance.now();
  const end = start + durationMs;
  const loop = async () => {
    while (performance.now() < end) {
      const t = performance.now();
      await limiter.check(key, Date.now());
      latencies.push((performance.now() - t) * 1000);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  const elapsed = performance.now() - start;
  const after = await commandCalls(port);
  if (limiter.health().status !== 'ok') throw new Error(`limiter degraded during the bench: ${limiter.health().detail}`);
  const sorted = Float64Array.from(latencies).sort();
  return {
    name: `redis, ${concurrency} in flight`,
    decisions: latencies.length,
    decisionsPerSec: Math.round((latencies.length / elapsed) * 1000),
    p50Us: round(percentile(sorted, 50)),
    p99Us: round(percentile(sorted, 99)),
    redisRoundTripsPerDecision: round(roundTripsBetween(before, after) / latencies.length, 3),
  };
}

/** A throwaway redis-server on loopback for benches (stop it with `close()`). */
export function startBenchRedis(): Promise<RedisServer> {
  return RedisServer.start();
}

/** Round trips clients sent between two `commandCalls(port)` snapshots (limiter script internals excluded). */
export { commandCalls, roundTripsBetween as redisRoundTrips };

export async function runLimitsBench(opts: LimitsBenchOptions = {}): Promise<LimitsBenchResult> {
  const durationMs = opts.durationMs ?? 2000;
  const concurrency = opts.redisConcurrency ?? 16;
  const log = opts.log ?? (() => {});
  const scenarios: ScenarioResult[] = [];

  const memory = createLimiter({});
  try {
    scenarios.push(benchInProcess(memory, durationMs));
    log(`limits: in-process done`);
  } finally {
    await memory.close();
  }

  const redis = await startBenchRedis();
  const limiter = createLimiter({ redisUrl: redis.url, redisTimeoutMs: 1000, onError: 'deny' });
  try {
    if (!(await limiter.ready!(10_000))) throw new Error('bench Redis not ready');
    for (const c of [1, concurrency]) {
      scenarios.push(await benchRedis(limiter, redis.port, durationMs, c));
      log(`limits: redis with ${c} in flight done`);
    }
  } finally {
    await limiter.close();
    await redis.close();
  }
  const perDecisionUs = 1e6 / scenarios[0].decisionsPerSec;
  return { scenarios, inProcessShareOfRequest: round(perDecisionUs / 164, 5) };
}

function printTable(result: LimitsBenchResult): void {
  const rows = result.scenarios.map((s) => [
    s.name,
    String(s.decisionsPerSec),
    String(s.p50Us),
    String(s.p99Us),
    s.redisRoundTripsPerDecision === null ? '-' : String(s.redisRoundTripsPerDecision),
  ]);
  const head = ['scenario', 'decisions/s', 'p50 µs', 'p99 µs', 'redis round trips/decision'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join('  ');
  console.log(line(head));
  for (const r of rows) console.log(line(r));
  console.log(`in-process limiting: ${(result.inProcessShareOfRequest * 100).toFixed(3)}% of a ~164 µs proxied mTLS request (BENCH-NOTES)`);
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const durationMs = process.argv[2] !== undefined ? Number(process.argv[2]) : undefined;
  const result = await runLimitsBench({ durationMs, log: (l) => console.error(l) });
  printTable(result);
  console.log(JSON.stringify(result));
}
