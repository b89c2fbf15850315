// The gateway's HTTP error table: one row per refusal, with its status, message and code
// (CONTRACT section 5) and how a user fixes it. docs/errors.md renders the same table; a test
// keeps the two in step. Bodies are serialised once, at module load: refusing a request
// builds no JSON (except the one message that names the client's certificate).
/** What sendError writes to: node:http's ServerResponse and node:http2's compat response both fit. */
export interface ErrorResponse {
  readonly headersSent: boolean;
  statusCode: number;
  setHeader(name: string, value: string | number | readonly string[]): unknown;
  end(): unknown;
  end(body: Uint8Array | string): unknown;
}

interface ErrorRow {
  code: string;
  status: number;
  message: string;
  /** What the client or the operator does about it (docs/errors.md). */
  fix: string;
}

export const ERROR_TABLE = [
  {
    code: 'route.not_found',
    status: 404,
    message: 'Not found',
    fix: "No API answers on this host and path. Check the URL against the APIs' `domain` and `proxy.listen_path` (`mtlsgate check` lists them).",
  },
  {
    code: 'request.bad_path',
    status: 400,
    message: 'Bad request',
    fix: 'The path is ambiguous about its API: `..` out of the API it names, an encoded `/` or `\\` (`%2F`, `%5C`), a `;` parameter, a `#` anywhere in the target, a control character (`%00`-`%1F`, `%7F`), a raw space or non-ASCII byte, escaped bytes that are not UTF-8 (`%C0%AE`), an escaped look-alike of punctuation, space or a control (`%EF%BC%8F` fullwidth `/`, `%E2%88%95`, `%C2%A0`, `%C2%85`), a malformed `%` escape, a segment of only dots and spaces (`..%20`), or a trailing dot or space, letter case or a compatibility letter (`%EF%BD%81` fullwidth `a`) that would name another API. Send the normalised path.',
  },
  {
    code: 'request.bad_host',
    status: 400,
    message: 'Bad request',
    fix: 'The `Host` header (HTTP/2: `:authority`) is not a host name or IP literal with an optional port of digits: it has `@` (user info), `/`, `,`, `%`, a space or other characters no host holds. Send `Host: name[:port]`.',
  },
  {
    code: 'request.upgrade_with_body',
    status: 400,
    message: 'An Upgrade request cannot carry a body',
    fix: 'An HTTP/1.1 request with `Upgrade` and `Connection: upgrade` declared a body (`Content-Length` other than 0, or `Transfer-Encoding`). node:http hands such a connection over at the end of the headers, so the body cannot be read as one: a WebSocket handshake has none (RFC 6455 4.1), and other upgrades are served as plain requests, which would reach the upstream without it. Send the request without `Upgrade`, or the handshake without a body.',
  },
  {
    code: 'request.websocket_not_get',
    status: 400,
    message: 'A WebSocket handshake is a GET request',
    fix: 'An HTTP/1.1 request with `Upgrade: websocket` and `Connection: upgrade` used another method than `GET`. RFC 6455 4.1 requires `GET`, and an upstream that upgrades whatever the method would open a tunnel for a request the stages checked as, say, a `POST` (docs/security.md section 45). Send the handshake with `GET`.',
  },
  {
    code: 'request.connect_not_allowed',
    status: 405,
    message: 'CONNECT is not served here',
    fix: 'A `CONNECT` request (HTTP/1.1, or HTTP/2 without `:protocol`) asks for a tunnel to a host and port; the gateway is a reverse proxy for its APIs and opens no tunnels, as NGINX answers 405 to `CONNECT`. Point a forward proxy setting (`HTTPS_PROXY`, `curl -x`) elsewhere, or send the request itself to the API.',
  },
  {
    code: 'request.field_repeated',
    status: 400,
    message: 'A header field that holds one value was sent twice',
    fix: 'The request carried two copies of a field that holds one value, not a list (over HTTP/1.1 or HTTP/2): `Content-Type`, `Range`, `If-Range`, `If-Modified-Since`, `If-Unmodified-Since`, `Max-Forwards`, `User-Agent`, `Referer`, `From`, `Date`, `Content-Range`, `Content-Location`, `Access-Control-Request-Method` and the others of docs/security.md section 51. RFC 9110 5.3 forbids sending one twice: which copy counts would depend on the reader (HTTP/2 readers take the first, HTTP/1.1 ones join them). Send the field once.',
  },
  {
    code: 'request.too_many_fields',
    status: 431,
    message: 'Too many header fields',
    fix: 'The request carried more than 128 header fields (HTTP/2: pseudo-header fields such as `:path` not counted), over HTTP/1.1 or HTTP/2 alike (docs/security.md section 57). Browsers and API clients send a few dozen; send fewer, or join the values of a list field into one line.',
  },
  {
    code: 'request.untrusted_proxy',
    status: 403,
    message: 'Plain HTTP is accepted from a trusted proxy only',
    fix: "The `--listen-plain` listener serves only the TLS-terminating load balancers named by `--trusted-proxies`, and this connection came from another address. Clients connect over HTTPS to `--listen`; a load balancer's address (or range) goes in `--trusted-proxies`.",
  },
  {
    code: 'mtls.cert_header_invalid',
    status: 400,
    message: 'Client certificate header is not a certificate',
    fix: 'A trusted proxy sent the `--client-cert-header` header with a value that is no certificate in that format (`client-cert`: RFC 9440 `:<base64 DER>:`; `xfcc`: a `Cert="<URL-encoded PEM>"` in the last element; another name: URL-encoded PEM). Check what the load balancer puts in the header.',
  },
  {
    code: 'mtls.cert_required',
    status: 403,
    message: 'Client TLS certificate is required',
    fix: 'The API uses static mTLS: present a client certificate (curl `--cert FILE --key FILE`).',
  },
  {
    code: 'mtls.cert_not_allowed',
    status: 403,
    message: 'Certificate with SHA256 <hex> not allowed',
    fix: "The certificate is not on the API's `client_certificates` and no listed CA issued it. Add it (file, PEM or the `sha256:<hex>` from the message) and recompile, or present a listed one.",
  },
  {
    code: 'mtls.cert_expired',
    status: 403,
    message: 'Certificate has expired',
    fix: 'The client certificate is past its notAfter date. Issue a new one and update the config that names it.',
  },
  {
    code: 'mtls.cert_not_yet_valid',
    status: 403,
    message: 'Certificate is not yet valid',
    fix: "The client certificate's notBefore is in the future (a clock off on the issuing machine, or a certificate issued ahead of time). Wait, or issue one valid now.",
  },
  {
    code: 'mtls.cert_not_client',
    status: 403,
    message: 'Certificate is not for client authentication',
    fix: 'The certificate has an extendedKeyUsage without clientAuth (a server certificate, say). Issue a client certificate (extendedKeyUsage clientAuth, or none).',
  },
  {
    code: 'mtls.cert_key_too_large',
    status: 403,
    message: 'Certificate key is larger than 8192 bits',
    fix: 'The client certificate has an RSA key of more than 8,192 bits, which the compiler and the portal refuse too (E_CERT_KEY_SIZE). Issue one with a key of at most 8,192 bits (2,048 or 3,072 is usual) or an EC key.',
  },
  {
    code: 'mtls.cert_revoked',
    status: 403,
    message: 'Certificate has been revoked',
    fix: 'A revocation document lists this certificate (deny list) or a CRL of its CA revokes its serial. Use a new certificate.',
  },
  {
    code: 'mtls.revocation_unknown',
    status: 403,
    message: 'Certificate revocation status is unknown',
    fix: "The CRL of the certificate's CA (a `crl_urls` entry) is past its nextUpdate and cannot be refreshed, and the gateway runs with `--crl-stale closed`. Fix the CRL server; /health names the URL.",
  },
  {
    code: 'auth.auth_field_missing',
    status: 401,
    message: 'Authorization field missing',
    fix: "Send the token in the API's `auth.auth_header_name` header (default `Authorization`, `Bearer ` optional), or, on an API with `auth.use_certificate`, a certificate mapped to a key.",
  },
  {
    code: 'auth.auth_field_repeated',
    status: 400,
    message: 'Authorization field sent more than once',
    fix: "The API's `auth.auth_header_name` header (default `Authorization`) came twice, or as a list: node:http and the gateway's HTTP/2 transport join the copies of a field with `, `, and no token holds a comma. Which copy counts would depend on the reader (a proxy in front may take the last, another the first), so neither does. Send the header once.",
  },
  {
    code: 'auth.key_not_found',
    status: 403,
    message: 'Access to this API has been disallowed',
    fix: 'No key has this token. Check for a typo or a revoked key; `mtlsgate token` makes a token and its `token_sha256`.',
  },
  {
    code: 'auth.cert_not_found',
    status: 401,
    message: 'Access to this API has been disallowed',
    fix: "The API identifies keys by certificate and no key has this one. Set the key's `certificate` to it and recompile.",
  },
  {
    code: 'auth.cert_required',
    status: 401,
    message: 'Client certificate required',
    fix: 'The token belongs to a key bound to a certificate: present that certificate along with the token.',
  },
  {
    code: 'auth.cert_ambiguous',
    status: 401,
    message: 'Certificate matches more than one key',
    fix: "Two keys' `certificate_match` rules match this certificate (rules on different fields, e.g. one by san_uri and one by san_dns, both hold). Make the rules disjoint, or pin the certificate on one key.",
  },
  {
    code: 'auth.cert_mismatch',
    status: 401,
    message: 'Access to this API has been disallowed',
    fix: 'The token and the certificate belong to different keys. Send the token of the key the certificate maps to, or only one of them.',
  },
  {
    code: 'key.expired',
    status: 401,
    message: 'Key has expired, please renew',
    fix: "The key's `expires` has passed. Move it forward (or remove it) and recompile.",
  },
  {
    code: 'key.inactive',
    status: 403,
    message: 'Key is inactive, please renew',
    fix: 'The key has `is_inactive: true` (a portal key awaiting `mtlsgate approve`, or switched off).',
  },
  {
    code: 'access.api_denied',
    status: 403,
    message: 'Access to this API has been disallowed',
    fix: "The key has no access right to this API. Add the API to the key's `access_rights` or to one of its policies.",
  },
  {
    code: 'access.url_denied',
    status: 403,
    message: 'Access to this resource has been disallowed',
    fix: "The key's `allowed_urls` for this API match neither this path nor this method.",
  },
  {
    code: 'access.revoked_in_flight',
    status: 403,
    message: 'Access was revoked while the request was open',
    fix: "Logged for a request that was admitted, then decided again while still open (a gRPC stream, server-sent events, a long download, a WebSocket tunnel, a slow upstream: on a bundle reload, a `crl_urls` CRL change, and every 5 s) and refused: its certificate revoked or expired, its key removed, expired or switched off, its access to the API withdrawn. The upstream request was cancelled. The client was told the refusal's own code where it still could be (nothing answered yet: that refusal; gRPC between two messages: `grpc-status`/`grpc-message` trailers), otherwise its connection (HTTP/1.1) or stream (HTTP/2) was reset. A new request gets the refusal that says why.",
  },
  {
    code: 'limit.rate',
    status: 429,
    message: 'Rate limit exceeded',
    fix: 'The key sent more than `rate` requests per `per` seconds. Wait for `Retry-After` seconds.',
  },
  {
    code: 'limit.quota',
    status: 403,
    message: 'Quota exceeded',
    fix: 'The key used its `quota_max` requests for this `quota_renewal_rate` period. Wait for the renewal or raise the quota.',
  },
  {
    code: 'proxy.upstream_error',
    status: 502,
    message: 'There was a problem proxying the request',
    fix: "The upstream could not be reached or broke off its answer. The request log line's `upstream_error` says why: `ECONNREFUSED` (nothing listens on `proxy.target_url`), `ENOTFOUND` (its host name does not resolve), `ECONNRESET` or `UND_ERR_SOCKET` (the upstream closed the connection), a TLS code for an https upstream (`CERT_HAS_EXPIRED`, `ERR_TLS_CERT_ALTNAME_INVALID`: fix `proxy.upstream_tls.server_name`; `SELF_SIGNED_CERT_IN_CHAIN`, `UNABLE_TO_VERIFY_LEAF_SIGNATURE`: set `proxy.upstream_tls.ca`; `CERT_NOT_PINNED`), or an HTTP/2 upstream's stream reset (`NGHTTP2_REFUSED_STREAM`, `rst N`). The client is never told.",
  },
  {
    code: 'proxy.upstream_timeout',
    status: 504,
    message: 'Upstream timed out',
    fix: "The upstream did not answer within the gateway's upstream timeout (`--upstream-timeout`). The request log line's `upstream_error` says which wait ran out: `UND_ERR_HEADERS_TIMEOUT` (no answer head), `UND_ERR_BODY_TIMEOUT` (the body stalled), `UND_ERR_CONNECT_TIMEOUT` (no connection), `STREAM_TIMEOUT` (an HTTP/2 upstream's stream was idle).",
  },
  {
    code: 'client.idle_timeout',
    status: 408,
    message: 'Request timed out',
    fix: 'The client sent no byte of its request body, or read no byte of the answer, for `--client-idle-timeout` (default 30s): the request was cut and its upstream request aborted (when the answer had started, the connection or stream is reset instead). Send the body without pauses and read the answer as it comes.',
  },
  {
    code: 'client.body_too_slow',
    status: 408,
    message: 'Request body too slow',
    fix: 'The request body arrived slower than `--min-body-rate` (default 240 bytes/s, measured over the last `--min-body-rate-grace` (default 5s) once the first has passed, time in which the upstream read nothing not counted): the request was cut and its upstream request aborted (when the answer had started, the connection or stream is reset instead). Send the body as fast as it can go, without pauses longer than the grace period; gRPC calls are not held to the rate.',
  },
  {
    code: 'client.answer_too_slow',
    status: 408,
    message: 'Answer read too slowly',
    fix: "Logged for an answer whose client took the bytes waiting for it (the connection's send buffer over HTTP/1.1, the stream's flow-control window over HTTP/2) slower than `--min-answer-rate` (default 4096 bytes/s, plus `--min-answer-rate-grace`, default 5s, for each stretch of waiting): the connection (HTTP/1.1) or that stream (HTTP/2, RST_STREAM CANCEL) was cut and the upstream request aborted; the status logged is the upstream's, already sent. Read answers as they come, or download large files over a link faster than the rate; an operator serving slow links lowers the rate or turns it `off`.",
  },
] as const satisfies readonly ErrorRow[];

