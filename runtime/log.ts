// Structured logs: one JSON line per request on stdout, plus start, reload and stop lines.
//
// What never reaches a log line: a token, an Authorization (or custom auth) header, a query
// string (tokens travel there too: `?api_key=...`), private key material. A request line
// carries only the fields of RequestLogFields, and its path is cut at the first "?".
import pino, { type Logger } from 'pino';
import type { RequestRecord } from './gateway.ts';
import { encodeRequestLine } from './request-line.ts';
import { isRegularFile, WholeLineWriter, writeAllSync } from './whole-line-writer.ts';

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
  /** arena.length, kept as a number. */
  private arenaBytes = ARENA_BYTES;
  /** arena[start, end): lines not yet handed over. */
  private start = 0;
  private end = 0;
  /** The 100 ms flush: one Timeout for the logger's life, re-armed with refresh() (no timer object per batch). */
  private timer: NodeJS.Timeout | null = null;
  private armed = false;

  /**
   * @param writeAtExit writes the lines still gathered at exit, synchronously, after what `out`
   * has queued. They must not go through `out.write`: SonicBoom (and WholeLineWriter) to a pipe
   * would start a thread-pool write that an 'exit' handler cannot wait for, and the process
   * could end before it ran (seen in CI: the last 3 of 200 lines missing from a pipe).
   */
  constructor(
    private readonly out: SonicBoomLike,
    private readonly writeAtExit: (chunk: Buffer) => void,
  ) {
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

  /** A request line, encoded into the arena (runtime/request-line.ts): gathered until ~8 KiB or 100 ms. */
  writeRequest(r: RequestRecord): void {
    let end = encodeRequestLine(this.arena, this.end, this.arenaBytes - this.end, r);
    if (end < 0) {
      this.renew(-end);
      end = encodeRequestLine(this.arena, this.end, this.arenaBytes - this.end, r);
    }
    this.end = end;
    if (this.end - this.start >= LOG_BATCH_BYTES) this.handOver();
    else if (!this.armed) this.arm();
  }

  private append(line: string): void {
    // A UTF-16 code unit is at most 3 bytes of UTF-8: with that much room the line fits whole.
    if (this.arenaBytes - this.end < line.length * 3) this.renew(line.length * 3);
    this.end += this.arena.write(line, this.end, 'utf8');
  }

  /** A new arena, the pending lines moved to its start (the old one stays with the chunks handed over). */
  private renew(room: number): void {
    const pending = this.end - this.start;
    const next = Buffer.allocUnsafe(Math.max(ARENA_BYTES, pending + room));
    this.arena.copy(next, 0, this.start, this.end);
    this.arena = next;
    this.arenaBytes = next.length;
    this.start = 0;
    this.end = pending;
  }

  private arm(): void {
    this.armed = true;
    // refresh() re-inserts a Timeout that has fired (unref'd, it stays so).
    if (this.timer === null) this.timer = setTimeout(this.onTimer, LOG_FLUSH_MS).unref();
    else this.timer.refresh();
  }

  private readonly onTimer = (): void => {
    this.armed = false;
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

  /** At exit: everything gathered or queued, written before the process ends, in order. */
  flushSync(): void {
    const pending = this.arena.subarray(this.start, this.end);
    this.start = this.end;
    try {
      // Throws once pino's own exit handling has ended SonicBoom; nothing is queued in it then.
      this.out.flushSync();
    } catch {}
    try {
      if (pending.length > 0) this.writeAtExit(pending);
    } catch {
      // Nothing more can be done with a log line at exit if stdout is gone.
    }
  }
}

interface Writable {
  write(chunk: string): unknown;
}

/** pino's numeric "info" level and the symbol under which a logger keeps its destination, read once. */
const INFO = pino.levels.values.info;
const STREAM = pino.symbols.streamSym;

/**
 * What logRequest asks of a logger from createLogger, kept beside it: whether info is on
 * (updated on pino's 'level-change') and its destination. pino's logger keeps both behind a
 * getter and a symbol key on an object of many properties, which the request path read through
 * the runtime's generic property lookups on every line.
 */
class RequestLog {
  readonly batch: LineBatch | null;
  constructor(
    public on: boolean,
    readonly stream: Writable,
  ) {
    this.batch = stream instanceof LineBatch ? stream : null;
  }
}
const requestLogs = new WeakMap<Logger, RequestLog>();
/** The logger of the last line and its RequestLog: a process has one. */
let lastLogger: Logger | null = null;
let lastLog = new RequestLog(false, { write: () => true });
/** Where a line for a destination other than LineBatch (a test's stream) is encoded first. */
let scratch = Buffer.allocUnsafe(ARENA_BYTES);

/** The production destination: lines batched to fd 1, shared by the workers or not (see createLogger). */
function stdoutBatch(shared: boolean): LineBatch {
  if (shared) {
    const out = new WholeLineWriter(1);
    return new LineBatch(out, (chunk) => out.writeSync(chunk));
  }
  const out = pino.destination({ dest: 1, sync: isRegularFile(1), contentMode: 'buffer' }) as unknown as SonicBoomLike;
  return new LineBatch(out, (chunk) => writeAllSync(1, chunk));
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  // Lines are batched (see LineBatch): unbatched, a gateway doing a request or two per
  // event-loop turn paid a thread-pool fs.write per line or two (~6-10 µs of CPU per line more).
  // To a pipe or a terminal the writes are asynchronous: a request never waits for a slow log
  // reader. To a regular file they are synchronous, one write(2) per ~8 KiB batch into the page
  // cache: the thread-pool round trip of an asynchronous write cost more than the write itself
  // (0.087 voluntary + 0.085 involuntary context switches per request, against 0.018 + 0.018
  // written synchronously and 0.016 + 0.016 with the request log off, measured by /proc).
  const destination = opts.destination ?? stdoutBatch(opts.sharedStdout === true);
  const logger = pino(
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
  const state = new RequestLog(logger.levelVal <= INFO, destination as Writable);
  logger.on('level-change', () => (state.on = logger.levelVal <= INFO));
  requestLogs.set(logger, state);
  return logger;
}

/** What a request log line holds: the gateway's RequestRecord, which carries nothing secret. */
type RequestLogFields = RequestRecord;

// The request line is written by hand, not through pino's child/merge/redact machinery, which cost
// ~8-10 µs of CPU per line (the largest single cost in the request path). The line is
// byte-for-byte what pino wrote before (same fields, same order, same level/time/service), so
// log pipelines see no change; it goes to pino's own destination, so batching and flush on
// exit are pino's. runtime/request-line.ts encodes it straight into the batch's arena.

export function logRequest(logger: Logger, r: RequestLogFields): void {
  const log = logger === lastLogger ? lastLog : requestLogOf(logger);
  if (!log.on) return;
  // The production destination batches request lines; a test's plain stream takes each at once,
  // as a string, encoded the same way.
  if (log.batch !== null) return log.batch.writeRequest(r);
  let end = encodeRequestLine(scratch, 0, scratch.length, r);
  if (end < 0) {
    scratch = Buffer.allocUnsafe(-end);
    end = encodeRequestLine(scratch, 0, scratch.length, r);
  }
  log.stream.write(scratch.toString('utf8', 0, end));
}

function requestLogOf(logger: Logger): RequestLog {
  // A logger made elsewhere (not by createLogger): read from pino each time. isLevelEnabled('info')
  // without its lookups: levels ascend (no custom levels or comparison here).
  const known = requestLogs.get(logger);
  if (known === undefined) return new RequestLog(logger.levelVal <= INFO, (logger as unknown as Record<symbol, Writable>)[STREAM]);
  lastLogger = logger;
  lastLog = known;
  return known;
}
