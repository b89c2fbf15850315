// Prometheus metrics, in a registry of our own (never prom-client's global one, so tests and
// embedders can run several gateways in one process).
//
// The per-request update is on the hot path, so a request touches no prom-client code: it
// adds to plain tallies (one Map lookup for its (api, status, code) count, one for its API's
// duration histogram), and prom-client reads them when /metrics is scraped (the requests
// counter in its collect(), the histogram through runtime/duration-histogram.ts). prom-client's
// labelled children cost ~2 µs a request in label objects, validation and hashing.
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { DurationHistogram } from './duration-histogram.ts';
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
  /** Its verified signature (serve --bundle-public-key); signedAt null for v1. */
  signature?: { signedAt: number | null } | null;
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

/** Requests answered with one (api, status, code): read into mtlsgate_requests_total at scrape time. */
interface RequestTally {
  readonly api: string;
  readonly status: string;
  readonly code: string;
  n: number;
}

/** The duration histogram's bounds (seconds). */
const DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export class GatewayMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<'api' | 'status' | 'code'>;
  private readonly duration: DurationHistogram;
  private readonly reloads: Counter<'result'>;
  private readonly refusedConnections: Counter<'reason'>;
  private readonly bundleInfo: Gauge<'digest'>;
  private readonly bundleKeys: Gauge;
  private readonly bundleApis: Gauge;
  /** Every (api, status, code) tally, in the order first seen (the order prom-client lists them in). */
  private readonly requestTallies: RequestTally[] = [];
  /** api -> its tallies: proxied by status, refused by `${status} ${code}`; no string is built for a proxied request. */
  private readonly byApi = new Map<string, { outcomes: Map<number | string, RequestTally>; duration: ReturnType<DurationHistogram['tally']> }>();
  private bundle: LoadedBundleInfo | null = null;

  /** A connection closed by a limit (runtime/tls-front.ts). */
  connectionRefused(reason: string): void {
    this.refusedConnections.labels(reason).inc();
  }

  constructor(opts: MetricsOptions = {}) {
    const registers = [this.registry];
    const tallies = this.requestTallies;
    this.requests = new Counter({
      name: 'mtlsgate_requests_total',
      help: 'Requests answered, by API id ("-" = no API matched), HTTP status and error code ("ok" = proxied)',
      labelNames: ['api', 'status', 'code'],
      registers,
      collect() {
        // The tallies hold the totals: the counter is rebuilt from them at every read.
        this.reset();
        for (const t of tallies) this.labels(t.api, t.status, t.code).inc(t.n);
      },
    });
    this.duration = new DurationHistogram(
      'mtlsgate_request_duration_seconds',
      'Time from request arrival to the end of the response, by API id',
      'api',
      DURATION_BUCKETS,
      this.registry,
    );
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
      help: 'Connections closed by a limit: max_connections, max_connections_per_address, handshake_deadline (no complete TLS handshake in time), http2_rapid_reset (HTTP/2 streams reset too fast), http2_control_flood (HTTP/2 PING, SETTINGS or PRIORITY frames sent too fast)',
      labelNames: ['reason'],
      registers,
    });
    for (const reason of ['max_connections', 'max_connections_per_address', 'handshake_deadline', 'http2_rapid_reset', 'http2_control_flood'])
      this.refusedConnections.labels(reason).inc(0);
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
    new Gauge({
      name: 'mtlsgate_bundle_signed_timestamp_seconds',
      help: 'When the bundle being served was signed (v2 signatures, serve --bundle-public-key): alert on an old one; absent when unsigned or v1',
      registers,
      aggregator: 'min',
      collect() {
        this.reset();
        const signedAt = self.bundle?.signature?.signedAt;
        if (signedAt != null) this.set(signedAt / 1000);
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
    let tallies = this.byApi.get(api);
    if (tallies === undefined) {
      tallies = { outcomes: new Map(), duration: this.duration.tally(api) };
      this.byApi.set(api, tallies);
    }
    const key = r.code === null ? r.status : `${r.status} ${r.code}`;
    let tally = tallies.outcomes.get(key);
    if (tally === undefined) {
      tally = { api, status: String(r.status), code: r.code ?? NO_CODE, n: 0 };
      tallies.outcomes.set(key, tally);
      this.requestTallies.push(tally);
    }
    tally.n++;
    this.duration.observe(tallies.duration, r.durationMs / 1000);
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
