// `mtlsgate serve`: the runtime. Flags, each also read from MTLSGATE_<FLAG> (flags win), are
// turned into a RuntimeConfig; runtime/supervisor.ts does the rest.
import { parseArgs } from 'node:util';
import { UsageError, type Command } from '../command.ts';
import { createLogger, isLogLevel, LOG_LEVELS, type LogLevel } from '../../runtime/log.ts';
import { runUntilSignalled } from '../../runtime/signals.ts';
import { startGateway, StartupError, type HostPort, type RuntimeConfig } from '../../runtime/supervisor.ts';

const usage = `usage: mtlsgate serve --bundle FILE|URL --tls-cert FILE --tls-key FILE [options]

Serves the APIs of a compiled bundle over HTTPS, enforcing client mTLS and auth per API.
The bundle file is watched (in-place write, rename, symlink swap) and reloaded when it changes;
a URL is polled with ETag. A bundle that fails to verify is refused and the old one serves on.
SIGHUP reloads the bundle and the server certificate; SIGTERM/SIGINT drain and exit 0.

Options (each also from the environment variable shown; a flag wins over its variable):
  --bundle FILE|URL          the compiled bundle                      MTLSGATE_BUNDLE
  --tls-cert FILE            server certificate chain (PEM)           MTLSGATE_TLS_CERT
  --tls-key FILE             server private key (PEM)                 MTLSGATE_TLS_KEY
  --listen HOST:PORT         HTTPS listener (default 127.0.0.1:8443)  MTLSGATE_LISTEN
  --admin HOST:PORT|off      /health and /metrics, plain HTTP         MTLSGATE_ADMIN
                             (default 127.0.0.1:9901)
  --upstream-timeout MS      upstream slower than this: 504 (default 30000)
                                                                      MTLSGATE_UPSTREAM_TIMEOUT
  --drain-timeout MS         SIGTERM waits this long for requests in flight (default 10000)
                                                                      MTLSGATE_DRAIN_TIMEOUT
  --poll-interval MS         URL bundle poll interval (default 5000)  MTLSGATE_POLL_INTERVAL
  --redis URL                shared rate limits (redis://, rediss://, redis+cluster://)
                                                                      MTLSGATE_REDIS
  --redis-timeout MS         a slower Redis decision is decided by --on-limiter-error
                             (default 50)                             MTLSGATE_REDIS_TIMEOUT
  --on-limiter-error allow|deny  (default allow)                      MTLSGATE_ON_LIMITER_ERROR
  --crl-refresh MS           crl_urls: refetch at least this often, sooner at a CRL's nextUpdate
                             (default 300000)                         MTLSGATE_CRL_REFRESH
  --crl-stale open|closed    a crl_url CRL past nextUpdate that cannot be refreshed: keep
                             admitting its CA's certificates (open, default) or refuse them
                             with 403 mtls.revocation_unknown (closed)  MTLSGATE_CRL_STALE
  --log-level LEVEL          ${LOG_LEVELS.join('|')} (default info)
                                                                      MTLSGATE_LOG_LEVEL

Exit status: 0 after a graceful stop, 2 for bad flags or a start-up failure (bundle missing
or refused, TLS files unreadable, port in use).`;

