// A request body on its way upstream must keep coming: one that stops (--client-idle-timeout,
// like NGINX's client_body_timeout: the time between two reads) or trickles below a minimum
// rate (--min-body-rate, Kestrel's MinRequestBodyDataRate) is cut, so it does not hold an
// upstream connection. (The answer's side, a client that stops reading, is runtime/proxy.ts's
// timer, armed at the first backpressure.)
//
// The rate is measured over a sliding window, the grace period long (--min-body-rate-grace):
// once the first grace period is over, every window must carry the rate times the window. An
// average over the whole body (Kestrel's) let a burst at the start buy a trickle for as long
// as the average took to fall (1 MB: 70 minutes at 240 bytes/s); over a window a burst buys
// that window. Time in which the upstream reads nothing (the body paused on backpressure by
// undici's writer or the proxy.http2 pipe) is not counted: the client could not send then.
//
// One timer per body, made when the body starts going upstream and cleared at its end (a
// bodiless request makes none). It ticks every second at most (Kestrel checks its rates on a
// one-second heartbeat) and looks at a byte counter the body's chunks add to: idle when the
// count has not moved for the idle timeout; too slow when the count grew by less than the
// rate allows since the newest sample at least a window old (samples of the count, taken at the
// ticks, kept in a small ring made at the first tick: most bodies end before it). A transport
// timer (node's socket or stream timeout) would not do: every byte refreshes it, so a trickle
// never lets it fire.
import { sendError } from './errors.ts';
import type { ClientRequest, ClientResponse } from './exchange.ts';

/** `--min-body-rate` with `--min-body-rate-grace` (the grace is also the window the rate is measured over). */
export interface MinBodyRate {
  bytesPerSecond: number;
  graceMs: number;
}

/** `--min-answer-rate` with `--min-answer-rate-grace`: the same shape, for the answer (runtime/proxy.ts). */
export type MinAnswerRate = MinBodyRate;

export type SlowBodyCode = 'client.idle_timeout' | 'client.body_too_slow' | 'client.answer_too_slow';

/** The longest time between two checks (Kestrel's heartbeat). */
const MAX_TICK_MS = 1_000;
/** Samples of the byte count one body keeps at most (a longer window takes one every few ticks). */
const MAX_SAMPLES = 16;

export class BodyWatch {
  /** Bytes of the body read so far (one addition per chunk). */
  private bytes = 0;
  /** `bytes` at the last tick, and the tick at which it last moved (performance.now()). */
  private seenBytes = 0;
  private movedAt: number;
  private readonly startedAt: number;
  private readonly timer: NodeJS.Timeout;
  private stopped = false;
  /** Paused on backpressure since this time (performance.now()), or -1; and the time paused before. */
  private pausedAt = -1;
  private pausedMs = 0;
  /**
   * The rate's window: samples (time counted without backpressure, bytes), oldest first, in a
   * ring of `size` pairs from `first`; the body's start (0, 0) is the first. Made at the first tick.
   */
  private samples: Float64Array | null = null;
  private first = 0;
  private count = 0;
  private ticks = 0;
  /** A sample every `stride` ticks, into a ring of `size`: enough to reach a window back. */
  private readonly stride: number = 1;
  private readonly size: number = 2;

  /**
   * Starts watching `req` (its body must not be flowing yet, or chunks already read are not
   * counted). `idleMs` 0: no idle timeout; `rate` null: no minimum rate; not both.
   */
  constructor(
    req: ClientRequest,
    private readonly idleMs: number,
    private readonly rate: MinBodyRate | null,
    private readonly onSlow: (code: SlowBodyCode) => void,
  ) {
    this.startedAt = this.movedAt = performance.now();
    let tick = MAX_TICK_MS;
    if (idleMs > 0) tick = Math.min(tick, idleMs);
    if (rate !== null) {
      tick = Math.min(tick, rate.graceMs);
      // Samples at most a window apart over MAX_SAMPLES - 2 of them: the newest one a window old is always kept.
      this.stride = Math.ceil(rate.graceMs / (tick * (MAX_SAMPLES - 2)));
      this.size = Math.ceil(rate.graceMs / (tick * this.stride)) + 2;
      // Backpressure (the upstream reads nothing) pauses the body: those stretches are not the client's.
      req.on('pause', () => {
        if (this.pausedAt < 0) this.pausedAt = performance.now();
      });
      req.on('resume', () => {
        if (this.pausedAt < 0) return;
        this.pausedMs += performance.now() - this.pausedAt;
        this.pausedAt = -1;
      });
    }
    this.timer = setTimeout(() => this.check(), tick).unref();
    req.on('data', (chunk: Buffer) => {
      this.bytes += chunk.length;
    });
    // Body complete: waiting for the upstream's answer is --upstream-timeout's business.
    req.once('end', () => this.stop());
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private check(): void {
    if (this.stopped) return;
    const now = performance.now();
    if (this.bytes !== this.seenBytes) {
      this.seenBytes = this.bytes;
      this.movedAt = now;
    } else if (this.idleMs > 0 && now - this.movedAt >= this.idleMs) {
      return this.slow('client.idle_timeout');
    }
    if (this.rate !== null && this.tooSlow(this.rate, now)) return this.slow('client.body_too_slow');
    this.timer.refresh();
  }

  /** Once the grace period is over: fewer bytes in the last window than the rate asks for? */
  private tooSlow(rate: MinBodyRate, now: number): boolean {
    const active = now - this.startedAt - this.pausedMs - (this.pausedAt < 0 ? 0 : now - this.pausedAt);
    const size = this.size;
    let samples = this.samples;
    if (samples === null) {
      samples = this.samples = new Float64Array(2 * size);
      this.count = 1;
    }
    // Drop samples older than the newest one a window old: that one is where the window starts.
    const windowStart = active - rate.graceMs;
    while (this.count > 1 && samples[2 * ((this.first + 1) % size)] <= windowStart) {
      this.first = (this.first + 1) % size;
      this.count--;
    }
    // A full ring (ticks that came late) takes no sample: the window grows, it never shrinks.
    if (++this.ticks % this.stride === 0 && this.count < size) {
      const at = 2 * ((this.first + this.count++) % size);
      samples[at] = active;
      samples[at + 1] = this.bytes;
    }
    if (active < rate.graceMs) return false;
    const from = 2 * this.first;
    return (this.bytes - samples[from + 1]) * 1000 < rate.bytesPerSecond * (active - samples[from]);
  }

  private slow(code: SlowBodyCode): void {
    this.stop();
    this.onSlow(code);
  }
}

/**
 * Answers a request whose body was cut before anything was answered (its upstream request is
 * already aborted): 408 with the code, without waiting for the rest of the body (HTTP/1.1: the
 * connection ends with the answer; HTTP/2: the stream is reset with NO_ERROR once the answer is
 * out, RFC 9113 8.1, by runtime/stream-reset.ts dropUnreadBodyAfterAnswer).
 */
export function answerSlowClient(res: ClientResponse, http2: boolean, code: SlowBodyCode): void {
  if (!http2) res.setHeader('connection', 'close');
  sendError(res, code);
}
