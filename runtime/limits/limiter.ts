// The limiter's interface: what the gateway (runtime/gateway.ts) calls and what serve/admin wire.
//
// The gateway calls `check` after authentication and access checks, only for a key whose
// compiled `rate` or `quota` is non-null, whether the key was identified by its certificate or
// its token. Counters are keyed by `key.id`, never by the bundle: a reload does not reset them,
// and the limits read from `key` on each call, so a key whose limits change gets them on its
// next request.
import type { BundleKey } from '../../bundle/types.ts';

export interface LimitDecision {
  allowed: boolean;
  /** Set when denied: 'limit.rate' -> 429 (with Retry-After), 'limit.quota' -> 403. */
  code?: 'limit.rate' | 'limit.quota';
  /**
   * Response headers, on successes and denials alike (the gateway copies them as they are):
   *   X-RateLimit-Limit      the limit being reported (requests per its window)
   *   X-RateLimit-Remaining  requests left before that limit denies
   *   X-RateLimit-Reset      DELTA-SECONDS until that limit is fully restored (IETF
   *                          RateLimit-fields semantics, not GitHub's epoch: a delta is immune
   *                          to clock skew between client and gateway)
   *   Retry-After            delta-seconds, on 'limit.rate' denials only
   * A key with both a rate and a quota reports the one closest to denying (lowest Remaining),
   * as the IETF draft recommends; a denial reports the limit that denied.
   * Empty when a Redis fault was answered by onError=allow (no trustworthy numbers exist).
   */
  headers: Record<string, string>;
}

export interface LimiterHealth {
  status: 'ok' | 'degraded';
  detail?: string;
  /** The server-wide mode while the shared limiter cannot decide (policies may say deny for their keys). */
  on_limiter_error?: 'allow' | 'deny';
}

export interface Limiter {
  /**
   * Decides one request of `key` arriving at `now` (milliseconds since the epoch, Date.now()).
   * The in-process store answers synchronously (a plain object: no promise, no microtask); the
   * Redis store answers with a promise that never rejects (faults are decided by onError).
   */
  check(key: BundleKey, now: number): LimitDecision | Promise<LimitDecision>;
  health(): LimiterHealth;
  /**
   * Shared stores only (absent in-process): resolves true once the store is reachable, false
   * after `timeoutMs`. Await it at startup, before listening; requests are served either way.
   */
  ready?(timeoutMs: number): Promise<boolean>;
  /** Stops timers and closes the Redis connection. Idempotent. */
  close(): Promise<void>;
}

export interface LimiterLogger {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}
