// kind: revocation `crl_issuers`: intermediate CAs whose own CRLs are used (a CA that issues
// leaves below an intermediate publishes the intermediate's CRL, signed by the intermediate, as
// OpenSSL and Envoy use it with crl_check_all). A CRL may only be signed by a certificate whose
// path to a trusted CA is known, and the config has no other place that names intermediates
// (clients send theirs), so each is named here and verified now, as path validation would verify
// it: signed by a trusted CA (or by another entry that is), a CA that may issue client
// certificates (cert/cert-facts.ts issuerDefect), within the pathLenConstraint of every CA
// above it. A CRL of an entry revokes what that intermediate signed (runtime/revocation.ts).
import { X509Certificate } from 'node:crypto';
import type { BundleCrlIssuer, Fingerprint } from '../bundle/types.ts';
import { type CertFacts, certFacts, issuerDefect } from '../cert/cert-facts.ts';
import { type CertLoader, caPem, isInlinePem, subjectOf } from './certs.ts';
import type { DiagnosticLog, Site } from './diagnostics.ts';
import type { RevocationDoc } from './model.ts';
import { locate } from './source.ts';

/** A certificate a CRL may be signed by: a trusted CA, or a verified crl_issuers entry. */
export interface CrlSigner {
  fingerprint: Fingerprint;
  cert: X509Certificate;
  subject: string;
}

/** The deepest chain of crl_issuers entries followed (as the runtime's MAX_CHAIN_DEPTH). */
const MAX_DEPTH = 8;

interface Candidate extends CrlSigner {
  site: Site;
  /** The revocation document that names it. */
  source: string;
  label: string;
  pem: string;
}

function factsOf(cert: X509Certificate): CertFacts | null {
  try {
    return certFacts(cert.raw);
  } catch {
    return null;
  }
}

function signedBy(cert: X509Certificate, issuer: X509Certificate): boolean {
  return cert.checkIssued(issuer) && cert.verify(issuer.publicKey);
}

/**
 * The verified crl_issuers of the revocation documents (unique by id), reported at their entry
 * when one cannot be used (E_CRL_ISSUER). `trusted`: the config's trusted CAs.
 */
export function resolveCrlIssuers(
  docs: Iterable<RevocationDoc>,
  trusted: readonly CrlSigner[],
  certs: CertLoader,
  now: Date,
  log: DiagnosticLog,
): { signers: CrlSigner[]; bundle: Record<Fingerprint, BundleCrlIssuer>; byDocument: Map<string, Set<Fingerprint>> } {
  const candidates: Candidate[] = [];
  for (const { doc, spec } of docs) {
    (spec.crl_issuers ?? []).forEach((entry, i) => {
      const site: Site = { file: doc.file, offset: locate(doc.root, ['crl_issuers', i]) };
      const label = isInlinePem(entry) ? '(inline PEM)' : entry;
      const loaded = certs.load(entry, site, doc.file.absPath);
      if (loaded === null) return;
      if (loaded.length !== 1)
        return log.report('E_CRL_ISSUER', site, `${label} holds ${loaded.length} certificates: give one intermediate CA certificate per entry`);
      // A CA's DER is always kept by the loader; a leaf's may be dropped, and a leaf signs no CRL.
      if (!loaded[0].isCa || loaded[0].der === null)
        return log.report('E_CRL_ISSUER', site, `${label} (${subjectOf(loaded[0])}) is not a CA certificate (no basicConstraints CA:TRUE): it signs no CRL`);
      const cert = new X509Certificate(loaded[0].der);
      if (trusted.some((t) => t.fingerprint === loaded[0].fingerprint)) return; // a trusted CA: its CRLs are used already
      const defect = issuerDefect(factsOf(cert), Date.parse(cert.validFrom), Date.parse(cert.validTo), now.getTime());
      if (defect !== null && defect.kind !== 'expired')
        return log.report('E_CRL_ISSUER', site, `${label} (${subjectOf(loaded[0])}) is not a CA that may issue client certificates: ${defect.problem}`);
      if (defect === null)
        candidates.push({ fingerprint: loaded[0].fingerprint, cert, subject: subjectOf(loaded[0]), site, source: spec.id, label, pem: caPem(loaded[0]) });
    });
  }

  // Each verified entry with the CAs above it (nearest first) and the trusted CA at the top.
  const verified = new Map<Fingerprint, { above: X509Certificate[]; ca: Fingerprint }>();
  const pathLenAdmits = (above: X509Certificate[]) => above.every((c, k) => (factsOf(c)?.pathLen ?? Infinity) >= k + 1);
  for (let round = 0; round < MAX_DEPTH; round++) {
    let progressed = false;
    for (const c of candidates) {
      if (verified.has(c.fingerprint)) continue;
      for (const t of trusted) {
        if (signedBy(c.cert, t.cert) && pathLenAdmits([t.cert])) verified.set(c.fingerprint, { above: [t.cert], ca: t.fingerprint });
      }
      for (const [fp, v] of [...verified]) {
        const parent = candidates.find((p) => p.fingerprint === fp)!;
        if (verified.has(c.fingerprint) || !signedBy(c.cert, parent.cert)) continue;
        const above = [parent.cert, ...v.above];
        if (above.length <= MAX_DEPTH && pathLenAdmits(above)) verified.set(c.fingerprint, { above, ca: v.ca });
      }
      progressed ||= verified.has(c.fingerprint);
    }
    if (!progressed) break;
  }

  const signers: CrlSigner[] = [];
  const bundle: Record<Fingerprint, BundleCrlIssuer> = {};
  // The verified entries of each revocation document (a bare crl_url there may be theirs: compiler/crl-url-issuers.ts).
  const byDocument = new Map<string, Set<Fingerprint>>();
  for (const c of candidates) {
    const v = verified.get(c.fingerprint);
    if (v === undefined) {
      log.report(
        'E_CRL_ISSUER',
        c.site,
        `${c.label} (${c.subject}) is not signed by a CA the config trusts, or by another crl_issuers entry that is (within every pathLenConstraint): a CRL it signs could not be verified to belong to a trusted path`,
      );
      continue;
    }
    byDocument.set(c.source, (byDocument.get(c.source) ?? new Set()).add(c.fingerprint));
    if (Object.hasOwn(bundle, c.fingerprint)) continue;
    signers.push(c);
    bundle[c.fingerprint] = { ca: v.ca, pem: c.pem, subject: c.subject };
  }
  return { signers, bundle, byDocument };
}
