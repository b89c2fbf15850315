// A worker's limiter under `serve --workers N` without Redis: the primary owns the counters
// (lease-authority.ts); this side holds leases of tokens. A request of a key whose lease has
// tokens is decided synchronously, like the in-process MemoryLimiter (a plain object, no
// promise, no microtask); only a request finding no usable lease waits for one IPC round trip.
//
// Leases follow the worker's pace: when half of the lease being spent is gone, the next one is
// asked for (a prefetch), sized to last about LEASE_TARGET_MS at the pace the first half went
// (at most twice the last lease: geometric growth while the worker keeps spending them), so a
// busy key far from its limit never waits for the primary and costs a round trip per ~LEASE_TARGET_MS
// per worker, not per 32 requests. The primary bounds every lease by a share of what is left
// and declines prefetches near the limit, where leases shrink to one token.
//
// Unused tokens go back when the key has not been used for LEASE_IDLE_MS, when a lease expires,
// at once when the primary recalls them, and when the worker drains.
import { Counter, Registry } from 'prom-client';
import type { BundleKey, Quota, RateLimit } from '../../bundle/types.ts';
import { effectiveQuota, effectiveRate, type Outcome } from '../limits/algorithm.ts';
import { decisionFromOutcome, faultDecision } from '../limits/headers.ts';
import type { LimitDecision, Limiter, LimiterHealth } from '../limits/limiter.ts';
import { INITIAL_LEASE, LEASE_IDLE_MS, nextWant, type AcquireMessage, type Closes, type GrantMessage, type ReturnMessage } from './lease-protocol.ts';

interface Lease {
  /** The grant's req: names the lease when it closes. */
  id: number;
  /** Tokens left. */
  tokens: number;
  granted: number;
  grantedAt: number;
  expiresAt: number;
}

interface Held {
  /** leases[0] is being spent; leases[1], if any, was prefetched. */
  leases: Lease[];
  /** Leases spent or expired, closed by the next message about this key (id, unused, ...). */
  closes: Closes;
  /** The next lease was asked for (or declined) while leases[0] is spent: once per lease. */
  prefetched: boolean;
  /** Tokens to ask for next (nextWant). */
  want: number;
  lastUsed: number;
  /** The limits it was granted under: changed limits (a reload) need a new lease. */
  rate: RateLimit | null;
  quota: Quota | null;
  /** From the newest grant: the primary's remaining counts after it, without any held tokens. */
  rateRemaining: number;
  quotaRemaining: number;
  tat: number;
  quotaEnd: number;
  intervalMs: number;
}

const NOT_FINAL: Asked = Object.freeze({ decision: null, final: false });
const UNLIMITED: LimitDecision = Object.freeze({ allowed: true, headers: Object.freeze({}) }) as LimitDecision;
/** The primary answers within this or the request is decided by --on-limiter-error (ms). */
const ACQUIRE_TIMEOUT_MS = 5_000;

function sameRate(a: RateLimit | null, b: RateLimit | null): boolean {
  return a === b || (a !== null && b !== null && a.rate === b.rate && a.per === b.per);
}
function sameQuota(a: Quota | null, b: Quota | null): boolean {
  return a === b || (a !== null && b !== null && a.max === b.max && a.renewal === b.renewal);
}

/** Every lease held, as (id, unused) pairs after the ones already waiting to close. */
function allCloses(h: Held): Closes {
  const out = h.closes.slice();
  for (const l of h.leases) out.push(l.id, l.tokens);
  return out;
}

interface LeaseLimiterOptions {
  send(message: AcquireMessage | ReturnMessage): void;
  onError: 'allow' | 'deny';
  /** The clock (ms since the epoch) for what is not decided at a check's `now`: the second look
   *  of a request that waited, lease ages, idleness. Date.now unless a test stops time. */
  now?: () => number;
}

type MessageKind = 'acquire' | 'prefetch' | 'grant' | 'return' | 'recall';

/** What an acquire in flight ends in, for the requests waiting on it. `final`: the primary
 *  refused (after recalling every other worker's tokens of the key) or did not answer; a
 *  request that waited meanwhile gets the same decision, as if it had arrived at the moment of
 *  the refusal, instead of asking once more (N waiting requests would be N round trips in a
 *  row, each re-queuing the rest). Otherwise it looks at the leases again. */
interface Asked {
  decision: LimitDecision | null;
  final: boolean;
}

