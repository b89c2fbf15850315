// Turns an Outcome (from the in-process algorithm or the Redis script) into the decision and
// headers the gateway sends. Both stores go through here, so the header semantics live in one
// place (documented on LimitDecision.headers in limiter.ts).
import type { Quota, RateLimit } from '../../bundle/types.ts';
import type { Outcome } from './algorithm.ts';
import type { LimitDecision } from './limiter.ts';

/** Whole seconds, rounded up: a client that waits this long is sure to be past the instant. */
function ceilSeconds(ms: number): string {
  return String(Math.max(0, Math.ceil(ms / 1000)));
}

function rateHeaders(rate: RateLimit, remaining: number, resetMs: number): Record<string, string> {
  return { 'X-RateLimit-Limit': String(rate.rate), 'X-RateLimit-Remaining': String(remaining), 'X-RateLimit-Reset': ceilSeconds(resetMs) };
}

function quotaHeaders(quota: Quota, remaining: number, resetMs: number): Record<string, string> {
  return { 'X-RateLimit-Limit': String(quota.max), 'X-RateLimit-Remaining': String(remaining), 'X-RateLimit-Reset': ceilSeconds(resetMs) };
}

export function decisionFromOutcome(o: Outcome, rate: RateLimit | null, quota: Quota | null): LimitDecision {
  if (o.verdict === 'limit.quota') {
    return { allowed: false, code: 'limit.quota', headers: quotaHeaders(quota!, 0, o.quotaResetMs) };
  }
  if (o.verdict === 'limit.rate') {
    const headers = rateHeaders(rate!, 0, o.rateResetMs);
    // Retry-After is at least 1: "0" would invite an immediate retry that a rounding error denies.
    headers['Retry-After'] = String(Math.max(1, Math.ceil(o.retryAfterMs / 1000)));
    return { allowed: false, code: 'limit.rate', headers };
  }
  // Admitted: report the limit closest to denying (lowest Remaining); a tie goes to the quota,
  // whose reset is the longer wait.
  const reportRate = rate !== null && (quota === null || o.rateRemaining < o.quotaRemaining);
  if (reportRate) return { allowed: true, headers: rateHeaders(rate!, o.rateRemaining, o.rateResetMs) };
  if (quota !== null) return { allowed: true, headers: quotaHeaders(quota, o.quotaRemaining, o.quotaResetMs) };
  return { allowed: true, headers: {} };
}

/** The decision for a request the limiter could not decide (store fault) under onError. */
export function faultDecision(onError: 'allow' | 'deny'): LimitDecision {
  if (onError === 'allow') return { allowed: true, headers: {} };
  return { allowed: false, code: 'limit.rate', headers: { 'Retry-After': '1' } };
}
