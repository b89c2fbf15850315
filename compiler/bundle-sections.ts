// A bundle file (format v2, as bundle/write.ts writes it) read as byte ranges of its content's
// parts instead of one JSON.parse: at 1,000,000 keys the parse costs ~1 s (most of it making
// 1,000,000 key id strings) and writing the whole content again ~1 s more. The compile
// snapshot's patch (compiler/section-patch.ts) reads only the parts a key change touches and
// copies every other byte as it is. Key ids and 64-hex values are searched in the bytes (ids
// are [a-z0-9._-], so byte order is JavaScript string order and no id holds a quote or a comma).
// Anything that is not exactly the layout below answers null: the caller parses the whole file.
import type { WireContent } from '../bundle/types.ts';

/** The content's parts in file order (the writer sorts object keys); nested ones as "outer.inner". */
const PARTS = [
  'apis',
  'cas',
  'certs.apis',
  'certs.hex',
  'certs.key',
  'certs.not_after',
  'keys.expires',
  'keys.ids',
  'keys.inactive',
  'keys.session',
  'matches',
  'not_after',
  'revocation',
  'routes',
  'sessions',
  'tokens.hex',
  'tokens.key',
] as const;
export type Part = (typeof PARTS)[number];

export interface Sections {
  /** The whole bundle file. */
  bytes: Buffer;
  /** The content's value: bytes [content[0], content[1]). */
  content: [number, number];
  /** Each part's JSON value: bytes [at[p][0], at[p][1]). */
  at: Record<Part, [number, number]>;
}

const QUOTE = 34;
const COMMA = 44;
const BACKSLASH = 92;

/** The end (exclusive) of the JSON string starting at b[i] (a quote), or -1. */
function skipString(b: Buffer, i: number): number {
  let j = i + 1;
  for (;;) {
    const q = b.indexOf(QUOTE, j);
    if (q < 0) return -1;
    let k = q - 1;
    while (b[k] === BACKSLASH) k--;
    if ((q - 1 - k) % 2 === 0) return q + 1;
    j = q + 1;
  }
}

/** The end (exclusive) of the JSON value starting at b[i], or -1 (well-formed input assumed: the bundle's digest was checked). */
function skipValue(b: Buffer, i: number, end: number): number {
  const c = b[i];
  if (c === QUOTE) return skipString(b, i);
  if (c === 0x5b || c === 0x7b) {
    let depth = 0;
    for (let j = i; j < end; j++) {
      const x = b[j];
      if (x === QUOTE) {
        const s = skipString(b, j);
        if (s < 0) return -1;
        j = s - 1;
      } else if (x === 0x5b || x === 0x7b) depth++;
      else if (x === 0x5d || x === 0x7d) {
        if (--depth === 0) return j + 1;
      }
    }
    return -1;
  }
  let j = i;
  while (j < end && b[j] !== COMMA && b[j] !== 0x5d && b[j] !== 0x7d) j++;
  return j === i ? -1 : j;
}

/** Parts that are arrays of numbers, null or key ids ([a-z0-9._-]: the schema's pattern). */
const FLAT = new Set<Part>(['certs.key', 'certs.not_after', 'keys.ids', 'keys.session', 'tokens.key']);

