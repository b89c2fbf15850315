// The CAs a snapshot trusts, as the request path uses them: each certificate of content.cas
// parsed once per snapshot (and shared by every API and key rule naming it), and the
// certificates a CRL may be signed by.
import { BundleCheckError, caProblem, checkCaPem } from '../bundle/checks.ts';
import type { BundleCa, BundleContent } from '../bundle/types.ts';
import type { TrustedCa } from './identity.ts';

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
