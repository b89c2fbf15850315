// The tables that send a certificate fingerprint or a token hash to the shard that holds it.
// Keys are sharded by id (bundle/shard-of.ts), so a key id finds its shard by hashing; a
// fingerprint or a token hash cannot, so these tables map each to (shard, entry in that shard)
// (runtime/routing-table.ts).
//
// A reload must cost what changed. At 1,000,000 keys one table is 2^21 slots (8 MiB): copying
// it at every reload to patch a few thousand entries cost ~14 ms of the reload worker's CPU
// (faulting in the new buffer's pages alone ~5 ms), on the core the gateway serves from, and
// a new 8 MiB table to bring into the caches after every swap. So the routing is two tables:
// - the BASE: every shard's entries as they were when it was built; not written after that;
// - the OVERLAY: the current entries of the shards that changed since, small and patched (a
//   copy) at each reload; such a shard is marked `overlaid`, and its entries in the base are
//   stale: a lookup skips them.
// A lookup probes the overlay, then the base (skipping stale entries): two O(1) probes, and the
// answer a table built from scratch would give, since a value is in one shard only. When the
// overlay holds more than 1/16 of the entries (or FOLD_FLOOR) it is folded into a new base (the
// base copied, the overlaid shards' stale entries deleted and their current ones inserted):
// the 8 MiB copy once every ~15 reloads of one key at 1,000,000 keys rather than at each.
import { buildTable, FREE, INDEX_BITS, MAX_SHARD_ENTRIES, patchTable, type Table, type Values } from './routing-table.ts';

export { entryIndex, entryShard, INDEX_BITS, MAX_SHARD_ENTRIES } from './routing-table.ts';

/** What the routing reads of one shard. */
export interface RoutingSource {
  certFingerprints: Uint8Array;
  tokenHashes: Uint8Array;
}

export interface ShardRouting {
  /** Every shard's entries as of the last build or fold. */
  certs: Table;
  tokens: Table;
  /** The current entries of the shards changed since (`overlaid`). */
  overlayCerts: Table;
  overlayTokens: Table;
  /** Per shard: 1 when it changed since the base was built (its base entries are stale). Shared, never written after it is posted. */
  overlaid: Uint8Array;
  /** Per overlaid shard: what its base entries point into (a fold deletes them by their hash); null for the others. */
  baseSources: (RoutingSource | null)[];
}

/** The overlay is folded into the base when it holds more entries than this and than 1/16 of the base's. */
const FOLD_FLOOR = 32_768;

type TableOf = (s: RoutingSource) => Values;
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

function sharedBytes(n: number): Uint8Array {
  return new Uint8Array(new SharedArrayBuffer(Math.max(1, n)));
}

const EMPTY = buildTable([], () => new Uint8Array(0));

/** Routing over `shards` (in shard order), from scratch: all in the base, nothing overlaid. */
export function buildRouting(shards: RoutingSource[]): ShardRouting {
  checkSizes(shards);
  const all = shards.map((_, i) => i);
  return {
    certs: buildTable(all, (s) => certsOf(shards[s])),
    tokens: buildTable(all, (s) => tokensOf(shards[s])),
    overlayCerts: EMPTY,
    overlayTokens: EMPTY,
    overlaid: sharedBytes(shards.length).subarray(0, shards.length),
    baseSources: shards.map(() => null),
  };
}

/**
 * The routing of a set whose shards `changed` (same shard count) differ from the serving set's
 * (`before`, by index; `after` the new set's): the changed shards' entries go to the overlay,
 * the base is kept, or folded when the overlay has grown past `foldAt` entries.
 */
export function updateRouting(old: ShardRouting, before: RoutingSource[], after: RoutingSource[], changed: number[], foldAt?: number): ShardRouting {
  if (before.length !== after.length || old.overlaid.length !== after.length) return buildRouting(after);
  checkSizes(after);
  const overlaid = sharedBytes(after.length).subarray(0, after.length);
  overlaid.set(old.overlaid);
  const baseSources = old.baseSources.slice();
  // Shards already overlaid have entries in the overlay (pointing into `before`): out, then in again.
  const again = changed.filter((s) => old.overlaid[s] === 1);
  for (const s of changed) {
    if (overlaid[s] === 1) continue;
    overlaid[s] = 1;
    // Not overlaid until now, so `before` is what the base's entries of it point into.
    baseSources[s] = before[s];
  }
  const inOverlay = [...overlaid.keys()].filter((s) => overlaid[s] === 1);
  let overlayCount = 0;
  for (const s of inOverlay) overlayCount += (certsOf(after[s]).length + tokensOf(after[s]).length) / 64;
  const limit = foldAt ?? Math.max(FOLD_FLOOR, (old.certs.count + old.tokens.count) / 16);
  if (overlayCount > limit) return fold(old, baseSources, inOverlay, after);
  // Every overlay entry of a shard not changed now points into before[s], which is after[s].
  const patch = (table: Table, of: TableOf) =>
    patchTable(
      table,
      again,
      changed,
      (s) => of(before[s]),
      (s) => of(after[s]),
    ) ?? buildTable(inOverlay, (s) => of(after[s]));
  return {
    certs: old.certs,
    tokens: old.tokens,
    overlayCerts: patch(old.overlayCerts, certsOf),
    overlayTokens: patch(old.overlayTokens, tokensOf),
    overlaid,
    baseSources,
  };
}

/** A new base holding every shard's current entries (`inOverlay`'s stale ones deleted, current ones inserted), and an empty overlay. */
function fold(old: ShardRouting, baseSources: (RoutingSource | null)[], inOverlay: number[], after: RoutingSource[]): ShardRouting {
  const all = after.map((_, i) => i);
  const rebase = (table: Table, of: TableOf) =>
    patchTable(
      table,
      inOverlay,
      inOverlay,
      (s) => of(baseSources[s] ?? after[s]),
      (s) => of(after[s]),
    ) ?? buildTable(all, (s) => of(after[s]));
  return {
    certs: rebase(old.certs, certsOf),
    tokens: rebase(old.tokens, tokensOf),
    overlayCerts: EMPTY,
    overlayTokens: EMPTY,
    overlaid: sharedBytes(after.length).subarray(0, after.length),
    baseSources: after.map(() => null),
  };
}

/**
 * The entry for a value whose hash is `hash` that `is` accepts (it compares the value with the
 * shard's own bytes), or -1: the overlay first, then the base without its stale entries.
 */
function findRouted(overlay: Int32Array, base: Int32Array, overlaid: Uint8Array, hash: number, is: (e: number) => boolean): number {
  // Entries are >= 0; FREE (-1) ends a probe run, a TOMBSTONE (-2) does not.
  let mask = overlay.length - 1;
  for (let s = hash & mask; ; s = (s + 1) & mask) {
    const e = overlay[s];
    if (e === FREE) break;
    if (e >= 0 && is(e)) return e;
  }
  mask = base.length - 1;
  for (let s = hash & mask; ; s = (s + 1) & mask) {
    const e = base[s];
    if (e === FREE) return -1;
    if (e >= 0 && overlaid[e >> INDEX_BITS] === 0 && is(e)) return e;
  }
}

/** Certificate or token lookups of `r` (`table`): findRouted over the right tables. */
export function findInRouting(r: ShardRouting, table: 'cert' | 'token', hash: number, is: (e: number) => boolean): number {
  return table === 'cert'
    ? findRouted(r.overlayCerts.slots, r.certs.slots, r.overlaid, hash, is)
    : findRouted(r.overlayTokens.slots, r.tokens.slots, r.overlaid, hash, is);
}
