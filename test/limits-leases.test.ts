// The lease protocol of `serve --workers N` in one process: the primary's LeaseAuthority and
// several workers' LeaseLimiters joined by a message queue (setImmediate: every message is a
// separate turn, as over the cluster IPC channel). The end-to-end test with real workers and
// curl is workers-cluster.test.ts; this one covers the exactness rules one by one.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { BundleKey, Quota, RateLimit } from '../bundle/types.ts';
import { LeaseAuthority } from '../runtime/cluster/lease-authority.ts';
import { LeaseLimiter } from '../runtime/cluster/lease-limiter.ts';
import { INITIAL_LEASE, LEASE_IDLE_MS, LEASE_TARGET_MS, leaseSize, MAX_LEASE, nextWant } from '../runtime/cluster/lease-protocol.ts';
import { keyWithDefaults } from './helpers/bundle-builder.ts';
import type { LimitDecision } from '../runtime/limits/limiter.ts';

function keyWith(id: string, rate: RateLimit | null, quota: Quota | null): BundleKey {
  return keyWithDefaults(id, { rate, quota });
}

function cluster(workers: number, now: () => number = Date.now) {
  const limiters: LeaseLimiter[] = [];
  /** Per worker: every grant's size, and the unused tokens it gave back. */
  const grants: number[][] = Array.from({ length: workers }, () => []);
  const returned: number[] = Array.from({ length: workers }, () => 0);
  /** A dead worker's messages are lost both ways, as its IPC channel is. */
  const dead = new Set<number>();
  const authority = new LeaseAuthority({
    workers: () => workers - dead.size,
    now,
    send: (w, m) =>
      setImmediate(() => {
        if (dead.has(w)) return;
        if (m.type === 'mtlsgate:grant') {
          grants[w].push(m.granted);
          limiters[w].onGrant(m);
        } else limiters[w].onRecall(m.key);
      }),
  });
  for (let i = 0; i < workers; i++) {
    limiters.push(
      new LeaseLimiter({
        onError: 'deny',
        now,
        send: (m) =>
          setImmediate(() => {
            if (dead.has(i)) return;
            const closes = m.closes;
            for (let j = 1; j < closes.length; j += 2) returned[i] += closes[j];
            if (m.type === 'mtlsgate:acquire') void authority.acquire(i, m);
            else authority.giveBack(i, m.key, closes);
          }),
      }),
    );
  }
  return {
    limiters,
    authority,
    grants,
    returned,
    /** Worker `w` dies: nothing it holds goes back (the primary is told by the exit event). */
    kill(w: number) {
      dead.add(w);
      authority.workerGone(w);
    },
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

test('leaseSize: at most what the worker wants and MAX_LEASE, a 1/(2*workers) share of what is left, at least 1', () => {
  assert.equal(leaseSize(10_000, 2, INITIAL_LEASE), INITIAL_LEASE);
  assert.equal(leaseSize(10_000, 2, 600), 600);
  assert.equal(leaseSize(1e12, 2, 1e9), MAX_LEASE);
  assert.equal(leaseSize(10_000, 2, 1e9), 2_500);
  assert.equal(leaseSize(40, 2, MAX_LEASE), 10);
  assert.equal(leaseSize(3, 2, MAX_LEASE), 1);
  assert.equal(leaseSize(1, 8, MAX_LEASE), 1);
});

test('nextWant: LEASE_TARGET_MS of spending at the pace seen, at most doubling, between INITIAL_LEASE and MAX_LEASE', () => {
  assert.equal(nextWant(32, 16, 1), 64, 'spent fast: doubles');
  assert.equal(nextWant(2_048, 1_024, 1), MAX_LEASE);
  assert.equal(nextWant(MAX_LEASE, 2_048, 1), MAX_LEASE);
  assert.equal(nextWant(1_000, 500, LEASE_TARGET_MS), 500, 'half spent in LEASE_TARGET_MS: half the size');
  assert.equal(nextWant(1_000, 5, 1_000), INITIAL_LEASE, 'slow: back to the initial size');
  assert.equal(nextWant(32, 16, 0), 64);
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
  assert.ok(sync >= 256 - Math.ceil(256 / INITIAL_LEASE) - 1, `${sync} of 256 synchronous`);
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

/** Metric `name`'s samples on limiter `l`, by its `type` label (or '' without labels). */
async function counts(l: LeaseLimiter, name: string): Promise<Record<string, number>> {
  const metric = (await l.registry.getMetricsAsJSON()).find((m) => m.name === name);
  const out: Record<string, number> = {};
  for (const v of (metric?.values ?? []) as Array<{ value: number; labels: Record<string, string | number> }>) out[String(v.labels.type ?? '')] = v.value;
  return out;
}

/**
 * Every worker sends `perTurn` requests of `key` per event-loop turn (the messages travel one
 * turn each way, as over IPC) until it has sent `each`; the decisions, and how many of them
 * were promises (requests that waited for the primary).
 */
async function busy(limiters: LeaseLimiter[], key: BundleKey, each: number, perTurn: number, now: () => number = Date.now) {
  const pending: Array<LimitDecision | Promise<LimitDecision>> = [];
  let waited = 0;
  for (let sent = 0; sent < each; sent += perTurn) {
    for (const l of limiters)
      for (let i = 0; i < perTurn && sent + i < each; i++) {
        const d = l.check(key, now());
        if (d instanceof Promise) waited++;
        pending.push(d);
      }
    await new Promise((r) => setImmediate(r));
  }
  return { decisions: await Promise.all(pending), waited };
}

test('far from the limit, leases grow geometrically with the pace and are fetched before they run out: no request waits once leases are held', async () => {
  const c = cluster(2);
  const key = keyWith('busy', { rate: 1_000_000_000, per: 1 }, { max: 1e12, renewal: 3600 });
  const start = await busy(c.limiters, key, 64, 4); // the first requests wait for the first leases
  assert.ok(start.waited > 0);
  const { decisions, waited } = await busy(c.limiters, key, 40_000, 4);
  assert.ok([...start.decisions, ...decisions].every((d) => d.allowed));
  assert.equal(waited, 0, 'no request waits for the primary once a worker holds a lease');
  for (const [w, sizes] of c.grants.entries()) {
    assert.equal(sizes[0], INITIAL_LEASE);
    for (let i = 1; i < sizes.length; i++) assert.ok(sizes[i] <= 2 * sizes[i - 1], `worker ${w}: ${sizes.join(',')} grows at most 2x a step`);
    assert.equal(Math.max(...sizes), MAX_LEASE, `worker ${w}: ${sizes.join(',')} reaches MAX_LEASE`);
  }
  const m = await counts(c.limiters[0], 'mtlsgate_lease_messages_total');
  assert.equal(m.acquire, 1, 'one acquire, then only prefetches');
  assert.ok(
    m.prefetch + m.acquire <= 20,
    `${JSON.stringify(m)}: ~${MAX_LEASE} tokens a round trip (40,000 requests, ${40_000 / INITIAL_LEASE} round trips with fixed leases)`,
  );
  assert.equal(m.grant, m.prefetch + m.acquire);
  const waits = (await counts(c.limiters[0], 'mtlsgate_lease_waits_total'))[''] + (await counts(c.limiters[1], 'mtlsgate_lease_waits_total'))[''];
  assert.equal(waits, start.waited);
  await c.close();
  await new Promise((r) => setImmediate(r)); // the returns arrive
  assert.equal(c.authority.outstanding('busy'), 0, 'every lease closed by the shutdown');
});

test('large leases stay exact at the limit boundary: a quota of 20,000 across 3 busy workers admits exactly 20,000', async () => {
  const c = cluster(3);
  const key = keyWith('edge', null, { max: 20_000, renewal: 3600 });
  const { decisions } = await busy(c.limiters, key, 9_000, 8);
  assert.equal(decisions.filter((d) => d.allowed).length, 20_000);
  assert.ok(decisions.filter((d) => !d.allowed).every((d) => d.code === 'limit.quota'));
  assert.ok(Math.max(...c.grants.flat()) >= 1_024, `grants reached ${Math.max(...c.grants.flat())} tokens`);
  assert.equal(Math.min(...c.grants.flat().filter((g) => g > 0)), 1, 'and shrank to single tokens at the end');
  await c.close();
});

test('large leases stay exact for a rate: 30,000 an hour across 2 busy workers (clock stopped) admits exactly 30,000', async () => {
  const clock = 5_000_000;
  const c = cluster(2, () => clock);
  const key = keyWith('rate-edge', { rate: 30_000, per: 3600 }, null);
  const { decisions } = await busy(c.limiters, key, 17_000, 8, () => clock);
  assert.equal(decisions.filter((d) => d.allowed).length, 30_000);
  assert.ok(decisions.filter((d) => !d.allowed).every((d) => d.code === 'limit.rate'));
  assert.ok(Math.max(...c.grants.flat()) >= 1_024);
  await c.close();
});

test('a worker dying with a large lease: its unspent tokens count as spent (the quota admits fewer, never more), at most two leases of MAX_LEASE', async () => {
  const c = cluster(2);
  const key = keyWith('crash', null, { max: 100_000, renewal: 3600 });
  const first = await busy([c.limiters[0]], key, 30_000, 4);
  const admitted0 = first.decisions.filter((d) => d.allowed).length;
  assert.equal(admitted0, 30_000);
  const granted0 = c.grants[0].reduce((a, b) => a + b, 0) - c.returned[0];
  const stranded = granted0 - admitted0;
  assert.ok(stranded > INITIAL_LEASE && stranded <= 2 * MAX_LEASE, `worker 0 holds ${stranded} tokens when it dies`);
  assert.equal(c.authority.outstanding('crash', 0) >= stranded, true);
  c.kill(0);
  assert.equal(c.authority.outstanding('crash', 0), 0);
  const rest = await busy([c.limiters[1]], key, 80_000, 8);
  const admitted1 = rest.decisions.filter((d) => d.allowed).length;
  assert.equal(admitted1, 100_000 - granted0, "worker 1 gets everything worker 0 was not granted, nothing of the dead worker's tokens");
  assert.equal(admitted0 + admitted1, 100_000 - stranded);
  await c.limiters[1].close();
  c.authority.stop();
});
