// Stage 2, static mTLS (use_mutual_tls_auth): a certificate, on the API's list (a pinned leaf
// or one issued by a listed CA), not expired.
import { certNotAllowedMessage, Refusal, refusal } from '../errors.ts';
import type { RequestContext } from './context.ts';
import { GO, type Stage, type Verdict } from './stage.ts';

function staticMtls(ctx: RequestContext): Verdict {
  const api = ctx.api!;
  if (!api.def.use_mutual_tls_auth) return GO;
  const { identity, now } = ctx;
  if (identity === null) return refusal('mtls.cert_required');
  if (!api.pinned.has(identity.fingerprint) && !api.cas.some((ca) => identity.issuedBy(ca, now))) {
    return new Refusal('mtls.cert_not_allowed', certNotAllowedMessage(identity.fingerprint));
  }
  if (identity.expired(now)) return refusal('mtls.cert_expired');
  return GO;
}

export const staticMtlsStage: Stage = { name: 'static-mtls', run: staticMtls };
