// `mtlsgate serve --workers 2` as users run it (dist/mtlsgate.mjs, node:cluster): two gateway
// workers sharing one quota of 100 and one rate limit, decided by the primary's counters through
// leases (no Redis), real curl with --cert/--key over a new connection per request so both
// workers serve; /health and /metrics over every worker; a bundle reload and SIGHUP reaching
// every worker; SIGTERM draining every worker; a worker killed mid-quota (its leases count as
// spent: fewer requests pass, never more).
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { DemoPki } from '../cli/pki.ts';
import { writeFileAtomic } from '../common/atomic-write.ts';
import { compileDir } from './helpers/compile-and-load.ts';
import { spawnDemoGateway } from './helpers/demo-gateway.ts';
import { curl, demoPki, spawnServe } from './helpers/serve-fixtures.ts';
import { tempDir, waitFor } from './helpers/ops-fixtures.ts';
import { RedisServer } from './helpers/redis.ts';

const t = tempDir('workers');
let pki: DemoPki;
let upstream: ReturnType<typeof createServer>;
let target = '';
let bundle = '';
const arrived: IncomingMessage[] = [];
const children: Array<ReturnType<typeof spawnServe>> = [];

/** API "dynamic" (the certificate names the key): alice has a quota of 100, bob a rate of 20 an
 *  hour, mallory a quota of 4,000, partner-a no limit; `extra` adds an open API (another digest,
 *  same limits). */
async function writeBundle(extra = false): Promise<void> {
  const dir = join(t.dir, extra ? 'cfg-extra' : 'cfg');
  mkdirSync(dir, { recursive: true });
  const key = (id: string, limits: string[]) =>
    [`kind: key`, `id: ${id}`, `certificate: ${join(pki.dir, `${id}.pem`)}`, 'access_rights:\n  dynamic: {}', ...limits].join('\n') + '\n';
  const docs = [
    `kind: api\nid: dynamic\nproxy:\n  listen_path: /dynamic/\n  target_url: ${target}\nauth:\n  use_certificate: true\n`,
    key('alice', ['quota_max: 100', 'quota_renewal_rate: 3600']),
    key('bob', ['rate: 20', 'per: 3600']),
    key('mallory', ['quota_max: 4000', 'quota_renewal_rate: 3600']),
    key('partner-a', []),
  ];
  if (extra) docs.push(`kind: api\nid: extra\nproxy:\n  listen_path: /extra/\n  target_url: ${target}\nuse_keyless: true\n`);
  writeFileSync(join(dir, 'apis.yaml'), docs.join('---\n'));
  // The certificates live beside the config, in the demo PKI's directory.
  const result = await compileDir(dir, { allowOutside: [t.dir] });
  if (!result.bundle) throw new Error(`${dir} does not compile: ${JSON.stringify(result.diagnostics)}`);
  writeFileAtomic(bundle, result.bundle);
}

before(async () => {
  pki = await demoPki(t.dir);
  upstream = createServer((req: IncomingMessage, res: ServerResponse) => {
    arrived.push(req);
    const delay = Number(/delay=(\d+)/.exec(req.url ?? '')?.[1] ?? 0);
    setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ path: req.url }) + '\n'), delay);
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  target = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  bundle = join(t.dir, 'bundle.json');
  await writeBundle();
});
after(async () => {
  children.forEach((c) => c.kill());
  await new Promise<void>((r) => (upstream.close(() => r()), upstream.closeAllConnections()));
  t.cleanup();
});

function serveWorkers(extra: string[] = []) {
  const s = spawnDemoGateway(bundle, pki, { admin: 'loopback', extra: ['--workers', '2', ...extra] });
  children.push(s);
  return s;
}

/** `count` curl requests, `parallel` at a time, each its own process and TLS connection. */
async function curlMany(url: string, client: string, count: number, parallel = 6) {
  const out: Array<{ status: number; body: string }> = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < count) {
        next++;
        out.push(await curl(url, pki, client));
      }
    }),
  );
  return out;
}

