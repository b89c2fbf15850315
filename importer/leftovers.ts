// Every Tyk field a converter does not handle itself is reported here when it is set (see
// isUnset), with the reason it has no mtlsgate equivalent. Fields keyed by name, shared by the
// classic and OAS formats where the names agree.
import { ptr, type ImportReport } from './report.ts';
import { isUnset, type JsonObject } from './values.ts';

const GENERIC = 'no mtlsgate equivalent';

/** Why a field is dropped, by its name (classic snake_case and OAS camelCase). */
const REASONS: Record<string, string> = {
  // authentication modes mtlsgate does not have: the API keeps token auth, so it fails closed
  enable_jwt: 'JWT authentication is not supported: the API is imported with token auth, so its clients need mtlsgate keys',
  use_basic_auth: 'basic authentication is not supported: the API is imported with token auth, so its clients need mtlsgate keys',
  use_oauth2: 'Tyk as OAuth 2.0 server is not supported: the API is imported with token auth, so its clients need mtlsgate keys',
  use_openid: 'OpenID Connect is not supported: the API is imported with token auth, so its clients need mtlsgate keys',
  external_oauth: 'external OAuth introspection is not supported: the API is imported with token auth',
  enable_signature_checking: 'HMAC request signing is not supported: the API is imported with token auth, without signature checks',
  custom_plugin_auth_enabled: 'custom plugin authentication is not supported: the API is imported with token auth',
  enable_coprocess_auth: 'custom plugin authentication is not supported: the API is imported with token auth',
  use_go_plugin_auth: 'Go plugin authentication is not supported: the API is imported with token auth',
  hmac: 'HMAC request signing is not supported',
  oidc: 'OpenID Connect is not supported',
  custom: 'custom plugin authentication is not supported',
  // upstream side
  upstream_certificates:
    'upstream mTLS: Tyk names the client certificate by certificate-store id, mtlsgate reads it from files on the gateway (proxy.upstream_tls.client_certificate and client_key_file): set those by hand',
  mutualTLS:
    'upstream mTLS: Tyk names the client certificate by certificate-store id, mtlsgate reads it from files on the gateway (proxy.upstream_tls.client_certificate and client_key_file): set those by hand',
  pinned_public_keys:
    'upstream pinning: Tyk pins the upstream public key (SPKI hash), mtlsgate pins the upstream certificate (proxy.upstream_tls.pinned_sha256, the SHA-256 of its DER): set those by hand',
  certificatePinning:
    'upstream pinning: Tyk pins the upstream public key (SPKI hash), mtlsgate pins the upstream certificate (proxy.upstream_tls.pinned_sha256, the SHA-256 of its DER): set those by hand',
  upstream_auth: 'upstream authentication is not supported',
  authentication: 'upstream authentication is not supported',
  enable_load_balancing: 'load balancing is not supported: only target_url is imported',
  target_list: 'load balancing is not supported: only target_url is imported',
  loadBalancing: 'load balancing is not supported: only upstream.url is imported',
  service_discovery: 'service discovery is not supported',
  serviceDiscovery: 'service discovery is not supported',
  transport:
    'Tyk upstream TLS transport settings (skip verify, ciphers, TLS versions, proxy URL) have no mtlsgate equivalent: mtlsgate always verifies an https upstream (proxy.upstream_tls sets its CA, pins and server name)',
  tlsTransport:
    'Tyk upstream TLS transport settings (skip verify, ciphers, TLS versions, proxy URL) have no mtlsgate equivalent: mtlsgate always verifies an https upstream (proxy.upstream_tls sets its CA, pins and server name)',
  preserve_host_header: 'mtlsgate always sends the upstream host',
  preserveHostHeader: 'mtlsgate always sends the upstream host',
  disable_strip_slash: GENERIC,
  uptime_tests: 'uptime tests are not supported',
  uptimeTests: 'uptime tests are not supported',
  // versions
  version_data: 'API versions are not supported: only the listen path and target are imported; paths and middleware per version are dropped',
  versioning: 'API versions are not supported: only the base API is imported',
  // limits that are not per key
  global_rate_limit: 'API-wide rate limits are not supported: mtlsgate limits per key',
  rateLimit: 'API-wide rate limits are not supported: mtlsgate limits per key',
  disable_rate_limit: "Tyk skipped rate limits on this API; mtlsgate enforces each key's rate limit on every API",
  disable_quota: "Tyk skipped quotas on this API; mtlsgate enforces each key's quota on every API",
  skipRateLimit: "Tyk skipped rate limits on this API; mtlsgate enforces each key's rate limit on every API",
  skipQuota: "Tyk skipped quotas on this API; mtlsgate enforces each key's quota on every API",
  // network access
  enable_ip_whitelisting: 'IP allow lists are not supported',
  allowed_ips: 'IP allow lists are not supported',
  enable_ip_blacklisting: 'IP block lists are not supported',
  blacklisted_ips: 'IP block lists are not supported',
  ipAccessControl: 'IP access control is not supported',
  internal: 'internal (looping-only) APIs are not supported: the API is reachable from outside in mtlsgate',
  // server-side TLS and routing
  certificates: 'server certificates per domain are not supported: `mtlsgate serve --tls-cert` serves one certificate',
  listen_port: 'a listen port per API is not supported',
  port: 'a listen port per API is not supported',
  protocol: 'only HTTP APIs are supported',
  tags: 'gateway sharding tags are not supported',
  gatewayTags: 'gateway sharding tags are not supported',
  expiration: 'API expiry is not supported',
  // middleware
  CORS: 'CORS handling is not supported',
  cors: 'CORS handling is not supported',
  cache_options: 'response caching is not supported',
  cache: 'response caching is not supported',
  custom_middleware: 'custom middleware plugins are not supported',
  custom_middleware_bundle: 'plugin bundles are not supported',
  response_processors: 'response processors are not supported',
  event_handlers: 'event handlers (webhooks) are not supported',
  eventHandlers: 'event handlers (webhooks) are not supported',
  enable_context_vars: 'context variables are not supported',
  enable_batch_request_support: 'batch requests (POST LISTEN_PATH/tyk/batch/) are not supported: clients send each request on its own',
  contextVariables: 'context variables are not supported',
  config_data: 'plugin config data is not supported',
  do_not_track: 'analytics settings are not supported (mtlsgate logs one JSON line per request)',
  enable_detailed_recording: 'analytics settings are not supported (mtlsgate logs one JSON line per request)',
  detailedActivityLogs: 'analytics settings are not supported (mtlsgate logs one JSON line per request)',
  detailed_tracing: 'tracing is not supported',
  detailedTracing: 'tracing is not supported',
  graphql: 'GraphQL APIs are not supported',
  error_overrides: 'error overrides are not supported: mtlsgate answers with its own error table',
  errorOverrides: 'error overrides are not supported: mtlsgate answers with its own error table',
  session_lifetime: 'session lifetime is not supported: keys expire by their own expires',
  global_size_limit: 'request size limits are not supported',
  // per-path middleware (classic extended_paths, OAS operations)
  extended_paths: 'per-path middleware (allow/block lists, transforms, mocks, caching) is not supported: restrict paths with allowed_urls in a policy',
  allow: 'per-operation allow lists are not supported: restrict paths with allowed_urls in a policy',
  block: 'per-operation block lists are not supported: restrict paths with allowed_urls in a policy',
  ignoreAuthentication: 'per-operation authentication bypass is not supported: put the operation in a keyless API',
  mockResponse: 'mock responses are not supported',
  // policy and key fields
  throttle_interval: 'request throttling (retry instead of 429) is not supported',
  throttle_retry_limit: 'request throttling (retry instead of 429) is not supported',
  max_query_depth: 'GraphQL query depth limits are not supported',
  hmac_enabled: 'HMAC request signing is not supported',
  hmac_string: 'HMAC request signing is not supported',
  enable_http_signature_validation: 'HTTP signature validation is not supported',
  key_expires_in: 'policies cannot set key expiry: set expires on each key',
  graphql_access_rights: 'GraphQL access rights are not supported',
  meta_data: 'metadata is not supported',
  smoothing: 'rate limit smoothing is not supported',
  post_expiry_action: 'post-expiry actions are not supported',
  post_expiry_grace_period: 'post-expiry actions are not supported',
  basic_auth_data: 'basic authentication is not supported',
  jwt_data: 'JWT authentication is not supported',
  oauth_client_id: 'OAuth clients are not supported',
  oauth_keys: 'OAuth clients are not supported',
  rsa_certificate_id: 'HTTP signature validation is not supported',
  mtls_static_certificate_bindings: 'static certificate bindings are not supported: bind the key to one certificate with certificate',
  monitor: 'quota monitors (trigger_limits) are not supported',
  enable_detail_recording: 'analytics settings are not supported (mtlsgate logs one JSON line per request)',
  limit: 'per-API limits are not supported: the key or policy limit applies on every API',
  endpoints: 'per-endpoint rate limits are not supported',
  restricted_types: 'GraphQL access rights are not supported',
  allowed_types: 'GraphQL access rights are not supported',
  field_access_rights: 'GraphQL access rights are not supported',
  disable_introspection: 'GraphQL access rights are not supported',
  json_rpc_methods: 'JSON-RPC access rights are not supported',
  json_rpc_methods_access_rights: 'JSON-RPC access rights are not supported',
  mcp_primitives: 'MCP access rights are not supported',
  mcp_access_rights: 'MCP access rights are not supported',
  allowance_scope: 'per-API limits are not supported',
};

