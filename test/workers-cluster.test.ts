// `mtlsgate serve --workers 2` as users run it (dist/mtlsgate.mjs, node:cluster), one gateway
// shared by the tests below: two gateway workers sharing one quota of 100 and one rate limit,
// decided by the primary's counters through leases (no Redis), real curl with --cert/--key over a
// new connection per request so both workers serve; /health and /metrics over every worker;
// the workers' lines on the shared stdout; a bundle reload and SIGHUP reaching every worker;
// SIGTERM draining every worker. Gateways of their own: test/workers-cluster-faults.test.ts.
import assert from 'node:assert/strict';
import { request } from 'node:https';
import { test } from 'node:test';
import { curl, type spawnServe, demoClientAgent } from './helpers/serve-fixtures.ts';
import { waitFor } from './helpers/ops-fixtures.ts';
import { sample, workersFixture } from './helpers/workers-cluster.ts';

const cluster = workersFixture('workers');
const { arrived, writeBundle, serveWorkers, curlMany } = cluster;

let s: ReturnType<typeof spawnServe>;
let base = '';
let admin = '';

test('--workers 2 starts two workers behind one listener and one admin listener', async () => {
  s = serveWorkers();
  const serving = await s.serving();
  assert.equal(serving.workers, 2);
  assert.equal((serving.pids as number[]).length, 2);
  assert.equal(serving.limiter, 'primary-leases');
  // A worker's logger carries its id; its start-up line once added it again: "worker" twice in one object.
  const started = s
    .output()
    .stdout.split('\n')
    .filter((l) => l.includes('"msg":"worker serving"'));
  assert.equal(started.length, 2);
  for (const l of started) assert.equal(l.match(/"worker":/g)?.length, 1, l);
  base = `https://${serving.listen}`;
  admin = `http://${serving.admin}`;
  const health = (await (await fetch(`${admin}/health`)).json()) as { status: string; workers: Array<{ worker: number; status: string; bundle: string }> };
  assert.equal(health.status, 'ok');
  assert.equal(health.workers.length, 2);
  assert.ok(health.workers.every((w) => w.status === 'ok' && w.bundle === health.workers[0].bundle));
  const ready = (await (await fetch(`${admin}/ready`)).json()) as { ready: boolean; bundle: string };
  assert.deepEqual([ready.ready, ready.bundle], [true, health.workers[0].bundle]);
});

test('a quota of 100 shared by two workers: of 150 requests on 150 connections exactly 100 pass and 50 get limit.quota', async () => {
  const replies = await curlMany(`${base}/dynamic/q`, 'alice', 150);
  const ok = replies.filter((r) => r.status === 200);
  const refused = replies.filter((r) => r.status === 403 && JSON.parse(r.body).code === 'limit.quota');
  assert.equal(ok.length, 100, `admitted ${ok.length}`);
  assert.equal(refused.length, 50);
  // Both workers served, and /metrics adds up what each one counted. A request is counted when
  // its response closes on the gateway, which may be a moment after curl read its last byte and
  // exited: the scrape waits (up to 5 s) until all 150 are in, then every figure must be exact.
  const metrics = await waitFor(
    'the 150 requests counted',
    async () => {
      const text = await (await fetch(`${admin}/metrics`)).text();
      const counted = sample(text, 'mtlsgate_worker_requests_total', 'worker="1"') + sample(text, 'mtlsgate_worker_requests_total', 'worker="2"');
      return counted >= 150 && text;
    },
    5_000,
    50,
  );
  const w1 = sample(metrics, 'mtlsgate_worker_requests_total', 'worker="1"');
  const w2 = sample(metrics, 'mtlsgate_worker_requests_total', 'worker="2"');
  assert.ok(w1 > 0 && w2 > 0, `worker 1 served ${w1}, worker 2 served ${w2}`);
  assert.equal(w1 + w2, 150);
  assert.equal(sample(metrics, 'mtlsgate_requests_total', 'api="dynamic",status="200",code="ok"'), 100);
  assert.equal(sample(metrics, 'mtlsgate_requests_total', 'status="403",code="limit.quota"'), 50);
  assert.equal(sample(metrics, 'mtlsgate_bundle_keys', ''), 4, 'informational gauges are not summed over workers');
});

test('a rate of 20 an hour shared by two workers: of 30 requests exactly 20 pass, 10 get 429', async () => {
  const replies = await curlMany(`${base}/dynamic/r`, 'bob', 30);
  assert.equal(replies.filter((r) => r.status === 200).length, 20);
  assert.equal(replies.filter((r) => r.status === 429 && JSON.parse(r.body).code === 'limit.rate').length, 10);
});

