// `mtlsgate serve`: the runtime. Flags, each also read from MTLSGATE_<FLAG> (flags win), are
// turned into a RuntimeConfig; runtime/supervisor.ts does the rest.
import cluster from 'node:cluster';
import type { KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { readPublicKey } from '../../bundle/sign.ts';
import { redactUrl } from '../../runtime/redact.ts';
import { UsageError, type Command } from '../command.ts';
import { envName, flagsWithEnv, parseDuration, type Sourced } from '../flags.ts';
import { verbosity } from '../output.ts';
import { createLogger, isLogLevel, LOG_LEVELS, type LogLevel } from '../../runtime/log.ts';
import { runUntilSignalled } from '../../runtime/signals.ts';
import { runPrimary } from '../../runtime/cluster/primary.ts';
import { runWorker } from '../../runtime/cluster/worker.ts';
import type { MinBodyRate } from '../../runtime/body-watch.ts';
import { DEFAULT_MIN_BODY_RATE } from '../../runtime/gateway.ts';
import { startGateway, StartupError, type HostPort, type RuntimeConfig } from '../../runtime/supervisor.ts';
import type { TlsFiles } from '../../runtime/tls-credentials.ts';
import { certHeaderSpec } from '../../runtime/client-cert-header.ts';
import { splitCidrs, TrustedProxies } from '../../runtime/trusted-proxies.ts';
import { errnoMessage } from '../../common/errno.ts';

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
  --min-body-rate BYTES|off  a request body slower than this many bytes per second, averaged
                             over the body so far: 408 client.body_too_slow (or the stream
                             cut), the upstream request aborted (default 240; gRPC exempt)
                                                                      MTLSGATE_MIN_BODY_RATE
  --min-body-rate-grace DURATION  the rate is checked from this long after the body starts
                             (default 5s)                             MTLSGATE_MIN_BODY_RATE_GRACE
  --max-connections N        open connections at most; more are closed at accept (default 10000)
                                                                      MTLSGATE_MAX_CONNECTIONS
  --max-connections-per-address N  per client address (default 256)   MTLSGATE_MAX_CONNECTIONS_PER_ADDRESS
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
  'allow-insecure-http-bundle': { type: 'boolean' },
  listen: { type: 'string' },
  admin: { type: 'string' },
  'client-cert-header': { type: 'string' },
  'trusted-proxies': { type: 'string' },
  'listen-plain': { type: 'string' },
  'upstream-timeout': { type: 'string' },
  'client-idle-timeout': { type: 'string' },
  'min-body-rate': { type: 'string' },
  'min-body-rate-grace': { type: 'string' },
  'drain-timeout': { type: 'string' },
  'max-connections': { type: 'string' },
  'max-connections-per-address': { type: 'string' },
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
export const SERVE_ENV = (Object.keys(OPTIONS) as FlagName[]).map(envName);

export { envName };

/**
 * "127.0.0.1:8443", "[::1]:8443", "localhost:0", ":8443" (all interfaces), "8443" (loopback).
 * `example` is the flag's own default, shown in the error (the admin port is not the gateway's).
 */
export function parseHostPort(value: string, flag: string, orOff = false, example = '127.0.0.1:8443'): HostPort {
  const text = value.trim();
  const m = /^(?:(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):)?(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    const examplePort = example.slice(example.lastIndexOf(':') + 1);
    throw new UsageError(`${flag} must be HOST:PORT (e.g. ${example} or [::1]:${examplePort})${orOff ? ' or off' : ''}, not ${JSON.stringify(value)}`);
  }
  if (m[1] !== undefined) return { host: m[1], port };
  if (m[2] === undefined) return { host: '127.0.0.1', port }; // a bare port: loopback, the safe default
  return { host: m[2] === '' ? '0.0.0.0' : m[2], port };
}

/** A duration flag (or its variable) in milliseconds; `fallback` when neither is set. */
export function parseMs(value: Sourced | undefined, fallback: number): number {
  return value === undefined ? fallback : parseDuration(value.value, value.source);
}

/** A count flag (or its variable): a positive whole number; `fallback` when neither is set. */
export function parseCount(value: Sourced | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value.value.trim());
  if (!/^\d+$/.test(value.value.trim()) || !Number.isSafeInteger(n) || n <= 0)
    throw new UsageError(`${value.source} must be a positive whole number, not ${JSON.stringify(value.value)}`);
  return n;
}

