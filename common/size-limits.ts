// The largest file or download the project reads whole into memory, by kind. One place, because
// the runtime (downloads, bundle files), the bundle reader (shards) and the CLI (named files)
// must agree: what `compile` writes and the CLI accepts, `serve` must accept too.

/** A bundle, a sharded bundle's manifest or one shard (a 1,000,000-key bundle is about 100 MB). */
export const MAX_BUNDLE_BYTES = 512 * 1024 * 1024;
/** A CRL (one of 1,000,000 entries is about 40 MB). */
export const MAX_CRL_BYTES = 64 * 1024 * 1024;
/**
 * A certificate (chain) or private key file the gateway presents: `serve --tls-cert/--tls-key`
 * and `proxy.upstream_tls`'s client pair. A chain of a few certificates is a few KiB; 1 MiB is
 * still five times Debian's ca-certificates.crt (every public root, ~215 KiB).
 */
export const MAX_TLS_FILE_BYTES = 1024 * 1024;
/** `serve --state-dir`'s state.json: ~250 bytes per crl_url, so 16 MiB is some 60,000 of them. */
export const MAX_STATE_FILE_BYTES = 16 * 1024 * 1024;
