// The routing of a sharded bundle (runtime/shard-routing.ts: a base table, an overlay of the
// shards changed since, folded into a new base past a bound), property-tested: after any
// sequence of reloads (shards rewritten, values moved between shards in one reload, values
// removed and added), with folds often (a small bound) or never, every value present is found
// at its shard and entry, exactly as a routing built from scratch finds it, and a value removed
// is never found again. And a reload that does not fold leaves the base table as it was (not copied).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { hashHex } from '../runtime/hash-slots.ts';
import { buildRouting, entryIndex, entryShard, findInRouting, type RoutingSource, type ShardRouting, updateRouting } from '../runtime/shard-routing.ts';

const hex = (seed: string) => createHash('sha256').update(seed).digest('hex');
const certOf = (v: number) => hex(`cert ${v}`);
/** Every third value also has a token. */
const tokenOf = (v: number) => (v % 3 === 0 ? hex(`token ${v}`) : null);

function source(values: number[]): RoutingSource {
  const tokens = values.map(tokenOf).filter((t) => t !== null);
  return { certFingerprints: Buffer.from(values.map(certOf).join(''), 'latin1'), tokenHashes: Buffer.from(tokens.join(''), 'latin1') };
}

function lookup(r: ShardRouting, shards: RoutingSource[], table: 'cert' | 'token', value: string): [number, number] | null {
  const bytes = (s: number) => (table === 'cert' ? shards[s].certFingerprints : shards[s].tokenHashes);
  const is = (x: number) => Buffer.from(bytes(entryShard(x))).toString('latin1', entryIndex(x) * 64, entryIndex(x) * 64 + 64) === value;
  const e = findInRouting(r, table, hashHex(value), is);
  return e < 0 ? null : [entryShard(e), entryIndex(e)];
}

/** Where the model says each value is: [shard, cert entry, token entry or -1]. */
function expected(model: number[][], v: number): { cert: [number, number] | null; token: [number, number] | null } {
  for (let s = 0; s < model.length; s++) {
    const i = model[s].indexOf(v);
    if (i < 0) continue;
    const token = tokenOf(v) === null ? null : ([s, model[s].slice(0, i).filter((w) => tokenOf(w) !== null).length] as [number, number]);
    return { cert: [s, i], token };
  }
  return { cert: null, token: null };
}

const UNIVERSE = 120;
const op = fc.oneof(
  // A shard rewritten: these values (those no other shard holds), in this order.
  fc.record({ kind: fc.constant('set' as const), shard: fc.nat(), values: fc.uniqueArray(fc.nat({ max: UNIVERSE - 1 }), { maxLength: 25 }) }),
  // A value moved to another shard (or added, if no shard holds it): both shards change in one reload.
  fc.record({ kind: fc.constant('move' as const), shard: fc.nat(), value: fc.nat({ max: UNIVERSE - 1 }) }),
  // A value removed (revoked): its shard changes.
  fc.record({ kind: fc.constant('remove' as const), value: fc.nat({ max: UNIVERSE - 1 }) }),
);

type Op = typeof op extends fc.Arbitrary<infer T> ? T : never;

/** Applies one op to the model; the shards it changed. */
function apply(model: number[][], o: Op): number[] {
  const holder = (v: number) => model.findIndex((vs) => vs.includes(v));
  if (o.kind === 'set') {
    const s = o.shard % model.length;
    model[s] = o.values.filter((v) => holder(v) === -1 || holder(v) === s);
    return [s];
  }
  const from = holder(o.value);
  if (o.kind === 'remove') {
    if (from === -1) return [];
    model[from] = model[from].filter((v) => v !== o.value);
    return [from];
  }
  const to = o.shard % model.length;
  if (from === to) return [];
  if (from !== -1) model[from] = model[from].filter((v) => v !== o.value);
  model[to] = [...model[to], o.value];
  return from === -1 ? [to] : [from, to];
}