export type ErrorCode = (typeof ERROR_TABLE)[number]['code'];

interface PreparedError {
  status: number;
  body: Buffer;
  length: string;
}

const PREPARED = new Map<string, PreparedError>();
for (const row of ERROR_TABLE) {
  const body = Buffer.from(JSON.stringify({ error: row.message, code: row.code }));
  PREPARED.set(row.code, { status: row.status, body, length: String(body.length) });
}

/**
 * A decision to answer a request with a row of the table: the verdict a request-path stage
 * gives when it stops the request (runtime/stages/stage.ts).
 */
export class Refusal {
  constructor(
    readonly code: ErrorCode,
    /** Replaces the table's message (only mtls.cert_not_allowed names a value). */
    readonly message?: string,
    /** Sent with the error (rate-limit headers). */
    readonly headers?: Record<string, string>,
  ) {}
}

const SHARED_REFUSALS = new Map<ErrorCode, Refusal>();
/** The shared Refusal for a row without a variable part: refusing allocates nothing. */
export function refusal(code: ErrorCode): Refusal {
  let r = SHARED_REFUSALS.get(code);
  if (r === undefined) SHARED_REFUSALS.set(code, (r = new Refusal(code)));
  return r;
}

export function errorStatus(code: ErrorCode): number {
  return PREPARED.get(code)!.status;
}

