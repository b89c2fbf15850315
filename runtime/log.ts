// Structured logs: one JSON line per request on stdout, plus start, reload and stop lines.
//
// What never reaches a log line: a token, an Authorization (or custom auth) header, a query
// string (tokens travel there too: `?api_key=...`), private key material. A request line
// carries only the fields of RequestLogFields, and its path is cut at the first "?".
import pino, { type Logger } from 'pino';
import type { RequestRecord } from './gateway.ts';
import { isRegularFile, WholeLineWriter } from './whole-line-writer.ts';

export type { Logger } from 'pino';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function isLogLevel(value: string): value is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(value);
}

/** Log lines are written in batches of this many characters... */
const LOG_BATCH_CHARS = 8192;
/** ...or at least this often (ms), so a quiet gateway's lines still show up promptly. */
const LOG_FLUSH_MS = 100;

interface LoggerOptions {
  level?: LogLevel;
  /** Where lines go; default stdout (fd 1). Tests pass a stream to read lines back. */
  destination?: NodeJS.WritableStream;
  /** Fields on every line pino writes (a cluster worker's number); request lines keep theirs. */
  fields?: Record<string, unknown>;
  /** Several processes write to this stdout (`serve --workers N`): whole-line writes of at most
   *  4,096 bytes, so their lines never mix (runtime/whole-line-writer.ts). */
  sharedStdout?: boolean;
}

interface SonicBoomLike {
  write(chunk: string): boolean;
  flush(cb?: (err?: Error) => void): void;
  flushSync(): void;
}

/**
 * Gathers lines (pino's and the request lines, in order) into one string and hands it to
 * pino's SonicBoom in chunks of ~8 KiB or every 100 ms. SonicBoom measures the UTF-8 length
 * of its pending buffer on every write, so feeding it line by line cost ~4 µs per line at a
 * few KiB pending; one hand-over per chunk costs that once per ~40 lines.
 */
class LineBatch {
  private pending = '';
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly out: SonicBoomLike) {
    // Lines still pending at exit reach SonicBoom before pino's own exit flush runs.
    process.once('exit', () => this.flushSync());
  }

  /**
   * pino's lines (start, reload, warnings: rare, and an operator waits for them) go out at once,
   * after the request lines gathered before them, so the order is kept.
   */
  write(line: string): boolean {
    this.pending += line;
    this.handOver();
    return true;
  }

  /** A request line: gathered until ~8 KiB or 100 ms. */
  writeBatched(line: string): void {
    this.pending += line;
    if (this.pending.length >= LOG_BATCH_CHARS) this.handOver();
    else if (this.timer === null) this.timer = setTimeout(this.onTimer, LOG_FLUSH_MS).unref();
  }

  private readonly onTimer = (): void => {
    this.timer = null;
    this.handOver();
  };

  private handOver(): void {
    if (this.pending.length === 0) return;
    const chunk = this.pending;
    this.pending = '';
    this.out.write(chunk);
  }

  flush(cb?: (err?: Error) => void): void {
    this.handOver();
    this.out.flush(cb);
  }

  flushSync(): void {
    this.handOver();
    try {
      this.out.flushSync();
    } catch {
      // Nothing more can be done with a log line at exit if stdout is gone.
    }
  }
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  // Lines are batched (see LineBatch): unbatched, a gateway doing a request or two per
  // event-loop turn paid a thread-pool fs.write per line or two (~6-10 µs of CPU per line more).
  // To a pipe or a terminal the writes are asynchronous: a request never waits for a slow log
  // reader. To a regular file they are synchronous, one write(2) per ~8 KiB batch into the page
  // cache: the thread-pool round trip of an asynchronous write cost more than the write itself
  // (0.087 voluntary + 0.085 involuntary context switches per request, against 0.018 + 0.018
  // written synchronously and 0.016 + 0.016 with the request log off, measured by /proc).
  const out = opts.sharedStdout ? new WholeLineWriter(1) : (pino.destination({ dest: 1, sync: isRegularFile(1) }) as unknown as SonicBoomLike);
  const destination = opts.destination ?? new LineBatch(out);
  return pino(
    {
      level: opts.level ?? 'info',
      base: { service: 'mtlsgate', ...opts.fields },
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
type RequestLogFields = RequestRecord;

/** The path as logged: without its query string, which may carry a token. */
function loggablePath(path: string): string {
  const q = path.indexOf('?');
  return q === -1 ? path : path.slice(0, q);
}

// The request line is written by hand, not through pino's child/merge/redact machinery, which cost
// ~8-10 µs of CPU per line (the largest single cost in the request path). The line is
// byte-for-byte what pino wrote before (same fields, same order, same level/time/service), so
// log pipelines see no change; it goes to pino's own destination, so batching and flush on
// exit are pino's. Strings the gateway controls (ids, method, fingerprint) rarely need
// escaping; `jsonString` takes a fast path for those and defers to JSON.stringify otherwise.
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what must be escaped
const NEEDS_ESCAPE = /["\\\u0000-\u001f\u007f-\uffff]/;

function jsonString(s: string | null): string {
  if (s === null) return 'null';
  return NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : `"${s}"`;
}

// ISO time strings change once per millisecond; requests arrive faster than that under load.
let lastMs = 0;
let lastIso = '';
function isoNow(): string {
  const now = Date.now();
  if (now !== lastMs) {
    lastMs = now;
    lastIso = new Date(now).toISOString();
  }
  return lastIso;
}

interface Writable {
  write(chunk: string): unknown;
}

export function logRequest(logger: Logger, r: RequestLogFields): void {
  if (!logger.isLevelEnabled('info')) return;
  const stream = (logger as unknown as Record<symbol, Writable>)[pino.symbols.streamSym];
  const line =
    `{"level":"info","time":"${isoNow()}","service":"mtlsgate","api":${jsonString(r.api)},"key":${jsonString(r.key)},"cert_sha256":${jsonString(r.cert)},` +
    `"status":${r.status},"code":${jsonString(r.code)},"method":${jsonString(r.method)},"path":${jsonString(loggablePath(r.path))},` +
    `"duration_ms":${Math.round(r.durationMs * 1000) / 1000},"remote":${jsonString(r.remote)},"msg":"request"}\n`;
  // The production destination batches request lines; a test's plain stream takes each at once.
  if (stream instanceof LineBatch) stream.writeBatched(line);
  else stream.write(line);
}
