// Stage 3, authenticate: which key this is, by token or (dynamic mTLS) by certificate, in the
// order CONTRACT section 5 gives. Keyless APIs have no key: the stage lets them through.
import { createHash, timingSafeEqual } from 'node:crypto';
import { Refusal, refusal } from '../errors.ts';
import type { PreparedApi } from '../prepared-api.ts';
import type { PreparedKey } from '../prepared-key.ts';
import { AMBIGUOUS_KEY, type Snapshot } from '../snapshot.ts';
import type { RequestContext, RequestHeaders } from './context.ts';
import { GO, type Stage, type Verdict } from './stage.ts';
import { certificateUsable } from './static-mtls.ts';

const BEARER = /^bearer\s+/i;

/** The token in the API's auth header, "Bearer " prefix or not; null when absent or empty. */
function tokenOf(api: PreparedApi, headers: RequestHeaders): string | null {
  const raw = headers[api.def.auth_header_name];
  let value = typeof raw === 'string' ? raw : Array.isArray(raw) ? raw[0] : undefined;
  if (value === undefined) return null;
  if (value.length > 7 && (value.charCodeAt(0) | 0x20) === 98 /* b */) value = value.replace(BEARER, '');
  value = value.trim();
  return value === '' ? null : value;
}

/**
 * The auth header holds a list: two copies joined with ", " (node:http's joinDuplicateHeaders;
 * runtime/http2.ts for HTTP/2) or sent as one. No token holds a comma. Asked only of a token no
 * key has: a request with a known token never pays for it, a key imported with a comma in its
 * token still works.
 */
function repeatedAuthField(ctx: RequestContext, api: PreparedApi): boolean {
  if (ctx.tokenSha256 !== null) return false;
  return tokenOf(api, ctx.headers)?.includes(',') ?? false;
}

/** The SHA-256 of the request's token (stated, or of the auth header's), or null without one. */
function tokenDigest(ctx: RequestContext, api: PreparedApi): Buffer | null {
  if (ctx.tokenSha256 !== null) return Buffer.from(ctx.tokenSha256, 'hex');
  const token = tokenOf(api, ctx.headers);
  return token === null ? null : createHash('sha256').update(token, 'utf8').digest();
}

/** Looks the token up by its SHA-256, then compares the hashes in constant time. */
function keyOfToken(snapshot: Snapshot, digest: Buffer): PreparedKey | undefined {
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
function keyOf(ctx: RequestContext, api: PreparedApi): PreparedKey | Refusal {
  const { snapshot, identity, now } = ctx;
  const dynamic = api.def.use_certificate;
  const certBound = dynamic || api.def.use_mutual_tls_auth;
  const token = tokenDigest(ctx, api);
  if (dynamic && identity !== null) {
    const unusable = certificateUsable(identity, now);
    if (unusable !== GO) return unusable;
  }
  const found = certBound && identity !== null ? snapshot.keyOfIdentity(identity, now) : undefined;
  if (found === AMBIGUOUS_KEY) return refusal('auth.cert_ambiguous');
  const certKey = found;
  if (token === null) {
    if (!dynamic || identity === null) return refusal('auth.auth_field_missing');
    return certKey ?? refusal('auth.cert_not_found');
  }
  const key = keyOfToken(snapshot, token);
  if (key === undefined) return refusal(repeatedAuthField(ctx, api) ? 'auth.auth_field_repeated' : 'auth.key_not_found');
  if (!certBound) return key;
  if (certKey !== undefined && certKey !== key) return refusal('auth.cert_mismatch');
  // A certificate-bound key: the certificate presented must be one of its own (any of them,
  // while a renewal overlaps). certKey is the index's answer for the presented certificate.
  if ((key.def.certificates.length > 0 || key.def.certificate_match !== null) && certKey !== key) return refusal('auth.cert_required');
  return key;
}

function authenticate(ctx: RequestContext): Verdict {
  const api = ctx.api!;
  if (api.def.use_keyless) return GO;
  const key = keyOf(ctx, api);
  if (key instanceof Refusal) return key;
  ctx.key = key;
  return GO;
}

export const authenticateStage: Stage = { name: 'authenticate', run: authenticate };
