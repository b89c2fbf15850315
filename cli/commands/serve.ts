// `mtlsgate serve`: the runtime. Flags, each also read from MTLSGATE_<FLAG> (flags win), are
// turned into a RuntimeConfig; runtime/supervisor.ts does the rest.
import cluster from 'node:cluster';
import type { KeyObject } from 'node:crypto';
import { MAX_CERT_FILE_BYTES } from '../../cert/read.ts';
import { readRegularFile } from '../../common/regular-file.ts';
import { readPublicKey } from '../../bundle/sign.ts';
import { errnoMessage } from '../../common/errno.ts';
import { parseNotBefore } from '../../runtime/bundle-floor.ts';
import { runPrimary } from '../../runtime/cluster/primary.ts';
import { runWorker } from '../../runtime/cluster/worker.ts';
import { DEFAULT_HTTP2_MAX_STREAMS, HTTP2_MAX_STREAMS_LIMIT } from '../../runtime/http2.ts';
import { DEFAULT_MIN_ANSWER_RATE } from '../../runtime/gateway.ts';
import { createLogger, LOG_LEVELS, type LogLevel } from '../../runtime/log.ts';
import { credentialsRefusal } from '../../runtime/outbound-get.ts';
import { redactUrl } from '../../runtime/redact.ts';
import { runUntilSignalled } from '../../runtime/signals.ts';
import { startGateway, StartupError, type RuntimeConfig } from '../../runtime/supervisor.ts';
import { UsageError, type Command } from '../command.ts';
import { envName, flagsWithEnv, parseCount, parseHostPort, parseMs, type Sourced, parseCommandLine } from '../flags.ts';
import { certHeaderFlags, envBoolean, parseHttp2Resets, parseLogLevel, parseMinBodyRate, parseWorkers, tlsFiles } from '../serve-flags.ts';

