// Starts one gateway process: reads the server's TLS credentials and the bundle, starts the
// TLS gateway and the admin listener, follows the bundle source (runtime/bundle-source.ts),
// and stops in order. `serve` and `demo` both run through here; runtime/signals.ts wires the
// process's signals to `reload` and `stop`.
import type { KeyObject } from 'node:crypto';
import type { VerifiedSignature } from '../bundle/sign.ts';
import type { AddressInfo } from 'node:net';
import { healthReport, startAdmin, type AdminServer, type HealthReport } from './admin.ts';
import type { MinAnswerRate, MinBodyRate } from './body-watch.ts';
import { followBundle, readInitialBundle, type BundleSource, type InitialBundle } from './bundle-source.ts';
import { createGateway, type Gateway, type RequestRecord } from './gateway.ts';
import { createLimiter, type Limiter } from './limits/index.ts';
import { logRequest, type Logger } from './log.ts';
import { GatewayMetrics } from './metrics.ts';
import { isLoopback, redactUrl } from './redact.ts';
import { buildCompactSnapshot, buildShardedSnapshot, buildSnapshot, type Snapshot } from './snapshot.ts';
import { BundleStore } from './store.ts';
import { closeAllUpstreams } from './upstreams.ts';
import { startCrlFetcher } from './crl-fetcher.ts';
import { registerPkiMetrics, revocationHealth, soonestExpiring, type ExpiringCertificate } from './pki-status.ts';
import { crlStore, type StalePolicy } from './revocation.ts';
import { applyPeerFloors, offerPeerCrls, type PeerTaken, withPeerFloors } from './peer-floors.ts';
import { serverCertWarnings } from './server-cert.ts';
import { type StartState, startState, type StateRecorder } from './state-file.ts';
import { readTlsPairs, type TlsFiles } from './tls-credentials.ts';
import { followTlsFiles } from './tls-follow.ts';
import { CertHeaderReader, certHeaderSpec } from './client-cert-header.ts';
import { TrustedProxies } from './trusted-proxies.ts';
import { VERSION } from './version.ts';

export interface HostPort {
  host: string;
  port: number;
}

export interface RuntimeConfig {
  /** A file path, or an http(s):// URL polled every pollIntervalMs. */
  bundle: string;
  tlsCertFile: string;
  tlsKeyFile: string;
  /** Further --tls-cert/--tls-key pairs, in order, chosen by SNI (the pair above is the default). */
  moreTlsFiles?: TlsFiles[];
  listen: HostPort;
  /** null = no admin listener. */
  admin: HostPort | null;
  /** `--max-connections` (default 10,000) and `--max-connections-per-address` (default 256). */
  maxConnections?: number;
  maxConnectionsPerAddress?: number;
  /** `--http2-max-streams` (default 100): HTTP/2 streams open at once per connection. */
  http2MaxStreams?: number;
  /** `--http2-max-resets` per `--http2-reset-period` (default 100 per minute): the rapid-reset budget of an HTTP/2 connection. */
  http2MaxResets?: number;
  http2ResetPeriodMs?: number;
  /** `--bundle-public-key`: only bundles signed by this Ed25519 key are served (bundle/sign.ts). */
  bundlePublicKey?: KeyObject;
  upstreamTimeoutMs?: number;
  /** `--client-idle-timeout` (default 30000): a stalled request body or unread answer is cut. */
  clientIdleTimeoutMs?: number;
  /** `--websocket-idle-timeout` (default 300000): a tunnel idle both ways this long is closed. */
  websocketIdleTimeoutMs?: number;
  /** `--min-body-rate` with `--min-body-rate-grace` (default 240 bytes/s after 5 s; null: off). */
  minBodyRate?: MinBodyRate | null;
  /** `--min-answer-rate` with `--min-answer-rate-grace` (default 4,096 bytes/s after 5 s; null: off). */
  minAnswerRate?: MinAnswerRate | null;
  drainTimeoutMs: number;
  pollIntervalMs: number;
  redisUrl?: string;
  redisTimeoutMs?: number;
  onLimiterError: 'allow' | 'deny';
  /** crl_urls: longest wait between two fetches of one URL (default 300000). */
  crlRefreshMs?: number;
  /** A crl_url CRL stale and not refreshable: refuse its CA's certificates (closed) or not (open, default). */
  crlStale?: StalePolicy;
  logger: Logger;
  /** File watch debounce; default 50 ms. */
  watchDebounceMs?: number;
  /** Serve a bundle with no API (refused by default, at start and on reload). */
  allowEmpty?: boolean;
  /** `serve --workers N`: this process is cluster worker N (runtime/cluster/worker.ts). */
  worker?: number;
  /** A limiter made elsewhere (a cluster worker's lease limiter); else one from redisUrl. */
  limiter?: Limiter;
  /** --client-cert-header: client-cert, xfcc or a header name (runtime/client-cert-header.ts); needs trustedProxies. */
  clientCertHeader?: string;
  /** --trusted-proxies: CIDR ranges whose requests carry the client certificate in clientCertHeader. */
  trustedProxies?: string[];
  /** --listen-plain: a plain-HTTP listener for those proxies only. */
  listenPlain?: HostPort | null;
  /** `--state-dir`: the floors kept across restarts (runtime/state-file.ts). */
  stateDir?: string;
  /** `--bundle-not-before` (ms since the epoch): a bundle signed earlier is refused (needs bundlePublicKey). */
  bundleNotBefore?: number;
  /** A cluster worker: what it takes goes to the primary, which writes the state file; else this process writes it. */
  stateRecorder?: StateRecorder;
  /** A cluster worker: what the other workers took before it started (its floors from the start). */
  peerTaken?: readonly PeerTaken[];
  /** A cluster worker: the primary's directory large CRLs are handed over in (runtime/cluster/crl-files.ts). */
  crlDir?: string;
}

