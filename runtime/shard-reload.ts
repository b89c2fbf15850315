// Loading a sharded bundle for the store (runtime/store.ts): at start-up on this thread, on a
// reload in a worker (only the shards whose digest changed are read), then the set is assembled
// from the shards the worker read and the ones the serving set already holds.
import { loadShardsInWorker } from './bundle-worker-client.ts';
import type { CompactBundle } from './bundle-worker-compact.ts';
import type { ShardSet } from './sharded-keys.ts';
import type { RoutingSource } from './shard-routing.ts';
import { type LoadedShards, loadShardSet, routingSource, type ServingRouting, type ShardLocation } from './shard-set.ts';

function assembleSet(
  loaded: Pick<LoadedShards, 'base' | 'digests' | 'routing'>,
  fresh: ReadonlyMap<number, CompactBundle>,
  held: ReadonlyMap<string, CompactBundle>,
): ShardSet {
  const shards = loaded.digests.map((d, i) => fresh.get(i) ?? held.get(d)!);
  return { base: loaded.base, digests: loaded.digests, shards, routing: loaded.routing };
}

/** The serving set's shards by digest. */
function heldShards(serving: ShardSet | null): Map<string, CompactBundle> {
  const held = new Map<string, CompactBundle>();
  if (serving) serving.digests.forEach((d, i) => held.set(d, serving.shards[i]));
  return held;
}

function servingRouting(serving: ShardSet | null): ServingRouting | null {
  return serving ? { digests: serving.digests, shards: serving.shards.map(routingSource), routing: serving.routing } : null;
}

/** Start-up (and the fallback when a worker cannot run): everything on this thread. Throws for a bad set. */
export async function loadShardsHere(manifest: Buffer, bytesSha256: string, location: ShardLocation, serving: ShardSet | null): Promise<ShardSet> {
  const held = heldShards(serving);
  const sources = new Map<string, RoutingSource>([...held].map(([d, c]) => [d, routingSource(c)]));
  const loaded = await loadShardSet(manifest, bytesSha256, location, sources, servingRouting(serving));
  return assembleSet(loaded, loaded.fresh, held);
}

/** A set the worker loaded, and when this thread began taking the worker's answer (performance.now()). */
export interface OffThreadSet {
  set: ShardSet;
  receivedAt: number;
}

/** A reload: the changed shards read, verified and compacted in a worker. Resolves with the set, or the refusal's message. */
export async function loadShardsOffThread(
  manifest: Buffer,
  bytesSha256: string,
  location: ShardLocation,
  serving: ShardSet,
): Promise<OffThreadSet | { refused: string }> {
  let answer;
  try {
    answer = await loadShardsInWorker(manifest, bytesSha256, location, servingRouting(serving)!);
  } catch {
    // The worker could not run (resources, a missing build file): here, slower but correct.
    try {
      const set = await loadShardsHere(manifest, bytesSha256, location, serving);
      return { set, receivedAt: performance.now() };
    } catch (err) {
      return { refused: (err as Error).message };
    }
  }
  const { reply, receivedAt } = answer;
  if (reply.status === 'refused') return { refused: reply.message };
  if (reply.status !== 'shards') return { refused: `internal error: the bundle worker answered ${reply.status}` };
  return { set: assembleSet(reply, new Map(reply.fresh), heldShards(serving)), receivedAt };
}
