// The tables that send a certificate fingerprint or a token hash to the shard that holds it,
// and the expiry list of the whole set. Keys are sharded by id (bundle/shard-of.ts), so a key id
// finds its shard by hashing; a fingerprint or a token hash cannot, so these tables map each to
// its shard: one open-addressing table over every shard's entries (the first 32 bits of a
// SHA-256 are its hash), each slot holding a global ordinal whose shard is `certShard[g]`.
//
// Built from the shards' own byte tables (in SharedArrayBuffers, so the reload worker reads the
// shards it keeps without a copy): ~1,000,000 entries in ~100 ms, in the worker on a reload.
import { buildSlots, hashHexBytes } from './hash-slots.ts';

/** What the routing reads of one shard (or of the manifest, for the expiry list). */
export interface RoutingSource {
  certFingerprints: Uint8Array;
  tokenHashes: Uint8Array;
  expiryTimes: Float64Array;
}

export interface ShardRouting {
  certSlots: Int32Array;
  /** certStart[s] = global ordinal of shard s's first fingerprint; certStart[N] = total. */
  certStart: Int32Array;
  certShard: Uint16Array;
  tokenSlots: Int32Array;
  tokenStart: Int32Array;
  tokenShard: Uint16Array;
  /** Every source's expiry entries merged, soonest first: the time, the source, the entry in that source's list. */
  expiryTimes: Float64Array;
  expirySource: Uint16Array;
  expiryEntry: Int32Array;
}

function ordinals(counts: number[]): { start: Int32Array; shard: Uint16Array } {
  const start = new Int32Array(counts.length + 1);
  for (let s = 0; s < counts.length; s++) start[s + 1] = start[s] + counts[s];
  const shard = new Uint16Array(start[counts.length]);
  for (let s = 0; s < counts.length; s++) shard.fill(s, start[s], start[s + 1]);
  return { start, shard };
}

function table(tables: Uint8Array[]): { slots: Int32Array; start: Int32Array; shard: Uint16Array } {
  const { start, shard } = ordinals(tables.map((t) => t.length / 64));
  const slots = buildSlots(shard.length, (g) => hashHexBytes(tables[shard[g]], (g - start[shard[g]]) * 64));
  return { slots, start, shard };
}

/**
 * Merges sorted expiry lists (a binary heap of the sources' heads): ~20 ns an entry. Equal times
 * keep source order, then list order, so the same set always gives the same list.
 */
function mergeExpiry(lists: Float64Array[]): Pick<ShardRouting, 'expiryTimes' | 'expirySource' | 'expiryEntry'> {
  let total = 0;
  for (const l of lists) total += l.length;
  const times = new Float64Array(total);
  const source = new Uint16Array(total);
  const entry = new Int32Array(total);
  const heap: number[] = [];
  const pos = new Int32Array(lists.length);
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
  for (let s = 0; s < lists.length; s++) if (lists[s].length > 0) heap.push(s);
  for (let i = (heap.length >> 1) - 1; i >= 0; i--) down(i);
  for (let o = 0; o < total; o++) {
    const s = heap[0];
    times[o] = lists[s][pos[s]];
    source[o] = s;
    entry[o] = pos[s]++;
    if (pos[s] === lists[s].length) {
      const last = heap.pop()!;
      if (heap.length === 0) break;
      heap[0] = last;
    }
    down(0);
  }
  return { expiryTimes: times, expirySource: source, expiryEntry: entry };
}

/** Routing over `shards` (in shard order); `expiryOnly` sources (the manifest) join the expiry list only, after the shards. */
export function buildRouting(shards: RoutingSource[], expiryOnly: RoutingSource[]): ShardRouting {
  const certs = table(shards.map((s) => s.certFingerprints));
  const tokens = table(shards.map((s) => s.tokenHashes));
  return {
    certSlots: certs.slots,
    certStart: certs.start,
    certShard: certs.shard,
    tokenSlots: tokens.slots,
    tokenStart: tokens.start,
    tokenShard: tokens.shard,
    ...mergeExpiry([...shards, ...expiryOnly].map((s) => s.expiryTimes)),
  };
}

export function routingTransferables(r: ShardRouting): ArrayBuffer[] {
  return [r.certSlots, r.certStart, r.certShard, r.tokenSlots, r.tokenStart, r.tokenShard, r.expiryTimes, r.expirySource, r.expiryEntry].map(
    (a) => a.buffer as ArrayBuffer,
  );
}
