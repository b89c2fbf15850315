// `who` with only the bundle: a grant whose certificate was not given (--certs DIR) is still a
// row, marked not checked, so an auditor holding only the deployed bundle gets the full list of
// who is granted the API. What the bundle alone settles is settled by the runtime's own code:
// the key's state and access rights by the key-state and access stages (on the route the
// request would take), a pin on the deny list as revoked, an expired pin (its notAfter is in
// the bundle) as expired; such a grant is a note (refused), not a row. What needs the
// certificate itself (validity beyond notAfter, extendedKeyUsage, path validation, subject) is
// what "not checked" leaves open, and the row says why.
import type { Bundle, BundleApi, BundleKey } from '../bundle/types.ts';
import type { Refusal } from '../runtime/errors.ts';
import type { Snapshot } from '../runtime/snapshot.ts';
import { accessStage } from '../runtime/stages/access.ts';
import { contextFor } from '../runtime/stages/decide.ts';
import { keyStateStage } from '../runtime/stages/key-state.ts';
import { routeStage } from '../runtime/stages/route.ts';
import { runStages } from '../runtime/stages/run.ts';
import { describeMatch } from './cert-rules.ts';

/** Why a pinned certificate is refused whatever it is (deny list, notAfter passed), or null. */
export function pinRefusedByBundle(bundle: Bundle, fingerprint: string, now: number): string | null {
  if (bundle.content.revocation.denied.includes(fingerprint)) return 'mtls.cert_revoked (on the deny list)';
  const notAfter = bundle.content.not_after[fingerprint];
  if (notAfter !== undefined && notAfter * 1000 < now) return `mtls.cert_expired (expired ${new Date(notAfter * 1000).toISOString()})`;
  return null;
}

/** notAfter of a certificate the config gave as a PEM (ISO), or null (a sha256: pin). */
export function expiryInBundle(bundle: Bundle, fingerprint: string): string | null {
  const notAfter = bundle.content.not_after[fingerprint];
  return notAfter === undefined ? null : new Date(notAfter * 1000).toISOString();
}

/**
 * The key-state and access stages for `key` on this request (the route stage first, as the
 * gateway runs it): the refusal, or null when they let it through. Synchronous: neither waits.
 */
export function keyStagesRefusal(
  snapshot: Snapshot,
  request: { method: string; host: string; path: string },
  key: BundleKey,
  now: number,
  wholeApi: boolean,
): Refusal | null {
  const ctx = contextFor(snapshot, request, null, now);
  const routed = routeStage.run(ctx);
  if (routed !== null || ctx.api === null) return routed as Refusal | null;
  const prepared = snapshot.key(key.id);
  if (prepared === undefined) return null;
  ctx.key = prepared;
  const verdict = runStages([keyStateStage, accessStage], ctx) as Refusal | null;
  // Without --path the question is the whole API: a right limited by allowed_urls still reaches it.
  if (verdict !== null && wholeApi && verdict.code === 'access.url_denied') return null;
  return verdict;
}

/**
 * How a key would get through, from what it holds and what the API asks: on a dynamic mTLS API
 * (use_certificate) its certificate (or one its certificate_match admits) alone; on a token API
 * its token, behind its own certificate or a pinned one where the API pins (static mTLS).
 */
export function credentialsOf(bundle: Bundle, key: BundleKey, api: BundleApi): string {
  const own =
    key.certificates.length > 0
      ? 'its certificate'
      : key.certificate_match !== null
        ? `a certificate its certificate_match admits (${describeMatch(bundle, key.certificate_match)})`
        : null;
  if (api.use_certificate && own !== null) return own;
  if (key.token_sha256 === null) return own ?? 'no credential the API takes';
  if (!api.use_mutual_tls_auth) return 'token';
  return `token + ${own ?? 'a pinned certificate'}`;
}
