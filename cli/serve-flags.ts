// The values of `mtlsgate serve`'s flags that are more than a number, a duration or an address
// (cli/flags.ts has those): each checked here, so that a mistake is a usage error naming the
// flag or variable it came from.
import { availableParallelism } from 'node:os';
import type { MinBodyRate } from '../runtime/body-watch.ts';
import { certHeaderSpec } from '../runtime/client-cert-header.ts';
import { DEFAULT_MIN_BODY_RATE } from '../runtime/gateway.ts';
import { DEFAULT_HTTP2_MAX_RESETS, DEFAULT_HTTP2_RESET_PERIOD_MS, HTTP2_MIN_RESET_PERIOD_MS } from '../runtime/http2.ts';
import { isLogLevel, LOG_LEVELS, type LogLevel } from '../runtime/log.ts';
import type { RuntimeConfig } from '../runtime/supervisor.ts';
import type { TlsFiles } from '../runtime/tls-credentials.ts';
import { splitCidrs, TrustedProxies } from '../runtime/trusted-proxies.ts';
import { UsageError } from './command.ts';
import { envName, parseCount, parseHostPort, parseMs, type Sourced } from './flags.ts';
import { verbosity } from './output.ts';

/**
 * --min-body-rate (bytes per second, or off) with --min-body-rate-grace (Kestrel's 240 after 5 s
 * by default); --min-answer-rate with --min-answer-rate-grace, the same shape with its own default.
 */
export function parseMinBodyRate(rate: Sourced | undefined, grace: Sourced | undefined, fallback: MinBodyRate = DEFAULT_MIN_BODY_RATE): MinBodyRate | null {
  const graceMs = parseMs(grace, fallback.graceMs);
  if (rate === undefined) return { bytesPerSecond: fallback.bytesPerSecond, graceMs };
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
export function envBoolean(env: NodeJS.ProcessEnv, flag: string): boolean {
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
export function tlsFiles(values: { 'tls-cert'?: string[]; 'tls-key'?: string[] }, env: NodeJS.ProcessEnv): TlsFiles[] {
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
export function certHeaderFlags(
  v: Partial<Record<'client-cert-header' | 'trusted-proxies' | 'listen-plain', Sourced>>,
): Pick<RuntimeConfig, 'clientCertHeader' | 'trustedProxies' | 'listenPlain'> {
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

/**
 * --http2-max-resets N with --http2-reset-period DURATION: the rapid-reset budget of an HTTP/2
 * connection (runtime/http2.ts). There is no off: 0 is refused, not read as "no limit" (as
 * Varnish's h2_rapid_reset_limit 0 is), since nothing else bounds what such a client costs
 * before nghttp2's 1,000 resets.
 */
export function parseHttp2Resets(max: Sourced | undefined, period: Sourced | undefined): Pick<RuntimeConfig, 'http2MaxResets' | 'http2ResetPeriodMs'> {
  if (max !== undefined && /^0+$/.test(max.value.trim())) {
    throw new UsageError(
      `${max.source} must be at least 1, not ${JSON.stringify(max.value)}: the rapid-reset defence (CVE-2023-44487) has no off, and a budget of 0 would cut a browser at its first cancelled request; for clients that cancel many streams, raise it (e.g. 1000)`,
    );
  }
  const http2MaxResets = parseCount(max, DEFAULT_HTTP2_MAX_RESETS);
  const http2ResetPeriodMs = parseMs(period, DEFAULT_HTTP2_RESET_PERIOD_MS);
  if (http2ResetPeriodMs < HTTP2_MIN_RESET_PERIOD_MS) {
    throw new UsageError(
      `${period!.source} must be at least 1s, not ${JSON.stringify(period!.value)}: a reset counts within 1 s of its stream's opening, and a budget refilled faster than that limits nothing`,
    );
  }
  return { http2MaxResets, http2ResetPeriodMs };
}
