// Rate limits and quotas end to end: the real gateway (in this process and as `mtlsgate serve`
// child processes), bundles compiled from YAML, real curl with --cert/--key on loopback, and a
// real redis-server for the shared store.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { DemoPki } from '../cli/pki.ts';
import { writeFileAtomic } from '../common/atomic-write.ts';
import { compileDir } from './helpers/compile-and-load.ts';
import { startEchoUpstream, type EchoUpstream } from '../support/echo-upstream.ts';
import { tempDir, waitFor } from './helpers/ops-fixtures.ts';
import { RedisServer } from './helpers/redis.ts';
import { spawnDemoGateway } from './helpers/demo-gateway.ts';
import { demoPki, run, type spawnServe, startInProcess } from './helpers/serve-fixtures.ts';

const t = tempDir('limits-gateway');
let pki: DemoPki;
let upstream: EchoUpstream;
const bobToken = randomBytes(32).toString('base64url');

before(async () => {
  pki = await demoPki(t.dir);
  upstream = await startEchoUpstream({ name: 'echo', port: 0 });
});
after(async () => {
  await upstream?.close();
  t.cleanup();
});

interface KeyYaml {
  id: string;
  cert?: string;
  token?: string;
  api: string;
  limits: string[];
}

/**
 * A config with a dynamic-mTLS API (/dynamic/, the certificate identifies the key) and a token
 * API (/tokens/), and the given keys; compiled in-process and written (atomically) to `bundle`.
 */
async function writeBundle(name: string, keys: KeyYaml[], extraApi = false): Promise<string> {
  const dir = join(t.dir, name);
  mkdirSync(dir, { recursive: true });
  const target = `http://127.0.0.1:${upstream.address.port}`;
  const docs = [
    `kind: api\nid: dynamic\nproxy:\n  listen_path: /dynamic/\n  target_url: ${target}\nauth:\n  use_certificate: true\n`,
    `kind: api\nid: tokens\nproxy:\n  listen_path: /tokens/\n  target_url: ${target}\n`,
    ...keys.map(
      (k) =>
        [
          `kind: key\nid: ${k.id}`,
          k.cert ? `certificate: ${join(pki.dir, `${k.cert}.pem`)}` : '',
          k.token ? `token_sha256: ${createHash('sha256').update(k.token).digest('hex')}` : '',
          `access_rights:\n  ${k.api}: {}`,
          ...k.limits,
        ]
          .filter(Boolean)
          .join('\n') + '\n',
    ),
  ];
  if (extraApi) docs.push(`kind: api\nid: extra\nproxy:\n  listen_path: /extra/\n  target_url: ${target}\nuse_keyless: true\n`);
  writeFileSync(join(dir, 'config.yaml'), docs.join('---\n'));
  // The certificates live beside the config directory (t.dir/pki): allowed explicitly.
  const result = await compileDir(dir, { allowOutside: [t.dir] });
  assert.equal(result.errorCount, 0, JSON.stringify(result.diagnostics));
  const bundle = join(t.dir, `${name}.json`);
  writeFileAtomic(bundle, result.bundle!);
  return bundle;
}

interface Reply {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** Seconds from this transfer's start to its end (curl's time_total). */
  seconds: number;
}

/**
 * `n` sequential requests in ONE curl process: one TLS connection kept alive, so the requests
 * follow each other within milliseconds. `client` presents its certificate; `extra` adds flags.
 */
async function curlSeries(url: string, n: number, client: string | null, extra: string[] = []): Promise<Reply[]> {
  const args = ['-sS', '-i', '--max-time', '30', '--cacert', join(pki.dir, 'ca.pem'), '-w', '\n@@END %{time_total}@@\n', ...extra];
  if (client) args.push('--cert', join(pki.dir, `${client}.pem`), '--key', join(pki.dir, `${client}-key.pem`));
  for (let i = 0; i < n; i++) args.push(url);
  const r = await run('curl', args);
  assert.equal(r.code, 0, `curl failed: ${r.stderr}`);
  const replies: Reply[] = [];
  for (const m of r.stdout.matchAll(/([\s\S]*?)\n@@END ([\d.]+)@@\n/g)) {
    const [head, body = ''] = m[1].split(/\r\n\r\n/);
    const lines = head.split('\r\n');
    const headers: Record<string, string> = {};
    for (const line of lines.slice(1)) {
      const i = line.indexOf(':');
      headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
    }
    replies.push({ status: Number(lines[0].split(' ')[1]), headers, body, seconds: Number(m[2]) });
  }
  assert.equal(replies.length, n, r.stdout);
  return replies;
}

/**
 * Six requests on one connection must find the rate 5/s bucket as the first one left it: a
 * credit returns every 200 ms. The gateway's own request log says when each request arrived
 * (log time minus duration); if the machine stalled the series past 180 ms, the attempt says
 * nothing about the limiter, so wait for the bucket to refill (1 s) and run it again.
 */
