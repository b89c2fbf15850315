// The log destination of `serve --workers N`: the primary and every worker write their lines
// straight to the stdout they all inherited (fd 1), with no process relaying another's lines.
// Lines from two processes never mix because every write(2) made here is whole lines and at most
// PIPE_BUF (4,096) bytes:
//   - a pipe delivers such a write atomically (POSIX), blocking or not (O_NONBLOCK: all of it or
//     EAGAIN, then it is retried whole);
//   - a regular file the processes inherited shares one open file description, whose offset
//     Linux (3.14+) moves under a lock for the whole write: each write lands whole after the
//     previous one (with or without O_APPEND);
//   - a terminal writes each write(2) under its write lock; a stream socket (journald) sends a
//     write this small as one segment.
// A single line longer than 4,096 bytes (a request path of several KiB, a long error) cannot be
// written atomically: it is shortened to fit, see `fitLine`.
// To a regular file the writes are synchronous (Node writes its own stdout to a file so too): a
// write(2) of ≤ 4 KiB into the page cache costs less than the thread-pool round trip (two thread
// switches and an eventfd wakeup) an asynchronous one takes, and each worker makes one per ~15
// request lines. To a pipe, socket or terminal they are asynchronous (the libuv thread pool, one
// in flight at a time, in order): a request never waits for a slow log reader. The
// single-process gateway makes the same choice for its destination (runtime/log.ts).
import { fstatSync, write as fsWrite, writeSync } from 'node:fs';

/** PIPE_BUF on Linux: the largest write(2) a pipe delivers without interleaving. */
export const ATOMIC_WRITE_BYTES = 4096;
/** Retry delay when a non-blocking pipe is full (ms). */
const RETRY_MS = 10;
/** How long a synchronous write (at exit, or to a file) waits for a full non-blocking pipe, in all. */
const EXIT_PATIENCE_MS = 5000;

/**
 * Is `fd` a regular file (`serve > gateway.log`)? Then log writes are synchronous, in both the
 * single-process gateway and the workers (see the top of this file); false when there is no fd.
 */
export function isRegularFile(fd: number): boolean {
  try {
    return fstatSync(fd).isFile();
  } catch {
    // No stdout at all: the asynchronous path drops the lines on EBADF.
    return false;
  }
}

export class WholeLineWriter {
  /** Pieces of whole lines, each at most ATOMIC_WRITE_BYTES. */
  private readonly queue: Buffer[] = [];
  private writing = false;
  private waiters: Array<(err?: Error) => void> = [];

  private readonly sync: boolean;

  constructor(private readonly fd: number) {
    this.sync = isRegularFile(fd);
  }

