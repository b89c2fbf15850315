// A sharded bundle (bundle/shards.ts) as the runtime holds it: the manifest compacted (APIs,
// CAs, routes, pins; no keys), every shard compacted on its own (runtime/bundle-worker-compact.ts),
// and the routing from fingerprints and token hashes to shards (runtime/shard-routing.ts).
//
// `loadShardSet` reads only the shards the serving set does not hold at the same index: on a reload the
// gateway passes what its serving set holds, so a change to one key reads, verifies and compacts
// one or two shards, and updates the routing with what changed (runtime/shard-routing.ts). It
// runs in the reload worker (runtime/bundle-worker.ts) and, at start-up, on the main thread: the
// same checks, the same messages.
import { join } from 'node:path';
import { checkWireKeys } from '../bundle/checks.ts';
import { BundleError } from '../bundle/bundle-error.ts';
import { loadManifest, loadShard, shardFile } from '../bundle/read-sharded.ts';
import type { ShardContent, WireContent } from '../bundle/types.ts';
import { errnoMessage } from '../common/errno.ts';
import { readRegularFileAsync } from '../common/regular-file.ts';
import { MAX_BUNDLE_BYTES } from '../common/size-limits.ts';
import { type CompactBundle, compactWire } from './bundle-worker-compact.ts';
import { ByteBudget } from './capped-read.ts';
import type { SharedDownload } from './poll-url.ts';
import { hashHexBytes } from './hash-slots.ts';
import { buildRouting, entryIndex, entryShard, findInRouting, type RoutingSource, type ShardRouting, updateRouting } from './shard-routing.ts';

/** Where a manifest's shards are: `shards/<hex>.json` beside the manifest file, or under the manifest's URL. */
export type ShardLocation = { kind: 'file'; dir: string } | { kind: 'url'; manifestUrl: string };

export interface LoadedShards {
  /** The manifest, compacted: its small parts, pins and CA expiries. */
  base: CompactBundle;
  /** Digest of shard i. */
  digests: string[];
  /** The shards read now (the others were held), by index. */
  fresh: Map<number, CompactBundle>;
  routing: ShardRouting;
}

/** A shard's content (it has no small parts of its own: the runtime keeps them once, in `base`). */
function shardWire(shard: ShardContent): WireContent {
  return { ...shard, apis: {}, cas: {}, routes: {}, revocation: { crls: {}, crl_urls: [], denied: [] }, not_after: {} };
}

/** The typed array in a SharedArrayBuffer: posted to a worker, it is shared, not copied. */
function shared<T extends Uint8Array>(a: T): T {
  const copy = new (a.constructor as new (b: SharedArrayBuffer) => T)(new SharedArrayBuffer(a.byteLength));
  copy.set(a);
  return copy;
}

/** The parts of a compact shard the routing reads (shared so a later reload's worker reads them in place). */
export function routingSource(c: CompactBundle): RoutingSource {
  return { certFingerprints: c.certFingerprints, tokenHashes: c.tokenHashes };
}

/**
 * What one load of a set may take. Each shard used to get the single-file bundle's allowance
 * (512 MiB, 300 s), eight at a time, batch after batch: a shard server that never ended its
 * answers held 4 GiB in memory, and one that sent a byte every few seconds held every reload
 * for 300 s a batch (32 batches at 256 shards), the gateway silent on its old set. Now the
 * shards a load reads share one deadline and one byte ceiling (docs/security.md section 54).
 */
export interface SetLimits {
  /** Each wait for a shard's headers or its next bytes. */
  readTimeoutMs: number;
  /** All the shards of one load read within this. */
  deadlineMs: number;
  /** All the shards of one load together at most this many bytes. */
  maxBytes: number;
}

/** A single-file bundle's allowance (runtime/poll-url.ts: 30 s a read, 10 times that for the download), for the whole set. */
export const SHARD_SET_LIMITS: SetLimits = { readTimeoutMs: 30_000, deadlineMs: 300_000, maxBytes: MAX_BUNDLE_BYTES };

