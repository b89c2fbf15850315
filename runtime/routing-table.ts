// One routing table (runtime/shard-routing.ts): open-addressing slots (runtime/hash-slots.ts,
// linear probing) over some shards' 64-hex values (certificate fingerprints or token hashes),
// the first 32 bits of a SHA-256 being the hash, each slot holding (shard << 20 | entry in that
// shard): non-negative, as shards are fewer than 2^11. The slots live in a SharedArrayBuffer:
// the reload worker reads the serving table in place, and a table is never written once it
// serves (a patch writes a copy), so the main thread's lookups never see a half-made table.
import { hashHexBytes, insertInSlots, slotCount } from './hash-slots.ts';

export const INDEX_BITS = 20;
/** Most certificates (or token hashes) one shard may hold. */
export const MAX_SHARD_ENTRIES = 2 ** INDEX_BITS - 1;
const INDEX_MASK = 2 ** INDEX_BITS - 1;

export const entryShard = (e: number): number => e >> INDEX_BITS;
export const entryIndex = (e: number): number => e & INDEX_MASK;
const pack = (shard: number, index: number): number => (shard << INDEX_BITS) | index;

/** A shard's values of one table: 64 hex characters each, concatenated. */
export type Values = Uint8Array;

export interface Table {
  /** Slots of packed entries, -1 when free. */
  slots: Int32Array;
  /** Entries in the slots (for the load factor). */
  count: number;
}

function sharedSlots(n: number): Int32Array {
  return new Int32Array(new SharedArrayBuffer(n * Int32Array.BYTES_PER_ELEMENT));
}

/** Does a table of `size` slots fit `count` entries: load at most ~0.7 (linear probing degrades past it), and not far below (shrink). */
export function fits(size: number, count: number): boolean {
  return count * 10 <= size * 7 && !(size > 16 && count * 8 < size);
}

/** A table over the values of `shards` (values(s) for each s), from scratch. */
export function buildTable(shards: Iterable<number>, values: (shard: number) => Values): Table {
  const list = [...shards];
  let count = 0;
  for (const s of list) count += values(s).length / 64;
  const slots = sharedSlots(slotCount(count)).fill(-1);
  for (const s of list) insertAll(slots, s, values(s));
  return { slots, count };
}

function insertAll(slots: Int32Array, shard: number, bytes: Values): void {
  for (let i = 0; i < bytes.length / 64; i++) insertInSlots(slots, hashHexBytes(bytes, i * 64), pack(shard, i));
}

/** Removes `entry` (whose hash is `hash`) and shifts later entries of its probe run back (backward-shift deletion keeps probe runs intact). */
function remove(slots: Int32Array, hash: number, entry: number, hashOf: (e: number) => number): void {
  const mask = slots.length - 1;
  let i = hash & mask;
  while (slots[i] !== entry) {
    if (slots[i] === -1) throw new Error('internal error: a routing entry to remove is not in the table');
    i = (i + 1) & mask;
  }
  for (let j = (i + 1) & mask; slots[j] !== -1; j = (j + 1) & mask) {
    const home = hashOf(slots[j]) & mask;
    // Move slots[j] back to the hole at i unless its home lies cyclically in (i, j].
    const stays = i <= j ? home > i && home <= j : home > i || home <= j;
    if (!stays) {
      slots[i] = slots[j];
      i = j;
    }
  }
  slots[i] = -1;
}

/**
 * A copy of `old` with the entries of the shards in `out` removed and those of `into` inserted;
 * null when the result would not fit the same size (the caller builds one from scratch).
 * `held(s)` are the values `old` holds for shard s (what its entries' indexes point into), and
 * `now(s)` the values to insert. Costs the copy and the changed entries, not the table's size in hashing.
 */
export function patchTable(old: Table, out: number[], into: number[], held: (s: number) => Values, now: (s: number) => Values): Table | null {
  let count = old.count;
  for (const s of out) count -= held(s).length / 64;
  for (const s of into) count += now(s).length / 64;
  if (!fits(old.slots.length, count)) return null;
  const slots = sharedSlots(old.slots.length);
  slots.set(old.slots);
  // While deleting, every entry still in the table points into `held`.
  const heldHash = (e: number) => hashHexBytes(held(entryShard(e)), entryIndex(e) * 64);
  for (const s of out) {
    const bytes = held(s);
    for (let i = 0; i < bytes.length / 64; i++) remove(slots, hashHexBytes(bytes, i * 64), pack(s, i), heldHash);
  }
  for (const s of into) insertAll(slots, s, now(s));
  return { slots, count };
}