async function sixInARow(gw: { logs: Array<Record<string, unknown>> }, url: string, client: string | null, extra: string[] = []): Promise<Reply[]> {
  const path = new URL(url).pathname;
  for (let attempt = 1; ; attempt++) {
    const seen = gw.logs.length;
    const replies = await curlSeries(url, 6, client, extra);
    const lines = await waitFor('six request log lines', () => {
      const mine = gw.logs.slice(seen).filter((l) => l.msg === 'request' && l.path === path);
      return mine.length === 6 ? mine : null;
    });
    const arrivals = lines.map((l) => Date.parse(String(l.time)) - Number(l.duration_ms));
    const spanMs = arrivals[5] - arrivals[0];
    if (spanMs < 180) return replies;
    if (attempt === 5) throw new Error(`the machine stalled every attempt (last: six requests spread over ${spanMs} ms)`);
    await new Promise((r) => setTimeout(r, 1100)); // the documented refill time of a 5/1 s bucket
  }
}

function assertFiveThen429(replies: Reply[]): void {
  assert.deepEqual(
    replies.map((r) => r.status),
    [200, 200, 200, 200, 200, 429],
  );
  replies.slice(0, 5).forEach((r, i) => {
    assert.equal(r.headers['x-ratelimit-limit'], '5');
    assert.equal(r.headers['x-ratelimit-remaining'], String(4 - i));
    assert.equal(r.headers['x-ratelimit-reset'], '1');
  });
  const denied = replies[5];
  assert.deepEqual(JSON.parse(denied.body), { error: 'Rate limit exceeded', code: 'limit.rate' });
  assert.equal(denied.headers['retry-after'], '1');
  assert.equal(denied.headers['x-ratelimit-remaining'], '0');
}

describe('gateway with the in-process limiter', () => {
  let gw: Awaited<ReturnType<typeof startInProcess>>;
  let bundle: string;
  const keys = (aliceRate: string[], extraApi = false) =>
    writeBundle(
      'in-process',
      [
        { id: 'alice', cert: 'alice', api: 'dynamic', limits: ['rate: 5', 'per: 1'] },
        { id: 'bob', token: bobToken, api: 'tokens', limits: ['rate: 5', 'per: 1'] },
        { id: 'partner', cert: 'partner-a', api: 'dynamic', limits: ['quota_max: 10', 'quota_renewal_rate: 3600'] },
        { id: 'mallory', cert: 'mallory', api: 'dynamic', limits: aliceRate },
      ],
      extraApi,
    );
  before(async () => {
    bundle = await keys(['rate: 5', 'per: 60']);
    gw = await startInProcess({ bundle }, pki);
  });
  after(async () => {
    await gw?.running.stop('test over');
  });

  test('rate 5 per 1 s, key identified by its certificate alone: 5 x 200, then 429 with Retry-After', async () => {
    const replies = await sixInARow(gw, `${gw.base}/dynamic/hello`, 'alice');
    assertFiveThen429(replies);
    assert.equal(JSON.parse(replies[0].body).path, '/hello');
  });

  test('rate 5 per 1 s, key identified by its token: 5 x 200, then 429 with Retry-After', async () => {
    assertFiveThen429(await sixInARow(gw, `${gw.base}/tokens/hello`, null, ['-H', `Authorization: Bearer ${bobToken}`]));
  });

  test('quota 10: the 11th request gets 403 Quota exceeded', async () => {
    const replies = await curlSeries(`${gw.base}/dynamic/q`, 11, 'partner-a');
    assert.deepEqual(
      replies.map((r) => r.status),
      [...Array(10).fill(200), 403],
    );
    assert.deepEqual(
      replies.map((r) => r.headers['x-ratelimit-remaining']),
      ['9', '8', '7', '6', '5', '4', '3', '2', '1', '0', '0'],
    );
    assert.deepEqual(JSON.parse(replies[10].body), { error: 'Quota exceeded', code: 'limit.quota' });
    assert.equal(replies[10].headers['retry-after'], undefined);
  });

  test('a bundle reload in the middle of a window does not reset the counter; changed limits apply at once', async () => {
    const url = `${gw.base}/dynamic/reload`;
    assert.deepEqual(
      (await curlSeries(url, 3, 'mallory')).map((r) => r.status),
      [200, 200, 200],
    );
    const digestBefore = (await gw.health()).bundle.digest;
    await keys(['rate: 5', 'per: 60'], true); // another bundle (an extra API), same limits
    await waitFor('the reload', async () => (await gw.health()).bundle.digest !== digestBefore, 15_000);
    assert.deepEqual(
      (await curlSeries(url, 3, 'mallory')).map((r) => r.status),
      [200, 200, 429],
    );

    const digestSame = (await gw.health()).bundle.digest;
    await keys(['rate: 10', 'per: 60'], true); // limit raised: the 5 used still count, 5 more pass
    await waitFor('the second reload', async () => (await gw.health()).bundle.digest !== digestSame, 15_000);
    const raised = await curlSeries(url, 6, 'mallory');
    assert.deepEqual(
      raised.map((r) => r.status),
      [200, 200, 200, 200, 200, 429],
    );
    assert.equal(raised[0].headers['x-ratelimit-limit'], '10');
    assert.equal(raised[0].headers['x-ratelimit-remaining'], '4');
  });
});

