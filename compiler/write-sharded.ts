// Writes a sharded bundle (bundle/shards.ts) into a directory so that a gateway reading it at
// any moment sees the old set or the new set, never a mix:
//   1. every shard file is written under its digest (shards/<hex>.json), atomically; a file
//      that already holds the same bytes is left alone (its mtime too), so a one-key change
//      writes one or two shards;
//   2. manifest.json, which names the new digests, is replaced atomically last;
//   3. shard files named by neither the new manifest nor the previous one are removed (a
//      gateway may still be reading the previous set's shards when the manifest changes).
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import type { KeyObject } from 'node:crypto';
import { join, resolve } from 'node:path';
import { MANIFEST_FILE, SHARDS_DIR, shardFile } from '../bundle/read-sharded.ts';
import { autoShardCount, MAX_SHARDS } from '../bundle/shard-of.ts';
import { type ManifestBase, splitWire } from '../bundle/shards.ts';
import { signBundle } from '../bundle/sign.ts';
import type { WireContent } from '../bundle/types.ts';
import { documentDigest, serializeManifest, serializeShard } from '../bundle/write.ts';
import { writeFileAtomic } from '../common/atomic-write.ts';

export interface ShardedWrite {
  manifest: Buffer;
  /** "sha256:<hex>" of the manifest's content. */
  digest: string;
  shards: number;
  /** Shard files written now (the others were already there with the same bytes). */
  written: number;
  removed: number;
  /** Each shard's digest and the stamp of its file once written or found equal, in shard order. */
  files: { digest: string; file: { size: number; mtimeMs: number; ino: number } }[];
}

/** `--shards N|auto` as a count, or an error message. */
export function parseShardCount(text: string, keys: number): number | string {
  if (text === 'auto') return autoShardCount(keys);
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n > MAX_SHARDS) return `--shards must be auto or a whole number from 1 to ${MAX_SHARDS}, got ${JSON.stringify(text)}`;
  return n;
}

function sameBytes(path: string, bytes: Buffer): boolean {
  const st = statSync(path, { throwIfNoEntry: false });
  if (!st?.isFile() || st.size !== bytes.length) return false;
  return readFileSync(path).equals(bytes);
}

/** Digests named by the manifest at `path`, if it is readable enough to tell (else none). */
function shardsNamedBy(path: string): string[] {
  try {
    const text = readFileSync(path, 'latin1');
    const m = /"shards":\[([^\]]*)\]/.exec(text);
    return m ? [...m[1].matchAll(/sha256:([0-9a-f]{64})/g)].map((x) => x[1]) : [];
  } catch {
    return [];
  }
}

/** The number of shards of the sharded bundle in `dir` (its manifest names one digest a shard). */
export function shardCountAt(dir: string): number {
  const n = shardsNamedBy(join(dir, MANIFEST_FILE)).length;
  if (n === 0) throw new Error(`${join(dir, MANIFEST_FILE)} names no shard; recreate it with \`mtlsgate compile CONFIG -o ${dir} --shards auto\``);
  return n;
}

/**
 * What this process last wrote into a directory, per shard: the shard's plain JSON.stringify
 * (an immutable string, so later edits of the content it came from cannot fool it), its bytes
 * and digest, and the (size, mtime, inode) of its file once written or found equal. A process
 * that writes the same directory again and again (the portal, one key at a time) serializes
 * and re-reads only the shards whose content changed: at 100,000 keys serializing all 25 shards
 * cost ~220 ms of CPU per new key, the plain stringify of them ~30 ms.
 */
export interface ShardMemo {
  /** Empty when not known (a shard kept from the previous set by compiler/sharded-output.ts). */
  json: string;
  /** Null for a kept shard: its file must still be there with `file`'s stamp. */
  bytes: Buffer | null;
  digest: string;
  file: { size: number; mtimeMs: number; ino: number } | null;
}
const memos = new Map<string, ShardMemo[]>();

export function fileStamp(path: string): ShardMemo['file'] {
  const st = statSync(path, { throwIfNoEntry: false });
  return st?.isFile() ? { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino } : null;
}

export function writeShardedBundle(dir: string, wire: WireContent, count: number, signingKey?: KeyObject): ShardedWrite {
  const { base, shards } = splitWire(wire, count);
  const before = memos.get(resolve(dir));
  // Same plain JSON (same structure, same key order) gives the same sorted, serialized bytes.
  const memo: ShardMemo[] = shards.map((shard, i) => {
    const json = JSON.stringify(shard);
    const was = before?.length === count ? before[i] : undefined;
    if (was && was.json === json) return was;
    const bytes = serializeShard(shard);
    return { json, bytes, digest: documentDigest(bytes), file: null };
  });
  return writeShardSet(dir, base, memo, signingKey);
}

/**
 * Writes a set whose shards are serialised (or kept: a memo with its file's stamp, whose file is
 * there unchanged), then the manifest, then removes shard files neither manifest names.
 * `memo` is updated with every shard file's stamp.
 */
export function writeShardSet(dir: string, base: ManifestBase, memo: ShardMemo[], signingKey?: KeyObject): ShardedWrite {
  const count = memo.length;
  const files = memo.map((m) => m.bytes);
  const digests = memo.map((m) => m.digest);
  let manifest = serializeManifest({ ...base, shards: digests });
  if (signingKey) manifest = signBundle(manifest, signingKey);

  const shardDir = join(dir, SHARDS_DIR);
  mkdirSync(shardDir, { recursive: true });
  let written = 0;
  for (let i = 0; i < files.length; i++) {
    const path = join(dir, shardFile(digests[i].slice('sha256:'.length)));
    const stamp = memo[i].file;
    const now = fileStamp(path);
    // Unchanged since this process wrote or compared it: not read again.
    if (stamp && now && now.size === stamp.size && now.mtimeMs === stamp.mtimeMs && now.ino === stamp.ino) continue;
    const bytes = files[i];
    if (bytes === null) throw new Error(`${path} changed while the shard set was being written`);
    if (!sameBytes(path, bytes)) {
      writeFileAtomic(path, bytes);
      written++;
    }
    memo[i] = { ...memo[i], file: fileStamp(path) };
  }
  memos.set(resolve(dir), memo);
  const manifestPath = join(dir, MANIFEST_FILE);
  const keep = new Set([...digests.map((d) => d.slice('sha256:'.length)), ...shardsNamedBy(manifestPath)]);
  writeFileAtomic(manifestPath, manifest);
  let removed = 0;
  for (const name of readdirSync(shardDir)) {
    const m = /^([0-9a-f]{64})\.json$/.exec(name);
    if (m && !keep.has(m[1])) {
      rmSync(join(shardDir, name), { force: true });
      removed++;
    }
  }
  return { manifest, digest: documentDigest(manifest), shards: count, written, removed, files: memo.map((m) => ({ digest: m.digest, file: m.file! })) };
}