const usage = `usage: mtlsgate serve --bundle FILE|URL --tls-cert FILE --tls-key FILE [options]

Serves the APIs of a compiled bundle over HTTPS, enforcing client mTLS and auth per API.
The bundle file is watched (in-place write, rename, symlink swap) and reloaded when it changes;
a URL is polled with ETag. A bundle that fails to verify is refused and the old one serves on.
The --tls-cert/--tls-key files are watched too: a renewed pair is served without a restart.
SIGHUP reloads the bundle and the server certificates; SIGTERM/SIGINT drain and exit 0.

Options (each also from the environment variable shown; a flag wins over its variable):
  --bundle FILE|URL          the compiled bundle                      MTLSGATE_BUNDLE
  --tls-cert FILE            server certificate chain (PEM)           MTLSGATE_TLS_CERT
  --tls-key FILE             server private key (PEM)                 MTLSGATE_TLS_KEY
                             Give both several times for one certificate per host (pairs,
                             in order): the handshake serves the pair whose SAN matches the
                             SNI (*.example.com covers one label), the first when none does
  --bundle-public-key FILE   serve only bundles signed by this Ed25519 key (\`mtlsgate keygen\`,
                             \`compile --sign\`); others are refused, the old one serves on
                                                                      MTLSGATE_BUNDLE_PUBLIC_KEY
  --bundle-not-before TIME   with --bundle-public-key: refuse a bundle signed before TIME
                             (ISO-8601 with a zone, 2026-12-04T19:00:00Z); one signed before
                             the bundle serving is refused anyway     MTLSGATE_BUNDLE_NOT_BEFORE
  --state-dir DIR            keep across restarts the signing time of the last bundle taken
                             and the newest CRL taken per crl_url (DIR/state.json, no secret):
                             a restart refuses anything older         MTLSGATE_STATE_DIR
  --allow-insecure-http-bundle  accept an http:// bundle URL without --bundle-public-key
                             (INSECURE: anyone on the path can serve their own bundle)
                                                                      MTLSGATE_ALLOW_INSECURE_HTTP_BUNDLE=1
  --listen HOST:PORT         HTTPS listener (default 127.0.0.1:8443)  MTLSGATE_LISTEN
  --admin HOST:PORT|off      /health, /ready, /live, /metrics (HTTP)  MTLSGATE_ADMIN
                             (default 127.0.0.1:9901; off = none)
  --client-cert-header client-cert|xfcc|NAME  behind a TLS-terminating load balancer: take
                             the client certificate from this header (RFC 9440 Client-Cert,
                             Envoy X-Forwarded-Client-Cert, or URL-encoded PEM in NAME, e.g.
                             x-amzn-mtls-clientcert) on requests from --trusted-proxies; from
                             other addresses the header is removed    MTLSGATE_CLIENT_CERT_HEADER
  --trusted-proxies CIDR,... the load balancers' addresses (IPv4/IPv6 CIDR or address)
                                                                      MTLSGATE_TRUSTED_PROXIES
  --listen-plain HOST:PORT   plain-HTTP listener for those load balancers only (others: 403
                             request.untrusted_proxy)                 MTLSGATE_LISTEN_PLAIN
  --upstream-timeout DURATION  upstream slower than this: 504 (default 30s)
                                                                      MTLSGATE_UPSTREAM_TIMEOUT
  --client-idle-timeout DURATION  a request body that sends nothing, or an answer the client
                             reads nothing of, for this long: 408 client.idle_timeout (or the
                             stream cut), the upstream request aborted (default 30s)
                                                                      MTLSGATE_CLIENT_IDLE_TIMEOUT
  --websocket-idle-timeout DURATION  an open WebSocket tunnel with no byte either way for this
                             long is closed (default 5m)              MTLSGATE_WEBSOCKET_IDLE_TIMEOUT
  --min-body-rate BYTES|off  a request body slower than this many bytes per second over the
                             last grace period: 408 client.body_too_slow (or the stream cut),
                             the upstream request aborted (default 240; gRPC exempt)
                                                                      MTLSGATE_MIN_BODY_RATE
  --min-body-rate-grace DURATION  the rate is checked from this long after the body starts, over
                             windows this long (default 5s)           MTLSGATE_MIN_BODY_RATE_GRACE
  --min-answer-rate BYTES|off  an answer whose client, once bytes wait for it, takes them slower
                             than this many bytes per second (after the grace): its connection
                             (HTTP/2: stream) cut, the upstream request aborted, logged
                             client.answer_too_slow (default 4096)   MTLSGATE_MIN_ANSWER_RATE
  --min-answer-rate-grace DURATION  time added to what the waiting bytes take at that rate
                             (default 5s)                             MTLSGATE_MIN_ANSWER_RATE_GRACE
  --max-connections N        open connections at most; more are closed at accept (default 10000)
                                                                      MTLSGATE_MAX_CONNECTIONS
  --max-connections-per-address N  per client address (default 256)   MTLSGATE_MAX_CONNECTIONS_PER_ADDRESS
  --http2-max-streams N      HTTP/2 streams open at once per connection (SETTINGS_MAX_CONCURRENT_
                             STREAMS; default 100, at most 4294967295); a client opening more
                             has them refused                         MTLSGATE_HTTP2_MAX_STREAMS
  --http2-max-resets N       streams an HTTP/2 client may reset before they are answered, within
                             a second of opening them (rapid reset, CVE-2023-44487), per
                             --http2-reset-period; one more closes its connection (GOAWAY
                             ENHANCE_YOUR_CALM). Default 100, at least 1: there is no off
                                                                      MTLSGATE_HTTP2_MAX_RESETS
  --http2-reset-period DURATION  the budget refills at --http2-max-resets per this long
                             (default 1m, at least 1s)                MTLSGATE_HTTP2_RESET_PERIOD
  --drain-timeout DURATION   SIGTERM waits this long for requests in flight (default 10s)
                                                                      MTLSGATE_DRAIN_TIMEOUT
  --poll-interval DURATION   URL bundle poll interval (default 5s)    MTLSGATE_POLL_INTERVAL
  --redis URL                shared rate limits (redis://, rediss://, redis+cluster://)
                                                                      MTLSGATE_REDIS
  --redis-timeout DURATION   a slower Redis decision is decided by --on-limiter-error
                             (default 50ms)                           MTLSGATE_REDIS_TIMEOUT
  --on-limiter-error allow|deny  (default allow)                      MTLSGATE_ON_LIMITER_ERROR
  --crl-refresh DURATION     crl_urls: refetch at least this often, sooner at a CRL's nextUpdate
                             (default 5m)                             MTLSGATE_CRL_REFRESH
  --crl-stale open|closed    a crl_url CRL past nextUpdate that cannot be refreshed: keep
                             admitting its CA's certificates (open, default) or refuse them
                             with 403 mtls.revocation_unknown (closed)  MTLSGATE_CRL_STALE
  --workers N|auto           gateway processes (node:cluster); auto: one per core (default 1).
                             Limits stay exact without --redis: the primary leases tokens to
                             the workers. One admin listener for all  MTLSGATE_WORKERS
  --allow-empty              serve a bundle with no API (refused otherwise, at start and on
                             every reload)                            MTLSGATE_ALLOW_EMPTY=1
  --log-level LEVEL          ${LOG_LEVELS.join('|')} (default info; -q: warn, -v: debug)
                                                                      MTLSGATE_LOG_LEVEL
A DURATION is 500ms, 30s, 2m, 1h or 1m30s; a number without a unit is refused (30s, not 30).
An error about a value names where it came from (the flag or the variable); an MTLSGATE_*
variable serve does not know is warned about.

Exit status: 0 after a graceful stop, 2 for bad flags or a start-up failure (bundle missing
or refused, TLS files unreadable, port in use).`;

