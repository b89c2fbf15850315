// The bundle's types: the one artefact the compiler emits and the runtime loads.
//
// bundle/ is shared by both halves (it imports neither): types here, the writer in write.ts
// (compiler only), the reader and verifier in read.ts (the runtime), diff.ts for `mtlsgate diff`.
//
// File layout (one JSON document, always written by `serializeBundle`):
//   {"format":"mtlsgate.bundle/v2","digest":"sha256:<hex>","content":{...}}\n
// or, signed (bundle/sign.ts), with "signature":"ed25519:<key id>:<signed at>:<base64>" between digest and content.
// `content` is a `WireContent` (below): keys as columns, what keys share (their merged
// sessions) interned once, certificate fingerprints and token hashes as sorted tables. Readers
// get it back as a `BundleContent` (bundle/wire.ts `expandContent`), or, at scale, look keys up
// in the columns without expanding them (runtime/bundle-worker-compact.ts).
// The digest is the SHA-256 of the exact bytes of the `content` value as they stand in the
// file, so a loader verifies it by hashing a slice, without re-serialising anything.
// Everything in `content` is plain data: fingerprints, hashes, ids, regex sources. No private
// key material and no plaintext token can be represented here.

export const BUNDLE_FORMAT = 'mtlsgate.bundle/v2';
/** A sharded bundle's manifest (bundle/shards.ts): the small parts, and the digest of every shard. */
export const MANIFEST_FORMAT = 'mtlsgate.manifest/v1';
/** One shard of a sharded bundle: the keys whose id hashes to it, with their certificates and tokens. */
export const SHARD_FORMAT = 'mtlsgate.shard/v1';
/** The document formats that share the header layout (format, digest, optional signature, content). */
export type DocumentFormat = typeof BUNDLE_FORMAT | typeof MANIFEST_FORMAT | typeof SHARD_FORMAT;

/** Lowercase hex SHA-256 of a certificate's DER bytes (64 chars). */
export type Fingerprint = string;

export interface AllowedUrl {
  /** Regex source, matched against the path after the listen path (which starts with "/"). */
  url: string;
  /** Upper-case HTTP methods; empty = every method. */
  methods: string[];
}

/** One API's rights within a session. `allowed_urls: null` = the whole API. */
export interface AccessRight {
  allowed_urls: AllowedUrl[] | null;
}

export interface RateLimit {
  rate: number;
  /** seconds */
  per: number;
}

export interface Quota {
  max: number;
  /** seconds */
  renewal: number;
}

/**
 * A certificate identified by what it says, under a CA (`certificate_match`, or an object entry
 * of an API's client_certificates). null fields are not constrained. Values may hold `*`: one
 * or more characters within one URI path segment, DNS label or email label (subject_cn: any).
 */
export interface CertMatch {
  /** Fingerprint of the CA (its PEM is in `content.cas`) the leaf must chain to. */
  issuer: Fingerprint;
  san_dns: string | null;
  san_email: string | null;
  san_uri: string | null;
  subject_cn: string | null;
}

/** Envoy XFCC elements, in the order Envoy writes them. */
export const XFCC_FIELDS = ['Hash', 'Cert', 'Subject', 'URI', 'DNS'] as const;
export type XfccField = (typeof XFCC_FIELDS)[number];

/** What the gateway tells the upstream about the caller (client-sent copies are always removed). */
export interface ForwardClientCert {
  /** X-Forwarded-Client-Cert elements; empty = no XFCC header. */
  xfcc: XfccField[];
  /** RFC 9440 Client-Cert and Client-Cert-Chain. */
  rfc9440: boolean;
  /** Lower-case header carrying the caller's key id, or null. */
  key_id_header: string | null;
}

/** How the gateway connects to an https:// upstream (`proxy.upstream_tls`). */
export interface UpstreamTls {
  /** PEM of the CA(s) the upstream's certificate must chain to; null = the system's roots. */
  ca_pem: string | null;
  /** Lower-case hex SHA-256 of acceptable upstream leaf certificates; empty = any that verifies. */
  pinned_sha256: Fingerprint[];
  /** Name checked against the upstream's certificate and sent as SNI; null = the target host. */
  server_name: string | null;
  /**
   * Paths, on the gateway's machine, of the client certificate and its private key presented to
   * the upstream. Read by the runtime at start and on every reload, never by the compiler: the
   * bundle never holds a private key.
   */
  client_certificate_file: string | null;
  client_key_file: string | null;
}

