// The request log line, encoded straight into bytes: the line pino would write for the same
// fields (test/log-line.test.ts compares the two), built without a string per line.
//
// Why bytes: built as one template string, the line was a rope of ~20 pieces that the UTF-8
// write into the log arena first flattened (a copy) and then encoded in C++ (a second pass and
// a call into the runtime), with the path's escape check a regular expression, the duration a
// double-to-string conversion and the time a string concatenation per millisecond. Here the
// parts that repeat are kept as encoded bytes and copied (TypedArray set: a memmove), and the
// parts that vary per request (path, duration, the time's milliseconds) are written one byte
// at a time by JIT-compiled code:
//
//   {"level":"info","time":"<ISO>","service":"mtlsgate","api":   the head: made once a second,
//                                                                 its milliseconds patched in place
//   <api>,"key":<key>,"cert_sha256":<cert>,"status":<status>,    MIDDLE, one per (certificate, api,
//     "code":<code>,"method":<method>,"path":                    key, status, code, method)
//   "<path up to ?>                                               byte by byte when plain ASCII
//   ","duration_ms":<ms to the µs>                                digits from an integer
//   ,"remote":<remote>,"msg":"request"}\n                         END, one per client address
//
// A value that needs JSON escaping, or is not ASCII, goes through JSON.stringify and a UTF-8
// write instead (the same bytes pino writes): the rare path.
import type { RequestRecord } from './gateway.ts';

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what must be escaped
const NEEDS_ESCAPE = /["\\\u0000-\u001f\u007f-\uffff]/;

/** A string as JSON: quoted, escaped only when it has to be (JSON.stringify then). */
export function jsonString(s: string | null): string {
  if (s === null) return 'null';
  return NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : `"${s}"`;
}

/** The path as logged: without its query string, which may carry a token. */
export function loggablePath(path: string): string {
  const q = path.indexOf('?');
  return q === -1 ? path : path.slice(0, q);
}

/**
 * Encoded segments by the values they hold. The previous line's segment is tried first (under
 * load most lines repeat it: one connection, one API, one outcome); then the segments kept for
 * the first value, so a gateway serving many clients at once (their lines interleaved) encodes
 * each client's segment once, not at every change of speaker. Bounded: past MAX_FIRST first
 * values the map starts over, and each keeps its MAX_CHAIN latest (a scan of client addresses,
 * or one certificate used with many keys, must not grow it without end).
 */
const MAX_FIRST = 4096;
const MAX_CHAIN = 16;

type Value = string | number | null;

class Segment {
  constructor(
    readonly a: Value,
    readonly b: Value,
    readonly c: Value,
    readonly d: Value,
    readonly e: Value,
    readonly f: Value,
    readonly bytes: Buffer,
    /** An older segment with the same first value. */
    public next: Segment | null,
  ) {}
}

class SegmentCache {
  private last: Segment | null = null;
  private readonly byFirst = new Map<Value, Segment>();

  constructor(private readonly encode: (a: Value, b: Value, c: Value, d: Value, e: Value, f: Value) => string) {}

  of(a: Value, b: Value, c: Value, d: Value, e: Value, f: Value): Buffer {
    const last = this.last;
    if (last !== null && last.a === a && last.b === b && last.c === c && last.d === d && last.e === e && last.f === f) return last.bytes;
    const first = this.byFirst.get(a);
    let s: Segment | null | undefined = first;
    let n = 0;
    for (; s !== undefined && s !== null; s = s.next) {
      if (s.b === b && s.c === c && s.d === d && s.e === e && s.f === f) break;
      if (++n === MAX_CHAIN) s.next = null;
    }
    if (s === undefined || s === null) {
      s = new Segment(a, b, c, d, e, f, Buffer.from(this.encode(a, b, c, d, e, f), 'utf8'), first ?? null);
      if (first === undefined && this.byFirst.size >= MAX_FIRST) this.byFirst.clear();
      this.byFirst.set(a, s);
    }
    this.last = s;
    return s.bytes;
  }
}

const str = (v: Value) => jsonString(v as string | null);
/** Everything between the head and the path, keyed by certificate first: it names the client (its connection) best. */
const MIDDLE = new SegmentCache(
  (cert, api, key, status, code, method) =>
    `${str(api)},"key":${str(key)},"cert_sha256":${str(cert)},"status":${status},"code":${str(code)},"method":${str(method)},"path":`,
);
/** From the client's address to the end of the line. */
const END = new SegmentCache((remote) => `,"remote":${str(remote)},"msg":"request"}\n`);
/** The path's closing quote and the next field's name. */
const DURATION = Buffer.from('","duration_ms":', 'latin1');

/**
 * The line's head up to the api's value, for the current millisecond. Within one second only
 * the three millisecond digits change: they are patched in place. The head is copied into the
 * line, so patching it never changes a line already written.
 */
const HEAD_BEFORE_TIME = '{"level":"info","time":"';
const HEAD_AFTER_TIME = '","service":"mtlsgate","api":';
/** Where the milliseconds' three digits are in HEAD for a 24-character ISO time. */
const MS_AT = HEAD_BEFORE_TIME.length + 20;
let headBytes = Buffer.alloc(0);
let lastMs = Number.NaN;
let secondStart = Number.NaN;

function headNow(): Buffer {
  const now = Date.now();
  if (now === lastMs) return headBytes;
  lastMs = now;
  const ms = now % 1000;
  if (ms >= 0 && now - ms === secondStart) {
    headBytes[MS_AT] = 48 + ((ms / 100) | 0);
    headBytes[MS_AT + 1] = 48 + ((ms / 10) % 10 | 0);
    headBytes[MS_AT + 2] = 48 + (ms % 10);
    return headBytes;
  }
  // A new second (toISOString once), or a time whose ISO form is not 24 characters (before 1970
  // the remainder is negative; past year 9999 the year has six digits): made whole every time.
  const iso = new Date(now).toISOString();
  secondStart = ms >= 0 && iso.length === 24 ? now - ms : Number.NaN;
  headBytes = Buffer.from(HEAD_BEFORE_TIME + iso + HEAD_AFTER_TIME, 'latin1');
  return headBytes;
}

/** Bytes the line of `r` can take at most: the fixed parts, plus the path at 6 bytes a character (`\uXXXX`). */
export function requestLineBound(r: RequestRecord): number {
  return 1024 + (r.api?.length ?? 0) * 6 + (r.key?.length ?? 0) * 6 + (r.cert?.length ?? 0) * 6 + (r.code?.length ?? 0) * 6 + (r.method.length + r.path.length + r.remote.length) * 6;
}

/** Writes the request line of `r` (with its "\n") into `buf` at `at`; `requestLineBound(r)` bytes must be free there. Returns the end. */
export function encodeRequestLine(buf: Buffer, at: number, r: RequestRecord): number {
  const head = headNow();
  buf.set(head, at);
  let p = at + head.length;
  const middle = MIDDLE.of(r.cert, r.api, r.key, r.status, r.code, r.method);
  buf.set(middle, p);
  p = writePath(buf, p + middle.length, r.path);
  buf.set(DURATION, p);
  p = writeDuration(buf, p + DURATION.length, r.durationMs);
  const end = END.of(r.remote, null, null, null, null, null);
  buf.set(end, p);
  return p + end.length;
}

/**
 * The path up to its "?", its opening quote included and its closing one not (DURATION begins
 * with it): byte by byte while it is printable ASCII without `"` or `\`.
 */
function writePath(buf: Buffer, at: number, path: string): number {
  buf[at] = 0x22;
  let p = at + 1;
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === 0x3f) break;
    if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) {
      const quoted = jsonString(loggablePath(path));
      return at + buf.write(quoted.slice(0, -1), at, 'utf8');
    }
    buf[p++] = c;
  }
  return p;
}