const OPTIONS = {
  bundle: { type: 'string' },
  'tls-cert': { type: 'string', multiple: true },
  'tls-key': { type: 'string', multiple: true },
  'bundle-public-key': { type: 'string' },
  'bundle-not-before': { type: 'string' },
  'state-dir': { type: 'string' },
  'allow-insecure-http-bundle': { type: 'boolean' },
  listen: { type: 'string' },
  admin: { type: 'string' },
  'client-cert-header': { type: 'string' },
  'trusted-proxies': { type: 'string' },
  'listen-plain': { type: 'string' },
  'upstream-timeout': { type: 'string' },
  'client-idle-timeout': { type: 'string' },
  'websocket-idle-timeout': { type: 'string' },
  'min-body-rate': { type: 'string' },
  'min-body-rate-grace': { type: 'string' },
  'min-answer-rate': { type: 'string' },
  'min-answer-rate-grace': { type: 'string' },
  'drain-timeout': { type: 'string' },
  'max-connections': { type: 'string' },
  'max-connections-per-address': { type: 'string' },
  'http2-max-streams': { type: 'string' },
  'http2-max-resets': { type: 'string' },
  'http2-reset-period': { type: 'string' },
  'poll-interval': { type: 'string' },
  redis: { type: 'string' },
  'redis-timeout': { type: 'string' },
  'on-limiter-error': { type: 'string' },
  'crl-refresh': { type: 'string' },
  'crl-stale': { type: 'string' },
  'log-level': { type: 'string' },
  workers: { type: 'string' },
  'allow-empty': { type: 'boolean' },
} as const;
type FlagName = keyof typeof OPTIONS;
/** Flags given at most once (the repeatable --tls-cert/--tls-key are read by tlsFiles). */
const VALUE_FLAGS = (Object.keys(OPTIONS) as FlagName[]).filter((f) => OPTIONS[f].type === 'string' && !('multiple' in OPTIONS[f]));

/** Every variable serve reads (main warns about other MTLSGATE_* ones). */
const SERVE_ENV = (Object.keys(OPTIONS) as FlagName[]).map(envName);

export { envName };

