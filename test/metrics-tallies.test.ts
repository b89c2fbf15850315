// The request metrics are tallied in plain numbers and read by prom-client at scrape time
// (runtime/metrics.ts, runtime/duration-histogram.ts). What /metrics shows, and what
// `serve --workers N` aggregates, must be exactly what prom-client's own Counter and Histogram
// give for the same requests: compared here line for line and value for value.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AggregatorRegistry, Counter, Histogram, Registry } from 'prom-client';
import { GatewayMetrics } from '../runtime/metrics.ts';

const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

interface Outcome {
  api: string | null;
  status: number;
  code: string | null;
  durationMs: number;
}

/** Requests of several APIs and outcomes, durations on, between and beyond the bucket bounds. */
function outcomes(): Outcome[] {
  const out: Outcome[] = [];
  const durations = [0.2, 0.5, 0.7, 1, 2.5, 3.2, 9.99, 10, 49, 250, 999, 1000, 2600, 30_000, 45_000, 0];
  for (let i = 0; i < 400; i++) {
    const api = ['payments', 'orders', null, 'odd "name" \\ \n'][i % 4];
    const refused = i % 7 === 0;
    out.push({
      api,
      status: refused ? (api === null ? 404 : 403) : [200, 201, 502, 499][i % 4],
      code: refused ? (api === null ? 'route.not_found' : 'mtls.cert_not_allowed') : i % 4 === 2 ? 'proxy.upstream_error' : null,
      durationMs: durations[i % durations.length] + (i % 3) / 7,
    });
  }
  return out;
}

/** prom-client's own metrics, fed as runtime/metrics.ts fed them before the tallies. */
function reference(all: Outcome[]): Registry {
  const registry = new Registry();
  const requests = new Counter({
    name: 'mtlsgate_requests_total',
    help: 'Requests answered, by API id ("-" = no API matched), HTTP status and error code ("ok" = proxied)',
    labelNames: ['api', 'status', 'code'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'mtlsgate_request_duration_seconds',
    help: 'Time from request arrival to the end of the response, by API id',
    labelNames: ['api'],
    buckets: BUCKETS,
    registers: [registry],
  });
  for (const r of all) {
    requests.labels(r.api ?? '-', String(r.status), r.code ?? 'ok').inc();
    duration.labels(r.api ?? '-').observe(r.durationMs / 1000);
  }
  return registry;
}

const NAMES = ['mtlsgate_requests_total', 'mtlsgate_request_duration_seconds'];

test('request counts and durations read as prom-client would show them (text and JSON)', async () => {
  const all = outcomes();
  const metrics = new GatewayMetrics({ processMetrics: false });
  for (const r of all) metrics.observeRequest(r);
  const ref = reference(all);
  for (const name of NAMES) {
    assert.equal(await metrics.registry.getSingleMetricAsString(name), await ref.getSingleMetricAsString(name), name);
    const mine = await metrics.registry.getSingleMetric(name)!.get();
    const theirs = await ref.getSingleMetric(name)!.get();
    const strip = (m: typeof mine) => ({
      ...m,
      values: m.values.map((v) => ({ value: v.value, labels: v.labels, metricName: (v as { metricName?: string }).metricName })),
    });
    const { collect: _a, ...a } = strip(mine) as Record<string, unknown>;
    const { collect: _b, ...b } = strip(theirs) as Record<string, unknown>;
    assert.deepEqual(a, b, name);
  }
  // Read twice: the counter is rebuilt from the tallies at each read, never doubled.
  assert.equal(await metrics.registry.getSingleMetricAsString('mtlsgate_requests_total'), await ref.getSingleMetricAsString('mtlsgate_requests_total'));
  metrics.observeRequest({ api: 'payments', status: 200, code: null, durationMs: 1 });
  assert.match(await metrics.registry.metrics(), /^mtlsgate_request_duration_seconds_count\{api="payments"\} 101$/m);
});

test('serve --workers: two workers aggregate to the sum of their requests', async () => {
  const all = outcomes();
  const w1 = new GatewayMetrics({ processMetrics: false, worker: 1 });
  const w2 = new GatewayMetrics({ processMetrics: false, worker: 2 });
  all.forEach((r, i) => (i % 3 === 0 ? w1 : w2).observeRequest(r));
  const merged = AggregatorRegistry.aggregate([await w1.registry.getMetricsAsJSON(), await w2.registry.getMetricsAsJSON()]);
  const ref = AggregatorRegistry.aggregate([
    await reference(all.filter((_, i) => i % 3 === 0)).getMetricsAsJSON(),
    await reference(all.filter((_, i) => i % 3 !== 0)).getMetricsAsJSON(),
  ]);
  for (const name of NAMES) assert.equal(await merged.getSingleMetricAsString(name), await ref.getSingleMetricAsString(name), name);
  const text = await merged.metrics();
  assert.match(text, new RegExp(`^mtlsgate_worker_requests_total\\{worker="1"\\} ${all.filter((_, i) => i % 3 === 0).length}$`, 'm'));
});

test('after a registry reset, the duration histogram shows the requests that come next', async () => {
  const metrics = new GatewayMetrics();
  metrics.observeRequest({ api: 'payments', status: 200, code: null, durationMs: 3 });
  metrics.registry.resetMetrics();
  metrics.observeRequest({ api: 'payments', status: 200, code: null, durationMs: 3 });
  const text = await metrics.registry.metrics();
  assert.match(text, /^mtlsgate_request_duration_seconds_count\{api="payments"\} 1$/m);
});
