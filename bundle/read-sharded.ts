// The readers of a sharded bundle (bundle/shards.ts): its manifest and each shard verified as the
// single-file bundle is (bundle/read.ts), and the whole set merged into one parsed bundle for the
// tools that look at every key (explain, who, diff). The gateway never merges: it keeps the shards
// apart and reads only the changed ones (runtime/shard-set.ts).
import { existsSync, statSync } from 'node:fs';
import { readRegularFile } from '../common/regular-file.ts';
import { MAX_BUNDLE_BYTES } from '../common/size-limits.ts';
import { dirname, join } from 'node:path';
import { BundleError } from './bundle-error.ts';
import { loadWireBundle, readDocument, type WireBundle } from './read.ts';
import { verifyKeyParts, verifyShape } from './shape.ts';
import { fail } from './shape-checks.ts';
import { MAX_SHARDS, shardOf } from './shard-of.ts';
import { mergeShards } from './shards.ts';
import { BUNDLE_FORMAT, type Bundle, MANIFEST_FORMAT, type ManifestContent, SHARD_FORMAT, type ShardContent } from './types.ts';
import { hexCount } from './wire.ts';
import { expandContent } from './wire.ts';

/** A verified manifest (bundle/shards.ts): its small parts checked as a bundle's, and the shard digests. */
export interface WireManifest {
  digest: string;
  signature: string | null;
  manifest: ManifestContent;
}

const SHARD_DIGEST = /^sha256:[0-9a-f]{64}$/;

export function loadManifest(bytes: Uint8Array | string): WireManifest {
  const { digest, signature, content } = readDocument(bytes, MANIFEST_FORMAT, 'manifest');
  verifyShape(content);
  const m = content as ManifestContent;
  if (m.keys.ids.length > 0 || m.sessions.length > 0 || hexCount(m.tokens.hex) > 0)
    fail('content.keys', 'must be empty in a manifest (keys live in its shards)');
  for (let i = 0; i < m.certs.key.length; i++) if (m.certs.key[i] !== -1) fail(`content.certs.key[${i}]`, 'must be -1 in a manifest (keys live in its shards)');
  if (!Array.isArray(m.shards) || m.shards.length === 0 || m.shards.length > MAX_SHARDS)
    fail('content.shards', `must be an array of 1 to ${MAX_SHARDS} shard digests`);
  for (let i = 0; i < m.shards.length; i++)
    if (typeof m.shards[i] !== 'string' || !SHARD_DIGEST.test(m.shards[i])) fail(`content.shards[${i}]`, 'must be "sha256:<64 hex>"');
  return { digest, signature, manifest: m };
}

/**
 * Shard `index` of `manifest`, verified: its digest is the one the manifest names (so the
 * manifest's signature covers it), its parts pass the bundle's checks against the manifest's
 * APIs and CAs, and every key id hashes to this shard. Throws BundleError naming the shard.
 */
export function loadShard(bytes: Uint8Array | string, manifest: ManifestContent, index: number): ShardContent {
  const what = `shard ${index}`;
  const { digest, content } = readDocument(bytes, SHARD_FORMAT, what);
  if (digest !== manifest.shards[index])
    throw new BundleError(
      `${what} is ${digest.slice(0, 19)}…, not ${manifest.shards[index].slice(0, 19)}… as the manifest says; the shard set is mixed up (copied while being written?)`,
    );
  try {
    verifyKeyParts(content, manifest.apis, manifest.cas);
  } catch (err) {
    throw new BundleError(`${what}: ${(err as Error).message}`);
  }
  const shard = content as ShardContent;
  for (const id of shard.keys.ids)
    if (shardOf(id, manifest.shards.length) !== index)
      throw new BundleError(`${what}: key ${JSON.stringify(id)} belongs to shard ${shardOf(id, manifest.shards.length)}`);
  return shard;
}

const MANIFEST_HEAD = `{"format":"${MANIFEST_FORMAT}"`;

/** Does `bytes` hold a sharded bundle's manifest (rather than a single-file bundle)? */
export function isManifest(bytes: Uint8Array): boolean {
  return Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.byteLength, MANIFEST_HEAD.length)).toString('latin1') === MANIFEST_HEAD;
}

/**
 * The manifest and every shard it names (`readShard(hex)` gives the bytes of shards/<hex>.json),
 * each verified as the gateway verifies them, merged into one file-form content whose digest is
 * the manifest's. Throws BundleError.
 */
function loadShardedWire(manifestBytes: Uint8Array, readShard: (hex: string) => Uint8Array): WireBundle {
  const { digest, signature, manifest } = loadManifest(manifestBytes);
  const shards = manifest.shards.map((d, i) => {
    let bytes: Uint8Array;
    try {
      bytes = readShard(d.slice('sha256:'.length));
    } catch (err) {
      throw new BundleError(
        `shard ${shardFile(d.slice('sha256:'.length))} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'}); the manifest names it`,
      );
    }
    return loadShard(bytes, manifest, i);
  });
  return { digest, signature, wire: mergeShards(manifest, shards) };
}

/** `loadShardedWire`, expanded: a record per key. */
export function loadShardedBundle(manifestBytes: Uint8Array, readShard: (hex: string) => Uint8Array): Bundle {
  const { digest, signature, wire } = loadShardedWire(manifestBytes, readShard);
  return { format: BUNDLE_FORMAT, digest, signature, content: expandContent(wire) };
}

// ---- on disk: a bundle file, or a sharded bundle's directory or manifest.json ----

/** A sharded bundle's directory: this file, and SHARDS_DIR/<digest hex>.json. */
export const MANIFEST_FILE = 'manifest.json';
export const SHARDS_DIR = 'shards';

/** The path of the shard with this digest hex, relative to the manifest's directory (or URL). */
export function shardFile(hex: string): string {
  return `${SHARDS_DIR}/${hex}.json`;
}

/** Is `path` a sharded bundle's directory (one holding manifest.json)? */
export function isShardedDir(path: string): boolean {
  return statSync(path, { throwIfNoEntry: false })?.isDirectory() === true && existsSync(join(path, MANIFEST_FILE));
}

/** The file whose bytes say which bundle `path` holds: its manifest for a sharded directory, else itself. */
export function bundleHeadFile(path: string): string {
  return isShardedDir(path) ? join(path, MANIFEST_FILE) : path;
}

/** The bundle at `path` in its file form (bytes of `bundleHeadFile(path)` already read, when given). Throws. */
export function readWireAt(path: string, bytes?: Uint8Array): WireBundle {
  const dir = isShardedDir(path) ? path : null;
  const data = bytes ?? readRegularFile(dir ? join(dir, MANIFEST_FILE) : path, MAX_BUNDLE_BYTES);
  if (dir === null && !isManifest(data)) return loadWireBundle(data);
  const base = dir ?? dirname(path);
  return loadShardedWire(data, (hex) => readRegularFile(join(base, shardFile(hex)), MAX_BUNDLE_BYTES));
}

/** `readWireAt`, expanded: what explain, who and diff read. */
export function readBundleAt(path: string, bytes?: Uint8Array): Bundle {
  const { digest, signature, wire } = readWireAt(path, bytes);
  return { format: BUNDLE_FORMAT, digest, signature, content: expandContent(wire) };
}
