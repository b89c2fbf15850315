// The limiter's semantics, through the Limiter interface, on the in-process store with a
// synthetic clock (the `now` argument), so every boundary is exact and no test sleeps.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { BundleKey, Quota, RateLimit } from '../bundle/types.ts';
import { createLimiter } from '../runtime/limits/index.ts';
import type { LimitDecision } from '../runtime/limits/limiter.ts';
import { MemoryLimiter } from '../runtime/limits/memory.ts';
import { keyWithDefaults } from './helpers/bundle-builder.ts';

function key(id: string, rate: RateLimit | null, quota: Quota | null = null): BundleKey {
  return keyWithDefaults(id, { token_sha256: 'ab'.repeat(32), rate, quota });
}

const T0 = Date.parse('2026-11-29T03:00:00.000Z');
const limiters: MemoryLimiter[] = [];
function memory(opts: ConstructorParameters<typeof MemoryLimiter>[0] = {}): MemoryLimiter {
  const l = new MemoryLimiter(opts);
  limiters.push(l);
  return l;
}
after(async () => {
  for (const l of limiters) await l.close();
});

function sync(d: LimitDecision | Promise<LimitDecision>): LimitDecision {
  assert.ok(!(d instanceof Promise), 'the in-process store answers synchronously');
  return d as LimitDecision;
}

