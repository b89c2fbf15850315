// The limiter factory `serve` calls: in-process by default, Redis-backed with a URL
// (--redis / MTLSGATE_REDIS). See limiter.ts for the interface the gateway uses.
import type { Registry } from 'prom-client';
import type { Limiter, LimiterLogger } from './limiter.ts';
import { MemoryLimiter } from './memory.ts';
import { OutageTracker } from './outage.ts';
import { openRedis, redactRedisUrl } from './redis-connection.ts';
import { RedisLimiter } from './redis.ts';

export type { LimitDecision, Limiter, LimiterHealth, LimiterLogger } from './limiter.ts';
export { RedisUrlError } from './redis-connection.ts';

interface CreateLimiterOptions {
  /** redis://, rediss:// or redis+cluster:// URL; absent = in-process counters. */
  redisUrl?: string;
  /** A Redis decision slower than this is decided by onError. Default 50 ms. */
  redisTimeoutMs?: number;
  /** What a request of a limited key gets when Redis cannot decide. Default 'allow'. */
  onError?: 'allow' | 'deny';
  /** Where mtlsgate_limiter_errors_total and mtlsgate_limiter_degraded are registered. */
  registry?: Registry;
  logger?: LimiterLogger;
  /** In-process store: cap on tracked keys (default 100,000). */
  maxEntries?: number;
}

const DEFAULT_REDIS_TIMEOUT_MS = 50;

/** Throws RedisUrlError (a usage error: exit 2) for a malformed or unsupported URL. */
export function createLimiter(opts: CreateLimiterOptions = {}): Limiter {
  if (opts.redisUrl === undefined || opts.redisUrl === '') return new MemoryLimiter({ maxEntries: opts.maxEntries });
  const timeoutMs = opts.redisTimeoutMs ?? DEFAULT_REDIS_TIMEOUT_MS;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new RangeError(`redisTimeoutMs must be a positive number of ms, got ${timeoutMs}`);
  const onError = opts.onError ?? 'allow';
  const client = openRedis(opts.redisUrl, timeoutMs);
  const outage = new OutageTracker(redactRedisUrl(opts.redisUrl), onError, opts.logger, opts.registry);
  return new RedisLimiter(client, outage, onError);
}
