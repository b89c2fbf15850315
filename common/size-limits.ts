// The largest file or download the project reads whole into memory, by kind. One place, because
// the runtime (downloads, bundle files), the bundle reader (shards) and the CLI (named files)
// must agree: what `compile` writes and the CLI accepts, `serve` must accept too.

/** A bundle, a sharded bundle's manifest or one shard (a 1,000,000-key bundle is about 100 MB). */
export const MAX_BUNDLE_BYTES = 512 * 1024 * 1024;
/** A CRL (one of 1,000,000 entries is about 40 MB). */
export const MAX_CRL_BYTES = 64 * 1024 * 1024;