/** The value of one sample of the aggregated /metrics (0 when absent). */
function sample(metrics: string, name: string, labels: string): number {
  const line = metrics
    .split('\n')
    .find((l) => (labels === '' ? l.startsWith(`${name} `) : l.startsWith(`${name}{`) && labels.split(',').every((p) => l.includes(p))));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

let s: ReturnType<typeof spawnServe>;
let base = '';
let admin = '';

test('--workers 2 starts two workers behind one listener and one admin listener', async () => {
  s = serveWorkers();
  const serving = await s.serving();
  assert.equal(serving.workers, 2);
  assert.equal((serving.pids as number[]).length, 2);
  assert.equal(serving.limiter, 'primary-leases');
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
  const agent = new Agent({
    keepAlive: true,
    maxSockets: 8,
    ca: pki.ca.certPem,
    cert: readFileSync(join(pki.dir, 'partner-a.pem')),
    key: readFileSync(join(pki.dir, 'partner-a-key.pem')),
  });
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
  assert.equal((await curl(`${base}/extra/x`, pki, null)).status, 200);
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
  const slow = Array.from({ length: 6 }, () => curl(`${base}/dynamic/slow?delay=1500`, pki, 'partner-a'));
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

test('--workers 2 --redis: the workers count in Redis directly (no leases); the quota of 100 stays exact', async () => {
  const redis = await RedisServer.start();
  // A generous Redis timeout: on this loaded machine a 50 ms one would let --on-limiter-error decide some.
  const r = serveWorkers(['--redis', redis.url, '--redis-timeout', '5s', '--on-limiter-error', 'deny']);
  try {
    const serving = await r.serving();
    assert.equal(serving.limiter, 'redis');
    const replies = await curlMany(`https://${serving.listen}/dynamic/redis`, 'alice', 120);
    assert.equal(replies.filter((x) => x.status === 200).length, 100);
    assert.equal(replies.filter((x) => x.status === 403).length, 20);
    const metrics = await (await fetch(`http://${serving.admin}/metrics`)).text();
    assert.ok(sample(metrics, 'mtlsgate_worker_requests_total', 'worker="1"') > 0 && sample(metrics, 'mtlsgate_worker_requests_total', 'worker="2"') > 0);
    r.child.kill('SIGTERM');
    assert.equal((await r.exited).code, 0);
  } finally {
    r.kill();
    await redis.stop();
  }
});

test('a worker killed while spending leases of a quota of 4,000: fewer pass, never more; the replacement serves the rest', async (t) => {
  // A gateway of its own: the worker numbers of the shared one stay 1 and 2 for the tests above.
  const g = serveWorkers();
  const serving = await g.serving();
  const base = `https://${serving.listen}`;
  const admin = `http://${serving.admin}`;
  type Health = { status: string; workers: Array<{ worker: number; pid: number; status: string }> };
  const health = async () => (await (await fetch(`${admin}/health`)).json()) as Health;
  const agent = new Agent({
    keepAlive: true,
    maxSockets: 8,
    ca: pki.ca.certPem,
    cert: readFileSync(join(pki.dir, 'mallory.pem')),
    key: readFileSync(join(pki.dir, 'mallory-key.pem')),
  });
  /** Status, and the error code of a refusal; 0 when the connection broke (the kill). */
  const get = (path: string) =>
    new Promise<{ status: number; code: string | null }>((resolve) => {
      const req = request(`${base}${path}`, { agent }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, code: res.statusCode === 200 ? null : (JSON.parse(body) as { code: string }).code }));
        res.on('error', () => resolve({ status: 0, code: null }));
      });
      req.on('error', () => resolve({ status: 0, code: null }));
      req.end();
    });
  const replies: Array<{ status: number; code: string | null }> = [];
  let replacement = 0;
  let n = 0;
  let stop = false;
  const admitted = () => replies.filter((r) => r.status === 200).length;
  const load = Promise.all(
    Array.from({ length: 8 }, async () => {
      while (!stop) replies.push(await get(`/dynamic/crash/${n++}`));
    }),
  );
  try {
    // Mid-quota, both workers busy with leases of mallory: one of them is killed.
    await waitFor('1,500 admitted', () => admitted() >= 1_500, 60_000, 5);
    const before = await health();
    const victim = before.workers[0];
    process.kill(victim.pid, 'SIGKILL');
    const after = await waitFor(
      'a replacement worker',
      async () => {
        const h = await health();
        return h.status === 'ok' && h.workers.length === 2 && h.workers.every((w) => w.pid !== victim.pid) ? h : null;
      },
      30_000,
      100,
    );
    replacement = after.workers.find((w) => !before.workers.some((b) => b.worker === w.worker))!.worker;
    // Go on until the quota refuses 200 requests in a row.
    await waitFor(
      'the quota exhausted',
      () => {
        const tail = replies.slice(-200);
        return tail.length === 200 && tail.every((r) => r.status === 403);
      },
      120_000,
      20,
    );
  } finally {
    stop = true;
    await load;
    agent.destroy();
  }
  // The upstream sees the path without the listen path.
  const through = arrived.filter((r) => r.url?.startsWith('/crash/')).length;
  assert.ok(through <= 4_000, `${through} requests reached the upstream: never more than the quota`);
  assert.ok(admitted() <= through);
  assert.ok(
    replies.every((r) => r.status === 200 || r.status === 0 || (r.status === 403 && r.code === 'limit.quota')),
    'every refusal is limit.quota (0: a connection of the killed worker)',
  );
  // What the killed worker held counts as spent: at most its two leases (each at most a
  // 1/(2*workers) share of what was left: at most (4,000 - 1,500) / 4 here).
  const stranded = 4_000 - through;
  assert.ok(stranded <= 2 * Math.floor((4_000 - 1_500) / 4), `${stranded} tokens lost with the killed worker`);
  t.diagnostic(`${admitted()} admitted, ${through} at the upstream, ${stranded} lost with the killed worker`);
  // The keep-alive connections moved to the surviving worker; new connections alternate.
  assert.ok((await curlMany(`${base}/dynamic/after`, 'partner-a', 6)).every((r) => r.status === 200));
  const metrics = await (await fetch(`${admin}/metrics`)).text();
  assert.ok(sample(metrics, 'mtlsgate_worker_requests_total', `worker="${replacement}"`) > 0, 'the replacement worker served');
  assert.ok(sample(metrics, 'mtlsgate_lease_messages_total', 'type="grant"') > 0);
  g.child.kill('SIGTERM');
  assert.equal((await g.exited).code, 0);
});