function checkAll(routing: ShardRouting, shards: RoutingSource[], model: number[][], where: string): void {
  const rebuilt = buildRouting(shards);
  for (let v = 0; v < UNIVERSE; v++) {
    const want = expected(model, v);
    assert.deepEqual(lookup(routing, shards, 'cert', certOf(v)), want.cert, `${where}: certificate of ${v}`);
    assert.deepEqual(lookup(rebuilt, shards, 'cert', certOf(v)), want.cert, `${where}: certificate of ${v}, from scratch`);
    const token = tokenOf(v);
    if (token !== null) assert.deepEqual(lookup(routing, shards, 'token', token), want.token, `${where}: token of ${v}`);
  }
  assert.equal(lookup(routing, shards, 'cert', hex('never')), null);
}

test('after any sequence of reloads, folding often or never, the routing finds what one built from scratch finds', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 6 }),
      fc.constantFrom(0, 5, 20, 60, Number.POSITIVE_INFINITY),
      fc.array(op, { minLength: 1, maxLength: 30 }),
      (count, foldAt, ops) => {
        const model: number[][] = Array.from({ length: count }, (_, s) => [s]);
        let shards = model.map(source);
        let routing = buildRouting(shards);
        ops.forEach((o, step) => {
          const changed = apply(model, o);
          const next = model.map((vs, s) => (changed.includes(s) ? source(vs) : shards[s]));
          const before = routing;
          routing = updateRouting(routing, shards, next, changed, foldAt);
          shards = next;
          if (foldAt === Number.POSITIVE_INFINITY) assert.equal(routing.certs.slots, before.certs.slots, 'no fold: the base is not copied');
          checkAll(routing, shards, model, `step ${step} (${o.kind}), fold at ${foldAt}`);
        });
      },
    ),
    { numRuns: 150 },
  );
});

test('a reload overlays the shards it changed and keeps the base; past the bound the overlay is folded into a new base', () => {
  const model = Array.from({ length: 8 }, (_, s) => Array.from({ length: 10 }, (_, i) => s * 10 + i));
  let shards = model.map(source);
  let routing = buildRouting(shards);
  const base = routing.certs.slots;
  const reload = (changed: number[]) => {
    const next = model.map((vs, s) => (changed.includes(s) ? source(vs) : shards[s]));
    routing = updateRouting(routing, shards, next, changed, 35);
    shards = next;
    checkAll(routing, shards, model, `after changing ${changed}`);
  };
  // Value 20 moves from shard 2 to shard 5: both overlaid (20 certificates, 6 tokens), the base kept.
  model[2] = model[2].filter((v) => v !== 20);
  model[5] = [...model[5], 20];
  reload([2, 5]);
  assert.equal(routing.certs.slots, base);
  assert.deepEqual([...routing.overlaid], [0, 0, 1, 0, 0, 1, 0, 0]);
  assert.equal(routing.overlayCerts.count, 20);
  // Value 51 revoked: shard 5 again, its old overlay entries replaced.
  model[5] = model[5].filter((v) => v !== 51);
  reload([5]);
  assert.equal(routing.certs.slots, base);
  assert.equal(routing.overlayCerts.count, 19);
  assert.equal(routing.overlayTokens.count, 5);
  // Shard 7 too: 38 entries would be overlaid, past 35: folded into a new base, the overlay empty.
  model[7] = [...model[7], 100];
  reload([7]);
  assert.notEqual(routing.certs.slots, base);
  assert.equal(routing.certs.count, 80);
  assert.equal(routing.overlayCerts.count + routing.overlayTokens.count, 0);
  assert.deepEqual([...routing.overlaid], [0, 0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual(routing.baseSources, Array(8).fill(null));
});

test('a shard count change rebuilds; an overlay growing past its load factor is rebuilt larger', () => {
  const a = [source([1]), source([2])];
  const r = buildRouting(a);
  const bigger = [source(Array.from({ length: 200 }, (_, i) => 1000 + i)), a[1]];
  const grown = updateRouting(r, a, bigger, [0]);
  assert.ok(grown.overlayCerts.slots.length >= 400, `${grown.overlayCerts.slots.length} slots for 200 entries`);
  assert.deepEqual(lookup(grown, bigger, 'cert', certOf(1150)), [0, 150]);
  assert.equal(lookup(grown, bigger, 'cert', certOf(1)), null, 'the value shard 0 no longer holds');
  const three = [...a, source([3])];
  const rebuilt = updateRouting(r, a, three, [2]);
  assert.equal(rebuilt.overlaid.length, 3);
  assert.deepEqual(lookup(rebuilt, three, 'cert', certOf(3)), [2, 0]);
});
