// Tracks whether the Redis store is answering, so that an outage is logged ONCE (when it starts,
// and once more when it ends), counted per affected decision in /metrics, and visible in
// /health as 'degraded' for as long as it lasts.
import { Counter, Gauge, type Registry } from 'prom-client';
import type { LimiterHealth, LimiterLogger } from './limiter.ts';

type FaultReason = 'timeout' | 'unavailable' | 'error';

const ERRORS_METRIC = 'mtlsgate_limiter_errors_total';
const DEGRADED_METRIC = 'mtlsgate_limiter_degraded';

/** Returns the registry's metric of that name, or registers it: a registry shared by several
 *  limiters (tests, a restart inside one process) must not throw "already registered". */
function counterOn(registry: Registry): Counter<'reason'> {
  const existing = registry.getSingleMetric(ERRORS_METRIC);
  if (existing !== undefined) return existing as Counter<'reason'>;
  return new Counter({
    name: ERRORS_METRIC,
    help: 'Rate-limit decisions the shared store (Redis) could not make; each was decided by --on-limiter-error',
    labelNames: ['reason'],
    registers: [registry],
  });
}

function gaugeOn(registry: Registry): Gauge {
  const existing = registry.getSingleMetric(DEGRADED_METRIC);
  if (existing !== undefined) return existing as Gauge;
  return new Gauge({ name: DEGRADED_METRIC, help: '1 while the shared rate-limit store (Redis) is unavailable, else 0', registers: [registry] });
}

function classifyFault(err: Error): FaultReason {
  const msg = err.message;
  if (/timed out|timeout/i.test(msg)) return 'timeout';
  if (/writeable|connection is closed|ECONNREFUSED|ECONNRESET|EPIPE|ENOTFOUND|EHOSTUNREACH|ETIMEDOUT|closed|ended/i.test(msg)) return 'unavailable';
  return 'error';
}

export class OutageTracker {
  private readonly errors: Counter<'reason'> | null;
  private readonly degradedGauge: Gauge | null;
  private since: Date | null = null;
  private cause = '';

  constructor(
    private readonly target: string,
    private readonly onError: 'allow' | 'deny',
    private readonly logger: LimiterLogger | undefined,
    registry: Registry | undefined,
  ) {
    this.errors = registry !== undefined ? counterOn(registry) : null;
    this.degradedGauge = registry !== undefined ? gaugeOn(registry) : null;
    this.degradedGauge?.set(0);
  }

  /** A decision Redis could not make. */
  decisionFailed(err: Error): void {
    const reason = classifyFault(err);
    this.errors?.inc({ reason });
    this.down(`${reason}: ${err.message}`);
  }

  /** The connection reported a problem (no decision involved). */
  connectionFailed(err: Error): void {
    this.down(`${classifyFault(err)}: ${err.message}`);
  }

  /** Redis answered (or the connection became ready): the outage, if any, is over. */
  up(): void {
    if (this.since === null) return;
    const downForMs = Date.now() - this.since.getTime();
    this.since = null;
    this.degradedGauge?.set(0);
    this.logger?.info({ redis: this.target, downForMs }, 'rate limiter: Redis is back, shared counting resumed');
  }

  get degraded(): boolean {
    return this.since !== null;
  }

  health(): LimiterHealth {
    if (this.since === null) return { status: 'ok' };
    return {
      status: 'degraded',
      detail: `Redis ${this.target} unavailable since ${this.since.toISOString()} (${this.cause}); rate limits and quotas follow on-limiter-error=${this.onError}`,
    };
  }

  private down(cause: string): void {
    this.cause = cause;
    if (this.since !== null) return;
    this.since = new Date();
    this.degradedGauge?.set(1);
    this.logger?.warn(
      { redis: this.target, cause, onError: this.onError },
      `rate limiter: Redis unavailable; requests of limited keys are ${this.onError === 'allow' ? 'allowed without limits' : 'denied'} until it returns`,
    );
  }
}
