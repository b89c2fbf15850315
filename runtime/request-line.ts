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
//     (,"upstream_error":<cause> after <remote> on a failed       and a failed upstream's cause
//     upstream exchange: runtime/upstream-cause.ts)
//
// A value that needs JSON escaping, or is not ASCII, goes through JSON.stringify and a UTF-8
// write instead (the same bytes pino writes): the rare path.
import type { RequestRecord } from './gateway.ts';

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what must be escaped
const NEEDS_ESCAPE = /["\\\u0000-\u001f\u007f-\uffff]/;

/** A string as JSON: quoted, escaped only when it has to be (JSON.stringify then). */
function jsonString(s: string | null): string {
  if (s === null) return 'null';
  return NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : `"${s}"`;
}

/** The path as logged: without its query string, which may carry a token. */
function loggablePath(path: string): string {
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
    readonly bytes: Uint8Array,
    /** An older segment with the same first value. */
    public next: Segment | null,
  ) {}
}

class SegmentCache {
  private last: Segment | null = null;
  private readonly byFirst = new Map<Value, Segment>();

  constructor(private readonly encode: (a: Value, b: Value, c: Value, d: Value, e: Value, f: Value) => string) {}

  of(a: Value, b: Value, c: Value, d: Value, e: Value, f: Value): Uint8Array {
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
      s = new Segment(a, b, c, d, e, f, new Uint8Array(Buffer.from(this.encode(a, b, c, d, e, f), 'utf8')), first ?? null);
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
/**
 * From the client's address to the end of the line; a failed upstream exchange's cause
 * (runtime/upstream-cause.ts) rides in it, so the line of a request without one costs nothing more.
 */
const END = new SegmentCache((remote, cause) => `,"remote":${str(remote)}${cause === null ? '' : `,"upstream_error":${str(cause)}`},"msg":"request"}\n`);
/** TypedArray.prototype.set, looked up once (see encodeRequestLine). */
const setBytes = Uint8Array.prototype.set;
/** The path's closing quote and the next field's name. */
const DURATION = ascii('","duration_ms":');

/**
 * The line's head up to the api's value, for the current millisecond. Within one second only
 * the three millisecond digits change: they are patched in place. The head is copied into the
 * line, so patching it never changes a line already written.
 */
const HEAD_BEFORE_TIME = '{"level":"info","time":"';
const HEAD_AFTER_TIME = '","service":"mtlsgate","api":';
/** Where the time starts in the head, and its milliseconds' three digits (a 24-character ISO time). */
const TIME_AT = HEAD_BEFORE_TIME.length;
const MS_AT = TIME_AT + 20;
/** The head for 24-character ISO times, rewritten in place (no allocation per second). */
const HEAD24 = ascii(`${HEAD_BEFORE_TIME}0000-00-00T00:00:00.000Z${HEAD_AFTER_TIME}`);
let headBytes = HEAD24;
let lastMs = Number.NaN;
let secondStart = Number.NaN;

function headNow(): Uint8Array {
  const now = Date.now();
  if (now === lastMs) return headBytes;
  lastMs = now;
  const ms = now % 1000;
  if (ms < 0 || now - ms !== secondStart) {
    // A new second: toISOString once. A time whose ISO form is not 24 characters (before 1970
    // the remainder is negative; past year 9999 the year has six digits) gets a head of its own.
    const iso = new Date(now).toISOString();
    if (ms < 0 || iso.length !== 24) {
      secondStart = Number.NaN;
      headBytes = ascii(HEAD_BEFORE_TIME + iso + HEAD_AFTER_TIME);
      return headBytes;
    }
    secondStart = now - ms;
    headBytes = HEAD24;
    for (let i = 0; i < 20; i++) HEAD24[TIME_AT + i] = iso.charCodeAt(i);
  }
  HEAD24[MS_AT] = 48 + ((ms / 100) | 0);
  HEAD24[MS_AT + 1] = 48 + (((ms / 10) % 10) | 0);
  HEAD24[MS_AT + 2] = 48 + (ms % 10);
  return HEAD24;
}

/**
 * Writes the request line of `r` (with its "\n") into `buf` at `at`, where `room` bytes are free.
 * Returns the end, or minus the bytes it needs when `room` may be too few (nothing is written).
 * The segments and the head are Uint8Arrays copied by TypedArray.prototype.set, called through
 * `setBytes`: `buf.set(...)` was a generic property lookup in the optimised code, on a Buffer
 * and on a plain Uint8Array alike (~90 instructions a call, seen by callgrind).
 */
export function encodeRequestLine(buf: Uint8Array, at: number, room: number, r: RequestRecord): number {
  const head = headNow();
  const middle = MIDDLE.of(r.cert, r.api, r.key, r.status, r.code, r.method);
  // The cause is read only for a line with a code: most lines have none.
  const end = END.of(r.remote, r.code === null ? null : (r.upstreamError ?? null), null, null, null, null);
  const path = r.path;
  // The path at 6 bytes a character at most (`\uXXXX`); 64 for the duration and its label.
  const need = head.length + middle.length + end.length + path.length * 6 + 64;
  if (need > room) return -need;
  setBytes.call(buf, head, at);
  let p = at + head.length;
  setBytes.call(buf, middle, p);
  p = writePath(buf, p + middle.length, path);
  setBytes.call(buf, DURATION, p);
  p = writeDuration(buf, p + DURATION.length, r.durationMs);
  setBytes.call(buf, end, p);
  return p + end.length;
}

/**
 * The path up to its "?", its opening quote included and its closing one not (DURATION begins
 * with it): byte by byte while it is printable ASCII without `"` or `\`.
 */
function writePath(buf: Uint8Array, at: number, path: string): number {
  buf[at] = 0x22;
  let p = at + 1;
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === 0x3f) break;
    if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) {
      const quoted = Buffer.from(jsonString(loggablePath(path)).slice(0, -1), 'utf8');
      setBytes.call(buf, quoted, at);
      return at + quoted.length;
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
function writeDuration(buf: Uint8Array, p: number, durationMs: number): number {
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
function writeDigits(buf: Uint8Array, p: number, n: number): number {
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

/** An ASCII string as bytes (the head once a second, a constant). */
function ascii(s: string): Uint8Array {
  const bytes = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) bytes[i] = s.charCodeAt(i);
  return bytes;
}

/** An ASCII string (a number's digits), byte by byte. */
function writeAscii(buf: Uint8Array, p: number, s: string): number {
  for (let i = 0; i < s.length; i++) buf[p++] = s.charCodeAt(i);
  return p;
}
