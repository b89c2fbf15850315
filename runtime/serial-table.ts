// The revoked serials of a large CRL as three typed arrays (built in the CRL worker thread,
// runtime/crl-worker.ts, and transferred): the serials' hex packed end to end, where each ends,
// and a hash-slot table over them (runtime/hash-slots.ts). 1,000,000 serials of 20 bytes are
// ~52 MB here, where a Set of strings held ~120 MB, and the main thread adopts them without a
// step per entry. A lookup is one FNV-1a over the serial's characters and a short probe, with
// nothing allocated.
import { buildSlots, hashString } from './hash-slots.ts';

/** What a revocation lookup needs of a CRL's serials: a Set<string> and a SerialTable both are one. */
export interface SerialLookup {
  has(serial: string): boolean;
  readonly size: number;
}

/** The arrays of a SerialTable, as the worker posts them. */
export interface SerialArrays {
  /** Normalised serials (lowercase hex, no leading zeros) as ASCII, end to end. */
  hex: Uint8Array;
  /** Where serial i ends in `hex` (it starts where i-1 ends). */
  ends: Uint32Array;
  /** Hash slots of the serials (hashString of each), -1 = empty. */
  slots: Int32Array;
}

const HEX = '0123456789abcdef';
const HEX_CODES = Uint8Array.from(HEX, (c) => c.charCodeAt(0));

/** Builds the arrays of a CRL's serials as they are walked (each an INTEGER's content bytes). */
export class SerialTableBuilder {
  private hex: Uint8Array;
  private ends: Uint32Array;
  private used = 0;
  private count = 0;

  constructor(sizeHint: number) {
    this.hex = new Uint8Array(Math.max(64, sizeHint));
    this.ends = new Uint32Array(Math.max(16, sizeHint >>> 5));
  }

  /** Adds the serial whose INTEGER content is `bytes[start, end)`, normalised as normaliseSerial writes it. */
  add(bytes: Uint8Array, start: number, end: number): void {
    let i = start;
    while (i < end && bytes[i] === 0) i++;
    if (this.used + 2 * (end - i) + 1 > this.hex.length) this.hex = grow(this.hex, this.used + 2 * (end - i) + 1);
    if (this.count === this.ends.length) this.ends = grow(this.ends, this.count + 1);
    const hex = this.hex;
    let at = this.used;
    if (i === end) hex[at++] = 0x30;
    else {
      if (bytes[i] >= 0x10) hex[at++] = HEX_CODES[bytes[i] >> 4];
      hex[at++] = HEX_CODES[bytes[i] & 15];
      for (i++; i < end; i++) {
        hex[at++] = HEX_CODES[bytes[i] >> 4];
        hex[at++] = HEX_CODES[bytes[i] & 15];
      }
    }
    this.used = at;
    this.ends[this.count++] = at;
  }

  /** Adds a serial already normalised (lowercase hex, no leading zeros: a bundle's compiled CRL). */
  addHex(serial: string): void {
    if (this.used + serial.length > this.hex.length) this.hex = grow(this.hex, this.used + serial.length);
    if (this.count === this.ends.length) this.ends = grow(this.ends, this.count + 1);
    for (let i = 0; i < serial.length; i++) this.hex[this.used + i] = serial.charCodeAt(i);
    this.used += serial.length;
    this.ends[this.count++] = this.used;
  }

  /** The finished arrays (trimmed copies: they are transferred whole). */
  finish(): SerialArrays {
    const hex = this.hex.slice(0, this.used);
    const ends = this.ends.slice(0, this.count);
    const slots = buildSlots(this.count, (k) => hashRange(hex, k === 0 ? 0 : ends[k - 1], ends[k]));
    return { hex, ends, slots };
  }
}

function grow<T extends Uint8Array | Uint32Array>(a: T, atLeast: number): T {
  const bigger = new (a.constructor as new (n: number) => T)(Math.max(atLeast, a.length * 2));
  bigger.set(a);
  return bigger;
}

/** hashString of the ASCII in `bytes[start, end)`. */
function hashRange(bytes: Uint8Array, start: number, end: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) {
    h ^= bytes[i];
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** A CRL's serials, looked up in O(1) without allocating. */
export class SerialTable implements SerialLookup {
  private readonly hex: Uint8Array;
  private readonly ends: Uint32Array;
  private readonly slots: Int32Array;
  private readonly mask: number;

  constructor(arrays: SerialArrays) {
    this.hex = arrays.hex;
    this.ends = arrays.ends;
    this.slots = arrays.slots;
    this.mask = arrays.slots.length - 1;
  }

  get size(): number {
    return this.ends.length;
  }

  /** Bytes the table holds (its three arrays). */
  get byteLength(): number {
    return this.hex.byteLength + this.ends.byteLength + this.slots.byteLength;
  }

  /** The serials in the order they were added (a bundle's file form again: runtime/compact-keys.ts). */
  list(): string[] {
    const out: string[] = new Array(this.ends.length);
    const text = Buffer.from(this.hex.buffer, this.hex.byteOffset, this.hex.byteLength).toString('latin1');
    for (let k = 0; k < out.length; k++) out[k] = text.slice(k === 0 ? 0 : this.ends[k - 1], this.ends[k]);
    return out;
  }

  has(serial: string): boolean {
    const { hex, ends, slots, mask } = this;
    for (let s = hashString(serial) & mask; ; s = (s + 1) & mask) {
      const k = slots[s];
      if (k === -1) return false;
      const start = k === 0 ? 0 : ends[k - 1];
      if (ends[k] - start !== serial.length) continue;
      // From the end: a CA's serials often share a long prefix and differ in their last digits.
      let i = serial.length - 1;
      while (i >= 0 && hex[start + i] === serial.charCodeAt(i)) i--;
      if (i < 0) return true;
    }
  }
}
