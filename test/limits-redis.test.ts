// The Redis store against a real redis-server (test/helpers/redis.ts): shared counting across
// limiter instances and processes, one round trip per decision, keys that expire on their own,
// and faults (server killed, server paused, server back) decided by onError without a crash.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { Registry } from 'prom-client';
import type { BundleKey, Quota, RateLimit } from '../bundle/types.ts';
import { createLimiter, type Limiter } from '../runtime/limits/index.ts';
import type { RedisLimiter } from '../runtime/limits/redis.ts';
import { waitFor as waitUntil } from './helpers/ops-fixtures.ts';
import { commandCalls, redisCommand, RedisServer, roundTripsBetween } from './helpers/redis.ts';
import { TS_LOADER } from './helpers/cli.ts';

const waitFor = <T>(what: string, check: () => T | Promise<T>, timeoutMs = 20_000) => waitUntil(what, check, timeoutMs, 50);

let keySeq = 0;
/** A fresh key id per test: every test counts from zero on the shared server. */
function key(rate: RateLimit | null, quota: Quota | null = null, id = `k${++keySeq}-${process.pid}`): BundleKey {
  return { id, certificates: [], certificate_match: null, token_sha256: null, policies: [], access_rights: {}, rate, quota, expires: null, is_inactive: false };
}

interface LogLine {
  level: 'warn' | 'info';
  obj: object;
  msg: string;
}
function recordingLogger(lines: LogLine[]) {
  return {
    warn: (obj: object, msg: string) => lines.push({ level: 'warn', obj, msg }),
    info: (obj: object, msg: string) => lines.push({ level: 'info', obj, msg }),
  };
}

/** Waits until the limiter's connection is ready (a fresh client connects asynchronously). */
async function ready(l: Limiter): Promise<void> {
  assert.equal(await l.ready!(20_000), true, 'Redis connection ready');
}

/**
 * Before a fault test with a tight timeout (50 ms): waits for a decision Redis answered in time.
 * On a loaded machine the timeout can fire on a healthy server too; that is not what these
 * tests check, so such early misses are waited out and their log lines forgotten.
 */
async function answeredInTime(l: Limiter, k: BundleKey, lines: LogLine[]): Promise<void> {
  await ready(l);
  await waitFor('a decision answered in time by a healthy Redis', async () => (await l.check(k, Date.now())).allowed && l.health().status === 'ok');
  lines.length = 0;
}

