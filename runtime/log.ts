// Structured logs: one JSON line per request on stdout, plus start, reload and stop lines.
//
// What never reaches a log line: a token, an Authorization (or custom auth) header, a query
// string (tokens travel there too: `?api_key=...`), private key material. A request line
// carries only the fields of RequestLogFields, and its path is cut at the first "?".
import pino, { type Logger } from 'pino';
import type { RequestRecord } from './gateway.ts';

export type { Logger } from 'pino';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function isLogLevel(value: string): value is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(value);
}

/** Log lines are written in batches of this many bytes... */
const LOG_BATCH_BYTES = 4096;
/** ...or at least this often (ms), so a quiet gateway's lines still show up promptly. */
const LOG_FLUSH_MS = 100;

export interface LoggerOptions {
  level?: LogLevel;
  /** Where lines go; default stdout (fd 1). Tests pass a stream to read lines back. */
  destination?: NodeJS.WritableStream;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  // Asynchronous stdout writes: a request never waits for the terminal or a log pipe. Lines
  // are batched (one write per ~4 KiB, or every 100 ms when quieter): unbatched, a gateway
  // doing a request or two per event-loop turn paid a thread-pool fs.write per line or two
  // (~6-10 µs of CPU per line more). pino flushes what is left on exit.
  const destination = opts.destination ?? pino.destination({ dest: 1, sync: false, minLength: LOG_BATCH_BYTES, periodicFlush: LOG_FLUSH_MS });
  return pino(
    {
      level: opts.level ?? 'info',
      base: { service: 'mtlsgate' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      // Defence in depth: if a caller ever logs a headers object, the secrets in it are gone.
      redact: {
        paths: ['headers.authorization', 'headers.cookie', 'headers["proxy-authorization"]', 'token', 'authorization'],
        remove: true,
      },
    },
    destination,
  );
}

/** What a request log line holds: the gateway's RequestRecord, which carries nothing secret. */
export type RequestLogFields = RequestRecord;

/** The path as logged: without its query string, which may carry a token. */
export function loggablePath(path: string): string {
  const q = path.indexOf('?');
  return q === -1 ? path : path.slice(0, q);
}

export function logRequest(logger: Logger, r: RequestLogFields): void {
  logger.info(
    {
      api: r.api,
      key: r.key,
      cert_sha256: r.cert,
      status: r.status,
      code: r.code,
      method: r.method,
      path: loggablePath(r.path),
      duration_ms: Math.round(r.durationMs * 1000) / 1000,
      remote: r.remote,
    },
    'request',
  );
}
