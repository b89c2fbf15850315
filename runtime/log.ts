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

/** Log lines are written in batches of this many bytes... */
const LOG_BATCH_BYTES = 8192;
/** ...or at least this often (ms), so a quiet gateway's lines still show up promptly. */
const LOG_FLUSH_MS = 100;
/** Lines are encoded into an arena of this size; a batch is a slice of it (see LineBatch). */
const ARENA_BYTES = 64 * 1024;

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

/** pino's SonicBoom in buffer mode, or the WholeLineWriter: both take a Buffer they keep. */
interface SonicBoomLike {
  write(chunk: Buffer): boolean;
  flush(cb?: (err?: Error) => void): void;
  flushSync(): void;
}

/**
 * Gathers lines (pino's and the request lines, in order) and hands them to the destination in
 * chunks of ~8 KiB or every 100 ms. Each line is encoded to UTF-8 once, straight into an arena
 * Buffer; a chunk is the arena's slice of whole lines, handed over as it is and never written
 * again (the destination may still hold it in its queue), and the next lines go after it. A
 * string chunk cost more: SonicBoom in string mode measures its UTF-8 length, writes it, then
 * converts it to a Buffer again (four passes over 8 KiB and a copy per chunk).
 */
class LineBatch {
  private arena = Buffer.allocUnsafe(ARENA_BYTES);
  /** arena[start, end): lines not yet handed over. */
  private start = 0;
  private end = 0;
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
    this.append(line);
    this.handOver();
    return true;
  }

  /** A request line: gathered until ~8 KiB or 100 ms. */
  writeBatched(line: string): void {
    this.append(line);
    if (this.end - this.start >= LOG_BATCH_BYTES) this.handOver();
    else if (this.timer === null) this.timer = setTimeout(this.onTimer, LOG_FLUSH_MS).unref();
  }

  private append(line: string): void {
    // A UTF-16 code unit is at most 3 bytes of UTF-8: with that much room the line fits whole.
    if (this.arena.length - this.end < line.length * 3) this.renew(line.length * 3);
    this.end += this.arena.write(line, this.end, 'utf8');
  }

  /** A new arena, the pending lines moved to its start (the old one stays with the chunks handed over). */
  private renew(room: number): void {
    const pending = this.end - this.start;
    const next = Buffer.allocUnsafe(Math.max(ARENA_BYTES, pending + room));
    this.arena.copy(next, 0, this.start, this.end);
    this.arena = next;
    this.start = 0;
    this.end = pending;
  }

  private readonly onTimer = (): void => {
    this.timer = null;
    this.handOver();
  };

  private handOver(): void {
    if (this.end === this.start) return;
    const chunk = this.arena.subarray(this.start, this.end);
    this.start = this.end;
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
  const out = opts.sharedStdout
    ? new WholeLineWriter(1)
    : (pino.destination({ dest: 1, sync: isRegularFile(1), contentMode: 'buffer' }) as unknown as SonicBoomLike);
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

/**
 * A field's last value and its JSON form. Under load a line's api, key, certificate, code,
 * method and address are mostly the previous line's (the same connection, the same API), so
 * the escape check and the quoting run when the value changes, not on every line.
 */
class QuotedField {
  private last: string | null = null;
  private json = 'null';

  of(s: string | null): string {
    if (s !== this.last) {
      this.json = jsonString(s);
      this.last = s;
    }
    return this.json;
  }
}
const API = new QuotedField();
const KEY = new QuotedField();
const CERT = new QuotedField();
const CODE = new QuotedField();
const METHOD = new QuotedField();
const REMOTE = new QuotedField();

// ISO time strings change once per millisecond; requests arrive faster than that under load.
// Within one second only the milliseconds change: the "2026-01-02T03:04:05." part is made
// once a second (toISOString) and the rest from a table, not a Date and its formatting per ms.
let lastMs = -1;
let lastIso = '';
/** The line up to the api's value, for lastIso. */
let lastHead = '';
let secondStart = -1;
let secondPrefix = '';
const MILLIS = Array.from({ length: 1000 }, (_, i) => `${String(i).padStart(3, '0')}Z`);
function isoNow(): string {
  const now = Date.now();
  if (now !== lastMs) {
    lastMs = now;
    const ms = now % 1000;
    if (now - ms !== secondStart || ms < 0) {
      // ms < 0: a time before 1970, which toISOString formats on its own.
      const iso = new Date(now).toISOString();
      if (ms < 0 || iso.length !== 24) {
        secondStart = -1;
        lastIso = iso;
      } else {
        secondStart = now - ms;
        secondPrefix = iso.slice(0, 20);
      }
    }
    if (secondStart !== -1) lastIso = secondPrefix + MILLIS[ms];
    lastHead = `{"level":"info","time":"${lastIso}","service":"mtlsgate","api":`;
  }
  return lastIso;
}

/** `{"level":"info","time":"<now>","service":"mtlsgate","api":`: made once per millisecond. */
function lineHead(): string {
  isoNow();
  return lastHead;
}

interface Writable {
  write(chunk: string): unknown;
}

/** pino's numeric "info" level and the symbol under which a logger keeps its destination, read once. */
const INFO = pino.levels.values.info;
const STREAM = pino.symbols.streamSym;

export function logRequest(logger: Logger, r: RequestLogFields): void {
  // isLevelEnabled('info') without its lookups: levels ascend (no custom levels or comparison here).
  if (logger.levelVal > INFO) return;
  const stream = (logger as unknown as Record<symbol, Writable>)[STREAM];
  const line =
    `${lineHead()}${API.of(r.api)},"key":${KEY.of(r.key)},"cert_sha256":${CERT.of(r.cert)},` +
    `"status":${r.status},"code":${CODE.of(r.code)},"method":${METHOD.of(r.method)},"path":${jsonString(loggablePath(r.path))},` +
    `"duration_ms":${Math.round(r.durationMs * 1000) / 1000},"remote":${REMOTE.of(r.remote)},"msg":"request"}\n`;
  // The production destination batches request lines; a test's plain stream takes each at once.
  if (stream instanceof LineBatch) stream.writeBatched(line);
  else stream.write(line);
}
