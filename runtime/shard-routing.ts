// The tables that send a certificate fingerprint or a token hash to the shard that holds it,
// and the expiry list of the whole set. Keys are sharded by id (bundle/shard-of.ts), so a key id
// finds its shard by hashing; a fingerprint or a token hash cannot, so these tables map each to
// its shard: one open-addressing table (runtime/hash-slots.ts, linear probing) over every
// shard's entries, the first 32 bits of a SHA-256 being its hash, each slot holding
// (shard << 20 | entry in that shard): non-negative, as shards are fewer than 2^11.
//
// A reload that changes a few shards updates the tables in place of a rebuild: the changed
// shards' old entries are deleted (backward-shift deletion keeps probe runs intact) and their
// new entries inserted, and the expiry list is filtered and merged: ~1 ms a changed shard plus
// copying the arrays, where a rebuild at 1,000,000 keys costs hundreds of milliseconds. Every
// array lives in a SharedArrayBuffer: the reload worker reads the serving tables in place.
import { hashHexBytes, insertInSlots, slotCount } from './hash-slots.ts';

/** What the routing reads of one shard (or of the manifest, for the expiry list). */
export interface RoutingSource {
  certFingerprints: Uint8Array;
  tokenHashes: Uint8Array;
  expiryTimes: Float64Array;
}

export interface ShardRouting {
  /** Slots of packed entries (shard << INDEX_BITS | entry), -1 when free. */
  certSlots: Int32Array;
  tokenSlots: Int32Array;
  /** Entries in the tables (for the load factor). */
  certCount: number;
  tokenCount: number;
  /** Every source's expiry entries merged, soonest first (then by source, then entry): the time, the source, the entry in its list. */
  expiryTimes: Float64Array;
  expirySource: Uint16Array;
  expiryEntry: Int32Array;
}

export const INDEX_BITS = 20;
/** Most certificates (or token hashes) one shard may hold. */
export const MAX_SHARD_ENTRIES = 2 ** INDEX_BITS - 1;
const INDEX_MASK = 2 ** INDEX_BITS - 1;

export const entryShard = (e: number): number => e >> INDEX_BITS;
export const entryIndex = (e: number): number => e & INDEX_MASK;

function sharedArray<T>(Type: { new (b: SharedArrayBuffer): T; BYTES_PER_ELEMENT: number }, n: number): T {
  return new Type(new SharedArrayBuffer(Math.max(1, n) * Type.BYTES_PER_ELEMENT));
}

const pack = (shard: number, index: number): number => (shard << INDEX_BITS) | index;

/** Removes `entry` (whose hash is `hash`) and shifts later entries of its probe run back. */
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

type TableOf = (s: RoutingSource) => Uint8Array;
const certsOf: TableOf = (s) => s.certFingerprints;
const tokensOf: TableOf = (s) => s.tokenHashes;

/** Entries are numbered within a shard in INDEX_BITS bits. */
function checkSizes(sources: RoutingSource[]): void {
  sources.forEach((s, i) => {
    for (const [table, what] of [
      [certsOf, 'certificates'],
      [tokensOf, 'token hashes'],
    ] as const)
      if (table(s).length / 64 > MAX_SHARD_ENTRIES) throw new Error(`shard ${i} holds more than ${MAX_SHARD_ENTRIES} ${what}; compile with more --shards`);
  });
}

function buildTable(sources: RoutingSource[], table: TableOf): Table {
  let count = 0;
  for (const s of sources) count += table(s).length / 64;
  const slots = sharedArray(Int32Array, slotCount(count)).fill(-1);
  sources.forEach((src, shard) => {
    const bytes = table(src);
    for (let i = 0; i < bytes.length / 64; i++) insertInSlots(slots, hashHexBytes(bytes, i * 64), pack(shard, i));
  });
  return { slots, count };
}

/** The table with `changed` shards' entries replaced (old entries hashed from `before`, new from `after`); null when a rebuild is due. */
function updateTable(old: Int32Array, oldCount: number, before: RoutingSource[], after: RoutingSource[], changed: number[], table: TableOf): Table | null {
  let count = oldCount;
  for (const i of changed) count += table(after[i]).length / 64 - table(before[i]).length / 64;
  // Keep the load at most ~0.7 (linear probing degrades past it), and shrink when far below.
  if (count * 10 > old.length * 7 || (old.length > 16 && count * 8 < old.length)) return null;
  const slots = sharedArray(Int32Array, old.length);
  slots.set(old);
  const hashIn = (sources: RoutingSource[]) => (e: number) => hashHexBytes(table(sources[entryShard(e)]), entryIndex(e) * 64);
  // While deleting, entries of changed shards still hold old indexes and the rest are unchanged: `before` hashes both.
  const beforeHash = hashIn(before);
  for (const shard of changed) {
    const bytes = table(before[shard]);
    for (let i = 0; i < bytes.length / 64; i++) remove(slots, hashHexBytes(bytes, i * 64), pack(shard, i), beforeHash);
  }
  for (const shard of changed) {
    const bytes = table(after[shard]);
    for (let i = 0; i < bytes.length / 64; i++) insertInSlots(slots, hashHexBytes(bytes, i * 64), pack(shard, i));
  }
  return { slots, count };
}

