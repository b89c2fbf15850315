// Runs one gateway process: loads the bundle, starts the TLS gateway and the admin listener,
// keeps the bundle current (file watch or URL poll), and handles SIGHUP (reload) and
// SIGTERM/SIGINT (drain, then stop). `serve` and `demo` both run through here.
import { readFile } from 'node:fs/promises';
import { createSecureContext } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { createGateway, type Gateway, type RequestRecord } from './gateway.ts';
import { buildCompactSnapshot, buildSnapshot } from './snapshot.ts';
import { createLimiter, type Limiter } from './limits/index.ts';
import { BundleStore, type ReloadResult } from './store.ts';
import { GatewayMetrics } from './metrics.ts';
import { logRequest, type Logger } from './log.ts';
import { startAdmin, type AdminServer } from './admin.ts';
import { watchFile, type FileWatch } from './watch-file.ts';
import { fetchBundle, pollUrl, type UrlPoll } from './poll-url.ts';

export interface HostPort {
  host: string;
  port: number;
}

export interface RuntimeConfig {
  /** A file path, or an http(s):// URL polled every pollIntervalMs. */
  bundle: string;
  tlsCertFile: string;
  tlsKeyFile: string;
  listen: HostPort;
  /** null = no admin listener. */
  admin: HostPort | null;
  upstreamTimeoutMs?: number;
  drainTimeoutMs: number;
  pollIntervalMs: number;
  redisUrl?: string;
  redisTimeoutMs?: number;
  onLimiterError: 'allow' | 'deny';
  logger: Logger;
  /** File watch debounce; default 50 ms. */
  watchDebounceMs?: number;
}

/** A start-up failure the user can fix (bad bundle, unreadable TLS file, busy port): exit 2. */
export class StartupError extends Error {
  override name = 'StartupError';
}

export interface RunningGateway {
  gatewayAddress: AddressInfo;
  adminAddress: AddressInfo | null;
  /** SIGHUP: the server certificate/key and the bundle, from their sources. */
  reload(): Promise<void>;
  /** SIGTERM: stop accepting, let in-flight requests finish (bounded), close everything. */
  stop(reason: string): Promise<void>;
}

export function isUrl(bundle: string): boolean {
  return /^https?:\/\//i.test(bundle);
}

async function readTlsCredentials(certFile: string, keyFile: string): Promise<{ cert: Buffer; key: Buffer }> {
  const read = async (file: string, flag: string) => {
    try {
      return await readFile(file);
    } catch (err) {
      throw new StartupError(`cannot read ${flag} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  };
  const cert = await read(certFile, '--tls-cert');
  const key = await read(keyFile, '--tls-key');
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    throw new StartupError(`--tls-cert ${certFile} and --tls-key ${keyFile} are not a usable certificate and matching private key: ${(err as Error).message}`);
  }
  return { cert, key };
}

function listenError(what: string, at: HostPort, err: NodeJS.ErrnoException): StartupError {
  const where = `${at.host}:${at.port}`;
  if (err.code === 'EADDRINUSE')
    return new StartupError(`cannot listen on ${where} (${what}): the address is already in use; pick another with the flag or stop the other process`);
  if (err.code === 'EACCES') return new StartupError(`cannot listen on ${where} (${what}): permission denied (ports below 1024 need privileges)`);
  if (err.code === 'EADDRNOTAVAIL') return new StartupError(`cannot listen on ${where} (${what}): no such local address`);
  return new StartupError(`cannot listen on ${where} (${what}): ${err.message}`);
}

async function readInitialBundle(cfg: RuntimeConfig): Promise<{ bytes: Buffer; etag: string | null }> {
  if (isUrl(cfg.bundle)) {
    try {
      const r = await fetchBundle(cfg.bundle, null, 30_000);
      if (r.status !== 'modified') throw new Error('server answered 304 to an unconditional request');
      return { bytes: r.bytes, etag: r.etag };
    } catch (err) {
      throw new StartupError((err as Error).message);
    }
  }
  try {
    return { bytes: await readFile(cfg.bundle), etag: null };
  } catch (err) {
    throw new StartupError(
      `cannot read --bundle ${cfg.bundle}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}; compile one with \`mtlsgate compile DIR -o ${cfg.bundle}\``,
    );
  }
}