export class LeaseLimiter implements Limiter {
  /** This worker's lease counters; the worker adds it to what /metrics aggregates. */
  readonly registry = new Registry();
  private readonly messages = new Counter<'type'>({
    name: 'mtlsgate_lease_messages_total',
    help: '--workers N without --redis: lease messages a worker sent (acquire, prefetch, return) and received (grant, recall)',
    labelNames: ['type'],
    registers: [this.registry],
  });
  private readonly waits = new Counter({
    name: 'mtlsgate_lease_waits_total',
    help: '--workers N without --redis: limited requests that waited for the primary (no usable lease)',
    registers: [this.registry],
  });
  private readonly held = new Map<string, Held>();
  private readonly pending = new Map<number, (m: GrantMessage | null) => void>();
  /** Keys with an acquire in flight: requests finding no lease wait for it, then look again,
   *  or share its decision when that is final (refused, or the primary did not answer). */
  private readonly acquiring = new Map<string, Promise<Asked>>();
  private nextReq = 1;
  private idleTimer: NodeJS.Timeout | null = null;
  private closed = false;
  private readonly now: () => number;

  constructor(private readonly opts: LeaseLimiterOptions) {
    this.now = opts.now ?? Date.now;
    for (const t of ['acquire', 'prefetch', 'grant', 'return', 'recall'] as const) this.messages.labels(t).inc(0);
  }

  check(key: BundleKey, now: number): LimitDecision | Promise<LimitDecision> {
    const rate = effectiveRate(key.rate);
    const quota = effectiveQuota(key.quota);
    if (rate === null && quota === null) return UNLIMITED;
    const h = this.held.get(key.id);
    if (h !== undefined && sameRate(h.rate, rate) && sameQuota(h.quota, quota)) {
      let l: Lease | undefined = h.leases[0];
      if (l !== undefined && (l.tokens === 0 || now >= l.expiresAt)) l = this.advance(h, now);
      if (l !== undefined) {
        l.tokens--;
        h.lastUsed = now;
        if (!h.prefetched && l.tokens <= l.granted >> 1) this.prefetch(key.id, h, l, now);
        return decisionFromOutcome(this.outcomeOf(h, now), rate, quota);
      }
    }
    this.waits.inc();
    const inFlight = this.acquiring.get(key.id);
    if (inFlight !== undefined) return inFlight.then((a) => (a.final ? a.decision! : this.check(key, this.now())));
    const p = this.acquire(key.id, rate, quota, h, key.on_limiter_error === 'deny' ? 'deny' : this.opts.onError);
    this.track(key.id, p);
    return p.then((a) => a.decision!);
  }

  /** The primary's messages for this limiter. */
  onGrant(m: GrantMessage): void {
    this.count('grant');
    const resolve = this.pending.get(m.req);
    if (resolve !== undefined) {
      this.pending.delete(m.req);
      resolve(m);
    } else if (m.granted > 0) {
      // Its acquire timed out and was decided by --on-limiter-error: nothing holds these tokens.
      this.send({ type: 'mtlsgate:return', key: m.key, closes: [m.req, m.granted] });
    }
  }

  onRecall(key: string): void {
    this.count('recall');
    // A grant on its way is part of what is recalled: answer once it has arrived.
    const inFlight = this.acquiring.get(key);
    if (inFlight !== undefined) {
      void inFlight.then(() => this.onRecall(key));
      return;
    }
    const h = this.held.get(key);
    this.held.delete(key);
    this.send({ type: 'mtlsgate:return', key, closes: h === undefined ? [] : allCloses(h) });
  }

  health(): LimiterHealth {
    return { status: 'ok' };
  }

  /** Gives every lease back (a draining worker's tokens are not stranded). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.idleTimer !== null) clearTimeout(this.idleTimer);
    for (const [key, h] of this.held) this.send({ type: 'mtlsgate:return', key, closes: allCloses(h) });
    this.held.clear();
    for (const resolve of this.pending.values()) resolve(null);
    this.pending.clear();
  }

  private count(kind: MessageKind): void {
    this.messages.labels(kind).inc();
  }

  private send(m: AcquireMessage | ReturnMessage): void {
    this.count(m.type === 'mtlsgate:return' ? 'return' : m.prefetch ? 'prefetch' : 'acquire');
    try {
      this.opts.send(m);
    } catch {
      // The primary is gone; this worker is stopping.
    }
  }

  private track(keyId: string, p: Promise<Asked>): void {
    this.acquiring.set(keyId, p);
    void p.finally(() => this.acquiring.delete(keyId));
  }

  /** Drops spent and expired leases from the front (to close with the next message); the
   *  first usable one, if any. Each closed lease sets the pace for the next ask. */
  private advance(h: Held, now: number): Lease | undefined {
    while (h.leases.length > 0) {
      const l = h.leases[0];
      if (l.tokens > 0 && now < l.expiresAt) return l;
      h.leases.shift();
      h.closes.push(l.id, l.tokens);
      h.prefetched = false;
      h.want = nextWant(l.granted, l.granted - l.tokens, now - l.grantedAt);
    }
    return undefined;
  }