test('a worker that cannot start stops the others: exit 2 with the reason', async () => {
  const args = [
    '--bundle',
    bundle,
    '--tls-cert',
    join(pki.dir, 'server.pem'),
    '--tls-key',
    join(pki.dir, 'nope.pem'),
    '--listen',
    '127.0.0.1:0',
    '--workers',
    '2',
  ];
  const bad = spawnServe([...args, '--admin', 'off']);
  children.push(bad);
  const exit = await bad.exited;
  assert.equal(exit.code, 2);
  assert.match(bad.output().stderr, /cannot read --tls-key/);
});

test('--workers: 1 is the single-process gateway; auto is one per core; MTLSGATE_WORKERS reads the same', async () => {
  const { serveConfig } = await import('../cli/commands/serve.ts');
  const { availableParallelism } = await import('node:os');
  const base = ['--bundle', bundle, '--tls-cert', 'c.pem', '--tls-key', 'k.pem'];
  assert.equal(serveConfig(base, {}).workers, 1);
  assert.equal(serveConfig([...base, '--workers', '1'], {}).workers, 1);
  assert.equal(serveConfig([...base, '--workers', 'auto'], {}).workers, availableParallelism());
  assert.equal(serveConfig(base, { MTLSGATE_WORKERS: '3' }).workers, 3);
  assert.equal(serveConfig([...base, '--workers', '2'], { MTLSGATE_WORKERS: '3' }).workers, 2);
  assert.throws(() => serveConfig(base, { MTLSGATE_WORKERS: 'x' }), /MTLSGATE_WORKERS.*"x"/);
});