const OPTIONS = {
  bundle: { type: 'string' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  listen: { type: 'string' },
  admin: { type: 'string' },
  'upstream-timeout': { type: 'string' },
  'drain-timeout': { type: 'string' },
  'poll-interval': { type: 'string' },
  redis: { type: 'string' },
  'redis-timeout': { type: 'string' },
  'on-limiter-error': { type: 'string' },
  'crl-refresh': { type: 'string' },
  'crl-stale': { type: 'string' },
  'log-level': { type: 'string' },
} as const;
type FlagName = keyof typeof OPTIONS;

/** MTLSGATE_TLS_CERT for --tls-cert, and so on. */
export function envName(flag: string): string {
  return 'MTLSGATE_' + flag.toUpperCase().replace(/-/g, '_');
}

/** Flag values with the environment filled in under them. */
export function flagsWithEnv<K extends string>(
  values: Partial<Record<K, string | boolean | undefined>>,
  names: readonly K[],
  env: NodeJS.ProcessEnv,
): Partial<Record<K, string>> {
  const out: Partial<Record<K, string>> = {};
  for (const name of names) {
    const flag = values[name];
    const fromEnv = env[envName(name)];
    if (typeof flag === 'string') out[name] = flag;
    else if (fromEnv !== undefined && fromEnv !== '') out[name] = fromEnv;
  }
  return out;
}

/** "127.0.0.1:8443", "[::1]:8443", "localhost:0", ":8443" (all interfaces), "8443" (loopback). */
export function parseHostPort(value: string, flag: string): HostPort {
  const text = value.trim();
  const m = /^(?:(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):)?(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    throw new UsageError(`${flag} must be HOST:PORT (e.g. 127.0.0.1:8443 or [::1]:8443), not ${JSON.stringify(value)}`);
  }
  if (m[1] !== undefined) return { host: m[1], port };
  if (m[2] === undefined) return { host: '127.0.0.1', port }; // a bare port: loopback, the safe default
  return { host: m[2] === '' ? '0.0.0.0' : m[2], port };
}

export function parseMs(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n <= 0) {
    throw new UsageError(`${flag} must be a positive whole number of milliseconds, not ${JSON.stringify(value)}`);
  }
  return n;
}

export function parseLogLevel(value: string | undefined): LogLevel {
  const level = value ?? 'info';
  if (!isLogLevel(level)) throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}, not ${JSON.stringify(level)}`);
  return level;
}

/** Parses serve's flags and environment into a RuntimeConfig (minus the logger). */
export function serveConfig(argv: string[], env: NodeJS.ProcessEnv): { config: Omit<RuntimeConfig, 'logger'>; logLevel: LogLevel } {
  const { values, positionals } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true });
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])} (the bundle goes after --bundle)`);
  const v = flagsWithEnv(values, Object.keys(OPTIONS) as FlagName[], env);
  const missing = (['bundle', 'tls-cert', 'tls-key'] as const).filter((f) => v[f] === undefined);
  if (missing.length > 0) {
    throw new UsageError(`missing ${missing.map((f) => `--${f} (or ${envName(f)})`).join(', ')}`);
  }
  const onError = v['on-limiter-error'] ?? 'allow';
  if (onError !== 'allow' && onError !== 'deny') throw new UsageError(`--on-limiter-error must be allow or deny, not ${JSON.stringify(onError)}`);
  const crlStale = v['crl-stale'] ?? 'open';
  if (crlStale !== 'open' && crlStale !== 'closed') throw new UsageError(`--crl-stale must be open or closed, not ${JSON.stringify(crlStale)}`);
  const admin = v.admin ?? '127.0.0.1:9901';
  return {
    config: {
      bundle: v.bundle!,
      tlsCertFile: v['tls-cert']!,
      tlsKeyFile: v['tls-key']!,
      listen: parseHostPort(v.listen ?? '127.0.0.1:8443', '--listen'),
      admin: admin === 'off' ? null : parseHostPort(admin, '--admin'),
      upstreamTimeoutMs: parseMs(v['upstream-timeout'], '--upstream-timeout', 30_000),
      drainTimeoutMs: parseMs(v['drain-timeout'], '--drain-timeout', 10_000),
      pollIntervalMs: parseMs(v['poll-interval'], '--poll-interval', 5_000),
      redisUrl: v.redis,
      redisTimeoutMs: v['redis-timeout'] === undefined ? undefined : parseMs(v['redis-timeout'], '--redis-timeout', 50),
      onLimiterError: onError,
      crlRefreshMs: parseMs(v['crl-refresh'], '--crl-refresh', 300_000),
      crlStale,
    },
    logLevel: parseLogLevel(v['log-level']),
  };
}

export const command: Command = {
  name: 'serve',
  summary: 'run the HTTPS gateway for a compiled bundle (hot reload, /health, /metrics)',
  usage,
  async run(argv) {
    const { config, logLevel } = serveConfig(argv, process.env);
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