/** --min-body-rate (bytes per second, or off) with --min-body-rate-grace; Kestrel's 240 after 5 s by default. */
export function parseMinBodyRate(rate: Sourced | undefined, grace: Sourced | undefined): MinBodyRate | null {
  const graceMs = parseMs(grace, DEFAULT_MIN_BODY_RATE.graceMs);
  if (rate === undefined) return { bytesPerSecond: DEFAULT_MIN_BODY_RATE.bytesPerSecond, graceMs };
  const text = rate.value.trim();
  if (text === 'off') return null;
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n <= 0)
    throw new UsageError(`${rate.source} must be a number of bytes per second (e.g. 240) or off, not ${JSON.stringify(rate.value)}`);
  return { bytesPerSecond: n, graceMs };
}

/** --log-level, else -q (warn) / -v (debug), else info. */
export function parseLogLevel(value: string | undefined, source = '--log-level'): LogLevel {
  const level = value ?? (verbosity() < 0 ? 'warn' : verbosity() > 0 ? 'debug' : 'info');
  if (!isLogLevel(level)) throw new UsageError(`${source} must be one of ${LOG_LEVELS.join(', ')}, not ${JSON.stringify(level)}`);
  return level;
}

/** --workers: a count from 1 to 256, or auto (one per core this process may use). */
export function parseWorkers(value: Sourced | undefined): number {
  if (value === undefined) return 1;
  const text = value.value.trim();
  if (text === 'auto') return availableParallelism();
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n > 256)
    throw new UsageError(`${value.source} must be a number of workers from 1 to 256 or auto, not ${JSON.stringify(value.value)}`);
  return n;
}

/** MTLSGATE_ALLOW_EMPTY, MTLSGATE_ALLOW_INSECURE_HTTP_BUNDLE: 1/true/yes or 0/false/no. */
function envBoolean(env: NodeJS.ProcessEnv, flag: string): boolean {
  const name = envName(flag);
  const v = env[name];
  if (v === undefined || v === '') return false;
  if (/^(1|true|yes)$/i.test(v)) return true;
  if (/^(0|false|no)$/i.test(v)) return false;
  throw new UsageError(`${name} must be 1 or 0 (true or false), not ${JSON.stringify(v)}`);
}

/**
 * --tls-cert/--tls-key: each flag may be repeated, the Nth cert going with the Nth key; without
 * the flags, MTLSGATE_TLS_CERT/MTLSGATE_TLS_KEY give one pair. [] when neither names a cert.
 */
function tlsFiles(values: { 'tls-cert'?: string[]; 'tls-key'?: string[] }, env: NodeJS.ProcessEnv): TlsFiles[] {
  const fromEnv = (flag: 'tls-cert' | 'tls-key'): string[] => {
    const v = env[envName(flag)];
    return v === undefined || v === '' ? [] : [v];
  };
  const certs = values['tls-cert'] ?? fromEnv('tls-cert');
  const keys = values['tls-key'] ?? fromEnv('tls-key');
  if (certs.length === 0 || keys.length === 0) return [];
  if (certs.length !== keys.length) {
    const times = (n: number) => (n === 1 ? 'once' : `${n} times`);
    throw new UsageError(
      `--tls-cert is given ${times(certs.length)} and --tls-key ${times(keys.length)}: give them in pairs, each certificate with its key, in order`,
    );
  }
  return certs.map((certFile, i) => ({ certFile, keyFile: keys[i] }));
}