  private outcomeOf(h: Held, now: number): Outcome {
    let tokens = 0;
    for (const l of h.leases) tokens += l.tokens;
    return {
      verdict: 'allowed',
      rateRemaining: h.rate === null ? -1 : h.rateRemaining + tokens,
      rateResetMs: h.rate === null ? 0 : Math.max(0, h.tat - tokens * h.intervalMs - now),
      retryAfterMs: 0,
      quotaRemaining: h.quota === null ? -1 : h.quotaRemaining + tokens,
      quotaResetMs: h.quota === null ? 0 : Math.max(0, h.quotaEnd - now),
    };
  }

  /** Sends an acquire; its grant, or null when the primary did not answer in time. */
  private ask(keyId: string, rate: RateLimit | null, quota: Quota | null, want: number, prefetch: boolean, closes: Closes): Promise<GrantMessage | null> {
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
    this.send({ type: 'mtlsgate:acquire', req, key: keyId, rate, quota, want, prefetch, closes });
    return answer;
  }

  /** Asks for the next lease while `l` still has half its tokens; the request goes on at once. */
  private prefetch(keyId: string, h: Held, l: Lease, now: number): void {
    h.prefetched = true;
    h.want = nextWant(l.granted, l.granted - l.tokens, now - l.grantedAt);
    const closes = h.closes;
    h.closes = [];
    const p = this.ask(keyId, h.rate, h.quota, h.want, true, closes).then((m): Asked => {
      // Declined (near the limit) or no answer: the next request finding no tokens asks.
      if (m === null || m.granted === 0) return NOT_FINAL;
      if (this.closed || this.held.get(keyId) !== h) this.send({ type: 'mtlsgate:return', key: keyId, closes: [m.req, m.granted] });
      else {
        h.leases.push({ id: m.req, tokens: m.granted, granted: m.granted, grantedAt: this.now(), expiresAt: m.expiresAt });
        this.takeFigures(h, m);
      }
      return NOT_FINAL;
    });
    this.track(keyId, p);
  }

  private takeFigures(h: Held, m: GrantMessage): void {
    h.rateRemaining = m.outcome.rateRemaining;
    h.quotaRemaining = m.outcome.quotaRemaining;
    h.tat = m.tat;
    h.quotaEnd = m.quotaEnd;
  }

  /** No usable lease: close whatever is held, ask for a lease whose first token is this
   *  request's. `onFault`: what the request gets if the primary does not answer (a policy may
   *  say deny). */
  private async acquire(keyId: string, rate: RateLimit | null, quota: Quota | null, old: Held | undefined, onFault: 'allow' | 'deny'): Promise<Asked> {
    this.held.delete(keyId);
    const want = old?.want ?? INITIAL_LEASE;
    const m = await this.ask(keyId, rate, quota, want, false, old === undefined ? [] : allCloses(old));
    if (m === null) return { decision: faultDecision(onFault), final: true };
    if (m.granted === 0) return { decision: decisionFromOutcome(m.outcome, rate, quota), final: true };
    const now = this.now();
    const h: Held = {
      leases: [{ id: m.req, tokens: m.granted - 1, granted: m.granted, grantedAt: now, expiresAt: m.expiresAt }],
      closes: [],
      prefetched: false,
      want,
      lastUsed: now,
      rate,
      quota,
      rateRemaining: 0,
      quotaRemaining: 0,
      tat: 0,
      quotaEnd: 0,
      intervalMs: rate === null ? 0 : (rate.per * 1000) / rate.rate,
    };
    this.takeFigures(h, m);
    if (this.closed) {
      this.send({ type: 'mtlsgate:return', key: keyId, closes: allCloses(h) });
    } else {
      this.held.set(keyId, h);
      this.armIdle();
    }
    return { decision: decisionFromOutcome(this.outcomeOf(h, now), rate, quota), final: false };
  }

  private armIdle(): void {
    if (this.idleTimer !== null) return;
    this.idleTimer = setTimeout(this.onIdle, LEASE_IDLE_MS);
    this.idleTimer.unref();
  }

  /** Keys unused for LEASE_IDLE_MS, or whose leases all expired, give everything back (spent
   *  leases too: the primary then stops keeping their grants for the rate replay). */
  private readonly onIdle = (): void => {
    this.idleTimer = null;
    const now = this.now();
    for (const [key, h] of this.held) {
      if (now - h.lastUsed >= LEASE_IDLE_MS || this.advance(h, now) === undefined) {
        this.held.delete(key);
        this.send({ type: 'mtlsgate:return', key, closes: allCloses(h) });
      }
    }
    if (this.held.size > 0) this.armIdle();
  };
}
