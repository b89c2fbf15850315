// `compile -o DIR --shards N --cache CACHE`: the shard files already in DIR are kept when none
// of their keys changed, instead of splitting, serialising and hashing all of them again (~4 s
// at 1,000,000 keys, more than the patched compile). The cache holds a record of the last set
// written (sharded-output.json, digested like every cache file): the directory, the shard
// count, the digest of the single bundle the set is the split of, and each shard's digest and
// file stamp (size, mtime, inode). A patched compile (compiler/snapshot-compile.ts) whose
// previous bundle is that bundle makes only the shards of the key ids it took out or put in
// (compiler/shard-reuse.ts); every other shard keeps its digest, as long as its file is there
// with the stamp recorded. Anything else (another directory or count, a compile that was not
// patched, a shard file touched since) writes the whole set as an uncached compile does. Either
// way the manifest and shards are an uncached compile's bytes (test/compile-cache-shards.test.ts).
import type { KeyObject } from 'node:crypto';
import { join, resolve } from 'node:path';
import { shardFile } from '../bundle/read-sharded.ts';
import type { WireContent } from '../bundle/types.ts';
import { documentDigest, serializeShard } from '../bundle/write.ts';
import { readDigestedJson, writeDigestedJson } from './digested-json.ts';
import { splitChanged } from './shard-reuse.ts';
import { fileStamp, type ShardedWrite, type ShardMemo, writeShardedBundle, writeShardSet } from './write-sharded.ts';

const RECORD = 'sharded-output.json';

interface SetRecord {
  dir: string;
  count: number;
  /** "sha256:<hex>" of the single bundle the set is the split of. */
  bundle: string;
  shards: { digest: string; file: { size: number; mtimeMs: number; ino: number } }[];
}

export interface ShardedCompile {
  /** The single bundle file of the compile (its content is what the set is split from). */
  bundle: Buffer;
  /** Its content, parsed when first read (not read when the set is patched). */
  wire: () => WireContent;
  /** A patched compile: its previous bundle's digest and the ids of the keys it took out or put in. */
  patch?: { previous: string; changed: readonly string[] };
}

export type CachedShardedWrite = ShardedWrite & { /** Shards kept from the previous set without being made again. */ kept: number };

function readRecord(cacheDir: string): SetRecord | null {
  const r = readDigestedJson(join(cacheDir, RECORD)) as SetRecord | null;
  return r !== null && typeof r === 'object' && Array.isArray(r.shards) ? r : null;
}

/** The set written into `dir` from `compiled`, keeping unchanged shards when the cache's record allows it. */
export function writeShardedCached(dir: string, compiled: ShardedCompile, count: number, cacheDir: string, signingKey?: KeyObject): CachedShardedWrite {
  const bundleDigest = documentDigest(compiled.bundle);
  const memo = keptSet(dir, compiled, count, cacheDir);
  let w: CachedShardedWrite;
  if (memo !== null) w = { ...writeShardSet(dir, memo.base, memo.set, signingKey), kept: memo.kept };
  else w = { ...writeShardedBundle(dir, compiled.wire(), count, signingKey), kept: 0 };
  writeDigestedJson(join(cacheDir, RECORD), {
    dir: resolve(dir),
    count,
    bundle: bundleDigest,
    shards: w.files.map((f) => ({ digest: f.digest, file: f.file })),
  } satisfies SetRecord);
  return w;
}

/** The set with only the changed shards made, or null when the previous set cannot be kept. */
function keptSet(dir: string, compiled: ShardedCompile, count: number, cacheDir: string) {
  const { patch } = compiled;
  if (patch === undefined) return null;
  const record = readRecord(cacheDir);
  if (record === null || record.dir !== resolve(dir) || record.count !== count || record.bundle !== patch.previous || record.shards.length !== count)
    return null;
  // Every kept shard's file is there as it was written (a touched one: the whole set again).
  const split = splitChanged(compiled.bundle, count, patch.changed);
  if (split === null) return null;
  let kept = 0;
  const set: ShardMemo[] = [];
  for (let i = 0; i < count; i++) {
    const shard = split.shards[i];
    if (shard) {
      const bytes = serializeShard(shard);
      set.push({ json: '', bytes, digest: documentDigest(bytes), file: null });
      continue;
    }
    const was = record.shards[i]!;
    const now = fileStamp(join(dir, shardFile(was.digest.slice('sha256:'.length))));
    if (now === null || now.size !== was.file.size || now.mtimeMs !== was.file.mtimeMs || now.ino !== was.file.ino) return null;
    set.push({ json: '', bytes: null, digest: was.digest, file: was.file });
    kept++;
  }
  return { base: split.base, set, kept };
}
