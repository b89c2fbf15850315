// The decision for one request: a GCRA rate limit and a fixed-period quota, checked together and
// committed together. The in-process store runs this function; the Redis store runs the same
// algorithm as a Lua script (redis-script.ts), which must stay in step with this file.
//
// Why GCRA (the Generic Cell Rate Algorithm, i.e. a token bucket kept as one timestamp):
// - O(1) state per key: one number, the "theoretical arrival time" (TAT). A sliding-window log
//   keeps one entry per admitted request (a key allowed 10,000/s would hold 10,000 timestamps),
//   and a fixed window admits 2 x rate in an instant around its boundary.
// - The check and the update are one comparison and one write: trivially atomic inside a Lua
//   script, one Redis round trip.
// - Exact Retry-After: the time until the next request conforms is TAT - tolerance - now.
// Burst bound (the "window edge" question): a key is admitted at most `rate` requests at once
// (the burst a client saved by being idle), then one every per/rate seconds. So over ANY interval
// of length L, at most rate + floor(L * rate / per) requests pass: at an instant (a fixed window's
// edge) never more than `rate`; over a whole `per` window at most 2 x rate, and that only after
// the key has been idle for `per`; sustained, exactly `rate` per `per`.
//
// Quota: `max` requests per period of `renewal` seconds. A period starts with the key's first
// request after the previous period ended (Tyk's "quota renews" semantics) and ends `renewal`
// seconds later, when the count starts from zero again.
//
// A request is admitted only if both limits admit it; a denied request consumes neither. A key
// over its quota is told so (403 'limit.quota') before its rate is considered: the quota is the
// harder limit and its reset is the one worth waiting for.
//
// Changed limits apply on the next request without a reset: what a key has used carries over
// and is measured against the new limits. The quota count is kept as it is (a period end beyond
// now + the new renewal is pulled in). The GCRA debt (TAT - now) is time, which means nothing
// under another rate, so it is converted back into requests with the interval it was built with
// and out again with the new one: 5 requests used of 5/s, raised to 10/s, leave 5 more; lowered
// to 2/s, leave none.
import type { Quota, RateLimit } from '../../bundle/types.ts';

/** Per-key state. Times in ms since the epoch. A state whose TAT and period end are both past is
 *  equivalent to no state at all, which is what lets stores evict it without losing anything. */
export interface LimitState {
  /** GCRA theoretical arrival time; <= now means the full burst is available. */
  tat: number;
  /** GCRA emission interval (ms per request) the TAT was built with. */
  intervalMs: number;
  /** Requests counted in the current quota period. */
  quotaUsed: number;
  /** End of the current quota period; <= now means no period is running. */
  quotaEnd: number;
}

export type Verdict = 'allowed' | 'limit.rate' | 'limit.quota';

export interface Outcome {
  verdict: Verdict;
  /** -1 when the key has no rate limit. */
  rateRemaining: number;
  /** ms until the burst is fully available again. */
  rateResetMs: number;
  /** ms until a request would conform (only meaningful for 'limit.rate'). */
  retryAfterMs: number;
  /** -1 when the key has no quota. */
  quotaRemaining: number;
  /** ms until the quota renews. */
  quotaResetMs: number;
}

/** Slack for floating-point TAT arithmetic on epoch-sized millisecond values (ulp ~ 2e-4 ms). */
export const TAT_EPSILON_MS = 0.01;

/** A rate that limits anything: positive rate and period. Anything else is "no rate limit". */
export function effectiveRate(rate: RateLimit | null): RateLimit | null {
  return rate !== null && rate.rate > 0 && rate.per > 0 ? rate : null;
}

/** A quota that limits anything: max >= 0 (-1 = unlimited) and a positive period. */
export function effectiveQuota(quota: Quota | null): Quota | null {
  return quota !== null && quota.max >= 0 && quota.renewal > 0 ? quota : null;
}

/**
 * Decides one request and, when it is admitted, updates `state` in place (a denied request
 * changes nothing, except re-expressing state built under limits a reload has changed).
 * `rate` and `quota` must have passed effectiveRate/effectiveQuota.
 */
export function decide(state: LimitState, rate: RateLimit | null, quota: Quota | null, now: number): Outcome {
  let quotaUsed = 0;
  let quotaEnd = 0;
  let quotaLeft = -1; // before this request; -1 = no quota
  let quotaResetMs = 0;
  if (quota !== null) {
    const renewalMs = quota.renewal * 1000;
    if (state.quotaEnd > now) {
      // Renewal shortened by a reload: the running period ends within the new renewal. Stored at
      // once (even if this request is denied), or the end would move with every request.
      if (state.quotaEnd > now + renewalMs) state.quotaEnd = now + renewalMs;
      quotaUsed = state.quotaUsed;
      quotaEnd = state.quotaEnd;
    } else {
      quotaEnd = now + renewalMs;
    }
    quotaResetMs = quotaEnd - now;
    if (quotaUsed >= quota.max) {
      return { verdict: 'limit.quota', rateRemaining: -1, rateResetMs: 0, retryAfterMs: quotaResetMs, quotaRemaining: 0, quotaResetMs };
    }
    quotaLeft = quota.max - quotaUsed;
  }

  let tat = 0;
  let rateRemaining = -1;
  let rateResetMs = 0;
  if (rate !== null) {
    const periodMs = rate.per * 1000;
    const intervalMs = periodMs / rate.rate;
    const toleranceMs = periodMs - intervalMs;
    if (state.tat > now && state.intervalMs !== intervalMs) {
      // Rate changed by a reload: re-express the debt under the new interval, at most a full
      // period of it. Stored at once, like the quota clamp above.
      state.tat = Math.min(now + ((state.tat - now) / state.intervalMs) * intervalMs, now + periodMs);
      state.intervalMs = intervalMs;
    }
    tat = Math.max(state.tat, now);
    if (tat - now > toleranceMs + TAT_EPSILON_MS) {
      return {
        verdict: 'limit.rate',
        rateRemaining: 0,
        rateResetMs: tat - now,
        retryAfterMs: tat - toleranceMs - now,
        quotaRemaining: quotaLeft,
        quotaResetMs,
      };
    }
    tat += intervalMs;
    rateResetMs = tat - now;
    rateRemaining = Math.floor((periodMs - rateResetMs) / intervalMs + TAT_EPSILON_MS / intervalMs);
    state.tat = tat;
    state.intervalMs = intervalMs;
  }
  if (quota !== null) {
    state.quotaUsed = quotaUsed + 1;
    state.quotaEnd = quotaEnd;
  }
  const quotaRemaining = quota !== null ? quotaLeft - 1 : -1;
  return { verdict: 'allowed', rateRemaining, rateResetMs, retryAfterMs: 0, quotaRemaining, quotaResetMs };
}

/** When `state` becomes equivalent to no state (ms since the epoch). */
export function stateExpiry(state: LimitState): number {
  return Math.max(state.tat, state.quotaEnd);
}
