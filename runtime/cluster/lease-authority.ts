// The primary's side of exact rate limits and quotas across `serve --workers N` without Redis.
// The primary owns every limited key's counters (the same LimitState and `decide` as the
// in-process MemoryLimiter); a worker asks for a LEASE: `decide` run once per token, so a lease
// of k tokens is exactly k admitted requests, counted when granted. The worker spends them
// synchronously on its hot path and gives back what it did not spend. A worker holds at most
// two leases of a key: the one it spends and the next, prefetched before the first runs out.
// Their size is what the worker asks for (about LEASE_TARGET_MS of its spending, growing
// geometrically, lease-protocol.ts) bounded by a share of what is left (leaseSize).
//
// Why the counts stay exact:
// - Quota: a lease belongs to the quota period it was granted in (its end travels with it).
//   Unused tokens returned within that period are subtracted from the count; in a later period
//   they mean nothing (the count started again). Near the end grants shrink to one token
//   (leaseSize), prefetches are declined (PREFETCH_MIN_SHARE), and a refused request first
//   RECALLS the other workers' leases of that key and decides again, so no token sits unused in
//   a worker while another worker refuses.
// - Rate (GCRA): a lease moves the key's TAT by k intervals at the grant. Returning tokens cannot
//   just move it back (time may have absorbed the debt meanwhile: GCRA's max(TAT, now) is not
//   reversible), so the primary keeps, per key, the grants since its oldest open lease and
//   replays them with the returned tokens removed: the TAT becomes exactly what it would have
//   been had the unused tokens never been granted.
import type { Quota, RateLimit } from '../../bundle/types.ts';
import { decide, effectiveQuota, effectiveRate, type LimitState, type Outcome } from '../limits/algorithm.ts';
import { LEASE_TTL_MS, leaseSize, PREFETCH_MIN_SHARE, type AcquireMessage, type Closes, type GrantMessage, type RecallMessage } from './lease-protocol.ts';

/** One grant in a key's replay log. */
interface Grant {
  at: number;
  count: number;
  open: boolean;
}

interface Lease {
  /** The acquire's req that granted it. */
  id: number;
  /** Tokens granted (what the worker may still hold of it: it reports what it did not use). */
  tokens: number;
  quotaEnd: number;
  grant: Grant | null;
}

interface Book {
  state: LimitState;
  /** Open leases by worker id (at most two per worker and key: spending and prefetched). */
  leases: Map<number, Lease[]>;
  /** Grants since the oldest open one, for the rate replay; `base` is the TAT before them. */
  log: Grant[];
  base: number;
  /** The interval the log was built with; a changed rate ends the replay (no rate credit). */
  logInterval: number;
  /** Called whenever a lease of this key closes (recalls wait on it). */
  closed: Array<() => void>;
}

/** Beyond this many grants in one key's log, the oldest are settled as spent. */
const MAX_LOG = 256;
/** A recall waits this long for the other workers' answers (ms). */
const RECALL_WAIT_MS = 1_000;

interface LeaseAuthorityOptions {
  send(worker: number, message: GrantMessage | RecallMessage): void;
  /** Workers running now (the share a grant may take depends on it). */
  workers(): number;
  now?: () => number;
}

export class LeaseAuthority {
  private readonly books = new Map<string, Book>();
  private readonly now: () => number;
  private sweepTimer: NodeJS.Timeout;

  constructor(private readonly opts: LeaseAuthorityOptions) {
    this.now = opts.now ?? Date.now;
    this.sweepTimer = setInterval(() => this.sweep(), 10_000);
    this.sweepTimer.unref();
  }

