// The lease protocol of `serve --workers N` in one process: the primary's LeaseAuthority and
// several workers' LeaseLimiters joined by a message queue (setImmediate: every message is a
// separate turn, as over the cluster IPC channel). The end-to-end test with real workers and
// curl is workers-cluster.test.ts; this one covers the exactness rules one by one.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { BundleKey, Quota, RateLimit } from '../bundle/types.ts';
import { LeaseAuthority } from '../runtime/cluster/lease-authority.ts';
import { LeaseLimiter } from '../runtime/cluster/lease-limiter.ts';
import { LEASE_IDLE_MS, leaseSize, MAX_LEASE } from '../runtime/cluster/lease-protocol.ts';
import { keyWithDefaults } from './helpers/bundle-builder.ts';
import type { LimitDecision } from '../runtime/limits/limiter.ts';

function keyWith(id: string, rate: RateLimit | null, quota: Quota | null): BundleKey {
  return keyWithDefaults(id, { rate, quota });
}

function cluster(workers: number, now: () => number = Date.now) {
  const limiters: LeaseLimiter[] = [];
  const authority = new LeaseAuthority({
    workers: () => workers,
    now,
    send: (w, m) => setImmediate(() => (m.type === 'mtlsgate:grant' ? limiters[w].onGrant(m) : limiters[w].onRecall(m.key))),
  });
  for (let i = 0; i < workers; i++) {
    limiters.push(
      new LeaseLimiter({
        onError: 'deny',
        send: (m) => setImmediate(() => (m.type === 'mtlsgate:acquire' ? void authority.acquire(i, m) : authority.giveBack(i, m.key, m.lease, m.unused))),
      }),
    );
  }
  return {
    limiters,
    authority,
    close: async () => {
      for (const l of limiters) await l.close();
      authority.stop();
    },
  };
}

