// The Redis-backed limiter: counters shared by every gateway instance, one atomic round trip
// (EVALSHA of redis-script.ts) per decision, state keyed by key id so a bundle reload never
// resets it, keys expiring on their own.
//
// Faults never reach the request path as exceptions: a decision Redis cannot make within
// redisTimeoutMs (unreachable, slow, restarting) is decided by onError, logged once per outage,
// counted in mtlsgate_limiter_errors_total, and reported by health() as 'degraded'. ioredis
// reconnects by itself; the first decision it answers ends the outage.
import type { BundleKey } from '../../bundle/types.ts';
import { effectiveQuota, effectiveRate } from './algorithm.ts';
import { decisionFromOutcome, faultDecision } from './headers.ts';
import type { LimitDecision, Limiter, LimiterHealth } from './limiter.ts';
import type { OutageTracker } from './outage.ts';
import type { RedisClient } from './redis-connection.ts';
import { LIMIT_SCRIPT, outcomeFromReply, scriptArgs } from './redis-script.ts';

const COMMAND = 'mtlsgateLimit';
/** Hash key per key id. Not derived from the bundle, so reloads keep the counts. */
const REDIS_KEY_PREFIX = 'mtlsgate:limit:';

type ScriptCall = (key: string, ...args: Array<string | number>) => Promise<unknown>;

const UNLIMITED: LimitDecision = Object.freeze({ allowed: true, headers: Object.freeze({}) }) as LimitDecision;

const DENY_ON_FAULT = faultDecision('deny');

export class RedisLimiter implements Limiter {
  private readonly runScript: ScriptCall;
  private readonly allowOrDeny: LimitDecision;
  private closed = false;

  constructor(
    /** The ioredis connection (public for diagnostics: tests count its listeners). */
    readonly client: RedisClient,
    private readonly outage: OutageTracker,
    onError: 'allow' | 'deny',
  ) {
    this.allowOrDeny = faultDecision(onError);
    client.defineCommand(COMMAND, { numberOfKeys: 1, lua: LIMIT_SCRIPT });
    const fn = (client as unknown as Record<string, ScriptCall>)[COMMAND];
    this.runScript = fn.bind(client);
    // ioredis emits 'error' for each failed (re)connection attempt: without a listener Node would
    // throw; with one, the outage is logged once by the tracker instead of once per attempt.
    client.on('error', (err: Error) => this.outage.connectionFailed(err));
    client.on('ready', () => this.outage.up());
  }

  /**
   * Resolves true once connected, false after `timeoutMs` (the limiter then keeps trying and
   * decides by onError meanwhile). `serve` awaits it before listening, so the first requests are
   * counted instead of being decided by onError while the connection is still being set up.
   */
  ready(timeoutMs: number): Promise<boolean> {
    if (this.client.status === 'ready') return Promise.resolve(true);
    return new Promise((resolve) => {
      const onReady = () => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.client.off('ready', onReady);
        resolve(false);
      }, timeoutMs);
      this.client.once('ready', onReady);
    });
  }

  /** `now` is ignored: the script uses the Redis server's clock, shared by all instances. */
  check(key: BundleKey, _now: number): Promise<LimitDecision> | LimitDecision {
    const rate = effectiveRate(key.rate);
    const quota = effectiveQuota(key.quota);
    if (rate === null && quota === null) return UNLIMITED;
    return this.runScript(REDIS_KEY_PREFIX + key.id, ...scriptArgs(rate, quota)).then(
      (reply) => {
        const decision = decisionFromOutcome(outcomeFromReply(reply), rate, quota);
        if (this.outage.degraded) this.outage.up();
        return decision;
      },
      (err: Error) => {
        this.outage.decisionFailed(err);
        // A policy may ask for deny for its keys whatever the server-wide mode.
        return key.on_limiter_error === 'deny' ? DENY_ON_FAULT : this.allowOrDeny;
      },
    );
  }

  health(): LimiterHealth {
    return this.outage.health();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // quit() waits for replies in flight; disconnect() if Redis is gone (quit would hang).
    if (this.client.status === 'ready') {
      await this.client.quit().catch(() => this.client.disconnect());
    } else {
      this.client.disconnect();
    }
  }
}
