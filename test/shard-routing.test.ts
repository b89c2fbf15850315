// The routing of a sharded bundle (runtime/shard-routing.ts), property-tested: after any
// sequence of shard changes, the tables updated in place (deletions with backward shift, then
// insertions; the expiry list filtered and merged) find exactly what a rebuild finds, and the
// expiry list is the rebuild's, entry for entry.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { buildRouting, entryIndex, entryShard, type RoutingSource, type ShardRouting, updateRouting } from '../runtime/shard-routing.ts';
import { findInSlots, hashHex } from '../runtime/hash-slots.ts';

const hex = (seed: string) => createHash('sha256').update(seed).digest('hex');

/** A shard's tables from seeds: fingerprints and token hashes (any order), sorted expiry times. */
function source(certSeeds: string[], tokenSeeds: string[], times: number[]): RoutingSource {
  return {
    certFingerprints: Buffer.from(certSeeds.map(hex).join(''), 'latin1'),
    tokenHashes: Buffer.from(tokenSeeds.map(hex).join(''), 'latin1'),
    expiryTimes: Float64Array.from([...times].sort((a, b) => a - b)),
  };
}

function lookup(r: ShardRouting, shards: RoutingSource[], table: 'cert' | 'token', value: string): [number, number] | null {
  const slots = table === 'cert' ? r.certSlots : r.tokenSlots;
  const bytes = (s: number) => (table === 'cert' ? shards[s].certFingerprints : shards[s].tokenHashes);
  const e = findInSlots(
    slots,
    hashHex(value),
    (x) => Buffer.from(bytes(entryShard(x))).toString('latin1', entryIndex(x) * 64, entryIndex(x) * 64 + 64) === value,
  );
  return e < 0 ? null : [entryShard(e), entryIndex(e)];
}

const shardArb = fc.record({
  certs: fc.uniqueArray(fc.integer({ min: 0, max: 400 }), { maxLength: 30 }),
  tokens: fc.uniqueArray(fc.integer({ min: 0, max: 400 }), { maxLength: 10 }),
  times: fc.array(fc.integer({ min: 0, max: 20 }), { maxLength: 12 }),
});

test('updated routing finds what a rebuilt one finds, after any sequence of shard changes', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 6 }), fc.array(fc.tuple(fc.nat(), shardArb), { minLength: 1, maxLength: 8 }), (count, changes) => {
      // Values are unique across shards (seed = shard:value), as the compiler guarantees.
      const make = (s: number, spec: { certs: number[]; tokens: number[]; times: number[] }, v: number) =>
        source(
          spec.certs.map((c) => `c${s}:${c}:${v}`),
          spec.tokens.map((t) => `t${s}:${t}:${v}`),
          spec.times,
        );
      let shards = Array.from({ length: count }, (_, s) => make(s, { certs: [s], tokens: [], times: [s] }, 0));
      const base = source([], [], [3, 7]);
      let routing = buildRouting(shards, base);
      changes.forEach(([at, spec], v) => {
        const s = at % count;
        const next = shards.slice();
        next[s] = make(s, spec, v + 1);
        routing = updateRouting(routing, shards, next, [s], base);
        shards = next;
        const rebuilt = buildRouting(shards, base);
        assert.deepEqual([...routing.expiryTimes], [...rebuilt.expiryTimes]);
        assert.deepEqual([...routing.expirySource], [...rebuilt.expirySource]);
        assert.deepEqual([...routing.expiryEntry], [...rebuilt.expiryEntry]);
        assert.equal(routing.certCount, rebuilt.certCount);
        for (let i = 0; i < count; i++) {
          for (const [table, bytes] of [
            ['cert', shards[i].certFingerprints],
            ['token', shards[i].tokenHashes],
          ] as const)
            for (let j = 0; j < bytes.length / 64; j++) {
              const value = Buffer.from(bytes).toString('latin1', j * 64, j * 64 + 64);
              assert.deepEqual(lookup(routing, shards, table, value), [i, j], `${table} ${j} of shard ${i}`);
            }
        }
        assert.equal(lookup(routing, shards, 'cert', hex('never')), null);
      });
    }),
    { numRuns: 150 },
  );
});

test('a shard count change rebuilds; a table growing past its load factor rebuilds larger', () => {
  const a = [source(['x'], [], []), source(['y'], [], [])];
  const r = buildRouting(a, source([], [], []));
  const bigger = [
    source(
      Array.from({ length: 200 }, (_, i) => `big${i}`),
      [],
      [],
    ),
    a[1],
  ];
  const grown = updateRouting(r, a, bigger, [0], source([], [], []));
  assert.ok(grown.certSlots.length >= 402, `${grown.certSlots.length} slots for 201 entries`);
  assert.deepEqual(lookup(grown, bigger, 'cert', hex('big150')), [0, 150]);
  const three = [...a, source(['z'], [], [])];
  assert.deepEqual(lookup(updateRouting(r, a, three, [2], source([], [], [])), three, 'cert', hex('z')), [2, 0]);
});