/**
 * Fields that narrowed access in Tyk (who may call, which paths, until when, how often): dropped,
 * they leave the imported config granting more than Tyk did. `mtlsgate import tyk --strict`
 * fails on them; the others (analytics, transforms, an auth mode imported as token auth, which
 * fails closed) do not widen access.
 */
export const WIDER_FIELDS = new Set([
  'enable_ip_whitelisting',
  'allowed_ips',
  'enable_ip_blacklisting',
  'blacklisted_ips',
  'ipAccessControl',
  'internal',
  'expiration',
  'version_data',
  'versioning',
  'global_rate_limit',
  'rateLimit',
  'session_lifetime',
  'extended_paths',
  'allow',
  'block',
  'key_expires_in',
  'mtls_static_certificate_bindings',
  'limit',
  'endpoints',
  'graphql_access_rights',
  'restricted_types',
  'allowed_types',
  'field_access_rights',
  'disable_introspection',
  'json_rpc_methods',
  'json_rpc_methods_access_rights',
  'mcp_primitives',
  'mcp_access_rights',
  'allowance_scope',
]);

function reasonFor(field: string): string {
  return REASONS[field] ?? GENERIC;
}

/**
 * Reports every field of `o` that is set and neither handled by the converter nor silent
 * (Tyk bookkeeping, or settings of a mode that is off). `base` is `o`'s JSON pointer.
 */
export function reportLeftovers(
  report: ImportReport,
  file: string,
  base: string,
  o: JsonObject,
  handled: ReadonlySet<string>,
  silent: ReadonlySet<string> = new Set(),
): void {
  for (const [field, value] of Object.entries(o)) {
    if (handled.has(field) || silent.has(field) || isUnset(value)) continue;
    report.drop(file, ptr(base, field), `${field} not converted: ${reasonFor(field)}`, WIDER_FIELDS.has(field) ? 'wider' : undefined);
  }
}
