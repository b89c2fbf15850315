// The expiry list of a sharded bundle read in place from the shards' sorted lists
// (runtime/expiry-list.ts `mergedExpiryOf`), property-tested against the lists merged into one
// and sorted by (time, list, entry): the same counts up to any time, the same first entries after any time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { expiryOf, mergedExpiryOf, type SortedTimes } from '../runtime/expiry-list.ts';

const sortedList = (list: number, times: number[]): SortedTimes => {
  const sorted = Float64Array.from(times).sort();
  return { times: sorted, fingerprint: (i) => `${list}:${i}` };
};

test('the lists read in place answer as the lists merged and sorted', () => {
  fc.assert(
    fc.property(
      fc.array(fc.array(fc.integer({ min: 0, max: 30 }), { maxLength: 12 }), { maxLength: 8 }),
      fc.integer({ min: -2, max: 33 }),
      fc.integer({ min: 0, max: 20 }),
      (lists, at, limit) => {
        const sorted = lists.map((l, s) => sortedList(s, l));
        const merged = sorted
          .flatMap((l, s) => [...l.times].map((time, i) => ({ time, s, i })))
          .sort((a, b) => a.time - b.time || a.s - b.s || a.i - b.i)
          .map(({ time, s, i }) => ({ time, fingerprint: `${s}:${i}` }));
        const reference = expiryOf({ times: Float64Array.from(merged, (e) => e.time), fingerprint: (i) => merged[i].fingerprint });
        const inPlace = mergedExpiryOf(sorted);
        assert.equal(inPlace.length, merged.length);
        assert.equal(inPlace.countUpTo(at), reference.countUpTo(at));
        assert.deepEqual(inPlace.after(at, limit), reference.after(at, limit));
        assert.deepEqual(inPlace.after(Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY), merged);
      },
    ),
    { numRuns: 300 },
  );
});
