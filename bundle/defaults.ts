// What a bundle holds for a field the config leaves out. The compiler fills these in (so the
// runtime never guesses), and test bundles are built from the same values. schema/*.json
// documents the same defaults for editors; test/bundle-defaults.test.ts keeps them in step.
import type { BundleApi, BundleKey } from './types.ts';

/** The API fields with a fixed default (name defaults to the id; lists default to empty). */
export const API_DEFAULTS = Object.freeze({
  /** Any host. */
  domain: null,
  strip_listen_path: true,
  /** HTTP/1.1 to the upstream. */
  upstream_http2: false,
  /** System roots, the target's host name, no client certificate. */
  upstream_tls: null,
  use_keyless: false,
  use_mutual_tls_auth: false,
  use_certificate: false,
  /** Lower case: the bundle holds header names as Node reads them. */
  auth_header_name: 'authorization',
  strip_auth_data: false,
  /** Nothing about the caller is forwarded. */
  forward_client_cert: Object.freeze({ key_id_header: null, rfc9440: false, xfcc: Object.freeze([]) as unknown as [] }),
} as const satisfies Omit<BundleApi, 'id' | 'name' | 'listen_path' | 'target_url' | 'client_certificates' | 'client_cas' | 'client_matches'>);

/** The key fields with a fixed default (lists default to empty; a key with no credential is a config error). */
export const KEY_DEFAULTS = Object.freeze({
  /** Identified by fingerprint or token only. */
  certificate_match: null,
  token_sha256: null,
  /** Unlimited. */
  rate: null,
  /** Unlimited. */
  quota: null,
  /** Never. */
  expires: null,
  is_inactive: false,
} as const satisfies Omit<BundleKey, 'id' | 'certificates' | 'policies' | 'access_rights'>);
