// Stage 3, static mTLS (use_mutual_tls_auth): a certificate, on the API's list (a pinned leaf,
// one a listed CA issued, or one a listed {issuer, san_...} entry matches, by RFC 5280 path
// validation), valid now (notBefore and notAfter) and usable for client authentication.
import { certNotAllowedMessage, Refusal, refusal } from '../errors.ts';
import { matches } from '../match-index.ts';
import type { RequestContext } from './context.ts';
import { GO, type Stage, type Verdict } from './stage.ts';

function staticMtls(ctx: RequestContext): Verdict {
  const api = ctx.api!;
  if (!api.def.use_mutual_tls_auth) return GO;
  const { identity, now } = ctx;
  if (identity === null) return refusal('mtls.cert_required');
  if (!api.pinned.has(identity.fingerprint) && !api.cas.some((ca) => identity.issuedBy(ca, now)) && !api.matches.some((rule) => matches(rule, identity, now))) {
    return new Refusal('mtls.cert_not_allowed', certNotAllowedMessage(identity.fingerprint));
  }
  return certificateUsable(identity, now);
}

/** The leaf itself (RFC 5280 6.1.3 and 4.2.1.12): within its validity, and allowed for client authentication. */
export function certificateUsable(identity: RequestContext['identity'] & object, now: number): Verdict {
  if (identity.expired(now)) return refusal('mtls.cert_expired');
  if (identity.notYetValid(now)) return refusal('mtls.cert_not_yet_valid');
  if (!identity.clientAuth()) return refusal('mtls.cert_not_client');
  if (identity.keyTooLarge()) return refusal('mtls.cert_key_too_large');
  return GO;
}

export const staticMtlsStage: Stage = { name: 'static-mtls', run: staticMtls };