type Expiry = Pick<ShardRouting, 'expiryTimes' | 'expirySource' | 'expiryEntry'>;

/** (time, source, entry) order. */
function before(ta: number, sa: number, ea: number, tb: number, sb: number, eb: number): boolean {
  return ta < tb || (ta === tb && (sa < sb || (sa === sb && ea < eb)));
}

/**
 * The entries of `lists[s]` for s in `sources` (ascending), each list sorted, merged in (time,
 * source, entry) order: a binary heap of the lists' heads, ~20 ns an entry.
 */
function mergeSorted(lists: Float64Array[], sources: number[]): { add: { times: Float64Array; source: Uint16Array; entry: Int32Array }; n: number } {
  let n = 0;
  for (const s of sources) n += lists[s].length;
  const add = { times: new Float64Array(n), source: new Uint16Array(n), entry: new Int32Array(n) };
  const pos = new Int32Array(lists.length);
  const heap = sources.filter((s) => lists[s].length > 0);
  const less = (a: number, b: number) => {
    const ta = lists[a][pos[a]];
    const tb = lists[b][pos[b]];
    return ta < tb || (ta === tb && a < b);
  };
  const down = (i: number) => {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < heap.length && less(heap[l], heap[m])) m = l;
      if (r < heap.length && less(heap[r], heap[m])) m = r;
      if (m === i) return;
      [heap[i], heap[m]] = [heap[m], heap[i]];
      i = m;
    }
  };
  for (let i = (heap.length >> 1) - 1; i >= 0; i--) down(i);
  for (let o = 0; o < n; o++) {
    const s = heap[0];
    add.times[o] = lists[s][pos[s]];
    add.source[o] = s;
    add.entry[o] = pos[s]++;
    if (pos[s] === lists[s].length) {
      const last = heap.pop()!;
      if (heap.length === 0) break;
      heap[0] = last;
    }
    down(0);
  }
  return { add, n };
}

/** The expiry list of `lists` (source i's sorted times), merged; `keep` the old list's entries of unchanged sources. */
function mergeExpiry(lists: Float64Array[], fresh: number[], keep: Expiry | null): Expiry {
  const isFresh = new Uint8Array(lists.length);
  for (const s of fresh) isFresh[s] = 1;
  const { add, n } = mergeSorted(lists, fresh);
  let kept = 0;
  if (keep) for (let i = 0; i < keep.expiryTimes.length; i++) if (isFresh[keep.expirySource[i]] === 0) kept++;
  const total = kept + n;
  const out = { expiryTimes: sharedArray(Float64Array, total), expirySource: sharedArray(Uint16Array, total), expiryEntry: sharedArray(Int32Array, total) };
  let a = 0;
  let b = 0;
  const oldLen = keep ? keep.expiryTimes.length : 0;
  for (let o = 0; o < total; o++) {
    while (a < oldLen && isFresh[keep!.expirySource[a]] === 1) a++;
    const fromOld =
      a < oldLen && (b >= n || before(keep!.expiryTimes[a], keep!.expirySource[a], keep!.expiryEntry[a], add.times[b], add.source[b], add.entry[b]));
    if (fromOld) {
      out.expiryTimes[o] = keep!.expiryTimes[a];
      out.expirySource[o] = keep!.expirySource[a];
      out.expiryEntry[o] = keep!.expiryEntry[a++];
    } else {
      out.expiryTimes[o] = add.times[b];
      out.expirySource[o] = add.source[b];
      out.expiryEntry[o] = add.entry[b++];
    }
  }
  return out;
}

/** Routing over `shards` (in shard order); `base` (the manifest) joins the expiry list only, as source shards.length. */
export function buildRouting(shards: RoutingSource[], base: RoutingSource): ShardRouting {
  checkSizes(shards);
  const lists = [...shards, base].map((s) => s.expiryTimes);
  return routing(
    buildTable(shards, certsOf),
    buildTable(shards, tokensOf),
    mergeExpiry(
      lists,
      lists.map((_, i) => i),
      null,
    ),
  );
}

type Table = { slots: Int32Array; count: number };

function routing(certs: Table, tokens: Table, expiry: Expiry): ShardRouting {
  return { certSlots: certs.slots, certCount: certs.count, tokenSlots: tokens.slots, tokenCount: tokens.count, ...expiry };
}

/**
 * The routing of a set whose shards `changed` (same shard count) differ from the serving set's:
 * `old` updated rather than rebuilt. `beforeShards` are the serving set's shards (by index).
 */
export function updateRouting(old: ShardRouting, beforeShards: RoutingSource[], shards: RoutingSource[], changed: number[], base: RoutingSource): ShardRouting {
  if (beforeShards.length !== shards.length) return buildRouting(shards, base);
  checkSizes(shards);
  const certs = updateTable(old.certSlots, old.certCount, beforeShards, shards, changed, certsOf);
  const tokens = updateTable(old.tokenSlots, old.tokenCount, beforeShards, shards, changed, tokensOf);
  if (certs === null || tokens === null) return buildRouting(shards, base);
  // The manifest (source shards.length) is always taken afresh: it is small, and it changed.
  const lists = [...shards, base].map((s) => s.expiryTimes);
  return routing(certs, tokens, mergeExpiry(lists, [...changed, shards.length], old));
}
