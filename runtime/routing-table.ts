// One routing table (runtime/shard-routing.ts): open-addressing slots (linear probing, as
// runtime/hash-slots.ts) over some shards' 64-hex values (certificate fingerprints or token
// hashes), the first 32 bits of a SHA-256 being the hash, each slot holding (shard << 20 | entry
// in that shard): non-negative, as shards are fewer than 2^11. The slots live in a
// SharedArrayBuffer: the reload worker reads the serving table in place, and a table is never
// written once it serves (a patch writes a copy), so the main thread's lookups never see a
// half-made table.
//
// A deleted entry leaves a TOMBSTONE (-2): lookups probe past it, an insertion may reuse it.
// Backward-shift deletion (no tombstones) had to hash every later entry of the probe run, each
// a read of a fingerprint somewhere in 64 MB of shard tables at 1,000,000 keys: folding 16
// shards into the base (runtime/shard-routing.ts) cost ~100 ms. Tombstones count against the
// load factor; past it the table is rebuilt from scratch, which clears them.
import { hashHexBytes, slotCount } from './hash-slots.ts';

export const INDEX_BITS = 20;
/** Most certificates (or token hashes) one shard may hold. */
export const MAX_SHARD_ENTRIES = 2 ** INDEX_BITS - 1;
const INDEX_MASK = 2 ** INDEX_BITS - 1;
export const FREE = -1;
export const TOMBSTONE = -2;

export const entryShard = (e: number): number => e >> INDEX_BITS;
export const entryIndex = (e: number): number => e & INDEX_MASK;
const pack = (shard: number, index: number): number => (shard << INDEX_BITS) | index;

/** A shard's values of one table: 64 hex characters each, concatenated. */
export type Values = Uint8Array;

export interface Table {
  /** Slots of packed entries, FREE or TOMBSTONE. */
  slots: Int32Array;
  /** Entries in the slots. */
  count: number;
  /** Tombstones in the slots (they lengthen probe runs as entries do). */
  dead: number;
}

function sharedSlots(n: number): Int32Array {
  return new Int32Array(new SharedArrayBuffer(n * Int32Array.BYTES_PER_ELEMENT));
}

/** Load at most ~0.7 counting tombstones (linear probing degrades past it), and entries not far below (shrink). */
function fits(size: number, count: number, dead: number): boolean {
  return (count + dead) * 10 <= size * 7 && !(size > 16 && count * 8 < size);
}

/** Puts `entry` in the first free or dead slot of its probe run; whether it took a tombstone. */
function insert(slots: Int32Array, hash: number, entry: number): boolean {
  const mask = slots.length - 1;
  let i = hash & mask;
  while (slots[i] >= 0) i = (i + 1) & mask;
  const reused = slots[i] === TOMBSTONE;
  slots[i] = entry;
  return reused;
}

/** A table over the values of `shards` (values(s) for each s), from scratch. */
export function buildTable(shards: Iterable<number>, values: (shard: number) => Values): Table {
  const list = [...shards];
  let count = 0;
  for (const s of list) count += values(s).length / 64;
  const slots = sharedSlots(slotCount(count)).fill(FREE);
  for (const s of list) {
    const bytes = values(s);
    for (let i = 0; i < bytes.length / 64; i++) insert(slots, hashHexBytes(bytes, i * 64), pack(s, i));
  }
  return { slots, count, dead: 0 };
}

/**
 * A copy of `old` with the entries of the shards in `out` removed and those of `into` inserted;
 * null when the result would not fit the same size (the caller builds one from scratch).
 * `held(s)` are the values `old` holds for shard s (what its entries' indexes point into; only
 * hashed to find them), and `now(s)` the values to insert. Costs the copy and the changed entries.
 */
export function patchTable(old: Table, out: number[], into: number[], held: (s: number) => Values, now: (s: number) => Values): Table | null {
  let count = old.count;
  let removed = 0;
  for (const s of out) removed += held(s).length / 64;
  for (const s of into) count += now(s).length / 64;
  count -= removed;
  // At worst no insertion reuses a tombstone.
  if (!fits(old.slots.length, count, old.dead + removed)) return null;
  const slots = sharedSlots(old.slots.length);
  slots.set(old.slots);
  const mask = slots.length - 1;
  for (const s of out) {
    const bytes = held(s);
    for (let k = 0; k < bytes.length / 64; k++) {
      const entry = pack(s, k);
      let i = hashHexBytes(bytes, k * 64) & mask;
      while (slots[i] !== entry) {
        if (slots[i] === FREE) throw new Error('internal error: a routing entry to remove is not in the table');
        i = (i + 1) & mask;
      }
      slots[i] = TOMBSTONE;
    }
  }
  let dead = old.dead + removed;
  for (const s of into) {
    const bytes = now(s);
    for (let k = 0; k < bytes.length / 64; k++) if (insert(slots, hashHexBytes(bytes, k * 64), pack(s, k))) dead--;
  }
  return { slots, count, dead };
}
