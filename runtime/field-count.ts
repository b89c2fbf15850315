// How many header fields a request may carry, the same over HTTP/1.1 and HTTP/2
// (docs/security.md section 57). node:http2 reset a stream of more than 128 fields (pseudo-header
// fields included), while node:http kept 2,000 and dropped the rest unseen: a field beyond them
// never reached the stages, nor the upstream, and nothing said so. Both transports now let one
// field more than the limit through their parser and the exchange refuses the request with 431
// request.too_many_fields (Envoy's max_headers_count answers 431 too; Apache's
// LimitRequestFields, 400). The check is one comparison of rawHeaders' length per request.

/** Header fields a request may carry, pseudo-header fields (HTTP/2) not counted: node:http2's own 128. */
export const MAX_REQUEST_FIELDS = 128;

/**
 * node:http's server.maxHeadersCount: it keeps this many fields and drops the rest, so one
 * more than the limit is enough to see that the limit was passed.
 */
export const HTTP1_PARSER_FIELDS = MAX_REQUEST_FIELDS + 1;

/**
 * node:http2's maxHeaderListPairs (pseudo-header fields included): high enough that the 16 KiB
 * header list (runtime/http2.ts; 32 bytes of overhead per field in HPACK's measure, so at most
 * 496 fields) is always reached first, so a request over the field limit is answered 431 by
 * the exchange instead of having its stream reset by node:http2 (ENHANCE_YOUR_CALM).
 */
export const HTTP2_PARSER_FIELDS = 520;

/** HTTP/1.1: more fields than the limit (rawHeaders holds name, value, name, value...). */
export function tooManyHttp1Fields(rawHeaders: readonly string[]): boolean {
  return rawHeaders.length > 2 * MAX_REQUEST_FIELDS;
}

/**
 * HTTP/2: more fields than the limit, pseudo-header fields not counted. They come first in a
 * header block (RFC 9113 8.3, which nghttp2 enforces), at most five: counted only for a
 * request already over the limit with them.
 */
export function tooManyHttp2Fields(rawHeaders: readonly string[]): boolean {
  if (rawHeaders.length <= 2 * MAX_REQUEST_FIELDS) return false;
  let pseudo = 0;
  while (pseudo < 5 && 2 * pseudo < rawHeaders.length && rawHeaders[2 * pseudo].charCodeAt(0) === 58) pseudo++;
  return rawHeaders.length > 2 * (MAX_REQUEST_FIELDS + pseudo);
}