/** Parses serve's flags and environment into a RuntimeConfig (minus the logger). */
export function serveConfig(argv: string[], env: NodeJS.ProcessEnv): { config: Omit<RuntimeConfig, 'logger'>; logLevel: LogLevel; workers: number } {
  const { values, positionals } = parseCommandLine(argv, OPTIONS);
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])} (the bundle goes after --bundle)`);
  const v = flagsWithEnv(values, VALUE_FLAGS, env);
  const tls = tlsFiles(values, env);
  const given = (f: 'bundle' | 'tls-cert' | 'tls-key') => (f === 'bundle' ? v.bundle !== undefined : (values[f] ?? []).length > 0 || !!env[envName(f)]);
  const missing = (['bundle', 'tls-cert', 'tls-key'] as const).filter((f) => !given(f));
  if (missing.length > 0) {
    throw new UsageError(`missing ${missing.map((f) => `--${f} (or ${envName(f)})`).join(', ')}`);
  }
  const onError = v['on-limiter-error'];
  if (onError && onError.value !== 'allow' && onError.value !== 'deny')
    throw new UsageError(`${onError.source} must be allow or deny, not ${JSON.stringify(onError.value)}`);
  const crlStale = v['crl-stale'];
  if (crlStale && crlStale.value !== 'open' && crlStale.value !== 'closed')
    throw new UsageError(`${crlStale.source} must be open or closed, not ${JSON.stringify(crlStale.value)}`);
  const behindProxy = certHeaderFlags(v);
  let bundlePublicKey: KeyObject | undefined;
  const keyFile = v['bundle-public-key'];
  if (keyFile !== undefined) {
    try {
      bundlePublicKey = readPublicKey(readRegularFile(keyFile.value, MAX_CERT_FILE_BYTES));
    } catch (err) {
      throw new UsageError(`${keyFile.source} ${keyFile.value}: ${errnoMessage(err)}`);
    }
  }
  const notBefore = v['bundle-not-before'];
  if (notBefore !== undefined && !bundlePublicKey)
    throw new UsageError(`${notBefore.source} orders signed bundles: it needs --bundle-public-key (or MTLSGATE_BUNDLE_PUBLIC_KEY)`);
  let bundleNotBefore: number | undefined;
  try {
    bundleNotBefore = notBefore === undefined ? undefined : parseNotBefore(notBefore.value);
  } catch (err) {
    throw new UsageError(`${notBefore!.source} ${(err as Error).message}`);
  }
  // A plain-http bundle URL is writable by anyone on the network path: it needs a signature to
  // check, or an explicit, loudly named opt-out.
  const insecureHttp = values['allow-insecure-http-bundle'] === true || envBoolean(env, 'allow-insecure-http-bundle');
  if (/^http:\/\//i.test(v.bundle!.value) && !bundlePublicKey && !insecureHttp) {
    throw new UsageError(
      `${v.bundle!.source} ${redactUrl(v.bundle!.value)} is plain http: anyone on the network path could serve their own bundle. Use https, or sign bundles (compile --sign) and pass --bundle-public-key, or accept the risk with --allow-insecure-http-bundle`,
    );
  }
  // A password in a plain-http URL crosses the network in the clear (section 49): refused, not sent.
  const credentials = credentialsRefusal(v.bundle!.value);
  if (credentials !== null) throw new UsageError(`${v.bundle!.source} ${credentials}`);
  const admin = v.admin;
  const hostPort = (x: Sourced | undefined, fallback: string, orOff = false) => parseHostPort(x?.value ?? fallback, x?.source ?? '', orOff, fallback);
  return {
    config: {
      bundle: v.bundle!.value,
      bundlePublicKey,
      bundleNotBefore,
      stateDir: v['state-dir']?.value,
      tlsCertFile: tls[0].certFile,
      tlsKeyFile: tls[0].keyFile,
      moreTlsFiles: tls.slice(1),
      listen: hostPort(v.listen, '127.0.0.1:8443'),
      admin: admin?.value.trim() === 'off' ? null : hostPort(admin, '127.0.0.1:9901', true),
      upstreamTimeoutMs: parseMs(v['upstream-timeout'], 30_000),
      clientIdleTimeoutMs: parseMs(v['client-idle-timeout'], 30_000),
      websocketIdleTimeoutMs: parseMs(v['websocket-idle-timeout'], 300_000),
      minBodyRate: parseMinBodyRate(v['min-body-rate'], v['min-body-rate-grace']),
      minAnswerRate: parseMinBodyRate(v['min-answer-rate'], v['min-answer-rate-grace'], DEFAULT_MIN_ANSWER_RATE),
      drainTimeoutMs: parseMs(v['drain-timeout'], 10_000),
      maxConnections: parseCount(v['max-connections'], 10_000),
      maxConnectionsPerAddress: parseCount(v['max-connections-per-address'], 256),
      http2MaxStreams: parseCount(v['http2-max-streams'], DEFAULT_HTTP2_MAX_STREAMS, HTTP2_MAX_STREAMS_LIMIT),
      ...parseHttp2Resets(v['http2-max-resets'], v['http2-reset-period']),
      pollIntervalMs: parseMs(v['poll-interval'], 5_000),
      redisUrl: v.redis?.value,
      redisTimeoutMs: v['redis-timeout'] === undefined ? undefined : parseMs(v['redis-timeout'], 50),
      onLimiterError: (onError?.value ?? 'allow') as 'allow' | 'deny',
      crlRefreshMs: parseMs(v['crl-refresh'], 300_000),
      crlStale: (crlStale?.value ?? 'open') as 'open' | 'closed',
      allowEmpty: values['allow-empty'] === true || envBoolean(env, 'allow-empty'),
      ...behindProxy,
    },
    logLevel: parseLogLevel(v['log-level']?.value, v['log-level']?.source),
    workers: parseWorkers(v.workers),
  };
}

export const command: Command = {
  name: 'serve',
  summary: 'run the HTTPS gateway for a compiled bundle (hot reload, /health, /ready, /metrics)',
  usage,
  env: SERVE_ENV,
  async run(argv) {
    const { config, logLevel, workers } = serveConfig(argv, process.env);
    if (workers > 1) return runCluster(config, logLevel, workers);
    const logger = createLogger({ level: logLevel });
    let running;
    try {
      running = await startGateway({ ...config, logger });
    } catch (err) {
      if (err instanceof StartupError) {
        logger.fatal({ error: err.message }, 'mtlsgate cannot start');
        logger.flush();
        console.error(`mtlsgate serve: ${err.message}`);
        return 2;
      }
      throw err;
    }
    await runUntilSignalled(running, logger);
    logger.flush();
    // Everything is closed; if some library still holds a handle, do not hang on it.
    setTimeout(() => process.exit(0), 1_000).unref();
    return 0;
  },
};

/** --workers N > 1: this process is the primary (forks the workers) or one of the workers
 *  (cluster.fork runs this same command line again). */
async function runCluster(config: Omit<RuntimeConfig, 'logger'>, logLevel: LogLevel, workers: number): Promise<number> {
  let code: number;
  if (cluster.isPrimary) {
    // The primary and the workers all write to the stdout they share, in whole lines.
    const logger = createLogger({ level: logLevel, sharedStdout: true });
    code = await runPrimary({
      workers,
      admin: config.admin,
      drainTimeoutMs: config.drainTimeoutMs,
      onLimiterError: config.onLimiterError,
      redisUrl: config.redisUrl,
      stateDir: config.stateDir,
      bundlePublicKey: config.bundlePublicKey,
      logger,
    });
    logger.flush();
  } else {
    const logger = createLogger({ level: logLevel, fields: { worker: cluster.worker!.id }, sharedStdout: true });
    code = await runWorker(config, logger);
    logger.flush();
  }
  setTimeout(() => process.exit(code), 1_000).unref();
  return code;
}