/** A start-up failure the user can fix (bad bundle, unreadable TLS file, busy port): exit 2. */
export class StartupError extends Error {
  override name = 'StartupError';
}

export interface RunningGateway {
  gatewayAddress: AddressInfo;
  adminAddress: AddressInfo | null;
  /** --listen-plain's address, or null. */
  plainAddress: AddressInfo | null;
  /** SIGHUP: the server certificate/key and the bundle, from their sources. */
  reload(): Promise<void>;
  /** SIGTERM: stop accepting, let in-flight requests finish (bounded), close everything. */
  stop(reason: string): Promise<void>;
  /** What /health reports for this process. */
  health(): HealthReport;
  /** The N soonest-expiring certificates of the bundle being served. */
  expiring(limit: number): ExpiringCertificate[];
  /** --workers: what another worker took (runtime/peer-floors.ts). */
  raiseFloors(taken: PeerTaken): void;
  metrics: GatewayMetrics;
}

/** Every --tls-cert/--tls-key pair, the default first. */
function tlsFilesOf(cfg: RuntimeConfig): TlsFiles[] {
  return [{ certFile: cfg.tlsCertFile, keyFile: cfg.tlsKeyFile }, ...(cfg.moreTlsFiles ?? [])];
}

function listenError(what: string, at: HostPort, err: NodeJS.ErrnoException): StartupError {
  const where = `${at.host}:${at.port}`;
  if (err.code === 'EADDRINUSE')
    return new StartupError(`cannot listen on ${where} (${what}): the address is already in use; pick another with the flag or stop the other process`);
  if (err.code === 'EACCES') return new StartupError(`cannot listen on ${where} (${what}): permission denied (ports below 1024 need privileges)`);
  if (err.code === 'EADDRNOTAVAIL') return new StartupError(`cannot listen on ${where} (${what}): no such local address`);
  return new StartupError(`cannot listen on ${where} (${what}): ${err.message}`);
}

