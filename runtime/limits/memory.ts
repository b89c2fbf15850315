// In-process limiter: the default, no setup. Decisions are synchronous (a plain object, no
// promise), so a limited key costs the gateway one Map lookup and a few float operations.
//
// Memory is bounded twice over:
// - Entries exist only for keys of the bundle that have a rate or a quota (a client cannot mint
//   key ids), and an entry whose TAT and quota period are both in the past is equivalent to no
//   entry (see algorithm.ts), so a periodic sweep drops idle keys without losing any count.
// - A hard cap (maxEntries) is a safety net for huge bundles: when it is reached, expired entries
//   are swept, and if that is not enough the oldest-created entries are dropped (those keys then
//   start from a full burst and a fresh quota: a bounded fail-open, logged by nobody because it
//   needs more concurrently active limited keys than the cap, 100,000 by default).
import type { BundleKey } from '../../bundle/types.ts';
import { decide, effectiveQuota, effectiveRate, stateExpiry, type LimitState } from './algorithm.ts';
import { decisionFromOutcome } from './headers.ts';
import type { LimitDecision, Limiter, LimiterHealth } from './limiter.ts';

interface MemoryLimiterOptions {
  /** Hard cap on tracked keys. Default 100,000. */
  maxEntries?: number;
  /** How often idle entries are swept (ms). Default 10,000. */
  sweepIntervalMs?: number;
}

const UNLIMITED: LimitDecision = Object.freeze({ allowed: true, headers: Object.freeze({}) }) as LimitDecision;

export class MemoryLimiter implements Limiter {
  private readonly states = new Map<string, LimitState>();
  private readonly maxEntries: number;
  private sweepTimer: NodeJS.Timeout | null;

  constructor(opts: MemoryLimiterOptions = {}) {
    this.maxEntries = Math.max(1, opts.maxEntries ?? 100_000);
    this.sweepTimer = setInterval(() => this.sweep(Date.now()), opts.sweepIntervalMs ?? 10_000);
    this.sweepTimer.unref();
  }

  check(key: BundleKey, now: number): LimitDecision {
    const rate = effectiveRate(key.rate);
    const quota = effectiveQuota(key.quota);
    if (rate === null && quota === null) return UNLIMITED;
    let state = this.states.get(key.id);
    if (state === undefined) {
      if (this.states.size >= this.maxEntries) this.makeRoom(now);
      state = { tat: 0, intervalMs: 0, quotaUsed: 0, quotaEnd: 0 };
      this.states.set(key.id, state);
    }
    return decisionFromOutcome(decide(state, rate, quota, now), rate, quota);
  }

  /** Drops every entry that no longer holds anything (TAT and quota period over at `now`). */
  sweep(now: number): void {
    for (const [id, state] of this.states) {
      if (stateExpiry(state) <= now) this.states.delete(id);
    }
  }

  /** Number of keys currently tracked. */
  get size(): number {
    return this.states.size;
  }

  health(): LimiterHealth {
    return { status: 'ok' };
  }

  async close(): Promise<void> {
    if (this.sweepTimer !== null) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
    this.states.clear();
  }

  /** Called when the cap is reached: sweep, then drop the oldest-created 1/16 if still full
   *  (a batch, so a full table does not pay a sweep on every new key). */
  private makeRoom(now: number): void {
    this.sweep(now);
    if (this.states.size < this.maxEntries) return;
    let toDrop = Math.max(1, this.maxEntries >> 4);
    for (const id of this.states.keys()) {
      this.states.delete(id);
      if (--toDrop === 0) break;
    }
  }
}