export async function startGateway(cfg: RuntimeConfig): Promise<RunningGateway> {
  const log = cfg.logger;
  const tls = await readTlsCredentials(cfg.tlsCertFile, cfg.tlsKeyFile);
  const initial = await readInitialBundle(cfg);
  let store: BundleStore<ReturnType<typeof buildSnapshot>>;
  try {
    store = BundleStore.create(initial.bytes, cfg.bundle, buildSnapshot, { buildCompact: buildCompactSnapshot });
  } catch (err) {
    throw new StartupError(`bundle ${cfg.bundle} refused: ${(err as Error).message}`);
  }

  let gateway: Gateway | null = null;
  let draining = false;
  const metrics = new GatewayMetrics({ inFlight: () => gateway?.inFlight() ?? 0 });
  metrics.bundleLoaded(store.info(), true);

  let limiter: Limiter;
  try {
    limiter = createLimiter({
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
  gateway = createGateway({ cert: tls.cert, key: tls.key, snapshot: () => store.current(), upstreamTimeoutMs: cfg.upstreamTimeoutMs, limiter, onRequest });

  let gatewayAddress: AddressInfo;
  try {
    gatewayAddress = await gateway.listen(cfg.listen.port, cfg.listen.host);
  } catch (err) {
    await limiter.close();
    throw listenError('--listen', cfg.listen, err as NodeJS.ErrnoException);
  }

  let admin: AdminServer | null = null;
  if (cfg.admin) {
    const healthSources = {
      bundle: () => store.info(),
      lastReloadError: () => store.lastReloadError(),
      limiter: () => limiter.health(),
      draining: () => draining,
    };
    try {
      admin = await startAdmin(cfg.admin.host, cfg.admin.port, healthSources, metrics);
    } catch (err) {
      await gateway.close(0);
      await limiter.close();
      throw listenError('--admin', cfg.admin, err as NodeJS.ErrnoException);
    }
  }

  const report = (result: ReloadResult, source: string): boolean => {
    if (result.status === 'loaded') {
      metrics.bundleLoaded(store.info(), false);
      log.info(
        { source, digest: result.digest, previous_digest: result.previousDigest, apis: result.apis, keys: result.keys, load_ms: Math.round(result.ms) },
        'bundle reloaded',
      );
      return true;
    }
    if (result.status === 'unchanged') {
      log.debug({ source, digest: result.digest }, 'bundle unchanged');
      return true;
    }
    metrics.reloadFailed();
    log.error({ source, error: result.error.message, serving: store.info().digest }, 'bundle refused; the previous bundle keeps serving');
    return false;
  };

  // File reloads run one at a time; events during a reload coalesce into one more pass.
  let reloading: Promise<void> | null = null;
  let reloadAgain = false;
  const reloadFileOnce = async () => {
    let bytes: Buffer;
    try {
      bytes = await readFile(cfg.bundle);
    } catch (err) {
      report(store.recordFailure(`cannot read bundle file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, cfg.bundle), cfg.bundle);
      return;
    }
    // Big bundles are verified in a worker thread: requests keep flowing meanwhile.
    report(await store.reloadAsync(bytes, cfg.bundle), cfg.bundle);
  };
  const reloadFile = (): Promise<void> => {
    if (reloading) {
      reloadAgain = true;
      return reloading;
    }
    reloading = (async () => {
      do {
        reloadAgain = false;
        await reloadFileOnce();
      } while (reloadAgain);
    })().finally(() => (reloading = null));
    return reloading;
  };

  let fileWatch: FileWatch | null = null;
  let poll: UrlPoll | null = null;
  if (isUrl(cfg.bundle)) {
    poll = pollUrl(cfg.bundle, {
      intervalMs: cfg.pollIntervalMs,
      etag: initial.etag,
      onBundle: async (bytes) => report(await store.reloadAsync(bytes, cfg.bundle), cfg.bundle),
      onNotModified: () => {
        store.confirmCurrent();
        log.debug({ source: cfg.bundle }, 'bundle not modified (304)');
      },
      onError: (err) => report(store.recordFailure(err.message, cfg.bundle), cfg.bundle),
    });
  } else {
    fileWatch = watchFile(cfg.bundle, () => void reloadFile(), {
      debounceMs: cfg.watchDebounceMs,
      onError: (err) => log.error({ error: err.message }, 'bundle file watch error'),
    });
    await fileWatch.ready;
  }

  log.info(
    {
      listen: `${gatewayAddress.address}:${gatewayAddress.port}`,
      admin: admin ? `${admin.address.address}:${admin.address.port}` : null,
      bundle: cfg.bundle,
      digest: store.info().digest,
      apis: store.info().apis,
      keys: store.info().keys,
      limiter: cfg.redisUrl ? 'redis' : 'in-process',
    },
    'mtlsgate serving',
  );

  let stopping: Promise<void> | null = null;
  const running: RunningGateway = {
    gatewayAddress,
    adminAddress: admin?.address ?? null,
    async reload() {
      log.info({}, 'reload requested (SIGHUP): server certificate and bundle');
      try {
        const next = await readTlsCredentials(cfg.tlsCertFile, cfg.tlsKeyFile);
        gateway!.setTlsCredentials(next.cert, next.key);
        log.info({ tls_cert: cfg.tlsCertFile }, 'server certificate reloaded');
      } catch (err) {
        log.error({ error: (err as Error).message }, 'server certificate refused; the previous one keeps serving');
      }
      if (poll) await poll.pollNow();
      else await reloadFile();
    },
    stop(reason) {
      stopping ??= (async () => {
        draining = true;
        const inFlight = gateway!.inFlight();
        log.info({ reason, in_flight: inFlight, drain_timeout_ms: cfg.drainTimeoutMs }, 'draining: no new connections, finishing requests in flight');
        // Stop accepting first (synchronously, inside close), then wind the rest down.
        const drained = gateway!.close(cfg.drainTimeoutMs);
        poll?.close();
        await fileWatch?.close();
        await drained;
        await limiter.close();
        await admin?.close();
        log.info({ reason }, 'mtlsgate stopped');
      })();
      return stopping;
    },
  };
  return running;
}

/**
 * Wires SIGHUP to reload and SIGTERM/SIGINT to a graceful stop; resolves once stopped. A
 * second SIGTERM/SIGINT during the drain gives up waiting and exits at once (status 1).
 */
export function runUntilSignalled(running: RunningGateway, logger: Logger, onStopped?: () => Promise<void>): Promise<void> {
  return new Promise<void>((resolveStopped) => {
    let stopRequested = false;
    const onHup = () => void running.reload();
    const onStop = (signal: NodeJS.Signals) => {
      if (stopRequested) {
        logger.warn({ signal }, 'second stop signal: exiting without waiting for the drain');
        logger.flush();
        process.exit(1);
      }
      stopRequested = true;
      void running
        .stop(signal)
        .then(() => onStopped?.())
        .finally(() => {
          process.off('SIGHUP', onHup);
          process.off('SIGTERM', onStop);
          process.off('SIGINT', onStop);
          resolveStopped();
        });
    };
    process.on('SIGHUP', onHup);
    process.on('SIGTERM', onStop);
    process.on('SIGINT', onStop);
  });
}