const HEADER = /^\{"format":"mtlsgate\.bundle\/v2","digest":"sha256:[0-9a-f]{64}","content":/;

/** The parts of a bundle file, or null when it is not laid out as the writer lays it out. */
export function locateSections(bytes: Buffer): Sections | null {
  const head = bytes.toString('latin1', 0, 200).match(HEADER);
  if (!head || bytes.length < 4 || bytes[bytes.length - 1] !== 10 || bytes[bytes.length - 2] !== 0x7d) return null;
  const end = bytes.length - 2;
  const start = head[0].length;
  const at = {} as Record<Part, [number, number]>;
  let i = start;
  const lit = (s: string): boolean => {
    if (bytes.toString('latin1', i, i + s.length) !== s) return false;
    i += s.length;
    return true;
  };
  let outer = '';
  for (const part of PARTS) {
    const [o, inner] = part.includes('.') ? part.split('.') : [part, undefined];
    let open = '';
    if (inner === undefined || o !== outer) {
      // A new top-level key (closing the previous nested object first).
      if (outer !== '' && !lit('}')) return null;
      open = `${i === start ? '{' : ','}"${o}":${inner === undefined ? '' : '{'}`;
      outer = inner === undefined ? '' : o!;
      if (!lit(open)) return null;
      if (inner !== undefined && !lit(`"${inner}":`)) return null;
    } else if (!lit(`,"${inner}":`)) return null;
    // Arrays of numbers, null or key ids hold no bracket: their end is the next `]`.
    const e = FLAT.has(part) && bytes[i] === 0x5b ? bytes.indexOf(0x5d, i) + 1 : skipValue(bytes, i, end);
    if (e <= 0) return null;
    at[part] = [i, e];
    i = e;
  }
  if (outer !== '' && !lit('}')) return null;
  if (!lit('}') || i !== end) return null;
  return { bytes, content: [start, end], at };
}

/**
 * A JSON array of scalars without commas inside them (key ids, numbers, null) as element byte
 * offsets: element i is bytes [starts[i], starts[i + 1] - 1).
 */
export class ScalarColumn {
  readonly starts: Uint32Array;
  readonly length: number;

  constructor(
    readonly b: Buffer,
    range: [number, number],
  ) {
    const [s, e] = range;
    // `[` then elements separated by commas, then `]`: one pass over the bytes (an indexOf call
    // per element costs more than the loop at 1,000,000 elements).
    let starts = new Uint32Array(Math.max(1, (e - s) >>> 1) + 1);
    let n = 0;
    if (e - s > 2) {
      starts[n++] = s + 1;
      for (let j = s + 1; j < e - 1; j++) if (b[j] === COMMA) starts[n++] = j + 1;
    }
    starts[n] = e;
    starts = starts.slice(0, n + 1);
    this.starts = starts;
    this.length = n;
  }

  /** Element i's text (a string element with its quotes). */
  text(i: number): string {
    return this.b.toString('latin1', this.starts[i]!, this.starts[i + 1]! - 1);
  }

  /** Element i of a column of strings, unquoted. */
  string(i: number): string {
    return this.b.toString('latin1', this.starts[i]! + 1, this.starts[i + 1]! - 2);
  }

  /** Elements [from, to) as their bytes joined by commas. */
  run(from: number, to: number): Buffer {
    return this.b.subarray(this.starts[from]!, this.starts[to]! - 1);
  }

  /** In a column of ascending strings: the row of `value`, or -(insertion point) - 1. */
  search(value: string): number {
    return searchSorted(
      this.b,
      value,
      this.length,
      (i) => this.starts[i]! + 1,
      (i) => this.starts[i + 1]! - 2,
    );
  }
}

/**
 * Binary search over `length` ascending byte strings of `b`, element i being b[startOf(i), endOf(i)):
 * the index of `value`, or -(insertion point) - 1.
 */
function searchSorted(b: Buffer, value: string, length: number, startOf: (i: number) => number, endOf: (i: number) => number): number {
  const v = Buffer.from(value, 'latin1');
  let lo = 0;
  let hi = length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const c = b.compare(v, 0, v.length, startOf(mid), endOf(mid));
    if (c < 0) lo = mid + 1;
    else if (c > 0) hi = mid - 1;
    else return mid;
  }
  return -lo - 1;
}

/** A JSON array of integers (key rows, session numbers) as an Int32Array. */
export function parseInts(b: Buffer, range: [number, number]): Int32Array {
  const [s, e] = range;
  // At most one number per two bytes ("1,"): filled in one pass, then cut to length.
  const out = new Int32Array(Math.max(0, (e - s) >>> 1));
  let k = 0;
  let v = 0;
  let neg = false;
  if (e - s <= 2) return new Int32Array(0);
  for (let j = s + 1; j < e; j++) {
    const c = b[j]!;
    if (c >= 48 && c <= 57) v = v * 10 + (c - 48);
    else if (c === 45) neg = true;
    else {
      // A comma or the closing bracket.
      out[k++] = neg ? -v : v;
      v = 0;
      neg = false;
    }
  }
  return out.slice(0, k);
}

/** An Int32Array as a JSON array (what JSON.stringify makes of the same numbers). */
export function intsJson(values: Int32Array): Buffer {
  const out = Buffer.allocUnsafe(values.length * 12 + 2);
  const digits = new Uint8Array(12);
  let at = 0;
  out[at++] = 0x5b;
  for (let i = 0; i < values.length; i++) {
    if (i > 0) out[at++] = COMMA;
    let v = values[i]!;
    if (v < 0) {
      out[at++] = 45;
      v = -v;
    }
    let d = 0;
    do {
      digits[d++] = 48 + (v % 10);
      v = (v / 10) | 0;
    } while (v > 0);
    while (d > 0) out[at++] = digits[--d]!;
  }
  out[at++] = 0x5d;
  return out.subarray(0, at);
}

/** A hex table's value string `"…"` (64-hex values concatenated) in the bytes. */
export class HexColumn {
  readonly length: number;
  private readonly from: number;

  constructor(
    readonly b: Buffer,
    range: [number, number],
  ) {
    this.from = range[0] + 1;
    this.length = (range[1] - range[0] - 2) / 64;
    if (!Number.isInteger(this.length)) throw new Error('not a 64-hex table');
  }

  at(i: number): string {
    return this.b.toString('latin1', this.from + i * 64, this.from + (i + 1) * 64);
  }

  /** Values [from, to) as bytes. */
  run(from: number, to: number): Buffer {
    return this.b.subarray(this.from + from * 64, this.from + to * 64);
  }

  /** The index of `value`, or -(insertion point) - 1. */
  search(value: string): number {
    return searchSorted(
      this.b,
      value,
      this.length,
      (i) => this.from + i * 64,
      (i) => this.from + (i + 1) * 64,
    );
  }
}

/** The content of a bundle file as the writer wrote it, parsed (what CompileResult.wire holds when it is read). */
export function contentOf(bytes: Buffer): WireContent {
  const head = bytes.toString('latin1', 0, 200).match(HEADER);
  if (!head) throw new Error('not a bundle file');
  return JSON.parse(bytes.toString('utf8', head[0].length, bytes.length - 2)) as WireContent;
}

/** A part's JSON value parsed. */
export function parsePart<T>(s: Sections, part: Part): T {
  const [a, e] = s.at[part];
  return JSON.parse(s.bytes.toString('utf8', a, e)) as T;
}