describe('gateway processes sharing Redis', () => {
  let redis: RedisServer;
  let bundle: string;
  const gateways: Array<ReturnType<typeof spawnServe>> = [];
  const bases: string[] = [];
  const admins: string[] = [];

  before(async () => {
    redis = await RedisServer.start();
    bundle = await writeBundle('redis', [
      { id: 'shared', cert: 'bob', api: 'dynamic', limits: ['quota_max: 100', 'quota_renewal_rate: 3600'] },
      { id: 'spare', cert: 'alice', api: 'dynamic', limits: ['quota_max: 1000', 'quota_renewal_rate: 3600'] },
    ]);
    for (let i = 0; i < 2; i++) {
      const gw = spawnDemoGateway(bundle, pki, { admin: 'loopback', extra: ['--redis', redis.url, '--redis-timeout', '200ms'] });
      gateways.push(gw);
      const serving = (await gw.serving()) as { listen: string; admin: string; limiter: string };
      assert.equal(serving.limiter, 'redis');
      bases.push(`https://${serving.listen}`);
      admins.push(`http://${serving.admin}`);
    }
  });
  after(async () => {
    for (const gw of gateways) gw.kill();
    await Promise.all(gateways.map((gw) => gw.exited));
    await redis?.close();
  });

  test('two gateway processes, one key with a quota of 100, requests spread across both: exactly 100 succeed', async () => {
    const [a, b] = await Promise.all(bases.map((base) => curlSeries(`${base}/dynamic/shared`, 70, 'bob')));
    const all = [...a, ...b];
    assert.equal(all.filter((r) => r.status === 200).length, 100);
    assert.equal(all.filter((r) => r.status === 403 && JSON.parse(r.body).code === 'limit.quota').length, 40);
    assert.ok(a.some((r) => r.status === 200) && b.some((r) => r.status === 200), 'both gateways admitted some');
  });

  test('Redis stopped: requests follow --on-limiter-error allow, /health is degraded, /metrics counts it; restarted: shared counting resumes', async () => {
    const denying = await startInProcess({ bundle, redisUrl: redis.url, redisTimeoutMs: 200, onLimiterError: 'deny' }, pki);
    try {
      assert.equal((await curlSeries(`${denying.base}/dynamic/deny`, 1, 'alice'))[0].status, 200);
      await redis.stop();
      const refused = await curlSeries(`${denying.base}/dynamic/deny`, 3, 'alice');
      assert.deepEqual(
        refused.map((r) => r.status),
        [429, 429, 429],
        '--on-limiter-error deny',
      );
      assert.equal(refused[0].headers['retry-after'], '1');
      assert.equal((await denying.health()).status, 'degraded');
    } finally {
      await denying.running.stop('test over');
    }
    for (const base of bases) {
      const replies = await curlSeries(`${base}/dynamic/outage`, 20, 'bob');
      assert.deepEqual(
        replies.map((r) => r.status),
        Array(20).fill(200),
        'allowed without limits during the outage',
      );
      assert.equal(replies[0].headers['x-ratelimit-limit'], undefined, 'no made-up rate headers');
    }
    for (const admin of admins) {
      const health = (await (await fetch(`${admin}/health`)).json()) as { status: string; limiter: { status: string; detail: string } };
      assert.equal(health.limiter.status, 'degraded');
      assert.match(health.limiter.detail, /unavailable/);
      const metrics = await (await fetch(`${admin}/metrics`)).text();
      const errors = [...metrics.matchAll(/^mtlsgate_limiter_errors_total\{[^}]*\} (\d+)/gm)].reduce((s, m) => s + Number(m[1]), 0);
      assert.ok(errors >= 20, `mtlsgate_limiter_errors_total ${errors}`);
      assert.match(metrics, /^mtlsgate_limiter_degraded 1$/m);
    }
    for (const gw of gateways) {
      assert.equal(gw.child.exitCode, null, 'the gateway did not crash');
      const warnings = gw.lines().filter((l) => /Redis unavailable/.test(String(l.msg)));
      assert.equal(warnings.length, 1, 'the outage is logged once, not per request');
    }

    await redis.start(); // same port, empty: shared counting starts over
    for (const base of bases) {
      await waitFor(
        'shared counting to resume',
        async () => (await curlSeries(`${base}/dynamic/back`, 1, 'bob'))[0].headers['x-ratelimit-limit'] === '100',
        20_000,
        100,
      );
    }
    // Shared again: each request on either gateway takes one from the same count.
    const first = (await curlSeries(`${bases[0]}/dynamic/back`, 1, 'bob'))[0];
    const second = (await curlSeries(`${bases[1]}/dynamic/back`, 1, 'bob'))[0];
    assert.equal(Number(second.headers['x-ratelimit-remaining']), Number(first.headers['x-ratelimit-remaining']) - 1);
    for (const admin of admins) {
      const health = (await (await fetch(`${admin}/health`)).json()) as { limiter: { status: string } };
      assert.equal(health.limiter.status, 'ok');
    }
  });
});