  /** `chunk` is one or more whole lines, each ending in "\n" (what LineBatch hands over: a Buffer it never writes again). */
  write(chunk: string | Buffer): boolean {
    this.enqueue(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
    if (!this.sync) this.next();
    else
      try {
        this.flushSync();
      } catch {
        // The file cannot be written (ENOSPC, EIO): these lines are lost, the request is not.
        this.queue.length = 0;
      }
    return true;
  }

  /**
   * At exit: `chunk` written now, after what is queued, never through the thread pool (an
   * 'exit' handler cannot wait for a thread-pool write, and the process may end before it runs).
   */
  writeSync(chunk: Buffer): void {
    this.enqueue(chunk);
    this.flushSync();
  }

  /** `buf` cut into pieces of whole lines, each at most ATOMIC_WRITE_BYTES, at the queue's end. */
  private enqueue(buf: Buffer): void {
    let start = 0;
    while (start < buf.length) {
      if (buf.length - start <= ATOMIC_WRITE_BYTES) {
        this.queue.push(buf.subarray(start));
        break;
      }
      const end = buf.lastIndexOf(0x0a, start + ATOMIC_WRITE_BYTES - 1);
      if (end >= start) {
        this.queue.push(buf.subarray(start, end + 1));
        start = end + 1;
      } else {
        const nl = buf.indexOf(0x0a, start);
        const stop = nl === -1 ? buf.length : nl + 1;
        this.queue.push(fitLine(buf.subarray(start, stop)));
        start = stop;
      }
    }
  }

  flush(cb?: (err?: Error) => void): void {
    if (cb === undefined) return;
    if (!this.writing && this.queue.length === 0) process.nextTick(cb);
    else this.waiters.push(cb);
  }

  /** At exit: what is queued, written now (a write already in the thread pool may land after). */
  flushSync(): void {
    while (this.queue.length > 0) writeAllSync(this.fd, this.take());
  }

  /** The queue's first pieces joined, as long as they fit one atomic write. */
  private take(): Buffer {
    let n = 1;
    let bytes = this.queue[0].length;
    while (n < this.queue.length && bytes + this.queue[n].length <= ATOMIC_WRITE_BYTES) bytes += this.queue[n++].length;
    const parts = this.queue.splice(0, n);
    return n === 1 ? parts[0] : Buffer.concat(parts, bytes);
  }

  private next(): void {
    if (this.writing) return;
    if (this.queue.length === 0) {
      const waiters = this.waiters;
      this.waiters = [];
      for (const cb of waiters) cb();
      return;
    }
    this.writing = true;
    const piece = this.take();
    fsWrite(this.fd, piece, 0, piece.length, null, (err, n) => {
      this.writing = false;
      if (err) {
        if (err.code === 'EAGAIN') {
          this.queue.unshift(piece);
          this.writing = true;
          setTimeout(() => {
            this.writing = false;
            this.next();
          }, RETRY_MS).unref();
          return;
        }
        // stdout is gone (EPIPE, EBADF): nothing more can be logged; drop what is queued.
        this.queue.length = 0;
      } else if (n < piece.length) {
        // Only a regular file that ran out of space, or a signal, writes part of a piece: the
        // rest goes next (it can no longer be atomic; nothing better is possible).
        this.queue.unshift(piece.subarray(n));
      }
      this.next();
    });
  }
}

/**
 * `buf` written to `fd` now, all of it: a partial write goes on with the rest, a full
 * non-blocking pipe (EAGAIN) is waited for, up to EXIT_PATIENCE_MS in all (a log reader that
 * stalls longer loses the lines; the process does not hang). A piece of at most
 * ATOMIC_WRITE_BYTES is written whole or not at all by a pipe, so it stays atomic.
 */
export function writeAllSync(fd: number, buf: Buffer): void {
  let tries = 0;
  while (buf.length > 0) {
    try {
      buf = buf.subarray(writeSync(fd, buf));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN' || ++tries > EXIT_PATIENCE_MS / RETRY_MS) throw err;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, RETRY_MS);
    }
  }
}

/** Ends a string `fitLine` cut. */
const MARK = '…';

/**
 * A log line longer than ATOMIC_WRITE_BYTES, made to fit: its longest string values (the path,
 * an error message or stack) are cut, each ending in "…", and the line gains "truncated": true,
 * so it stays one JSON object with every field. A line that is not JSON keeps its first bytes
 * inside a JSON line. Only `serve --workers N` cuts lines; one process writes them whole.
 */
export function fitLine(line: Buffer): Buffer {
  const text = line.toString('utf8').replace(/\n$/, '');
  let obj: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
    obj = parsed as Record<string, unknown>;
  } catch {
    obj = { level: 'warn', msg: 'log line too long, cut', line: text };
  }
  obj.truncated = true;
  for (let i = 0; i < 64; i++) {
    const out = Buffer.from(`${JSON.stringify(obj)}\n`);
    if (out.length <= ATOMIC_WRITE_BYTES) return out;
    const longest = longestString(obj);
    if (longest === null) break;
    const [holder, key, value] = longest;
    // Cut by the excess (bytes ≥ characters, so this may take a second round for non-ASCII).
    const keep = Math.max(0, value.length - (out.length - ATOMIC_WRITE_BYTES) - 16);
    holder[key] = value.slice(0, keep) + MARK;
  }
  return Buffer.from(`${JSON.stringify({ level: 'warn', msg: 'log line too long, dropped', truncated: true, bytes: line.length })}\n`);
}

function longestString(obj: Record<string, unknown>): [Record<string, unknown>, string, string] | null {
  let best: [Record<string, unknown>, string, string] | null = null;
  const visit = (o: Record<string, unknown>, depth: number) => {
    for (const [k, v] of Object.entries(o)) {
      if (typeof v === 'string') {
        if (v.length > 1 && (best === null || v.length > best[2].length)) best = [o, k, v];
      } else if (v !== null && typeof v === 'object' && depth < 8) visit(v as Record<string, unknown>, depth + 1);
    }
  };
  visit(obj, 0);
  return best;
}