describe('in-process limiter', () => {
  test('createLimiter without a Redis URL is the synchronous in-process store', async () => {
    const l = createLimiter({});
    try {
      assert.ok(l instanceof MemoryLimiter);
      assert.deepEqual(l.health(), { status: 'ok' });
      const d = l.check(key('k', { rate: 1, per: 1 }), T0);
      assert.equal(typeof (d as { then?: unknown }).then, 'undefined');
    } finally {
      await l.close();
    }
  });

  test('rate 5 per 1 s: exactly 5 pass, then 429-style denials with Retry-After; one more after 200 ms', () => {
    const l = memory();
    const k = key('alice', { rate: 5, per: 1 });
    for (let i = 0; i < 5; i++) {
      const d = sync(l.check(k, T0));
      assert.equal(d.allowed, true, `request ${i + 1}`);
      assert.deepEqual(d.headers, { 'X-RateLimit-Limit': '5', 'X-RateLimit-Remaining': String(4 - i), 'X-RateLimit-Reset': '1' });
    }
    for (let i = 0; i < 3; i++) {
      const d = sync(l.check(k, T0 + 10));
      assert.equal(d.allowed, false);
      assert.equal(d.code, 'limit.rate');
      assert.equal(d.headers['Retry-After'], '1');
      assert.equal(d.headers['X-RateLimit-Remaining'], '0');
    }
    // One request's worth of credit comes back every per/rate = 200 ms.
    assert.equal(sync(l.check(k, T0 + 199)).allowed, false);
    assert.equal(sync(l.check(k, T0 + 200)).allowed, true);
    assert.equal(sync(l.check(k, T0 + 201)).allowed, false);
  });

  test('Retry-After is the wait until the next request conforms, rounded up', () => {
    const l = memory();
    const k = key('slow', { rate: 2, per: 60 }); // one request every 30 s, burst 2
    assert.equal(sync(l.check(k, T0)).allowed, true);
    assert.equal(sync(l.check(k, T0)).allowed, true);
    const d = sync(l.check(k, T0 + 4_500));
    assert.equal(d.code, 'limit.rate');
    assert.equal(d.headers['Retry-After'], '26'); // 30 s - 4.5 s = 25.5 s -> 26
    assert.equal(d.headers['X-RateLimit-Reset'], '56'); // burst fully back at T0 + 60 s
    assert.equal(sync(l.check(k, T0 + 30_000)).allowed, true);
  });

  test('quota 10: the 11th request is limit.quota, and after renewal requests pass again', () => {
    const l = memory();
    const k = key('bob', null, { max: 10, renewal: 3600 });
    for (let i = 0; i < 10; i++) {
      const d = sync(l.check(k, T0 + i * 1000));
      assert.equal(d.allowed, true, `request ${i + 1}`);
      assert.equal(d.headers['X-RateLimit-Limit'], '10');
      assert.equal(d.headers['X-RateLimit-Remaining'], String(9 - i));
    }
    const denied = sync(l.check(k, T0 + 60_000));
    assert.equal(denied.allowed, false);
    assert.equal(denied.code, 'limit.quota');
    assert.equal(denied.headers['Retry-After'], undefined, 'Retry-After belongs to 429 only');
    assert.equal(denied.headers['X-RateLimit-Reset'], String(3600 - 60));
    // The period started with the first request and lasts renewal seconds.
    assert.equal(sync(l.check(k, T0 + 3_599_999)).code, 'limit.quota');
    const renewed = sync(l.check(k, T0 + 3_600_000));
    assert.equal(renewed.allowed, true);
    assert.equal(renewed.headers['X-RateLimit-Remaining'], '9');
  });

  test('quota 0 denies every request; -1 (unlimited) never does', () => {
    const l = memory();
    assert.equal(sync(l.check(key('zero', null, { max: 0, renewal: 60 }), T0)).code, 'limit.quota');
    const unlimited = key('free', null, { max: -1, renewal: 60 });
    for (let i = 0; i < 50; i++) assert.deepEqual(sync(l.check(unlimited, T0)), { allowed: true, headers: {} });
  });

  test('a denied request consumes neither limit; headers report the limit closest to denying', () => {
    const l = memory();
    const k = key('both', { rate: 2, per: 1 }, { max: 3, renewal: 60 });
    let d = sync(l.check(k, T0));
    assert.deepEqual(d.headers, { 'X-RateLimit-Limit': '2', 'X-RateLimit-Remaining': '1', 'X-RateLimit-Reset': '1' });
    d = sync(l.check(k, T0));
    assert.equal(d.headers['X-RateLimit-Limit'], '2');
    assert.equal(d.headers['X-RateLimit-Remaining'], '0');
    for (let i = 0; i < 5; i++) assert.equal(sync(l.check(k, T0 + 1)).code, 'limit.rate');
    // The rate denials did not use the quota: one quota request is left.
    d = sync(l.check(k, T0 + 1000));
    assert.equal(d.allowed, true);
    assert.deepEqual(d.headers, { 'X-RateLimit-Limit': '3', 'X-RateLimit-Remaining': '0', 'X-RateLimit-Reset': '59' });
    // Over quota: the quota is reported even though the rate would also deny.
    assert.equal(sync(l.check(k, T0 + 1000)).code, 'limit.quota');
    assert.equal(sync(l.check(k, T0 + 30_000)).code, 'limit.quota');
  });

  test('window edge: a burst straddling a second boundary gets `rate`, not 2 x rate', () => {
    const l = memory();
    const k = key('edge', { rate: 5, per: 1 });
    let admitted = 0;
    for (let i = 0; i < 5; i++) admitted += sync(l.check(k, T0 + 999)).allowed ? 1 : 0; // end of one "window"
    for (let i = 0; i < 5; i++) admitted += sync(l.check(k, T0 + 1000)).allowed ? 1 : 0; // start of the next
    assert.equal(admitted, 5);
  });

  test('documented bound: over any interval of length L at most rate + floor(L * rate / per) pass', () => {
    const l = memory();
    const rate = 10;
    const perMs = 1000;
    const k = key('flood', { rate, per: perMs / 1000 });
    // A client hammering every millisecond for 5 s, after having been idle (full burst).
    const admittedAt: number[] = [];
    for (let t = 0; t < 5000; t++) if (sync(l.check(k, T0 + t)).allowed) admittedAt.push(t);
    // Sustained: exactly rate per per, plus the initial burst.
    assert.equal(admittedAt.length, rate + Math.floor(4999 / (perMs / rate)));
    for (const L of [0, 1, 50, 99, 100, 250, 999, 1000, 2500]) {
      const bound = rate + Math.floor((L * rate) / perMs);
      let worst = 0;
      for (let i = 0, j = 0; i < admittedAt.length; i++) {
        while (admittedAt[j] < admittedAt[i] - L) j++;
        worst = Math.max(worst, i - j + 1);
      }
      assert.ok(worst <= bound, `L=${L}: ${worst} admitted in one interval, bound ${bound}`);
    }
  });

  test('fractional intervals (rate 3 per 1 s) admit exactly the burst despite float arithmetic', () => {
    const l = memory();
    for (let n = 0; n < 50; n++) {
      const k = key(`third-${n}`, { rate: 3, per: 1 });
      const now = T0 + n * 7919.123;
      const admitted = [0, 1, 2, 3, 4].filter(() => sync(l.check(k, now)).allowed).length;
      assert.equal(admitted, 3);
    }
  });

  test('changed limits for the same key id apply on the next request, without a reset', () => {
    const l = memory();
    const id = 'carol';
    for (let i = 0; i < 5; i++) assert.equal(sync(l.check(key(id, { rate: 5, per: 1 }), T0)).allowed, true);
    assert.equal(sync(l.check(key(id, { rate: 5, per: 1 }), T0)).code, 'limit.rate');
    // Raised to 10/s (a reload): the 5 used still count, 5 more pass.
    for (let i = 0; i < 5; i++) assert.equal(sync(l.check(key(id, { rate: 10, per: 1 }), T0 + 1)).allowed, true, `raised ${i}`);
    assert.equal(sync(l.check(key(id, { rate: 10, per: 1 }), T0 + 1)).code, 'limit.rate');
    // Lowered to 2/s: 10 used is far over, denied.
    assert.equal(sync(l.check(key(id, { rate: 2, per: 1 }), T0 + 2)).code, 'limit.rate');

    const q = 'dave';
    for (let i = 0; i < 10; i++) sync(l.check(key(q, null, { max: 10, renewal: 3600 }), T0));
    assert.equal(sync(l.check(key(q, null, { max: 10, renewal: 3600 }), T0)).code, 'limit.quota');
    // Quota raised: the count carries over.
    assert.equal(sync(l.check(key(q, null, { max: 12, renewal: 3600 }), T0)).allowed, true);
    assert.equal(sync(l.check(key(q, null, { max: 12, renewal: 3600 }), T0)).allowed, true);
    assert.equal(sync(l.check(key(q, null, { max: 12, renewal: 3600 }), T0)).code, 'limit.quota');
    // Renewal shortened to 60 s: the running period ends within 60 s, not 3600.
    const d = sync(l.check(key(q, null, { max: 12, renewal: 60 }), T0 + 1000));
    assert.equal(d.code, 'limit.quota');
    assert.equal(d.headers['X-RateLimit-Reset'], '60');
    assert.equal(sync(l.check(key(q, null, { max: 12, renewal: 60 }), T0 + 61_000)).allowed, true);
  });

  test('idle keys are swept once their window and quota period are over; a hard cap bounds the rest', () => {
    const l = memory({ sweepIntervalMs: 3_600_000 });
    for (let i = 0; i < 1000; i++) sync(l.check(key(`r${i}`, { rate: 5, per: 1 }), T0));
    for (let i = 0; i < 1000; i++) sync(l.check(key(`q${i}`, { rate: 5, per: 1 }, { max: 100, renewal: 60 }), T0));
    assert.equal(l.size, 2000);
    l.sweep(T0 + 199); // every rate state still holds its 200 ms of debt
    assert.equal(l.size, 2000);
    l.sweep(T0 + 200);
    assert.equal(l.size, 1000, 'rate-only keys are gone, keys in a quota period stay');
    l.sweep(T0 + 60_000);
    assert.equal(l.size, 0);
    // A swept key starts fresh, which is what its expired state meant anyway.
    assert.equal(sync(l.check(key('q1', null, { max: 1, renewal: 60 }), T0 + 60_000)).allowed, true);

    const capped = memory({ maxEntries: 100, sweepIntervalMs: 3_600_000 });
    for (let i = 0; i < 10_000; i++) sync(capped.check(key(`c${i}`, null, { max: 5, renewal: 3600 }), T0));
    assert.ok(capped.size <= 100, `size ${capped.size}`);
    // The newest keys are kept with their counts.
    const last = key('c9999', null, { max: 5, renewal: 3600 });
    assert.equal(sync(capped.check(last, T0)).headers['X-RateLimit-Remaining'], '3');
  });

  test('a key without an effective rate or quota is not tracked', () => {
    const l = memory();
    assert.deepEqual(sync(l.check(key('none', null, null), T0)), { allowed: true, headers: {} });
    assert.deepEqual(sync(l.check(key('zero-rate', { rate: 0, per: 1 }, { max: -1, renewal: 0 }), T0)), { allowed: true, headers: {} });
    assert.equal(l.size, 0);
  });
});
