// The admin listener, the metrics registry and the request log line, without a gateway.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { startAdmin } from '../runtime/admin.ts';
import { GatewayMetrics } from '../runtime/metrics.ts';
import { createLogger, logRequest } from '../runtime/log.ts';
import type { ReloadError } from '../runtime/store.ts';
import { VERSION } from '../runtime/version.ts';

test('/health and /metrics report the bundle, reloads, requests and the limiter', async () => {
  const loadedAt = new Date(Date.now() - 5_000);
  let lastError: ReloadError | null = null;
  let limiterStatus: 'ok' | 'degraded' = 'ok';
  let draining = false;
  const metrics = new GatewayMetrics({ inFlight: () => 3 });
  metrics.bundleLoaded({ digest: 'sha256:aaa', loadedAt, apis: 2, keys: 7 }, true);
  const admin = await startAdmin(
    '127.0.0.1',
    0,
    {
      bundle: () => ({ digest: 'sha256:aaa', loadedAt, source: '/etc/b.json', apis: 2, keys: 7 }),
      lastReloadError: () => lastError,
      limiter: () => (limiterStatus === 'ok' ? { status: 'ok' } : { status: 'degraded', detail: 'redis down' }),
      draining: () => draining,
    },
    metrics,
  );
  const base = `http://127.0.0.1:${admin.address.port}`;
  try {
    let res = await fetch(`${base}/health`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), {
      status: 'ok',
      version: VERSION,
      bundle: { digest: 'sha256:aaa', loaded_at: loadedAt.toISOString(), source: '/etc/b.json', apis: 2, keys: 7, signed_at: null },
      last_reload_error: null,
      limiter: { status: 'ok' },
      revocation: null,
    });

    lastError = { message: 'bundle is truncated', at: new Date().toISOString(), source: '/etc/b.json' };
    res = await fetch(`${base}/health`);
    let body = (await res.json()) as { status: string; last_reload_error: unknown };
    assert.equal(res.status, 200, 'still serving the old bundle: not a reason to pull the instance');
    assert.equal(body.status, 'degraded');
    assert.deepEqual(body.last_reload_error, lastError);

    lastError = null;
    limiterStatus = 'degraded';
    body = (await (await fetch(`${base}/health`)).json()) as { status: string; last_reload_error: unknown };
    assert.equal(body.status, 'degraded');

    metrics.observeRequest({ api: 'payments', status: 200, code: null, durationMs: 3.2 });
    metrics.observeRequest({ api: 'payments', status: 200, code: null, durationMs: 4 });
    metrics.observeRequest({ api: null, status: 404, code: 'route.not_found', durationMs: 0.1 });
    metrics.bundleLoaded({ digest: 'sha256:bbb', loadedAt: new Date(), apis: 3, keys: 7 }, false);
    metrics.reloadFailed();
    res = await fetch(`${base}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
    const text = await res.text();
    assert.match(text, /^mtlsgate_requests_total\{api="payments",status="200",code="ok"\} 2$/m);
    assert.match(text, /^mtlsgate_requests_total\{api="-",status="404",code="route.not_found"\} 1$/m);
    assert.match(text, /^mtlsgate_request_duration_seconds_count\{api="payments"\} 2$/m);
    assert.match(text, /^mtlsgate_bundle_reloads_total\{result="ok"\} 1$/m);
    assert.match(text, /^mtlsgate_bundle_reloads_total\{result="failed"\} 1$/m);
    assert.match(text, /^mtlsgate_bundle_info\{digest="sha256:bbb"\} 1$/m);
    assert.doesNotMatch(text, /digest="sha256:aaa"/, 'the old digest is gone');
    assert.match(text, /^mtlsgate_bundle_age_seconds \d/m);
    assert.match(text, /^mtlsgate_requests_in_flight 3$/m);
    assert.match(text, /^mtlsgate_process_cpu_seconds_total /m);

    assert.equal((await fetch(`${base}/nope`)).status, 404);
    assert.equal((await fetch(`${base}/health`, { method: 'POST' })).status, 405);

    draining = true;
    res = await fetch(`${base}/health`);
    assert.equal(res.status, 503);
    assert.equal(((await res.json()) as { status: string }).status, 'draining');
  } finally {
    await admin.close();
  }
});

test('a request log line has the fields, and no token or query string', async () => {
  const sink = new PassThrough();
  const lines: string[] = [];
  sink.on('data', (chunk: Buffer) => lines.push(...chunk.toString().split('\n').filter(Boolean)));
  const logger = createLogger({ destination: sink, level: 'info' });
  logRequest(logger, {
    api: 'payments',
    key: 'alice',
    cert: 'ab'.repeat(32),
    status: 200,
    code: null,
    method: 'GET',
    path: '/payments/charges?api_key=SECRET-TOKEN&x=1',
    durationMs: 1.23456,
    remote: '127.0.0.1',
  });
  logger.info({ headers: { authorization: 'Bearer SECRET-TOKEN', accept: '*/*' } }, 'headers by mistake');
  await new Promise((r) => setImmediate(r));
  assert.equal(lines.length, 2);
  const line = JSON.parse(lines[0]);
  assert.equal(line.msg, 'request');
  assert.equal(line.level, 'info');
  assert.equal(line.api, 'payments');
  assert.equal(line.key, 'alice');
  assert.equal(line.cert_sha256, 'ab'.repeat(32));
  assert.equal(line.status, 200);
  assert.equal(line.code, null);
  assert.equal(line.method, 'GET');
  assert.equal(line.path, '/payments/charges');
  assert.equal(line.duration_ms, 1.235);
  assert.ok(!lines.join('\n').includes('SECRET-TOKEN'));
});
