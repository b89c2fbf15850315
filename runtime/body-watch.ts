// A request body on its way upstream must keep coming: one that stops (--client-idle-timeout,
// like NGINX's client_body_timeout: the time between two reads) or trickles below a minimum
// rate (--min-body-rate, Kestrel's MinRequestBodyDataRate: bytes per second averaged over the
// body so far, checked once a grace period has passed) is cut, so it does not hold an
// upstream connection. (The answer's side, a client that stops reading, is runtime/proxy.ts's
// timer, armed at the first backpressure.)
//
// One timer per body, made when the body starts going upstream and cleared at its end (a
// bodiless request makes none). It ticks every second at most (Kestrel checks its rates on a
// one-second heartbeat) and looks at a byte counter the body's chunks add to: idle when the
// count has not moved for the idle timeout, too slow when the count is below the rate times
// the time elapsed. A transport timer (node's socket or stream timeout) would not do: every
// byte refreshes it, so a trickle never lets it fire.
import type { Http2ServerResponse } from 'node:http2';
import { sendError } from './errors.ts';
import type { ClientRequest, ClientResponse } from './exchange.ts';

/** `--min-body-rate` with `--min-body-rate-grace`. */
export interface MinBodyRate {
  bytesPerSecond: number;
  graceMs: number;
}

export type SlowBodyCode = 'client.idle_timeout' | 'client.body_too_slow';

/** The longest time between two checks (Kestrel's heartbeat). */
const MAX_TICK_MS = 1_000;

export class BodyWatch {
  /** Bytes of the body read so far (one addition per chunk). */
  private bytes = 0;
  /** `bytes` at the last tick, and the tick at which it last moved (performance.now()). */
  private seenBytes = 0;
  private movedAt: number;
  private readonly startedAt: number;
  private readonly timer: NodeJS.Timeout;
  private stopped = false;

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
    if (rate !== null) tick = Math.min(tick, rate.graceMs);
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
    const rate = this.rate;
    const elapsed = now - this.startedAt;
    if (rate !== null && elapsed >= rate.graceMs && this.bytes * 1000 < rate.bytesPerSecond * elapsed) return this.slow('client.body_too_slow');
    this.timer.refresh();
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
 * out, RFC 9113 8.1).
 */
export function answerSlowClient(res: ClientResponse, http2: boolean, code: SlowBodyCode): void {
  if (!http2) res.setHeader('connection', 'close');
  sendError(res, code);
  if (http2) (res as Http2ServerResponse).stream.close();
}
