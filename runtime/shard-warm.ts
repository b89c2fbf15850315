// The reload worker's warm-up (runtime/bundle-worker.ts, at start-up): the code a one-key
// change runs (manifest verification, reading, verifying and compacting a shard, the routing
// update) run a few times over the manifest's first shard, so V8 has compiled it before the
// first real change. A reload waiting in the worker stops it before its next pass: a change
// made right after start would otherwise wait for every pass (~40-100 ms at 100,000 keys), more
// than the passes save it (a first reload on cold code costs ~40 ms there, ~15 ms warm). Nothing
// it builds is kept: the routing here covers that one shard.
import type { ShardLocation, ServingRouting } from './shard-set.ts';
import { loadShardSet, routingSource } from './shard-set.ts';
import { buildRouting, type RoutingSource } from './shard-routing.ts';
import { loadManifest } from '../bundle/read-sharded.ts';

export const WARM_PASSES = 3;
/** A digest no shard has: marks shard 0 as changed, so each pass reads it and updates the routing. */
const NONE = `sha256:${'0'.repeat(64)}`;

/**
 * Runs up to WARM_PASSES passes, asking `stop` before each (true: a real reload waits, so the
 * worker should take it now). Resolves with the number of passes run.
 */
export async function warmShardLoading(manifest: Buffer, bytesSha256: string, location: ShardLocation, stop: () => boolean = () => false): Promise<number> {
  const digests = loadManifest(manifest).manifest.shards;
  const empty: RoutingSource = { certFingerprints: new Uint8Array(0), tokenHashes: new Uint8Array(0) };
  const others = () => digests.map(() => empty);
  // Every shard but the first is "held" (as empty), so a pass reads shard 0 only.
  const held = new Map(digests.slice(1).map((d) => [d, empty] as const));
  const changed = (ds: string[]) => ds.map((d, i) => (i === 0 ? NONE : d));
  let serving: ServingRouting = { digests: changed(digests), shards: others(), routing: buildRouting(others()) };
  let pass = 0;
  for (; pass < WARM_PASSES && !stop(); pass++) {
    const loaded = await loadShardSet(manifest, bytesSha256, location, held, serving);
    const shards = others();
    const first = loaded.fresh.get(0);
    if (first === undefined) return pass + 1; // shard 0 equals another (an empty set): nothing to warm with
    shards[0] = routingSource(first);
    // Pass 2 on: shard 0's entries are in the routing, so the update removes and inserts them.
    serving = { digests: changed(loaded.digests), shards, routing: loaded.routing };
  }
  return pass;
}
