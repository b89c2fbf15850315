// The CAs a snapshot trusts, as the request path uses them: each certificate of content.cas
// parsed once per snapshot (and shared by every API and key rule naming it), and the
// certificates a CRL may be signed by.
import { BundleCheckError, caProblem, checkCaPem } from '../bundle/checks.ts';
import type { BundleCa, BundleContent } from '../bundle/types.ts';
import type { TrustedCa } from './identity.ts';
import { redactUrl } from './redact.ts';

/** A CA of content.cas as the request path uses it (parsed once per snapshot). */
export function trustedCa(bundleCas: Record<string, BundleCa>, fingerprint: string, cache: Map<string, TrustedCa>, usedBy: string): TrustedCa {
  let ca = cache.get(fingerprint);
  if (ca === undefined) {
    const entry = bundleCas[fingerprint];
    const cert = checkCaPem(entry.pem);
    if (!cert.ok) throw new BundleCheckError(caProblem(fingerprint, entry.subject, usedBy, cert.problem));
    ca = { fingerprint, cert: cert.value };
    cache.set(fingerprint, ca);
  }
  return ca;
}

/**
 * The certificates a CRL may be signed by: the trusted CAs, and the intermediates the bundle
 * names as CRL issuers (the compiler verified each chains to a trusted CA). Parsed once per snapshot.
 */
export function withCrlIssuers(cas: ReadonlyMap<string, TrustedCa>, revocation: BundleContent['revocation']): ReadonlyMap<string, TrustedCa> {
  const issuers = revocation.crl_issuers ?? {};
  if (Object.keys(issuers).length === 0) return cas;
  const signers = new Map(cas);
  for (const fp in issuers) {
    const cert = checkCaPem(issuers[fp].pem);
    if (!cert.ok) throw new BundleCheckError(caProblem(fp, issuers[fp].subject, 'the revocation list (crl_issuers)', cert.problem));
    if (!signers.has(fp)) signers.set(fp, { fingerprint: fp, cert: cert.value });
  }
  return signers;
}

/**
 * crl_url -> the CA allowed to sign its CRL (the compiler binds each: compiler/crl-url-issuers.ts).
 * A bundle compiled before the binding existed has none: with one CRL signer it is that one;
 * with several, the bundle is refused, since any of them could un-revoke the others' leaves.
 */
export function crlUrlIssuers(revocation: BundleContent['revocation'], signers: ReadonlyMap<string, TrustedCa>): Map<string, string> {
  const bound = new Map<string, string>();
  for (const url of revocation.crl_urls) {
    const issuer = revocation.crl_url_issuers?.[url] ?? (signers.size === 1 ? [...signers.keys()][0] : undefined);
    // No CA at all: nothing could ever verify; the URL stays unbound (and stale), as before.
    if (issuer === undefined && signers.size === 0) continue;
    if (issuer === undefined || !signers.has(issuer))
      throw new BundleCheckError(
        `revocation: crl_url ${redactUrl(url)} is bound to no CA of the bundle (a bundle compiled before crl_urls were bound to their CA, with ${signers.size} CAs that sign CRLs: any of them could un-revoke the others' certificates): compile the config again with this mtlsgate`,
      );
    bound.set(url, issuer);
  }
  return bound;
}