test('the workers write their lines straight to the shared stdout (a pipe here): under concurrent load no two lines mix; a line over 4,096 bytes is cut to fit', async () => {
  const metricsBefore = await (await fetch(`${admin}/metrics`)).text();
  const served = (m: string, w: number) => sample(m, 'mtlsgate_worker_requests_total', `worker="${w}"`);
  const agent = demoClientAgent(cluster.pki, 'partner-a', 8);
  const get = (path: string) =>
    new Promise<number>((resolve, reject) => {
      const req = request(`${base}${path}`, { agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end();
    });
  // Request lines of 300 to ~3,300 bytes (the path is in the line), so batches cross the 4,096
  // byte write size at every possible place; three paths of 6,000 bytes make lines that must be cut.
  const mark = `mix${Date.now()}`;
  const paths = Array.from({ length: 600 }, (_, i) => `/dynamic/${mark}/${i}/${'p'.repeat((i * 97) % 3000)}`);
  const long = [0, 1, 2].map((i) => `/dynamic/${mark}/long${i}/${'L'.repeat(6000)}`);
  let next = 0;
  const all = [...paths, ...long];
  const statuses: number[] = [];
  try {
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < all.length) statuses.push(await get(all[next++]));
      }),
    );
  } finally {
    agent.destroy();
  }
  assert.equal(statuses.filter((x) => x === 200).length, all.length);
  const metricsAfter = await (await fetch(`${admin}/metrics`)).text();
  assert.ok(served(metricsAfter, 1) > served(metricsBefore, 1) && served(metricsAfter, 2) > served(metricsBefore, 2), 'both workers served');
  const ours = await waitFor(
    'every request line on stdout',
    () => {
      const lines = s
        .output()
        .stdout.split('\n')
        .filter((l) => l.includes(mark));
      return lines.length >= all.length ? lines : null;
    },
    30_000,
    50,
  );
  // Every line of the whole stdout is one JSON object: no line is another's head or tail.
  const everyLine = s.output().stdout.split('\n').slice(0, -1);
  for (const line of everyLine) assert.doesNotThrow(() => JSON.parse(line), `not one JSON line: ${line.slice(0, 200)}`);
  assert.ok(
    everyLine.every((l) => Buffer.byteLength(l) + 1 <= 4096),
    'no line is longer than one atomic write (4,096 bytes)',
  );
  const parsed = ours.map((l) => JSON.parse(l) as { path: string; status: number; truncated?: boolean });
  assert.equal(parsed.length, all.length);
  assert.deepEqual(new Set(parsed.filter((l) => !l.truncated).map((l) => l.path)), new Set(paths));
  const cut = parsed.filter((l) => l.truncated === true);
  assert.equal(cut.length, 3);
  for (const l of cut) {
    assert.match(l.path, new RegExp(`^/dynamic/${mark}/long[012]/L+…$`));
    assert.equal(l.status, 200);
  }
});

test('a bundle reload reaches every worker; SIGHUP reloads every worker', async () => {
  const before = (await (await fetch(`${admin}/health`)).json()) as { bundle: { digest: string } };
  await writeBundle(true);
  await waitFor(
    'both workers on the new bundle',
    async () => {
      const h = (await (await fetch(`${admin}/health`)).json()) as { status: string; workers: Array<{ bundle: string }> };
      return h.status === 'ok' && h.workers.length === 2 && h.workers.every((w) => w.bundle !== before.bundle.digest && w.bundle === h.workers[0].bundle);
    },
    30_000,
    100,
  );
  assert.equal((await curl(`${base}/extra/x`, cluster.pki, null)).status, 200);
  const reloadedBefore = s.lines().filter((l) => l.msg === 'server certificate reloaded').length;
  s.child.kill('SIGHUP');
  const lines = await waitFor(
    'both workers reloaded their server certificate',
    () => {
      const l = s.lines().filter((x) => x.msg === 'server certificate reloaded');
      return l.length >= reloadedBefore + 2 ? l.slice(reloadedBefore) : null;
    },
    30_000,
    50,
  );
  assert.deepEqual(new Set(lines.map((l) => l.worker)), new Set([1, 2]));
});

test('SIGTERM drains every worker: slow requests on both finish, then exit 0', async () => {
  const first = arrived.length;
  const slow = Array.from({ length: 6 }, () => curl(`${base}/dynamic/slow?delay=1500`, cluster.pki, 'partner-a'));
  await waitFor('six slow requests at the upstream', () => arrived.length >= first + 6, 30_000, 20);
  s.child.kill('SIGTERM');
  const replies = await Promise.all(slow);
  assert.deepEqual(
    replies.map((r) => r.status),
    [200, 200, 200, 200, 200, 200],
  );
  const exit = await s.exited;
  assert.equal(exit.code, 0, s.output().stderr);
  const stopped = s.lines().filter((l) => l.msg === 'mtlsgate stopped');
  assert.deepEqual(new Set(stopped.map((l) => l.worker ?? 'primary')), new Set([1, 2, 'primary']));
  const drained = s.lines().filter((l) => l.msg?.toString().startsWith('draining') && l.worker !== undefined);
  assert.ok(
    drained.some((l) => Number(l.in_flight) > 0),
    'a worker drained requests in flight',
  );
});