/**
 * Ends `res` with the row for `code`. `message` replaces the table's message where the row
 * names a value (mtls.cert_not_allowed names the certificate). `headers` (limit headers) are
 * set first. A response that already started (or a client that left) is not written to.
 */
export function sendError(res: ErrorResponse, code: ErrorCode, message?: string, headers?: Record<string, string>): void {
  if (res.headersSent || (res as { destroyed?: boolean }).destroyed === true) return;
  const row = PREPARED.get(code)!;
  let body = row.body;
  let length = row.length;
  if (message !== undefined) {
    body = Buffer.from(JSON.stringify({ error: message, code }));
    length = String(body.length);
  }
  if (headers !== undefined) for (const name in headers) res.setHeader(name, headers[name]);
  res.statusCode = row.status;
  res.setHeader('content-type', 'application/json');
  res.setHeader('content-length', length);
  res.end(body);
}

/** The status and message of a row (gRPC refusals carry them in grpc-status/grpc-message). */
export function errorMessage(code: ErrorCode): string {
  return MESSAGES.get(code)!;
}
const MESSAGES = new Map<string, string>(ERROR_TABLE.map((row) => [row.code, row.message]));

/** The mtls.cert_not_allowed message for a certificate. */
export function certNotAllowedMessage(fingerprint: string): string {
  return `Certificate with SHA256 ${fingerprint} not allowed`;
}