/**
 * --client-cert-header, --trusted-proxies, --listen-plain: all or none of the first two, and
 * the third only with them; each value checked here so a mistake is a usage error naming its source.
 */
function certHeaderFlags(v: Partial<Record<FlagName, Sourced>>): Pick<RuntimeConfig, 'clientCertHeader' | 'trustedProxies' | 'listenPlain'> {
  const header = v['client-cert-header'];
  const proxies = v['trusted-proxies'];
  const plain = v['listen-plain'];
  if (header === undefined && proxies === undefined && plain === undefined) return {};
  if (header === undefined || proxies === undefined) {
    const given = [header, proxies, plain].filter((x) => x !== undefined).map((x) => x!.source);
    throw new UsageError(`${given.join(' and ')} needs --client-cert-header and --trusted-proxies together: the header is believed only from those addresses`);
  }
  try {
    certHeaderSpec(header.value);
  } catch (err) {
    throw new UsageError(`${header.source}: ${(err as Error).message}`);
  }
  const cidrs = splitCidrs(proxies.value);
  try {
    new TrustedProxies(cidrs);
  } catch (err) {
    throw new UsageError(`${proxies.source}: ${(err as Error).message}`);
  }
  return {
    clientCertHeader: header.value,
    trustedProxies: cidrs,
    listenPlain: plain === undefined ? null : parseHostPort(plain.value, plain.source, false, '0.0.0.0:8080'),
  };
}

/** Parses serve's flags and environment into a RuntimeConfig (minus the logger). */
export function serveConfig(argv: string[], env: NodeJS.ProcessEnv): { config: Omit<RuntimeConfig, 'logger'>; logLevel: LogLevel; workers: number } {
  const { values, positionals } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true });
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
      bundlePublicKey = readPublicKey(readFileSync(keyFile.value));
    } catch (err) {
      throw new UsageError(`${keyFile.source} ${keyFile.value}: ${errnoMessage(err)}`);
    }
  }
  // A plain-http bundle URL is writable by anyone on the network path: it needs a signature to
  // check, or an explicit, loudly named opt-out.
  const insecureHttp = values['allow-insecure-http-bundle'] === true || envBoolean(env, 'allow-insecure-http-bundle');
  if (/^http:\/\//i.test(v.bundle!.value) && !bundlePublicKey && !insecureHttp) {
    throw new UsageError(
      `${v.bundle!.source} ${redactUrl(v.bundle!.value)} is plain http: anyone on the network path could serve their own bundle. Use https, or sign bundles (compile --sign) and pass --bundle-public-key, or accept the risk with --allow-insecure-http-bundle`,
    );
  }
  const admin = v.admin;
  const hostPort = (x: Sourced | undefined, fallback: string, orOff = false) => parseHostPort(x?.value ?? fallback, x?.source ?? '', orOff, fallback);
  return {
    config: {
      bundle: v.bundle!.value,
      bundlePublicKey,
      tlsCertFile: tls[0].certFile,
      tlsKeyFile: tls[0].keyFile,
      moreTlsFiles: tls.slice(1),
      listen: hostPort(v.listen, '127.0.0.1:8443'),
      admin: admin?.value.trim() === 'off' ? null : hostPort(admin, '127.0.0.1:9901', true),
      upstreamTimeoutMs: parseMs(v['upstream-timeout'], 30_000),
      clientIdleTimeoutMs: parseMs(v['client-idle-timeout'], 30_000),
      minBodyRate: parseMinBodyRate(v['min-body-rate'], v['min-body-rate-grace']),
      drainTimeoutMs: parseMs(v['drain-timeout'], 10_000),
      maxConnections: parseCount(v['max-connections'], 10_000),
      maxConnectionsPerAddress: parseCount(v['max-connections-per-address'], 256),
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
