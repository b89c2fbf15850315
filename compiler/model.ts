// The shapes of valid documents (what schema/*.schema.json admits), each with the source it
// came from so any later diagnostic can point into the YAML.
import type { SourceDoc } from './source.ts';

export interface AllowedUrlSpec {
  url: string;
  methods?: string[];
}
export type AccessRightsSpec = Record<string, { allowed_urls?: AllowedUrlSpec[] }>;

export interface LimitsSpec {
  rate?: number;
  per?: number;
  quota_max?: number;
  quota_renewal_rate?: number;
}

/** certificate_match, or an object entry of client_certificates. */
export interface CertMatchSpec {
  issuer: string;
  san_uri?: string;
  san_dns?: string;
  san_email?: string;
  subject_cn?: string;
}

export type XfccFieldSpec = 'Hash' | 'Cert' | 'Subject' | 'URI' | 'DNS';
export type ForwardClientCertSpec = boolean | { xfcc?: XfccFieldSpec[]; rfc9440?: boolean; key_id_header?: string };

export interface ApiSpec {
  kind: 'api';
  id: string;
  name?: string;
  domain?: string;
  proxy: {
    listen_path: string;
    target_url: string;
    strip_listen_path?: boolean;
    http2?: boolean;
    upstream_tls?: { ca?: string; pinned_sha256?: string[]; server_name?: string; client_certificate?: string; client_key_file?: string };
  };
  use_keyless?: boolean;
  use_standard_auth?: boolean;
  auth?: { auth_header_name?: string; use_certificate?: boolean };
  use_mutual_tls_auth?: boolean;
  client_certificates?: (string | CertMatchSpec)[];
  strip_auth_data?: boolean;
  forward_client_cert?: ForwardClientCertSpec;
}

export interface PolicySpec extends LimitsSpec {
  kind: 'policy';
  id: string;
  access_rights?: AccessRightsSpec;
  /** Deny this policy's keys while the shared limiter cannot decide. */
  on_limiter_error?: 'deny';
  portal?: { name: string; description?: string; require_approval?: boolean };
}

export interface KeySpec extends LimitsSpec {
  kind: 'key';
  id: string;
  certificate?: string;
  certificates?: string[];
  certificate_match?: CertMatchSpec;
  token_sha256?: string;
  apply_policies?: string[];
  access_rights?: AccessRightsSpec;
  expires?: string;
  is_inactive?: boolean;
  /** The portal's record of who requested the key (OIDC subject); never reaches the bundle. */
  owner?: string;
}

export interface RevocationSpec {
  kind: 'revocation';
  id: string;
  crl?: string[];
  crl_urls?: (string | CrlUrlSpec)[];
  crl_issuers?: string[];
  certificates?: string[];
}

/** A crl_urls entry that names the CA allowed to sign its CRL (compiler/crl-url-issuers.ts). */
export interface CrlUrlSpec {
  url: string;
  /** PEM file, inline PEM or sha256: pin of a trusted CA or a crl_issuers entry. */
  issuer: string;
}

export interface RevocationDoc {
  doc: SourceDoc;
  spec: RevocationSpec;
}

export interface ApiDoc {
  doc: SourceDoc;
  spec: ApiSpec;
}
export interface PolicyDoc {
  doc: SourceDoc;
  spec: PolicySpec;
}
export interface KeyDoc {
  doc: SourceDoc;
  spec: KeySpec;
}

export interface TestRequestSpec {
  method?: string;
  url: string;
  certificate?: string;
  as_key?: string;
  token?: string;
  headers?: Record<string, string>;
  at?: string;
}
export interface TestExpectSpec {
  status?: number;
  code?: string | null;
  key?: string | null;
  api?: string | null;
}
export interface TestSpec {
  kind: 'test';
  id: string;
  cases: { name?: string; request: TestRequestSpec; expect: TestExpectSpec }[];
}
export interface TestDoc {
  doc: SourceDoc;
  spec: TestSpec;
}