describe('Redis limiter', () => {
  let redis: RedisServer;
  const open: Limiter[] = [];
  function limiter(opts: Parameters<typeof createLimiter>[0] = {}): Limiter {
    const l = createLimiter({ redisUrl: redis.url, redisTimeoutMs: 1000, ...opts });
    open.push(l);
    return l;
  }

  before(async () => {
    redis = await RedisServer.start();
  });
  after(async () => {
    for (const l of open) await l.close();
    await redis?.close();
  });

  test('rate 5 per 60 s: exactly 5 pass, then limit.rate with Retry-After', async () => {
    const l = limiter();
    await ready(l);
    const k = key({ rate: 5, per: 60 });
    for (let i = 0; i < 5; i++) {
      const d = await l.check(k, Date.now());
      assert.equal(d.allowed, true, `request ${i + 1}`);
      assert.equal(d.headers['X-RateLimit-Remaining'], String(4 - i));
      assert.equal(d.headers['X-RateLimit-Limit'], '5');
    }
    const d = await l.check(k, Date.now());
    assert.equal(d.allowed, false);
    assert.equal(d.code, 'limit.rate');
    const retryAfter = Number(d.headers['Retry-After']);
    assert.ok(retryAfter >= 1 && retryAfter <= 12, `Retry-After ${retryAfter}`); // credit returns every 12 s
    assert.deepEqual(l.health(), { status: 'ok' });
  });

  test('quota 10: the 11th is limit.quota; after renewal requests pass again', async () => {
    const l = limiter();
    await ready(l);
    const id = `quota-${process.pid}`;
    const hourly = key(null, { max: 10, renewal: 3600 }, id);
    for (let i = 0; i < 10; i++) assert.equal((await l.check(hourly, Date.now())).allowed, true, `request ${i + 1}`);
    const denied = await l.check(hourly, Date.now());
    assert.equal(denied.code, 'limit.quota');
    assert.equal(denied.headers['X-RateLimit-Remaining'], '0');
    assert.equal(denied.headers['Retry-After'], undefined);
    // Renewal is on the Redis clock, so rather than wait an hour the period is shortened to 1 s
    // (a reload would do the same): the running period now ends within 1 s, then renews.
    const everySecond = key(null, { max: 10, renewal: 1 }, id);
    assert.equal((await l.check(everySecond, Date.now())).code, 'limit.quota', 'still the same period');
    const renewed = await waitFor(
      'the quota to renew',
      async () => {
        const d = await l.check(everySecond, Date.now());
        return d.allowed ? d : null;
      },
      15_000,
    );
    assert.equal(renewed.headers['X-RateLimit-Remaining'], '9');
  });

  test('keys expire on their own once their window and quota period are over', async () => {
    const l = limiter();
    await ready(l);
    const k = key({ rate: 5, per: 60 }, { max: 100, renewal: 3600 });
    await l.check(k, Date.now());
    const pttl = Number((await redisCommand(redis.port, `PTTL mtlsgate:limit:${k.id}`)).slice(1));
    assert.ok(pttl > 3_590_000 && pttl <= 3_600_001, `PTTL ${pttl}`);
    const rateOnly = key({ rate: 5, per: 60 });
    await l.check(rateOnly, Date.now());
    const ttl2 = Number((await redisCommand(redis.port, `PTTL mtlsgate:limit:${rateOnly.id}`)).slice(1));
    assert.ok(ttl2 > 0 && ttl2 <= 12_001, `PTTL ${ttl2}: one request of 5/60 s is 12 s of debt`);
  });

  test('one round trip per decision (EVALSHA), counted from the server side', async () => {
    const l = limiter();
    await ready(l);
    const k = key({ rate: 1000, per: 1 }, { max: 100_000, renewal: 60 });
    await l.check(k, Date.now()); // loads the script (EVALSHA -> NOSCRIPT -> EVAL) at most once
    const before = await commandCalls(redis.port);
    const n = 200;
    for (let i = 0; i < n; i++) await l.check(k, Date.now());
    const afterCalls = await commandCalls(redis.port);
    assert.equal(roundTripsBetween(before, afterCalls), n);
    assert.equal((afterCalls.get('evalsha') ?? 0) - (before.get('evalsha') ?? 0), n, 'the script is sent by its hash');
  });

  test('two limiters on one server share a quota of 100: exactly 100 pass', async () => {
    const a = limiter();
    const b = limiter();
    await Promise.all([ready(a), ready(b)]);
    const k = key({ rate: 100_000, per: 1 }, { max: 100, renewal: 3600 });
    const decisions = await Promise.all(Array.from({ length: 300 }, (_, i) => (i % 2 === 0 ? a : b).check(k, Date.now())));
    assert.equal(decisions.filter((d) => d.allowed).length, 100);
    assert.ok(decisions.filter((d) => !d.allowed).every((d) => d.code === 'limit.quota'));
  });

  test('two processes on one server share a quota of 100: exactly 100 pass', async () => {
    const k = key(null, { max: 100, renewal: 3600 });
    const worker = fileURLToPath(new URL('./helpers/limits-worker.ts', import.meta.url));
    const run = () =>
      new Promise<number>((resolve, reject) => {
        const child = spawn(process.execPath, ['--import', TS_LOADER, worker, redis.url, k.id, '100', '120'], { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        let err = '';
        child.stdout.on('data', (d) => (out += d));
        child.stderr.on('data', (d) => (err += d));
        child.on('error', reject);
        child.on('exit', (code) => (code === 0 ? resolve(Number(JSON.parse(out).allowed)) : reject(new Error(`worker exited ${code}: ${err}`))));
      });
    const [x, y] = await Promise.all([run(), run()]);
    assert.equal(x + y, 100, `process 1 got ${x}, process 2 got ${y}`);
  });

  test('changed limits for the same key id apply on the next request, counts kept', async () => {
    const l = limiter();
    await ready(l);
    const id = `reload-${process.pid}`;
    for (let i = 0; i < 5; i++) assert.equal((await l.check(key({ rate: 5, per: 60 }, null, id), Date.now())).allowed, true);
    assert.equal((await l.check(key({ rate: 5, per: 60 }, null, id), Date.now())).code, 'limit.rate');
    for (let i = 0; i < 5; i++) assert.equal((await l.check(key({ rate: 10, per: 60 }, null, id), Date.now())).allowed, true, `raised ${i}`);
    assert.equal((await l.check(key({ rate: 10, per: 60 }, null, id), Date.now())).code, 'limit.rate');
    assert.equal((await l.check(key({ rate: 2, per: 60 }, null, id), Date.now())).code, 'limit.rate');
  });
});

describe('Redis faults', () => {
  test('server killed mid-run: onError decides, one log line per outage, metrics, degraded health, no leak; restarted: shared counting resumes', async () => {
    const redis = await RedisServer.start();
    const lines: LogLine[] = [];
    const registry = new Registry();
    const allow = createLimiter({ redisUrl: redis.url, redisTimeoutMs: 200, registry, logger: recordingLogger(lines) });
    const deny = createLimiter({ redisUrl: redis.url, redisTimeoutMs: 200, onError: 'deny' });
    try {
      await Promise.all([ready(allow), ready(deny)]);
      const k = key({ rate: 100_000, per: 1 }, { max: 1_000_000, renewal: 3600 });
      assert.equal((await allow.check(k, Date.now())).allowed, true);
      assert.equal((await registry.getSingleMetricAsString('mtlsgate_limiter_degraded')).trim().split('\n').pop(), 'mtlsgate_limiter_degraded 0');

      await redis.stop();
      await waitFor('the client to notice the outage', () => (allow as RedisLimiter).client.status !== 'ready');
      const client = (allow as RedisLimiter).client;
      const listenerCounts = () =>
        client
          .eventNames()
          .map((e) => `${String(e)}=${client.listenerCount(e)}`)
          .join(',');
      const processListeners = () =>
        process
          .eventNames()
          .map((e) => `${String(e)}=${process.listenerCount(e)}`)
          .join(',');
      const baseline = { client: listenerCounts(), process: processListeners() };

      for (let round = 0; round < 5; round++) {
        const ds = await Promise.all(Array.from({ length: 200 }, () => allow.check(k, Date.now())));
        for (const d of ds) assert.deepEqual(d, { allowed: true, headers: {} });
        const denied = await Promise.all(Array.from({ length: 50 }, () => deny.check(k, Date.now())));
        for (const d of denied) {
          assert.equal(d.allowed, false);
          assert.equal(d.code, 'limit.rate');
          assert.equal(d.headers['Retry-After'], '1');
        }
      }
      assert.equal(listenerCounts(), baseline.client, 'no listener piles up on the Redis client');
      assert.equal(processListeners(), baseline.process, 'no listener piles up on process');

      const health = allow.health();
      assert.equal(health.status, 'degraded');
      assert.match(health.detail ?? '', /Redis redis:\/\/127\.0\.0\.1:\d+ unavailable since .* on-limiter-error=allow/);
      assert.equal(deny.health().status, 'degraded');
      const warns = lines.filter((l) => l.level === 'warn');
      assert.equal(warns.length, 1, `one warning per outage, got ${JSON.stringify(lines)}`);
      assert.match(warns[0].msg, /Redis unavailable/);
      const errors = await registry.getSingleMetric('mtlsgate_limiter_errors_total')!.get();
      const counted = errors.values.reduce((sum, v) => sum + v.value, 0);
      assert.equal(counted, 1000, 'each decision made without Redis is counted');
      assert.match(await registry.metrics(), /mtlsgate_limiter_degraded 1/);

      await redis.start();
      await waitFor('shared counting to resume', async () => Object.keys((await allow.check(k, Date.now())).headers).length > 0);
      await ready(deny);
      assert.deepEqual(allow.health(), { status: 'ok' });
      assert.equal(lines.filter((l) => l.level === 'warn').length, 1);
      assert.equal(lines.filter((l) => l.level === 'info' && /back/.test(l.msg)).length, 1);
      assert.match(await registry.metrics(), /mtlsgate_limiter_degraded 0/);
      // Shared again: a quota of 7 spread over both limiters admits exactly 7.
      const shared = key(null, { max: 7, renewal: 3600 });
      const ds = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? allow : deny).check(shared, Date.now())));
      assert.equal(ds.filter((d) => d.allowed).length, 7);
    } finally {
      await allow.close();
      await deny.close();
      await redis.close();
    }
  });

  test('a server slower than redisTimeoutMs (CLIENT PAUSE) is a fault too, and recovers by itself', async () => {
    const redis = await RedisServer.start();
    const lines: LogLine[] = [];
    const l = createLimiter({ redisUrl: redis.url, redisTimeoutMs: 50, onError: 'deny', logger: recordingLogger(lines) });
    try {
      const k = key({ rate: 100_000, per: 1 });
      await answeredInTime(l, k, lines);
      // The pause ends PAUSE_MS after Redis took the command, so at least PAUSE_MS after it was sent.
      const PAUSE_MS = 6_000;
      const pauseSentAt = Date.now();
      await redisCommand(redis.port, `CLIENT PAUSE ${PAUSE_MS} ALL`);
      const d = await l.check(k, Date.now());
      const decidedAfter = Date.now() - pauseSentAt;
      // Decided by the timeout, not by Redis: an answer from Redis would have admitted the request
      // (rate 100,000/s), and it could only have come once the pause ended.
      assert.equal(d.allowed, false, 'onError=deny while Redis does not answer');
      assert.equal(d.code, 'limit.rate');
      assert.ok(decidedAfter < PAUSE_MS, `decided ${decidedAfter} ms after the pause began: by the end of the pause, not by the timeout`);
      assert.equal(l.health().status, 'degraded');
      assert.match(JSON.stringify(lines[0]?.obj ?? {}), /timeout/);
      await waitFor('Redis to answer again', async () => (await l.check(k, Date.now())).allowed);
      assert.equal(l.health().status, 'ok');
      assert.equal(lines.filter((x) => x.level === 'warn').length, 1);
    } finally {
      await l.close();
      await redis.close();
    }
  });

  test('a hung server (SIGSTOP): decisions wait at most the timeout, nothing piles up, counting resumes after SIGCONT', async () => {
    const redis = await RedisServer.start();
    const lines: LogLine[] = [];
    const l = createLimiter({ redisUrl: redis.url, redisTimeoutMs: 50, onError: 'deny', logger: recordingLogger(lines) });
    try {
      const client = (l as RedisLimiter).client;
      const k = key({ rate: 100_000, per: 1 });
      await answeredInTime(l, k, lines);
      const listeners = () =>
        [client, process]
          .map((e) =>
            e
              .eventNames()
              .map((n) => `${String(n)}=${e.listenerCount(n)}`)
              .join(','),
          )
          .join(' | ');
      const baseline = listeners();
      redis.freeze();
      let slowest = 0;
      // ~3 s of traffic: long enough for the dead socket to be dropped (socketTimeout, 1 s here)
      // and reconnection attempts to time out against the frozen server.
      const until = Date.now() + 3000;
      while (Date.now() < until) {
        const started = Date.now();
        const ds = await Promise.all(Array.from({ length: 20 }, () => l.check(k, Date.now())));
        slowest = Math.max(slowest, Date.now() - started);
        for (const d of ds) assert.equal(d.code, 'limit.rate');
      }
      // 1,000 ms is the socket timeout redis-connection.ts sets for a 50 ms decision timeout
      // (20 times it, at least 1 s): no decision waits for the frozen socket to be dropped.
      assert.ok(slowest < 1000, `a round of decisions took ${slowest} ms; each must end at the 50 ms timeout`);
      assert.equal(l.health().status, 'degraded');
      assert.equal(listeners(), baseline, 'no listener piles up on the client or process');
      assert.equal(lines.filter((x) => x.level === 'warn').length, 1);
      redis.thaw();
      await waitFor('Redis to answer again', async () => (await l.check(k, Date.now())).allowed);
      assert.equal(l.health().status, 'ok');
    } finally {
      await l.close();
      await redis.close();
    }
  });

  test('Redis unreachable from the start: requests follow onError, close() does not hang', async () => {
    const redis = await RedisServer.start();
    const url = redis.url;
    await redis.close(); // nothing listens on that port now
    const lines: LogLine[] = [];
    const l = createLimiter({ redisUrl: url, redisTimeoutMs: 50, logger: recordingLogger(lines) });
    try {
      const k = key({ rate: 1, per: 60 });
      for (let i = 0; i < 20; i++) assert.deepEqual(await l.check(k, Date.now()), { allowed: true, headers: {} });
      await waitFor('degraded health', () => l.health().status === 'degraded');
      assert.equal(lines.filter((x) => x.level === 'warn').length, 1);
    } finally {
      await l.close();
    }
  });
});
