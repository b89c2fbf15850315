// The primary's side of exact rate limits and quotas across `serve --workers N` without Redis.
// The primary owns every limited key's counters (the same LimitState and `decide` as the
// in-process MemoryLimiter); a worker asks for a LEASE: `decide` run once per token, so a lease
// of k tokens is exactly k admitted requests, counted when granted. The worker spends them
// synchronously on its hot path and gives back what it did not spend.
//
// Why the counts stay exact:
// - Quota: a lease belongs to the quota period it was granted in (its end travels with it).
//   Unused tokens returned within that period are subtracted from the count; in a later period
//   they mean nothing (the count started again). Near the end grants shrink to one token
//   (leaseSize), and a refused request first RECALLS the other workers' leases of that key and
//   decides again, so no token sits unused in a worker while another worker refuses.
// - Rate (GCRA): a lease moves the key's TAT by k intervals at the grant. Returning tokens cannot
//   just move it back (time may have absorbed the debt meanwhile: GCRA's max(TAT, now) is not
//   reversible), so the primary keeps, per key, the grants since its oldest open lease and
//   replays them with the returned tokens removed: the TAT becomes exactly what it would have
//   been had the unused tokens never been granted.
import type { Quota, RateLimit } from '../../bundle/types.ts';
import { decide, effectiveQuota, effectiveRate, type LimitState, type Outcome } from '../limits/algorithm.ts';
import { LEASE_TTL_MS, leaseSize, type AcquireMessage, type GrantMessage, type RecallMessage } from './lease-protocol.ts';

/** One grant in a key's replay log. */
interface Grant {
  at: number;
  count: number;
  open: boolean;
}

interface Lease {
  /** The acquire's req that granted it. */
  id: number;
  quotaEnd: number;
  grant: Grant | null;
}

interface Book {
  state: LimitState;
  /** Open leases by worker id (one per worker and key). */
  leases: Map<number, Lease>;
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

export interface LeaseAuthorityOptions {
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

  /** A worker's acquire: close its previous lease, decide, grant; refused with leases out
   *  elsewhere: recall them, then decide once more. */
  async acquire(worker: number, m: AcquireMessage): Promise<void> {
    const book = this.book(m.key);
    this.close(book, worker, m.ret);
    const rate = effectiveRate(m.rate);
    const quota = effectiveQuota(m.quota);
    let reply = this.grant(book, worker, rate, quota, m.req);
    if (reply.granted === 0) {
      const others = [...book.leases.keys()].filter((w) => w !== worker);
      if (others.length > 0) {
        await this.recall(book, m.key, others);
        reply = this.grant(book, worker, rate, quota, m.req);
      }
    }
    this.opts.send(worker, reply);
  }

  /** A worker gives back its lease of `key` (idle, expired or recalled). */
  giveBack(worker: number, key: string, lease: number, unused: number): void {
    const book = this.books.get(key);
    if (book === undefined) return;
    // A return naming no lease (a recall that found none held) or an older one than the
    // primary's record closes nothing, but still wakes a recall waiting on this worker.
    if (book.leases.get(worker)?.id === lease) this.close(book, worker, unused);
    else this.wake(book);
  }

  /** A worker is gone: its leases close with nothing returned (their tokens count as spent). */
  workerGone(worker: number): void {
    for (const book of this.books.values()) this.close(book, worker, 0);
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

  private grant(book: Book, worker: number, rate: RateLimit | null, quota: Quota | null, req: number): GrantMessage {
    const now = this.now();
    const state = book.state;
    let outcome: Outcome = decide(state, rate, quota, now);
    if (outcome.verdict !== 'allowed') {
      return { type: 'mtlsgate:grant', req, granted: 0, outcome, expiresAt: 0, tat: state.tat, quotaEnd: state.quotaEnd };
    }
    // What is left after this request, by the limit closest to refusing; +1 for this request.
    const left = Math.min(rate === null ? Infinity : outcome.rateRemaining, quota === null ? Infinity : outcome.quotaRemaining);
    const size = leaseSize(left + 1, this.opts.workers());
    let granted = 1;
    while (granted < size) {
      const next = decide(state, rate, quota, now);
      if (next.verdict !== 'allowed') break;
      outcome = next;
      granted++;
    }
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
    book.leases.set(worker, { id: req, quotaEnd: state.quotaEnd, grant });
    let expiresAt = now + LEASE_TTL_MS;
    if (quota !== null) expiresAt = Math.min(expiresAt, state.quotaEnd);
    if (rate !== null) expiresAt = Math.min(expiresAt, now + rate.per * 1000);
    return { type: 'mtlsgate:grant', req, granted, outcome, expiresAt, tat: state.tat, quotaEnd: state.quotaEnd };
  }

  private close(book: Book, worker: number, unused: number): void {
    const lease = book.leases.get(worker);
    if (lease === undefined) return;
    book.leases.delete(worker);
    const now = this.now();
    const state = book.state;
    const back = Math.max(0, Math.floor(unused));
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
    this.wake(book);
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