export interface BundleApi {
  id: string;
  name: string;
  /** Lower-case host the API answers on; null = any host. */
  domain: string | null;
  /** Normalised: starts and ends with "/". */
  listen_path: string;
  /** Absolute http(s) URL of the upstream, as declared. */
  target_url: string;
  strip_listen_path: boolean;
  /** Speak HTTP/2 to the upstream (h2c for http://, ALPN h2 for https://): gRPC needs it. */
  upstream_http2: boolean;
  /** null: plain defaults (system roots, target host) for https://; unused for http://. */
  upstream_tls: UpstreamTls | null;
  use_keyless: boolean;
  use_mutual_tls_auth: boolean;
  /** Dynamic mTLS: the client certificate identifies the key. */
  use_certificate: boolean;
  /** Lower-case header name carrying the token. */
  auth_header_name: string;
  /** Pinned leaf fingerprints, sorted. */
  client_certificates: Fingerprint[];
  /** Fingerprints of CA certificates (see `content.cas`) whose issued leaves are admitted, sorted. */
  client_cas: Fingerprint[];
  /** Object entries of client_certificates: a CA trusted for some subjects only. */
  client_matches: CertMatch[];
  strip_auth_data: boolean;
  forward_client_cert: ForwardClientCert;
}

export interface BundleKey {
  id: string;
  /**
   * Fingerprints of the certificates that identify this key, sorted; empty for a token-only key.
   * Several while a certificate is renewed (the old and the new one both identify the key).
   */
  certificates: Fingerprint[];
  /** Identifies the key by subject under a CA (also in `index.matches`), or null. */
  certificate_match: CertMatch | null;
  /** SHA-256 (lowercase hex) of the bearer token, or null for a certificate-only key. */
  token_sha256: string | null;
  /** Policies applied, sorted (for logs and diff; already merged below). */
  policies: string[];
  /** Effective access rights, merged from the key and its policies. Keys: api ids. */
  access_rights: Record<string, AccessRight>;
  /** Effective rate limit; null = unlimited. */
  rate: RateLimit | null;
  /** Effective quota; null = unlimited. */
  quota: Quota | null;
  /** ISO-8601 expiry of the key, or null. */
  expires: string | null;
  is_inactive: boolean;
  /** Present ('deny') when a policy of the key asks to deny it while the shared limiter cannot decide; absent: serve's --on-limiter-error. */
  on_limiter_error?: 'deny';
}

export interface BundleCa {
  /** Public PEM of the CA certificate (trust anchor for the APIs listing it). */
  pem: string;
  subject: string;
  apis: string[];
}

export interface CertIndexEntry {
  /** APIs that pin this leaf fingerprint directly, sorted. */
  apis: string[];
  /** The key this certificate identifies, or null. */
  key: string | null;
}

/** One CA's revoked serials, from the CRL files of the config's revocation documents. */
export interface BundleCrl {
  /** Revoked serial numbers: lowercase hex without leading zeros, sorted. */
  serials: string[];
  /** ISO-8601; the earliest nextUpdate of the CRLs merged here, or null when none has one. */
  next_update: string | null;
  /** Revocation document ids that contributed. */
  sources: string[];
}

/**
 * An intermediate CA whose own CRLs are used (a revocation document's crl_issuers): the
 * compiler verified that it chains to `ca` and may issue client certificates.
 */
export interface BundleCrlIssuer {
  pem: string;
  subject: string;
  /** The trusted CA (in `content.cas`) it chains to. */
  ca: Fingerprint;
}

/** Every revocation document merged: refused on every API. */
export interface BundleRevocation {
  /** CA fingerprint (in `content.cas`, or in `crl_issuers`) -> its CRL. */
  crls: Record<Fingerprint, BundleCrl>;
  /** Intermediates whose own CRLs are used, by fingerprint; absent when none (so bundles without any keep their bytes). */
  crl_issuers?: Record<Fingerprint, BundleCrlIssuer>;
  /** CRLs the running gateway fetches and refreshes, sorted. */
  crl_urls: string[];
  /**
   * crl_url -> the one CA (in `content.cas` or `crl_issuers`) whose CRLs it may serve; absent
   * when there are no crl_urls (and in bundles compiled before it existed: runtime/snapshot.ts).
   */
  crl_url_issuers?: Record<string, Fingerprint>;
  /** Denied leaf fingerprints, sorted. */
  denied: Fingerprint[];
}