/** The deadline and byte budget one load's shard reads share; `stop` cuts the others short once one failed. */
function sharedDownload(limits: SetLimits, count: number): SharedDownload & { stop: () => void } {
  const failed = new AbortController();
  const deadline = AbortSignal.timeout(limits.deadlineMs);
  return {
    signal: AbortSignal.any([deadline, failed.signal]),
    aborted: () =>
      deadline.aborted
        ? `the ${count} shards to read were not all read within ${limits.deadlineMs / 1000} s (one deadline for the whole set)`
        : 'stopped: another shard of the set failed',
    bytes: new ByteBudget(limits.maxBytes, `the ${count} shards to read are larger than ${limits.maxBytes} bytes together (the ceiling of a whole bundle)`),
    stop: () => failed.abort(),
  };
}

async function readShardBytes(location: ShardLocation, digest: string, limits: SetLimits, share: SharedDownload): Promise<Buffer> {
  const name = shardFile(digest.slice('sha256:'.length));
  if (location.kind === 'file') {
    // A regular file of at most MAX_BUNDLE_BYTES (a named pipe is refused, not waited on).
    let bytes: Buffer;
    try {
      bytes = await readRegularFileAsync(join(location.dir, name), limits.maxBytes);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new BundleError(`shard ${name} ${code === 'ENOENT' ? 'is missing' : `cannot be read (${errnoMessage(err)})`}; the manifest names it`);
    }
    if (!share.bytes.take(bytes.length)) throw new BundleError(`shard ${name} refused: ${share.bytes.refusal}`);
    return bytes;
  }
  // Imported here, not at the top: it brings undici (~1 MB of the worker's 1.4 MB), which a
  // bundle read from files never needs, and the reload worker's start loads what is at the top.
  const { fetchBundle } = await import('./poll-url.ts');
  const r = await fetchBundle(shardUrl(location.manifestUrl, name), null, limits.readTimeoutMs, limits.maxBytes, limits.deadlineMs, share);
  if (r.status !== 'modified') throw new BundleError(`shard ${name}: the server answered 304 to an unconditional request`);
  return r.bytes;
}

function compactShard(shard: ShardContent, digest: string): CompactBundle {
  const w = shardWire(shard);
  let keyError: string | null = null;
  try {
    checkWireKeys(w);
  } catch (err) {
    keyError = (err as Error).message;
  }
  const c = compactWire(w, digest, null, '', keyError);
  c.certFingerprints = shared(c.certFingerprints);
  c.tokenHashes = shared(c.tokenHashes);
  return c;
}

/** Shards read at a time (a URL source: requests in flight). */
const PARALLEL = 8;

/**
 * Verifies `manifestBytes` and loads the shards it names that `held` does not hold (by digest,
 * at the index `serving` had it).
 * Throws BundleError (or a fetch error) for anything missing, tampered or inconsistent.
 */
/** What a reload knows of the set serving: its digests, its shards' routing sources (by index) and its routing. */
export interface ServingRouting {
  digests: string[];
  shards: RoutingSource[];
  routing: ShardRouting;
}

