// Which shard a key lives in: the compiler splits by it and the runtime looks keys up by it, so
// both use this one definition. FNV-1a over the id's UTF-16 code units: cheap, stable, and spread
// well enough over ids that often share a long prefix ("partner-000123").

/** FNV-1a over UTF-16 code units (also the key-id hash of the runtime's hash slots). */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** The shard of key `id` among `count` shards. */
export function shardOf(id: string, count: number): number {
  return hashString(id) % count;
}

/** Most shards a bundle may have (the runtime's routing packs a shard number and an entry in 31 bits). */
export const MAX_SHARDS = 2048;

/** The shard count `--shards auto` picks: ~4,000 keys a shard (a few hundred KB), at least 1, at most 256. */
export function autoShardCount(keys: number): number {
  return Math.min(256, Math.max(1, Math.ceil(keys / 4096)));
}
