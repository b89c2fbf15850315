// A worker's limiter under `serve --workers N` without Redis: the primary owns the counters
// (lease-authority.ts); this side holds small leases of tokens. A request of a key whose lease
// has tokens is decided synchronously, like the in-process MemoryLimiter (a plain object, no
// promise, no microtask); only a request finding no usable lease waits for one IPC round trip.
// Unused tokens go back when the lease has been idle for LEASE_IDLE_MS, when it expires, and at
// once when the primary recalls them.
import type { BundleKey, Quota, RateLimit } from '../../bundle/types.ts';
import { effectiveQuota, effectiveRate, type Outcome } from '../limits/algorithm.ts';
import { decisionFromOutcome, faultDecision } from '../limits/headers.ts';
import type { LimitDecision, Limiter, LimiterHealth } from '../limits/limiter.ts';
import { LEASE_IDLE_MS, type AcquireMessage, type GrantMessage, type ReturnMessage } from './lease-protocol.ts';

interface Held {
  /** The grant's req: names the lease when it goes back. */
  lease: number;
  tokens: number;
  expiresAt: number;
  lastUsed: number;
  /** The limits it was granted under: changed limits (a reload) need a new lease. */
  rate: RateLimit | null;
  quota: Quota | null;
  /** The primary's remaining counts after the grant, without this lease's tokens. */
  rateRemaining: number;
  quotaRemaining: number;
  tat: number;
  quotaEnd: number;
  intervalMs: number;
}

const UNLIMITED: LimitDecision = Object.freeze({ allowed: true, headers: Object.freeze({}) }) as LimitDecision;
/** The primary answers within this or the request is decided by --on-limiter-error (ms). */
const ACQUIRE_TIMEOUT_MS = 5_000;

function sameRate(a: RateLimit | null, b: RateLimit | null): boolean {
  return a === b || (a !== null && b !== null && a.rate === b.rate && a.per === b.per);
}
function sameQuota(a: Quota | null, b: Quota | null): boolean {
  return a === b || (a !== null && b !== null && a.max === b.max && a.renewal === b.renewal);
}

export interface LeaseLimiterOptions {
  send(message: AcquireMessage | ReturnMessage): void;
  onError: 'allow' | 'deny';
}

export class LeaseLimiter implements Limiter {
  private readonly held = new Map<string, Held>();
  private readonly pending = new Map<number, (m: GrantMessage | null) => void>();
  /** Keys with an acquire in flight: later requests of the key wait for it, then look again. */
  private readonly acquiring = new Map<string, Promise<unknown>>();
  private nextReq = 1;
  private idleTimer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(private readonly opts: LeaseLimiterOptions) {}

  check(key: BundleKey, now: number): LimitDecision | Promise<LimitDecision> {
    const rate = effectiveRate(key.rate);
    const quota = effectiveQuota(key.quota);
    if (rate === null && quota === null) return UNLIMITED;
    const h = this.held.get(key.id);
    if (h !== undefined && h.tokens > 0 && now < h.expiresAt && sameRate(h.rate, rate) && sameQuota(h.quota, quota)) {
      h.tokens--;
      h.lastUsed = now;
      return decisionFromOutcome(this.outcomeOf(h, now), rate, quota);
    }
    const inFlight = this.acquiring.get(key.id);
    if (inFlight !== undefined) return inFlight.then(() => this.check(key, Date.now()));
    const p = this.acquire(key.id, rate, quota, h, key.on_limiter_error === 'deny' ? 'deny' : this.opts.onError);
    this.acquiring.set(key.id, p);
    void p.finally(() => this.acquiring.delete(key.id));
    return p;
  }

  /** The primary's messages for this limiter. */
  onGrant(m: GrantMessage): void {
    const resolve = this.pending.get(m.req);
    if (resolve !== undefined) {
      this.pending.delete(m.req);
      resolve(m);
    }
  }