/** `n` requests of `key` on limiter `l`, one after another; the decisions. */
async function sequential(l: LeaseLimiter, key: BundleKey, n: number): Promise<LimitDecision[]> {
  const out: LimitDecision[] = [];
  for (let i = 0; i < n; i++) out.push(await l.check(key, Date.now()));
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('leaseSize: at most MAX_LEASE, a 1/(2*workers) share of what is left, at least 1', () => {
  assert.equal(leaseSize(10_000, 2), MAX_LEASE);
  assert.equal(leaseSize(40, 2), 10);
  assert.equal(leaseSize(3, 2), 1);
  assert.equal(leaseSize(1, 8), 1);
});

test('one worker: a quota of 100 admits exactly 100, X-RateLimit-Remaining counts down 99..0, the 101st is limit.quota', async () => {
  const c = cluster(1);
  const key = keyWith('k', null, { max: 100, renewal: 3600 });
  const d = await sequential(c.limiters[0], key, 101);
  assert.equal(d.filter((x) => x.allowed).length, 100);
  assert.deepEqual(
    d.slice(0, 100).map((x) => Number(x.headers['X-RateLimit-Remaining'])),
    Array.from({ length: 100 }, (_, i) => 99 - i),
  );
  assert.equal(d[100].code, 'limit.quota');
  await c.close();
});

test('most decisions are synchronous: a lease answers without a promise', async () => {
  const c = cluster(2);
  const key = keyWith('k', null, { max: 10_000, renewal: 3600 });
  let sync = 0;
  for (let i = 0; i < 256; i++) {
    const d = c.limiters[0].check(key, Date.now());
    if (!(d instanceof Promise)) sync++;
    assert.ok((await d).allowed);
  }
  assert.ok(sync >= 256 - Math.ceil(256 / MAX_LEASE) - 1, `${sync} of 256 synchronous`);
  await c.close();
});

test('three workers interleaved, requests concurrent: a quota of 100 admits exactly 100 of 300', async () => {
  const c = cluster(3);
  const key = keyWith('shared', null, { max: 100, renewal: 3600 });
  const all = await Promise.all(Array.from({ length: 300 }, (_, i) => c.limiters[i % 3].check(key, Date.now())));
  assert.equal(all.filter((x) => x.allowed).length, 100);
  assert.ok(all.filter((x) => !x.allowed).every((x) => x.code === 'limit.quota'));
  await c.close();
});

test('a refused worker recalls the tokens another worker holds: nothing stranded at the end', async () => {
  const c = cluster(2);
  const key = keyWith('recall', null, { max: 10, renewal: 3600 });
  const a = await sequential(c.limiters[0], key, 1); // worker 0 takes a lease of 2 and uses 1
  assert.ok(a[0].allowed);
  const b = await sequential(c.limiters[1], key, 12);
  assert.equal(b.filter((x) => x.allowed).length, 9, 'worker 1 gets every token worker 0 did not use');
  await c.close();
});

test('an idle lease goes back: its unused quota tokens are counted as never spent', async () => {
  const c = cluster(2);
  const key = keyWith('idle', null, { max: 1000, renewal: 3600 });
  assert.ok((await sequential(c.limiters[0], key, 1))[0].allowed); // a lease of 32, 31 unused
  await sleep(LEASE_IDLE_MS * 3);
  const b = await sequential(c.limiters[1], key, 1000);
  assert.equal(b.filter((x) => x.allowed).length, 999);
  await c.close();
});

test('rate (GCRA): returned tokens are replayed out, so a rate of 10 an hour admits exactly 10 across workers', async () => {
  const c = cluster(2);
  const key = keyWith('rate', { rate: 10, per: 3600 }, null);
  assert.ok((await sequential(c.limiters[0], key, 1))[0].allowed); // a lease of 2 (10 left / 4), 1 unused
  await sleep(LEASE_IDLE_MS * 3);
  const b = await sequential(c.limiters[1], key, 12);
  assert.equal(b.filter((x) => x.allowed).length, 9);
  assert.equal(b[9].code, 'limit.rate');
  assert.ok(Number(b[9].headers['Retry-After']) > 0);
  await c.close();
});

test('a lease belongs to its quota period: tokens returned in the next period do not credit it', async () => {
  let clock = 1_000_000;
  const c = cluster(2, () => clock);
  const key = keyWith('period', null, { max: 40, renewal: 10 });
  assert.ok((await c.limiters[0].check(key, clock)).allowed); // worker 0: a lease of 10, 9 unused
  clock += 11_000; // the period is over
  const first = [];
  for (let i = 0; i < 5; i++) first.push(await c.limiters[1].check(key, clock));
  await sleep(LEASE_IDLE_MS * 3); // worker 0's stale lease (9 tokens of the old period) goes back
  const rest = [];
  for (let i = 0; i < 50; i++) rest.push(await c.limiters[1].check(key, clock));
  const admitted = [...first, ...rest].filter((x) => x.allowed).length;
  assert.equal(admitted, 40, "the new period admits its 40, the old period's 9 unused tokens add nothing");
  await c.close();
});

test('rate (GCRA): a return after time absorbed the lease credits nothing (replay, not subtraction)', async () => {
  let clock = 2_000_000;
  const c = cluster(2, () => clock);
  const key = keyWith('absorbed', { rate: 10, per: 10 }, null); // one request a second, burst 10
  assert.ok((await c.limiters[0].check(key, clock)).allowed); // worker 0: a lease of 2, 1 unused
  clock += 5_000; // the bucket is full again: the unused token's debt is gone already
  const got = [await c.limiters[1].check(key, clock)];
  await sleep(LEASE_IDLE_MS * 3); // worker 0's unused token goes back now
  for (let i = 0; i < 12; i++) got.push(await c.limiters[1].check(key, clock));
  assert.equal(got.filter((x) => x.allowed).length, 10, 'a full burst of 10, not 11');
  await c.close();
});