export async function loadShardSet(
  manifestBytes: Buffer,
  bytesSha256: string,
  location: ShardLocation,
  held: ReadonlyMap<string, RoutingSource>,
  serving: ServingRouting | null = null,
  limits: SetLimits = SHARD_SET_LIMITS,
): Promise<LoadedShards> {
  const { digest, signature, manifest } = loadManifest(manifestBytes);
  const base = compactWire(manifest, digest, signature, bytesSha256, null);
  const digests = manifest.shards;
  const fresh = new Map<number, CompactBundle>();
  const byDigest = new Map<string, CompactBundle>();
  // A held shard is kept only where the serving set had it: at the same index of a set of as
  // many shards. Its keys were checked against that index when it was read (loadShard); the
  // same bytes named at another index put keys where no lookup by id finds them, and were taken
  // unchecked (docs/security.md section 54). Reading it again costs a reshard what it costs
  // anyway. (Without `serving`, as tests call it, `held` is taken by digest.)
  const servingDigests = serving !== null && serving.digests.length === digests.length ? serving.digests : [];
  const keeps = (d: string, i: number) => held.has(d) && (serving === null || servingDigests[i] === d);
  const wanted = digests.map((d, i) => [d, i] as const).filter(([d, i]) => !keeps(d, i));
  const share = sharedDownload(limits, new Set(wanted.map(([d]) => d)).size);
  try {
    for (let at = 0; at < wanted.length; at += PARALLEL) {
      const batch = wanted.slice(at, at + PARALLEL);
      const bytes = await Promise.all(batch.map(([d]) => (byDigest.has(d) ? null : readShardBytes(location, d, limits, share))));
      batch.forEach(([d, i], j) => {
        let c = byDigest.get(d);
        if (c === undefined) {
          c = compactShard(loadShard(bytes[j]!, manifest, i), d);
          byDigest.set(d, c);
        }
        fresh.set(i, c);
      });
    }
  } catch (err) {
    // The batch's other downloads stop now rather than at their end.
    share.stop();
    throw err;
  }
  const sources = digests.map((d, i) => (fresh.has(i) ? routingSource(fresh.get(i)!) : held.get(d)!));
  const changed = serving ? digests.flatMap((d, i) => (serving.digests[i] === d ? [] : [i])) : [];
  const routing =
    serving && serving.digests.length === digests.length ? updateRouting(serving.routing, serving.shards, sources, changed) : buildRouting(sources);
  for (const i of fresh.keys()) refuseSharedValues(routing, sources, i);
  return { base, digests, fresh, routing };
}

/**
 * Throws when a certificate (or token hash) of shard `i` is in another shard too. The compiler
 * never writes one (E_DUPLICATE_CERT, E_DUPLICATE_TOKEN); a set written by hand or tampered with
 * could, and a lookup would take whichever shard the routing probes first: the key a connection
 * is would depend on table order. One O(1) probe per value of a shard read now (the others were
 * checked when they were read).
 */
function refuseSharedValues(routing: ShardRouting, sources: RoutingSource[], i: number): void {
  for (const [table, what, of] of [
    ['cert', 'certificate', (r: RoutingSource) => r.certFingerprints],
    ['token', 'token hash', (r: RoutingSource) => r.tokenHashes],
  ] as const) {
    const mine = of(sources[i]);
    for (let at = 0; at < mine.length; at += 64) {
      const e = findInRouting(routing, table, hashHexBytes(mine, at), (x) => {
        const s = entryShard(x);
        const k = entryIndex(x) * 64;
        return s !== i && Buffer.compare(of(sources[s]).subarray(k, k + 64), mine.subarray(at, at + 64)) === 0;
      });
      if (e >= 0)
        throw new BundleError(
          `bundle shape: ${what} ${Buffer.from(mine.subarray(at, at + 64)).toString('latin1')} is in shard ${i} and in shard ${entryShard(e)}: it identifies one key`,
        );
    }
  }
}

/**
 * A shard's URL: `name` resolved against the manifest's URL (its userinfo comes with it), with the
 * manifest URL's query string. A token in the query (an Azure container SAS, a `?token=` on an
 * internal server, a GCS URL signed for a prefix) is needed on every shard; without it the shards
 * were fetched bare and refused (HTTP 403). An S3 presigned URL signs one object, so no query
 * string makes it good for another: a sharded bundle cannot be served that way.
 */
export function shardUrl(manifestUrl: string, name: string): string {
  const url = new URL(name, manifestUrl);
  url.search = new URL(manifestUrl).search;
  return url.href;
}