/** The certificate-header reader the flags ask for, or undefined; StartupError on a flag it cannot use. */
function certHeaderOf(cfg: RuntimeConfig): CertHeaderReader | undefined {
  const wanted = cfg.clientCertHeader !== undefined || cfg.trustedProxies !== undefined || (cfg.listenPlain ?? null) !== null;
  if (!wanted) return undefined;
  if (cfg.clientCertHeader === undefined || cfg.trustedProxies === undefined)
    throw new StartupError(
      '--client-cert-header and --trusted-proxies go together (and --listen-plain needs both): the header is only believed from those addresses',
    );
  let spec;
  try {
    spec = certHeaderSpec(cfg.clientCertHeader);
  } catch (err) {
    throw new StartupError(`--client-cert-header: ${(err as Error).message}`);
  }
  try {
    return new CertHeaderReader(spec, new TrustedProxies(cfg.trustedProxies));
  } catch (err) {
    throw new StartupError(`--trusted-proxies: ${(err as Error).message}`);
  }
}

export async function startGateway(cfg: RuntimeConfig): Promise<RunningGateway> {
  const log = cfg.logger;
  const certHeader = certHeaderOf(cfg);
  const everyone = certHeader?.trusted.everyone() ?? [];
  if (everyone.length > 0)
    log.warn(
      { trusted_proxies: everyone },
      `--trusted-proxies ${everyone.join(',')} trusts every address: any client that reaches the gateway is taken for the load balancer, and the ${certHeader!.spec.header} header it sends makes it whoever that certificate names, whatever its own TLS handshake showed; name the load balancers' addresses instead`,
    );
  const tlsFiles = tlsFilesOf(cfg);
  let tlsPairs;
  try {
    tlsPairs = await readTlsPairs(tlsFiles);
  } catch (err) {
    throw new StartupError((err as Error).message);
  }
  const [tls, ...moreTls] = tlsPairs;
  let initial: InitialBundle;
  try {
    initial = await readInitialBundle(cfg.bundle);
  } catch (err) {
    throw new StartupError((err as Error).message);
  }
  let state: StartState;
  try {
    const own = await startState(cfg.stateDir, cfg.bundleNotBefore, cfg.stateRecorder, (error) =>
      log.error({ error }, 'state not saved: after a restart, the floors it holds may be older than what this process took'),
    );
    state = withPeerFloors(own, cfg.peerTaken);
  } catch (err) {
    throw new StartupError((err as Error).message);
  }
  // Before the first snapshot: building it names the crl_urls, whose floors these are.
  crlStore.floors = state.crlFloors;
  // How the bundle's source is shown (/health, every log line, errors): a URL without its
  // query string or userinfo, which may hold a secret (a presigned link, user:password@).
  const shown = redactUrl(cfg.bundle);
  const recordSigned = (s: VerifiedSignature) => {
    if (s.signedAt !== null) state.recorder?.bundleTaken({ signedAt: s.signedAt, digest: s.digest, keyId: s.keyId, signature: s.signature });
  };
  let store: BundleStore<Snapshot>;
  try {
    const options = {
      buildCompact: buildCompactSnapshot,
      buildSharded: buildShardedSnapshot,
      allowEmpty: cfg.allowEmpty,
      publicKey: cfg.bundlePublicKey,
      floor: state.floor,
      onSigned: recordSigned,
    };
    store = initial.shards
      ? await BundleStore.createSharded(initial.bytes, shown, initial.shards, buildSnapshot, options)
      : BundleStore.create(initial.bytes, shown, buildSnapshot, options);
  } catch (err) {
    throw new StartupError(`bundle ${shown} refused: ${(err as Error).message}`);
  }
  const initialSignature = store.info().signature;
  if (initialSignature !== null) recordSigned(initialSignature);

  let gateway: Gateway | null = null;
  let draining = false;
  const metrics = new GatewayMetrics({ inFlight: () => gateway?.inFlight() ?? 0, worker: cfg.worker });
  metrics.bundleLoaded(store.info(), true);
  crlStore.policy = cfg.crlStale ?? 'open';
  registerPkiMetrics(metrics.registry, () => store.current(), crlStore);
  const crls = startCrlFetcher({
    snapshot: () => store.current(),
    intervalMs: cfg.crlRefreshMs,
    onEvent: (e) => {
      if (e.result === 'updated') {
        log.info({ crl_url: e.url, entries: e.entries }, e.fromPeer ? 'CRL updated (the copy another worker fetched)' : 'CRL updated');
        if (e.taken !== undefined) state.recorder?.crlTaken(e.url, e.taken, e.bytes, e.issuer);
      } else if (e.result === 'error') log.warn({ crl_url: e.url, error: e.detail }, 'CRL refresh failed; the previous list stays in use until its nextUpdate');
    },
  });
  // Synchronously, before this worker's own first fetch can answer (and before it listens).
  offerPeerCrls(cfg.peerTaken, crls, cfg.crlDir);

  let limiter: Limiter;
  try {
    limiter =
      cfg.limiter ??
      createLimiter({
        redisUrl: cfg.redisUrl,
        redisTimeoutMs: cfg.redisTimeoutMs,
        onError: cfg.onLimiterError,
        registry: metrics.registry,
        logger: log,
      });
  } catch (err) {
    throw new StartupError(`--redis: ${(err as Error).message}`);
  }
  if (limiter.ready && !(await limiter.ready(Math.max(cfg.redisTimeoutMs ?? 0, 2_000)))) {
    log.warn({ redis: limiter.health().detail }, 'rate-limit store not reachable yet; serving, limited keys decided by --on-limiter-error');
  }

  const onRequest = (r: RequestRecord) => {
    metrics.observeRequest(r);
    logRequest(log, r);
  };
  gateway = createGateway({
    cert: tls.cert,
    key: tls.key,
    moreCertificates: moreTls,
    snapshot: () => store.current(),
    upstreamTimeoutMs: cfg.upstreamTimeoutMs,
    clientIdleTimeoutMs: cfg.clientIdleTimeoutMs,
    websocketIdleTimeoutMs: cfg.websocketIdleTimeoutMs,
    minBodyRate: cfg.minBodyRate,
    minAnswerRate: cfg.minAnswerRate,
    limiter,
    onRequest,
    maxConnections: cfg.maxConnections,
    maxConnectionsPerAddress: cfg.maxConnectionsPerAddress,
    http2MaxStreams: cfg.http2MaxStreams,
    http2MaxResets: cfg.http2MaxResets,
    http2ResetPeriodMs: cfg.http2ResetPeriodMs,
    onConnectionRefused: (reason) => metrics.connectionRefused(reason),
    certHeader,
  });

  let gatewayAddress: AddressInfo;
  try {
    gatewayAddress = await gateway.listen(cfg.listen.port, cfg.listen.host);
  } catch (err) {
    await limiter.close();
    throw listenError('--listen', cfg.listen, err as NodeJS.ErrnoException);
  }
  let plainAddress: AddressInfo | null = null;
  if (cfg.listenPlain) {
    try {
      plainAddress = await gateway.listenPlain(cfg.listenPlain.port, cfg.listenPlain.host);
    } catch (err) {
      await gateway.close(0);
      await limiter.close();
      throw listenError('--listen-plain', cfg.listenPlain, err as NodeJS.ErrnoException);
    }
  }

  const healthSources = {
    bundle: () => store.info(),
    lastReloadError: () => store.lastReloadError(),
    limiter: () => ({ ...limiter.health(), on_limiter_error: cfg.onLimiterError }),
    revocation: () => revocationHealth(crlStore),
    expiring: (limit: number) => soonestExpiring(store.current(), limit, Date.now() / 1000),
    onLimiterError: cfg.onLimiterError,
    draining: () => draining,
  };
  let admin: AdminServer | null = null;
  if (cfg.admin) {
    try {
      admin = await startAdmin(cfg.admin.host, cfg.admin.port, healthSources, metrics);
    } catch (err) {
      await gateway.close(0);
      await limiter.close();
      throw listenError('--admin', cfg.admin, err as NodeJS.ErrnoException);
    }
    // /health and /metrics are unauthenticated plain HTTP: say so when they face a network.
    if (!isLoopback(cfg.admin.host)) {
      log.warn(
        { admin: `${cfg.admin.host}:${cfg.admin.port}` },
        'the admin listener (/health, /metrics: unauthenticated, plain HTTP) is not on a loopback address; keep it off untrusted networks',
      );
    }
  }

  const source: BundleSource = await followBundle({
    source: initial.follow,
    shown,
    etag: initial.etag,
    store,
    pollIntervalMs: cfg.pollIntervalMs,
    watchDebounceMs: cfg.watchDebounceMs,
    log,
    metrics,
  });

  // Renewed certificate files are served without a SIGHUP (runtime/tls-follow.ts).
  const tlsFollower = followTlsFiles({
    files: tlsFiles,
    serving: tlsPairs,
    apply: ([first, ...more]) => gateway!.setTlsCredentials(first.cert, first.key, more),
    log,
  });

  // The default pair should name the listening host; the others are for the names SNI picks them by.
  for (const [i, pair] of tlsPairs.entries()) {
    for (const warning of serverCertWarnings(pair.cert, i === 0 ? cfg.listen.host : '')) log.warn({ tls_cert: tlsFiles[i].certFile }, warning);
  }
  log.info(
    {
      version: VERSION,
      listen: `${gatewayAddress.address}:${gatewayAddress.port}`,
      admin: admin ? `${admin.address.address}:${admin.address.port}` : null,
      ...(plainAddress === null ? {} : { listen_plain: `${plainAddress.address}:${plainAddress.port}` }),
      ...(certHeader === undefined ? {} : { client_cert_header: certHeader.spec.header, trusted_proxies: certHeader.trusted.cidrs }),
      bundle: shown,
      bundle_signature: cfg.bundlePublicKey ? 'required' : 'not checked',
      ...(store.info().signature?.signedAt != null ? { signed_at: new Date(store.info().signature!.signedAt!).toISOString() } : {}),
      ...(cfg.stateDir !== undefined ? { state_dir: cfg.stateDir } : {}),
      digest: store.info().digest,
      apis: store.info().apis,
      keys: store.info().keys,
      limiter: cfg.redisUrl ? 'redis' : cfg.worker !== undefined ? 'primary-leases' : 'in-process',
      // What limited keys get while Redis cannot decide (policies with on_limiter_error: deny are denied regardless).
      on_limiter_error: cfg.onLimiterError,
      // A cluster worker's logger already names the worker on every line (serve.ts).
    },
    // A cluster worker is one of several: the primary says "mtlsgate serving" once all are up.
    cfg.worker !== undefined ? 'worker serving' : 'mtlsgate serving',
  );

  let stopping: Promise<void> | null = null;
  return {
    gatewayAddress,
    adminAddress: admin?.address ?? null,
    plainAddress,
    metrics,
    health: () => healthReport(healthSources),
    expiring: healthSources.expiring,
    raiseFloors: (taken) => applyPeerFloors(taken, { store, crls, reloadBundle: () => source.reloadNow(), crlDir: cfg.crlDir }),
    async reload() {
      log.info({}, 'reload requested (SIGHUP): server certificate and bundle');
      await tlsFollower.reload();
      store.forceNextReload();
      await source.reloadNow();
    },
    stop(reason) {
      stopping ??= (async () => {
        draining = true;
        const inFlight = gateway!.inFlight();
        log.info({ reason, in_flight: inFlight, drain_timeout_ms: cfg.drainTimeoutMs }, 'draining: no new connections, finishing requests in flight');
        // Stop accepting first (synchronously, inside close), then wind the rest down.
        const drained = gateway!.close(cfg.drainTimeoutMs);
        crls.stop();
        await tlsFollower.close();
        await source.close();
        await drained;
        // The upstream pools' keep-alive connections: nothing will use them any more.
        await closeAllUpstreams();
        await limiter.close();
        await admin?.close();
        await state.writer?.flushed();
        log.info({ reason }, 'mtlsgate stopped');
      })();
      return stopping;
    },
  };
}
