// Open-addressing hash tables over packed entries (key ids, fingerprints, token hashes held in
// typed arrays): O(1) lookups without a JavaScript object or Map entry per key, so a
// 1,000,000-key snapshot costs a few typed arrays, built in the worker and transferred.

export { hashString } from '../bundle/shard-of.ts';

/** Slots for `n` entries: a power of two at least twice `n` (linear probing stays short). */
export function slotCount(n: number): number {
  let size = 2;
  while (size < n * 2) size *= 2;
  return size;
}

/** The first 32 bits of a SHA-256 in hex: already uniform (anything else hashes to 0 and is not found). */
export function hashHex(hex: string): number {
  return Number.parseInt(hex.slice(0, 8), 16) >>> 0;
}

/** `hashHex` of the 64-hex value at `at` in a byte array (no string made: ~1,000,000 of them at load). */
export function hashHexBytes(bytes: Uint8Array, at: number): number {
  let h = 0;
  for (let i = at; i < at + 8; i++) {
    const c = bytes[i];
    h = h * 16 + (c <= 0x39 ? c - 0x30 : c - 0x57);
  }
  return h >>> 0;
}

/** Slot table of entries 0..n-1; -1 = empty. */
export function buildSlots(n: number, hashOf: (i: number) => number): Int32Array {
  const slots = new Int32Array(slotCount(n)).fill(-1);
  for (let i = 0; i < n; i++) insertInSlots(slots, hashOf(i), i);
  return slots;
}

/** Puts `entry` (not -1) in the first free slot of its probe run. */
function insertInSlots(slots: Int32Array, hash: number, entry: number): void {
  const mask = slots.length - 1;
  let s = hash & mask;
  while (slots[s] !== -1) s = (s + 1) & mask;
  slots[s] = entry;
}

/** The entry with this hash that `is` accepts, or -1. */
export function findInSlots(slots: Int32Array, hash: number, is: (i: number) => boolean): number {
  const mask = slots.length - 1;
  for (let s = hash & mask; ; s = (s + 1) & mask) {
    const i = slots[s];
    if (i === -1 || is(i)) return i;
  }
}
