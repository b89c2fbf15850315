// Prometheus metrics, in a registry of our own (never prom-client's global one, so tests and
// embedders can run several gateways in one process).
//
// The per-request update is on the hot path: labelled children are looked up once per
// (api, status, code) combination and cached in a Map, so a request costs one Map lookup, one
// counter increment and one histogram observation.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { VERSION } from './version.ts';

interface RequestOutcome {
  api: string | null;
  status: number;
  code: string | null;
  durationMs: number;
}

interface LoadedBundleInfo {
  digest: string;
  loadedAt: Date;
  apis: number;
  keys: number;
}

interface MetricsOptions {
  /** Node process metrics (CPU, memory, event loop lag, GC): on by default. */
  processMetrics?: boolean;
  /** Requests in flight right now, read at scrape time. */
  inFlight?: () => number;
  /** `serve --workers N`: this process's worker number, the label of mtlsgate_worker_requests_total. */
  worker?: number;
}

/** Label value for a request that matched no API (404s, bad paths). */
const NO_API = '-';
/** Label value for a request that succeeded (no error code). */
const NO_CODE = 'ok';

type CounterChild = ReturnType<Counter<'api' | 'status' | 'code'>['labels']>;
type HistogramChild = ReturnType<Histogram<'api'>['labels']>;

export class GatewayMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<'api' | 'status' | 'code'>;
  private readonly duration: Histogram<'api'>;
  private readonly reloads: Counter<'result'>;
  private readonly refusedConnections: Counter<'reason'>;
  private readonly bundleInfo: Gauge<'digest'>;
  private readonly bundleKeys: Gauge;
  private readonly bundleApis: Gauge;
  private readonly counterChildren = new Map<string, CounterChild>();
  private readonly durationChildren = new Map<string, HistogramChild>();
  private bundle: LoadedBundleInfo | null = null;

  /** A connection closed by a limit (runtime/tls-front.ts). */
  connectionRefused(reason: string): void {
    this.refusedConnections.labels(reason).inc();
  }

  constructor(opts: MetricsOptions = {}) {
    const registers = [this.registry];
    this.requests = new Counter({
      name: 'mtlsgate_requests_total',
      help: 'Requests answered, by API id ("-" = no API matched), HTTP status and error code ("ok" = proxied)',
      labelNames: ['api', 'status', 'code'],
      registers,
    });
    this.duration = new Histogram({
      name: 'mtlsgate_request_duration_seconds',
      help: 'Time from request arrival to the end of the response, by API id',
      labelNames: ['api'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.reloads = new Counter({
      name: 'mtlsgate_bundle_reloads_total',
      help: 'Bundle reload attempts that changed something (ok) or were refused (failed); unchanged bundles are not counted',
      labelNames: ['result'],
      registers,
    });
    this.reloads.labels('ok').inc(0);
    this.reloads.labels('failed').inc(0);
    this.refusedConnections = new Counter({
      name: 'mtlsgate_connections_refused_total',
      help: 'Connections closed by a limit: max_connections, max_connections_per_address, handshake_deadline (no complete TLS handshake in time)',
      labelNames: ['reason'],
      registers,
    });
    for (const reason of ['max_connections', 'max_connections_per_address', 'handshake_deadline']) this.refusedConnections.labels(reason).inc(0);
    this.bundleInfo = new Gauge({
      name: 'mtlsgate_bundle_info',
      help: 'The bundle being served (value 1), labelled with its digest',
      labelNames: ['digest'],
      registers,
      aggregator: 'max', // --workers: 1 per digest served, not the number of workers serving it
    });
    new Gauge({ name: 'mtlsgate_build_info', help: 'The mtlsgate version running (value 1)', labelNames: ['version', 'node'], registers, aggregator: 'max' })
      .labels(VERSION, process.versions.node)
      .set(1);
    this.bundleApis = new Gauge({ name: 'mtlsgate_bundle_apis', help: 'APIs in the bundle being served', registers, aggregator: 'max' });
    this.bundleKeys = new Gauge({ name: 'mtlsgate_bundle_keys', help: 'Keys in the bundle being served', registers, aggregator: 'max' });
    const self = this;
    new Gauge({
      name: 'mtlsgate_bundle_age_seconds',
      help: 'Seconds since the bundle being served was loaded',
      registers,
      aggregator: 'max',
      collect() {
        if (self.bundle) this.set((Date.now() - self.bundle.loadedAt.getTime()) / 1000);
      },
    });
    if (opts.inFlight) {
      const inFlight = opts.inFlight;
      new Gauge({
        name: 'mtlsgate_requests_in_flight',
        help: 'Requests being processed right now',
        registers,
        collect() {
          this.set(inFlight());
        },
      });
    }
    if (opts.worker !== undefined) {
      // Read from the requests counter at scrape time: the request path pays nothing for it.
      const worker = String(opts.worker);
      const requests = this.requests;
      new Counter({
        name: 'mtlsgate_worker_requests_total',
        help: 'Requests answered by each worker of `serve --workers N`',
        labelNames: ['worker'],
        registers,
        async collect() {
          let total = 0;
          for (const v of (await requests.get()).values) total += v.value;
          this.reset();
          this.labels(worker).inc(total);
        },
      });
    }
    if (opts.processMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'mtlsgate_' });
  }

  observeRequest(r: RequestOutcome): void {
    const api = r.api ?? NO_API;
    const code = r.code ?? NO_CODE;
    const key = `${api}\u0000${r.status}\u0000${code}`;
    let counter = this.counterChildren.get(key);
    if (counter === undefined) {
      counter = this.requests.labels(api, String(r.status), code);
      this.counterChildren.set(key, counter);
    }
    counter.inc();
    let histogram = this.durationChildren.get(api);
    if (histogram === undefined) {
      histogram = this.duration.labels(api);
      this.durationChildren.set(api, histogram);
    }
    histogram.observe(r.durationMs / 1000);
  }

  bundleLoaded(info: LoadedBundleInfo, initial: boolean): void {
    this.bundle = info;
    this.bundleInfo.reset();
    this.bundleInfo.labels(info.digest).set(1);
    this.bundleApis.set(info.apis);
    this.bundleKeys.set(info.keys);
    if (!initial) this.reloads.labels('ok').inc();
  }

  reloadFailed(): void {
    this.reloads.labels('failed').inc();
  }

  /** Prometheus text exposition and its content type. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
