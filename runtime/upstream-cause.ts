// Why an upstream exchange failed, for the request's record and log line (`upstream_error`): a
// short, stable code an operator can act on (ECONNREFUSED, CERT_HAS_EXPIRED, UND_ERR_SOCKET,
// NGHTTP2_INTERNAL_ERROR), as NGINX's "connect() failed (111: Connection refused)" or Envoy's
// "reset reason: connection failure" say it. Never an error's message: it can carry bytes the
// upstream chose (a header value, a TLS alert's text). Only the error's `code` (or its cause's)
// is taken, and only when it is a code: upper-case ASCII, digits and `_`, at most 48
// characters. Anything else is `other`. The client's answer never says any of this.
// Called on failures only: a request the upstream answers costs nothing here.

/** What does not read as a code. */
export const OTHER_CAUSE = 'other';

const MAX_CODE = 48;

/** `code` when it is a code's shape (A-Z first, then A-Z 0-9 _), else null. */
function asCode(code: unknown): string | null {
  if (typeof code !== 'string' || code.length === 0 || code.length > MAX_CODE) return null;
  for (let i = 0; i < code.length; i++) {
    const c = code.charCodeAt(i);
    const upper = c >= 65 && c <= 90;
    if (!(upper || (i > 0 && ((c >= 48 && c <= 57) || c === 95)))) return null;
  }
  return code;
}

/**
 * The cause of an upstream error: its `code` (undici's UND_ERR_*, node's ECONNREFUSED or a TLS
 * verification code), else its `cause`'s (undici wraps some), else `other`.
 */
export function upstreamCause(err: unknown): string {
  if (typeof err !== 'object' || err === null) return OTHER_CAUSE;
  const e = err as { code?: unknown; cause?: unknown };
  const own = asCode(e.code);
  if (own !== null) return own;
  const cause = e.cause;
  if (typeof cause === 'object' && cause !== null) return asCode((cause as { code?: unknown }).code) ?? OTHER_CAUSE;
  return OTHER_CAUSE;
}

/** RFC 9113 section 7's error codes, by number, as nghttp2 names them. */
const HTTP2_ERRORS = [
  'NO_ERROR',
  'PROTOCOL_ERROR',
  'INTERNAL_ERROR',
  'FLOW_CONTROL_ERROR',
  'SETTINGS_TIMEOUT',
  'STREAM_CLOSED',
  'FRAME_SIZE_ERROR',
  'REFUSED_STREAM',
  'CANCEL',
  'COMPRESSION_ERROR',
  'CONNECT_ERROR',
  'ENHANCE_YOUR_CALM',
  'INADEQUATE_SECURITY',
  'HTTP_1_1_REQUIRED',
].map((name) => `NGHTTP2_${name}`);

/** An HTTP/2 stream reset's code by name (NGHTTP2_INTERNAL_ERROR), or `rst N` for a code RFC 9113 does not name. */
export function resetCause(rstCode: number): string {
  return HTTP2_ERRORS[rstCode] ?? `rst ${rstCode >>> 0}`;
}
