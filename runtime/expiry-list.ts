// The certificates' notAfter times, soonest first, as the PKI metrics and the admin list read
// them (runtime/pki-status.ts): how many expire by a time, and the first few after a time.
//
// A single bundle has one sorted list. A sharded bundle has one sorted list per shard (and the
// manifest's, for pins and CAs), and they are NOT merged into one: a merged list of 1,000,000
// entries would have to be rebuilt (or copied and patched) at every reload, 14 bytes an entry,
// for a metric scraped every few seconds. Read in place instead: a count is the sum of one
// binary search per list (~20 steps each, a few hundred lists: tens of microseconds), and the
// first N after a time is a merge of the lists' heads (a heap), in (time, list, entry) order:
// exactly the order the merged list had.

/** A sorted list of times (seconds since the epoch) and the fingerprint of its entry `i`. */
export interface SortedTimes {
  readonly times: Float64Array;
  fingerprint(i: number): string;
}

export interface ExpiryEntry {
  time: number;
  fingerprint: string;
}

export interface ExpiryList {
  /** Entries in all. */
  readonly length: number;
  /** Entries whose time is <= `limit`. */
  countUpTo(limit: number): number;
  /** The first `limit` entries whose time is > `after` (-Infinity: from the first), soonest first. */
  after(after: number, limit: number): ExpiryEntry[];
}

/** Entries of a sorted list with time <= `limit` (binary search). */
export function countUpTo(times: Float64Array, limit: number): number {
  let lo = 0;
  let hi = times.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (times[mid] <= limit) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The expiry list of one sorted list. */
export function expiryOf(list: SortedTimes): ExpiryList {
  return {
    length: list.times.length,
    countUpTo: (limit) => countUpTo(list.times, limit),
    after(after, limit) {
      const out: ExpiryEntry[] = [];
      for (let i = countUpTo(list.times, after); i < list.times.length && out.length < limit; i++)
        out.push({ time: list.times[i], fingerprint: list.fingerprint(i) });
      return out;
    },
  };
}

/** The expiry list of several sorted lists, read in place; ties in time go to the lower list, then the lower entry. */
export function mergedExpiryOf(lists: SortedTimes[]): ExpiryList {
  let length = 0;
  for (const l of lists) length += l.times.length;
  return {
    length,
    countUpTo(limit) {
      let n = 0;
      for (const l of lists) n += countUpTo(l.times, limit);
      return n;
    },
    after(after, limit) {
      const pos = lists.map((l) => countUpTo(l.times, after));
      const heap: number[] = [];
      lists.forEach((l, s) => {
        if (pos[s] < l.times.length) heap.push(s);
      });
      const less = (a: number, b: number) => {
        const ta = lists[a].times[pos[a]];
        const tb = lists[b].times[pos[b]];
        return ta < tb || (ta === tb && a < b);
      };
      const down = (i: number) => {
        for (;;) {
          const l = 2 * i + 1;
          let m = i;
          if (l < heap.length && less(heap[l], heap[m])) m = l;
          if (l + 1 < heap.length && less(heap[l + 1], heap[m])) m = l + 1;
          if (m === i) return;
          [heap[i], heap[m]] = [heap[m], heap[i]];
          i = m;
        }
      };
      for (let i = (heap.length >> 1) - 1; i >= 0; i--) down(i);
      const out: ExpiryEntry[] = [];
      while (heap.length > 0 && out.length < limit) {
        const s = heap[0];
        out.push({ time: lists[s].times[pos[s]], fingerprint: lists[s].fingerprint(pos[s]) });
        if (++pos[s] === lists[s].times.length) {
          const last = heap.pop()!;
          if (heap.length === 0) break;
          heap[0] = last;
        }
        down(0);
      }
      return out;
    },
  };
}
