// What a store serves: a snapshot with the facts about the bundle it came from (digest,
// source, counts, the file bytes' hash, its verified signature), made from a bundle's bytes, from
// the compact form a worker verified, or from a sharded bundle's set. runtime/store.ts swaps them.
import { createHash, type KeyObject } from 'node:crypto';
import { loadBundle } from '../bundle/read.ts';
import { type VerifiedSignature, verifyBundleSignature } from '../bundle/sign.ts';
import type { Bundle } from '../bundle/types.ts';
import type { CompactBundle } from './bundle-worker-compact.ts';
import { type BundleFloor, checkOrder } from './bundle-floor.ts';
import { verifyCompact } from './compact-load.ts';
import type { ShardSet } from './sharded-keys.ts';

export interface ServedBundle<S> {
  snapshot: S;
  digest: string;
  loadedAt: Date;
  source: string;
  apis: number;
  keys: number;
  /** SHA-256 of the file bytes it was loaded from (the digest covers the content only). */
  bytesSha256: string;
  /** A sharded bundle: the set serving (its shards are kept by the next reload when their digest is unchanged). */
  shards?: ShardSet;
  /** Its verified signature (with --bundle-public-key), or null. */
  signature: VerifiedSignature | null;
}

/** Hash of the exact file bytes: equal bytes = nothing to do. */
export function bytesHash(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * The signature (header only) checked against `publicKey` and ordered above `floor`; null without
 * a key. Throws SignatureError.
 */
export function checkSignature(bytes: Buffer, publicKey: KeyObject | undefined, floor: BundleFloor | null): VerifiedSignature | null {
  if (!publicKey) return null;
  const signature = verifyBundleSignature(bytes, publicKey);
  checkOrder(signature, floor);
  return signature;
}

/**
 * `bytes` verified and built into a snapshot: the signature first (it needs only the header, and
 * an unsigned bundle is not parsed at all), then, with `buildCompact` (a big bundle: start-up,
 * or a reload the worker could not take), the compact form, keys kept in their columns as after
 * a worker reload (no record per key, O(1) lookups); else the parsed bundle. Throws.
 */
export function servedBytes<S>(
  bytes: Buffer,
  bytesSha256: string,
  source: string,
  build: (bundle: Bundle) => S,
  checked: (bytes: Buffer) => VerifiedSignature | null,
  buildCompact?: (c: CompactBundle) => S,
): ServedBundle<S> {
  const signature = checked(bytes);
  if (buildCompact !== undefined) {
    const compact = verifyCompact(bytes, bytesSha256);
    return servedCompact(compact, buildCompact(compact), source, bytesSha256, signature);
  }
  const bundle = loadBundle(bytes);
  return {
    snapshot: build(bundle),
    digest: bundle.digest,
    loadedAt: new Date(),
    source,
    apis: Object.keys(bundle.content.apis).length,
    keys: Object.keys(bundle.content.keys).length,
    bytesSha256,
    signature,
  };
}

/** A compact bundle (verified here or by the worker) and the snapshot built from it. */
export function servedCompact<S>(
  compact: CompactBundle,
  snapshot: S,
  source: string,
  bytesSha256: string,
  signature: VerifiedSignature | null,
): ServedBundle<S> {
  return {
    snapshot,
    digest: compact.digest,
    loadedAt: new Date(),
    source,
    apis: Object.keys(compact.apis).length,
    keys: compact.keyIdEnds.length,
    bytesSha256,
    signature,
  };
}

/** A sharded bundle's set and the snapshot built from it. */
export function servedSet<S>(set: ShardSet, snapshot: S, source: string, bytesSha256: string, signature: VerifiedSignature | null): ServedBundle<S> {
  let keys = 0;
  for (const c of set.shards) keys += c.keyIdEnds.length;
  const apis = Object.keys(set.base.apis).length;
  return { snapshot, digest: set.base.digest, loadedAt: new Date(), source, apis, keys, bytesSha256, shards: set, signature };
}
