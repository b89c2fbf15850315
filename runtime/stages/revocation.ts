// Stage 2, revocation: a certificate a revocation document lists (deny list, a compiled CRL, or
// a CRL fetched from a crl_url since) is refused on every API, static or dynamic mTLS, keyless
// or not. The verdict is cached on the connection and recomputed once after a CRL or bundle
// change, so open keep-alive connections and resumed sessions get the new answer on their next
// request; with nothing to check it costs one property read.
import { refusal } from '../errors.ts';
import type { ClientIdentity } from '../identity.ts';
import type { RequestContext } from './context.ts';
import { GO, type Stage, type Verdict } from './stage.ts';

function revocation(ctx: RequestContext): Verdict {
  const view = ctx.snapshot.revocation;
  if (view.empty || ctx.identity === null) return GO;
  const verdict = view.check(ctx.identity as ClientIdentity);
  if (verdict === 'revoked') return refusal('mtls.cert_revoked');
  if (verdict === 'unknown') return refusal('mtls.revocation_unknown');
  return GO;
}

export const revocationStage: Stage = { name: 'revocation', run: revocation };