  /** A worker's acquire: close the leases it names, decide, grant; refused with leases out
   *  elsewhere: recall them, then decide once more (never for a prefetch). */
  async acquire(worker: number, m: AcquireMessage): Promise<void> {
    const book = this.book(m.key);
    this.closeAll(book, worker, m.closes);
    const rate = effectiveRate(m.rate);
    const quota = effectiveQuota(m.quota);
    let reply = this.grant(book, worker, rate, quota, m);
    if (reply.granted === 0 && !m.prefetch) {
      const others = [...book.leases.keys()].filter((w) => w !== worker);
      if (others.length > 0) {
        await this.recall(book, m.key, others);
        reply = this.grant(book, worker, rate, quota, m);
      }
    }
    this.opts.send(worker, reply);
  }

  /** A worker gives back leases of `key` (idle, expired, spent or recalled). */
  giveBack(worker: number, key: string, closes: Closes): void {
    const book = this.books.get(key);
    if (book === undefined) return;
    // A return naming no open lease (a recall that found none held, one that crossed a newer
    // grant) closes nothing, but still wakes a recall waiting on this worker.
    this.closeAll(book, worker, closes);
  }

  /** A worker is gone: its leases close with nothing returned (their tokens count as spent). */
  workerGone(worker: number): void {
    for (const book of this.books.values()) {
      for (const lease of [...(book.leases.get(worker) ?? [])]) this.close(book, worker, lease.id, 0);
      this.wake(book);
    }
  }

  /** Tokens of `key` granted in leases still open (of one worker, or of all): what a worker
   *  that dies now takes with it (tests). */
  outstanding(key: string, worker?: number): number {
    let n = 0;
    for (const [w, leases] of this.books.get(key)?.leases ?? []) if (worker === undefined || w === worker) for (const l of leases) n += l.tokens;
    return n;
  }

  stop(): void {
    clearInterval(this.sweepTimer);
  }

  /** Keys tracked (tests). */
  get size(): number {
    return this.books.size;
  }

  private book(key: string): Book {
    let book = this.books.get(key);
    if (book === undefined) {
      book = { state: { tat: 0, intervalMs: 0, quotaUsed: 0, quotaEnd: 0 }, leases: new Map(), log: [], base: 0, logInterval: 0, closed: [] };
      this.books.set(key, book);
    }
    return book;
  }

  private grant(book: Book, worker: number, rate: RateLimit | null, quota: Quota | null, m: AcquireMessage): GrantMessage {
    const now = this.now();
    const state = book.state;
    const req = m.req;
    // Sized before anything is committed: decide on a copy says what is left.
    const first = decide({ ...state }, rate, quota, now);
    if (first.verdict !== 'allowed') {
      // On the real state too: it stores a reload's re-expressed limits, as MemoryLimiter does.
      const outcome = decide(state, rate, quota, now);
      return { type: 'mtlsgate:grant', key: m.key, req, granted: 0, outcome, expiresAt: 0, tat: state.tat, quotaEnd: state.quotaEnd };
    }
    // What is left before the first token, by the limit closest to refusing.
    const left = Math.min(rate === null ? Infinity : first.rateRemaining, quota === null ? Infinity : first.quotaRemaining) + 1;
    const workers = this.opts.workers();
    if (m.prefetch && Math.floor(left / (2 * Math.max(1, workers))) < PREFETCH_MIN_SHARE) {
      return { type: 'mtlsgate:grant', key: m.key, req, granted: 0, outcome: first, expiresAt: 0, tat: state.tat, quotaEnd: state.quotaEnd };
    }
    const size = leaseSize(left, workers, m.want);
    let outcome: Outcome = first;
    let granted = 0;
    while (granted < size) {
      const next = decide(state, rate, quota, now);
      if (next.verdict !== 'allowed') {
        if (granted === 0) outcome = next;
        break;
      }
      outcome = next;
      granted++;
    }
    if (granted === 0) return { type: 'mtlsgate:grant', key: m.key, req, granted: 0, outcome, expiresAt: 0, tat: state.tat, quotaEnd: state.quotaEnd };
    let grant: Grant | null = null;
    if (rate !== null) {
      // A rate change (reload) re-expressed the TAT: earlier grants cannot be replayed under it.
      if (book.log.length > 0 && book.logInterval !== state.intervalMs) book.log = [];
      if (book.log.length === 0) {
        // The TAT just before these tokens (decide had already re-expressed it under this rate).
        book.base = state.tat - granted * state.intervalMs;
        book.logInterval = state.intervalMs;
      }
      grant = { at: now, count: granted, open: true };
      book.log.push(grant);
      if (book.log.length > MAX_LOG) this.settle(book, book.log.length - MAX_LOG);
    }
    const held = book.leases.get(worker);
    const lease: Lease = { id: req, tokens: granted, quotaEnd: state.quotaEnd, grant };
    if (held === undefined) book.leases.set(worker, [lease]);
    else held.push(lease);
    let expiresAt = now + LEASE_TTL_MS;
    if (quota !== null) expiresAt = Math.min(expiresAt, state.quotaEnd);
    if (rate !== null) expiresAt = Math.min(expiresAt, now + rate.per * 1000);
    return { type: 'mtlsgate:grant', key: m.key, req, granted, outcome, expiresAt, tat: state.tat, quotaEnd: state.quotaEnd };
  }