/**
 * The duration in ms rounded to the µs, as JSON writes `Math.round(ms * 1000) / 1000`: whole
 * milliseconds, then "." and the µs digits without trailing zeros. For an integer count of µs
 * below 2^31 those are exactly the shortest digits that JavaScript prints for the quotient (a
 * decimal of at most 10 significant digits is the nearest double's shortest form); anything
 * else (a negative or a NaN clock difference, over 35 minutes) is printed by JavaScript.
 */
function writeDuration(buf: Buffer, p: number, durationMs: number): number {
  const us = Math.round(durationMs * 1000);
  if (!(us >= 0 && us < 2147483648)) return writeAscii(buf, p, `${us / 1000}`);
  const whole = (us / 1000) | 0;
  const frac = us - whole * 1000;
  p = writeDigits(buf, p, whole);
  if (frac !== 0) {
    const d2 = ((frac / 10) | 0) % 10;
    const d3 = frac % 10;
    buf[p++] = 0x2e;
    buf[p++] = 48 + ((frac / 100) | 0);
    if (d2 !== 0 || d3 !== 0) buf[p++] = 48 + d2;
    if (d3 !== 0) buf[p++] = 48 + d3;
  }
  return p;
}

/** A non-negative integer below 2^31 in decimal. */
function writeDigits(buf: Buffer, p: number, n: number): number {
  if (n < 10) {
    buf[p] = 48 + n;
    return p + 1;
  }
  let digits = 1;
  for (let t = n; t >= 10; t = (t / 10) | 0) digits++;
  for (let i = p + digits - 1; i >= p; i--) {
    buf[i] = 48 + (n % 10);
    n = (n / 10) | 0;
  }
  return p + digits;
}

/** An ASCII string (a number's digits), byte by byte. */
function writeAscii(buf: Buffer, p: number, s: string): number {
  for (let i = 0; i < s.length; i++) buf[p++] = s.charCodeAt(i);
  return p;
}