export interface BundleContent {
  apis: Record<string, BundleApi>;
  keys: Record<string, BundleKey>;
  /** Every CA the config trusts (API entries, certificate_match issuers), by fingerprint. */
  cas: Record<Fingerprint, BundleCa>;
  /** notAfter (seconds since the epoch) of every certificate given as a PEM: pinned, bound to a key, or a CA. */
  not_after: Record<Fingerprint, number>;
  revocation: BundleRevocation;
  index: {
    /** certificate fingerprint -> (APIs pinning it, key). */
    certs: Record<Fingerprint, CertIndexEntry>;
    /** token SHA-256 -> key id. */
    tokens: Record<string, string>;
    /** key id -> its certificate_match (the runtime indexes these by issuer, then field). */
    matches: Record<string, CertMatch>;
    /** host ("*" = any host) -> listen_path -> api id. */
    routes: Record<string, Record<string, string>>;
  };
}

export interface Bundle {
  format: typeof BUNDLE_FORMAT;
  /** "sha256:<hex>" of the content bytes. */
  digest: string;
  /** "ed25519:<key id>:<base64>" over the digest (bundle/sign.ts), or null when unsigned. Not verified by loadBundle. */
  signature?: string | null;
  content: BundleContent;
}

// ---- the file form of `content` (format v2) ----
// A key costs its id, a session number and its credentials: the access rights, policies and
// limits it shares with every key of the same policy list are written once, in `sessions`.

/** What keys applying the same policies share: their merged (effective) session. */
export type BundleSession = Pick<BundleKey, 'access_rights' | 'policies' | 'quota' | 'rate' | 'on_limiter_error'>;

/** Keys as columns: row i of each array is key `ids[i]`. */
export interface WireKeys {
  /** Key ids, strictly ascending (JavaScript string order). */
  ids: string[];
  /** Per row: index of its session in `content.sessions`. */
  session: number[];
  /** Key id -> ISO-8601 expiry, for the keys that have one. */
  expires: Record<string, string>;
  /** Ids of the inactive keys, ascending. */
  inactive: string[];
}

/** A table of 64-hex-character values (fingerprints or token hashes), sorted for lookup. */
export interface WireHexTable {
  /** The values concatenated, strictly ascending, lowercase hex: 64 characters each. */
  hex: string;
  /** Per value: the row (in `keys.ids`) of the key it identifies; -1 = none (certificates pinned by APIs only). */
  key: number[];
}

/** Every certificate fingerprint the index knows: pinned by APIs and/or identifying a key. */
export interface WireCerts extends WireHexTable {
  /** Per fingerprint: notAfter (seconds since the epoch), or null when given as a pin. */
  not_after: (number | null)[];
  /** Fingerprint -> APIs pinning it (static mTLS), sorted; only fingerprints some API pins. */
  apis: Record<Fingerprint, string[]>;
}

export interface WireContent {
  apis: Record<string, BundleApi>;
  cas: Record<Fingerprint, BundleCa>;
  revocation: BundleRevocation;
  /** host ("*" = any host) -> listen_path -> api id. */
  routes: BundleContent['index']['routes'];
  /** key id -> its certificate_match. */
  matches: Record<string, CertMatch>;
  /** Interned sessions, in the order of the first key (by id) using each. */
  sessions: BundleSession[];
  keys: WireKeys;
  certs: WireCerts;
  /** Token SHA-256s -> key rows (every entry names a key). */
  tokens: WireHexTable;
  /** notAfter of certificates outside `certs` (CAs, pins of APIs without static mTLS). */
  not_after: Record<Fingerprint, number>;
}

// ---- the sharded form (bundle/shards.ts) ----
// A directory: manifest.json (the small parts, signed as a whole) and shards/<digest>.json.

/** What a shard holds: the key parts of a `WireContent`, for the keys whose id hashes to it (bundle/shard-of.ts). */
export type ShardContent = Pick<WireContent, 'matches' | 'sessions' | 'keys' | 'certs' | 'tokens'>;

/**
 * The manifest's content: a `WireContent` without keys (its certificate table holds only the
 * fingerprints APIs pin that no key uses), and the content digest of every shard, in shard
 * order. Its digest therefore covers every shard: signing it signs the whole set.
 */
export interface ManifestContent extends WireContent {
  /** "sha256:<hex>" digests of the shards; shard i holds the keys with shardOf(id, shards.length) = i. */
  shards: string[];
}
