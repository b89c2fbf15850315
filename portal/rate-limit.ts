// Submissions per client: a token bucket per client address (and per signed-in subject), so
// one client cannot flood the config directory with keys or grind through signature guesses.
// In memory: a restart refills every bucket, which is acceptable for a limit of this kind.

export interface SubmissionLimit {
  /** Submissions a client may make in a burst. */
  burst: number;
  /** Submissions a client regains per hour. */
  perHour: number;
}

export const DEFAULT_SUBMISSION_LIMIT: SubmissionLimit = { burst: 10, perHour: 30 };

/** Buckets kept at most; full buckets are forgotten first (they hold nothing worth keeping). */
const MAX_BUCKETS = 50_000;

interface Bucket {
  tokens: number;
  at: number;
}

export class SubmissionLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly limit: SubmissionLimit = DEFAULT_SUBMISSION_LIMIT,
    private readonly now: () => number = Date.now,
  ) {}

  private level(b: Bucket, now: number): number {
    return Math.min(this.limit.burst, b.tokens + ((now - b.at) / 3_600_000) * this.limit.perHour);
  }

  /**
   * Takes one token from every named bucket, or none when any is empty. Returns 0 when the
   * submission may go ahead, else the seconds until it may be retried.
   */
  take(clients: string[]): number {
    const now = this.now();
    const levels = clients.map((c) => {
      const b = this.buckets.get(c);
      return b === undefined ? this.limit.burst : this.level(b, now);
    });
    const short = Math.min(...levels);
    if (short < 1) return Math.max(1, Math.ceil(((1 - short) / this.limit.perHour) * 3600));
    if (this.buckets.size >= MAX_BUCKETS) this.forgetFull(now);
    clients.forEach((c, i) => {
      this.buckets.delete(c); // re-inserted last: the map stays ordered by last use
      this.buckets.set(c, { tokens: levels[i]! - 1, at: now });
    });
    return 0;
  }

  private forgetFull(now: number): void {
    for (const [c, b] of this.buckets) if (this.level(b, now) >= this.limit.burst) this.buckets.delete(c);
    while (this.buckets.size >= MAX_BUCKETS) this.buckets.delete(this.buckets.keys().next().value!);
  }
}
