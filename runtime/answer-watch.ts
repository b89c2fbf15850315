// An answer the client does not take as fast as it comes (docs/security.md sections 19, 57 and
// 62): from its first backpressure on, the client must read something every
// --client-idle-timeout, and take what waits for it at --min-answer-rate (plus the grace), or
// the answer is cut (client.idle_timeout, client.answer_too_slow). Shared by both upstream
// paths: the undici pool (runtime/proxy.ts, which pauses undici's controller) and a
// `proxy.http2` upstream (runtime/proxy-http2.ts, whose pipe pauses the upstream stream).
// Made at an answer's first backpressure only: most answers fit the socket's buffer and never
// make one.
import type { MinAnswerRate, SlowBodyCode } from './body-watch.ts';

/** What is watched: node:http's ServerResponse and node:http2's compat response both fit. */
export interface WatchedAnswer {
  readonly writableLength: number;
  once(event: 'drain', listener: () => void): unknown;
}

/** The longest time between two checks of a backpressured answer's rate (Kestrel's heartbeat, as for bodies). */
const MAX_ANSWER_TICK_MS = 1_000;

/**
 * How often a backpressured answer is looked at (ms; 0: never): every --client-idle-timeout, or
 * with --min-answer-rate every second (or the grace, when shorter), so a cut comes at most a
 * tick after its deadline.
 */
export function answerTick(idleMs: number, rate: MinAnswerRate | null): number {
  if (rate === null) return idleMs;
  const tick = Math.min(MAX_ANSWER_TICK_MS, rate.graceMs);
  return idleMs > 0 ? Math.min(idleMs, tick) : tick;
}

export class AnswerWatch {
  /** One timer, refreshed: a drain only notes the time. Null when neither limit is set. */
  private readonly timer: NodeJS.Timeout | null;
  /** Paused on backpressure since this time (performance.now()), or -1 while the client reads. */
  private pausedAt = -1;
  /**
   * With --min-answer-rate: how long this backpressure may last, from pausedAt (ms): the grace
   * plus the bytes then waiting for the client at the minimum rate (Kestrel's MinResponseDataRate).
   */
  private pauseAllowedMs = Number.POSITIVE_INFINITY;
  /** The timer is pending (it stops between two backpressures). */
  private ticking = false;
  private stopped = false;
  private readonly onDrain: () => void;

  constructor(
    private readonly res: WatchedAnswer,
    private readonly idleMs: number,
    private readonly rate: MinAnswerRate | null,
    private readonly onSlow: (code: SlowBodyCode) => void,
    /** Called at each 'drain' after a backpressure: the caller resumes what it paused (a pipe resumes itself). */
    resume: (() => void) | null,
  ) {
    this.onDrain = () => {
      this.pausedAt = -1;
      resume?.();
    };
    // Its own timer, not the transport's: node:http2 refreshes a stream's timer while anything
    // at all is sent on the session (a PING's ACK), so a client pinging away would never time out.
    const tick = answerTick(idleMs, rate);
    this.timer = tick > 0 ? setTimeout(() => this.check(), tick).unref() : null;
  }

  /** The answer's write was refused (backpressure): what waits now must be taken in time. Waits for the next 'drain'. */
  backpressured(): void {
    this.pausedAt = performance.now();
    const rate = this.rate;
    // What waits for the client now (HTTP/1.1: the socket's buffer; HTTP/2: the stream's, held
    // by flow control) must be taken before the next 'drain' within this (section 57).
    if (rate !== null) this.pauseAllowedMs = rate.graceMs + (this.res.writableLength * 1000) / rate.bytesPerSecond;
    if (!this.ticking) this.timer?.refresh();
    this.ticking = this.timer !== null;
    this.res.once('drain', this.onDrain);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
  }

  /**
   * The timer fired: idle if the client has read nothing since the last backpressure for the
   * whole timeout; too slow if the bytes waiting then are still not all taken after the time
   * --min-answer-rate allows them.
   */
  private check(): void {
    if (this.stopped) return;
    if (this.pausedAt >= 0) {
      const paused = performance.now() - this.pausedAt;
      if (this.idleMs > 0 && paused >= this.idleMs) return this.onSlow('client.idle_timeout');
      if (paused >= this.pauseAllowedMs) return this.onSlow('client.answer_too_slow');
      this.timer?.refresh();
      return;
    }
    // The client took all that waited: no tick until the next backpressure (a fast client's
    // download is backpressured often and briefly).
    this.ticking = false;
  }
}