  onRecall(key: string): void {
    // A grant on its way is part of what is recalled: answer once it has arrived.
    const inFlight = this.acquiring.get(key);
    if (inFlight !== undefined) {
      void inFlight.then(() => this.onRecall(key));
      return;
    }
    const h = this.held.get(key);
    this.held.delete(key);
    this.send({ type: 'mtlsgate:return', key, lease: h?.lease ?? 0, unused: h?.tokens ?? 0 });
  }

  health(): LimiterHealth {
    return { status: 'ok' };
  }

  /** Gives every lease back (a draining worker's tokens are not stranded). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.idleTimer !== null) clearTimeout(this.idleTimer);
    for (const [key, h] of this.held) this.send({ type: 'mtlsgate:return', key, lease: h.lease, unused: h.tokens });
    this.held.clear();
    for (const resolve of this.pending.values()) resolve(null);
    this.pending.clear();
  }

  private send(m: AcquireMessage | ReturnMessage): void {
    try {
      this.opts.send(m);
    } catch {
      // The primary is gone; this worker is stopping.
    }
  }

  private outcomeOf(h: Held, now: number): Outcome {
    return {
      verdict: 'allowed',
      rateRemaining: h.rate === null ? -1 : h.rateRemaining + h.tokens,
      rateResetMs: h.rate === null ? 0 : Math.max(0, h.tat - h.tokens * h.intervalMs - now),
      retryAfterMs: 0,
      quotaRemaining: h.quota === null ? -1 : h.quotaRemaining + h.tokens,
      quotaResetMs: h.quota === null ? 0 : Math.max(0, h.quotaEnd - now),
    };
  }

  /** `onFault`: what the request gets if the primary does not answer (a policy may say deny). */
  private async acquire(keyId: string, rate: RateLimit | null, quota: Quota | null, old: Held | undefined, onFault: 'allow' | 'deny'): Promise<LimitDecision> {
    this.held.delete(keyId);
    const req = this.nextReq++;
    const answer = new Promise<GrantMessage | null>((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(req);
        resolve(null);
      }, ACQUIRE_TIMEOUT_MS);
      this.pending.set(req, (m) => {
        clearTimeout(timer);
        resolve(m);
      });
    });
    this.send({ type: 'mtlsgate:acquire', req, key: keyId, rate, quota, ret: old?.tokens ?? 0 });
    const m = await answer;
    if (m === null) return faultDecision(onFault);
    if (m.granted === 0) return decisionFromOutcome(m.outcome, rate, quota);
    const now = Date.now();
    const o = m.outcome;
    const h: Held = {
      lease: m.req,
      tokens: m.granted - 1,
      expiresAt: m.expiresAt,
      lastUsed: now,
      rate,
      quota,
      rateRemaining: o.rateRemaining,
      quotaRemaining: o.quotaRemaining,
      tat: m.tat,
      quotaEnd: m.quotaEnd,
      intervalMs: rate === null ? 0 : (rate.per * 1000) / rate.rate,
    };
    if (this.closed) {
      this.send({ type: 'mtlsgate:return', key: keyId, lease: h.lease, unused: h.tokens });
    } else {
      this.held.set(keyId, h);
      this.armIdle();
    }
    return decisionFromOutcome(this.outcomeOf(h, now), rate, quota);
  }

  private armIdle(): void {
    if (this.idleTimer !== null) return;
    this.idleTimer = setTimeout(this.onIdle, LEASE_IDLE_MS);
    this.idleTimer.unref();
  }

  /** Leases unused for LEASE_IDLE_MS, or expired, go back (spent ones too: the primary then
   *  stops keeping their grant for the rate replay). */
  private readonly onIdle = (): void => {
    this.idleTimer = null;
    const now = Date.now();
    for (const [key, h] of this.held) {
      if (now - h.lastUsed >= LEASE_IDLE_MS || now >= h.expiresAt) {
        this.held.delete(key);
        this.send({ type: 'mtlsgate:return', key, lease: h.lease, unused: h.tokens });
      }
    }
    if (this.held.size > 0) this.armIdle();
  };
}