  /** Closes the (id, unused) pairs of `closes`, then wakes recalls waiting on the key. */
  private closeAll(book: Book, worker: number, closes: Closes): void {
    for (let i = 0; i + 1 < closes.length; i += 2) this.close(book, worker, closes[i], closes[i + 1]);
    this.wake(book);
  }

  private close(book: Book, worker: number, id: number, unused: number): void {
    const held = book.leases.get(worker);
    const at = held === undefined ? -1 : held.findIndex((l) => l.id === id);
    if (at < 0) return;
    const lease = held![at];
    held!.splice(at, 1);
    if (held!.length === 0) book.leases.delete(worker);
    const now = this.now();
    const state = book.state;
    const back = Math.min(lease.tokens, Math.max(0, Math.floor(unused)));
    if (back > 0 && lease.quotaEnd === state.quotaEnd && state.quotaEnd > now) state.quotaUsed = Math.max(0, state.quotaUsed - back);
    const grant = lease.grant;
    if (grant !== null && book.log.includes(grant)) {
      grant.count -= Math.min(back, grant.count);
      grant.open = false;
      if (back > 0 && state.intervalMs === book.logInterval) state.tat = this.replay(book);
      let settled = 0;
      while (settled < book.log.length && !book.log[settled].open) settled++;
      this.settle(book, settled);
    }
  }

  private wake(book: Book): void {
    const waiting = book.closed;
    book.closed = [];
    for (const wake of waiting) wake();
  }

  /** The TAT the log's grants (as they stand now) lead to from `base`. */
  private replay(book: Book): number {
    let tat = book.base;
    for (const g of book.log) if (g.count > 0) tat = Math.max(tat, g.at) + g.count * book.logInterval;
    return tat;
  }

  /** Folds the first `n` grants into `base`: they can no longer change. */
  private settle(book: Book, n: number): void {
    for (let i = 0; i < n; i++) {
      const g = book.log[i];
      if (g.count > 0) book.base = Math.max(book.base, g.at) + g.count * book.logInterval;
    }
    book.log.splice(0, n);
  }

  private recall(book: Book, key: string, workers: number[]): Promise<void> {
    for (const w of workers) this.opts.send(w, { type: 'mtlsgate:recall', key });
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, RECALL_WAIT_MS);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      const check = () => {
        if (workers.every((w) => !book.leases.has(w))) done();
        else book.closed.push(check);
      };
      check();
    });
  }

  /** Drops keys with no open lease whose state is over (as MemoryLimiter's sweep does). */
  private sweep(): void {
    const now = this.now();
    for (const [key, book] of this.books) {
      if (book.leases.size === 0 && Math.max(book.state.tat, book.state.quotaEnd) <= now) this.books.delete(key);
    }
  }
}
