// Static mTLS (is the certificate allowed on this API) and authentication (which key is this),
// in the order CONTRACT section 5 gives. Each check returns a Refusal (the error row to send)
// or what it established. Refusals without a variable part are allocated once.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { certNotAllowedMessage, type ErrorCode } from './errors.ts';
import type { ClientIdentity } from './identity.ts';
import type { PreparedApi, PreparedKey, Snapshot } from './snapshot.ts';

export class Refusal {
  constructor(
    readonly code: ErrorCode,
    /** Replaces the table's message (only mtls.cert_not_allowed names a value). */
    readonly message?: string,
  ) {}
}

const refusals = new Map<ErrorCode, Refusal>();
/** The shared Refusal for a row without a variable part. */
export function refusal(code: ErrorCode): Refusal {
  let r = refusals.get(code);
  if (r === undefined) refusals.set(code, (r = new Refusal(code)));
  return r;
}

/** Static mTLS: a certificate, on the API's list (pinned leaf or issued by a listed CA), not expired. */
export function checkStaticMtls(api: PreparedApi, identity: ClientIdentity | null, now: number): Refusal | null {
  if (identity === null) return refusal('mtls.cert_required');
  if (!api.pinned.has(identity.fingerprint) && !api.cas.some((ca) => identity.issuedBy(ca, now))) {
    return new Refusal('mtls.cert_not_allowed', certNotAllowedMessage(identity.fingerprint));
  }
  if (identity.expired(now)) return refusal('mtls.cert_expired');
  return null;
}

const BEARER = /^bearer\s+/i;

/** The token in the API's auth header, "Bearer " prefix or not; null when absent or empty. */
function tokenOf(api: PreparedApi, headers: IncomingHttpHeaders): string | null {
  const raw = headers[api.def.auth_header_name];
  let value = typeof raw === 'string' ? raw : Array.isArray(raw) ? raw[0] : undefined;
  if (value === undefined) return null;
  if (value.length > 7 && (value.charCodeAt(0) | 0x20) === 98 /* b */) value = value.replace(BEARER, '');
  value = value.trim();
  return value === '' ? null : value;
}

/** Looks the token up by its SHA-256, then compares the hashes in constant time. */
function keyOfToken(snapshot: Snapshot, token: string): PreparedKey | undefined {
  const digest = createHash('sha256').update(token, 'utf8').digest();
  const key = snapshot.keyByToken(digest.toString('hex'));
  if (key === undefined || key.def.token_sha256 === null) return undefined;
  return timingSafeEqual(Buffer.from(key.def.token_sha256, 'hex'), digest) ? key : undefined;
}

/**
 * Token and dynamic-mTLS authentication for a non-keyless API: the key, or the refusal.
 * On an API with auth.use_certificate the certificate alone identifies its key. Wherever the API
 * asks for a client certificate (dynamic or static mTLS), a token with a certificate must name
 * the same key, and a certificate-bound key's token needs that certificate: otherwise a stolen
 * token would work behind any pinned certificate. A token-only key's token works alone. On a
 * plain token API no certificate is asked for, so a bound key's token is accepted there.
 */
export function authenticate(
  snapshot: Snapshot,
  api: PreparedApi,
  identity: ClientIdentity | null,
  headers: IncomingHttpHeaders,
  now: number,
): PreparedKey | Refusal {
  const dynamic = api.def.use_certificate;
  const certBound = dynamic || api.def.use_mutual_tls_auth;
  const token = tokenOf(api, headers);
  if (dynamic && identity?.expired(now)) return refusal('mtls.cert_expired');
  const certKey = certBound && identity !== null ? snapshot.keyByCert(identity.fingerprint) : undefined;
  if (token === null) {
    if (!dynamic || identity === null) return refusal('auth.auth_field_missing');
    return certKey ?? refusal('auth.cert_not_found');
  }
  const key = keyOfToken(snapshot, token);
  if (key === undefined) return refusal('auth.key_not_found');
  if (!certBound) return key;
  if (certKey !== undefined && certKey !== key) return refusal('auth.cert_mismatch');
  // A certificate-bound key: the certificate presented must be one of its own (any of them,
  // while a renewal overlaps). certKey is the index's answer for the presented certificate.
  if (key.def.certificates.length > 0 && certKey !== key) return refusal('auth.cert_required');
  return key;
}

/** Key state: expiry, then the inactive flag. */
export function checkKeyState(key: PreparedKey, now: number): Refusal | null {
  if (now > key.expiresAt) return refusal('key.expired');
  if (key.def.is_inactive) return refusal('key.inactive');
  return null;
}
