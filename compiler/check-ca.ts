// A CA the config trusts (an API's client_certificates CA, a certificate_match issuer) judged
// as path validation will judge it at runtime (cert/cert-facts.ts `issuerDefect`, the one
// definition): a CA that can issue no client certificate (keyUsage without keyCertSign, an
// extendedKeyUsage without clientAuth, not yet valid, a critical extension nobody processes,
// name constraints nobody understands) would refuse every leaf below it, so that is an error
// at the entry naming it. Only suspicious (a warning): name constraints of a form mtlsgate does
// not evaluate (leaves carrying such names are refused), and a certificate in client_certificates
// with keyCertSign but no basicConstraints CA:TRUE (pinned as itself, not trusted as a CA).
import { X509Certificate } from 'node:crypto';
import { type CertFacts, certFacts, issuerDefect } from '../cert/cert-facts.ts';
import { type CertInfo, subjectOf } from './certs.ts';
import type { DiagnosticLog, Site } from './diagnostics.ts';

/**
 * Reports what makes `cert`, about to be trusted as a CA, refuse all or some leaves. `label`
 * names it ("certs/ca.pem"). False when it reported an error (E_CA_UNUSABLE).
 */
export function checkTrustedCa(cert: CertInfo, site: Site, label: string, now: Date, log: DiagnosticLog): boolean {
  if (cert.der === null) return true; // a CA's DER is always kept (certs.ts); nothing to judge without it
  let x: X509Certificate;
  try {
    x = new X509Certificate(cert.der);
  } catch {
    return true; // E_CERT_PARSE where it is trusted (check-apis.ts trustAnchor)
  }
  let facts: CertFacts | null = null;
  try {
    facts = certFacts(cert.der);
  } catch {
    // null: issuerDefect says "unreadable", as path validation refuses it
  }
  const defect = issuerDefect(facts, Date.parse(x.validFrom), Date.parse(x.validTo), now.getTime());
  // Expired is E_CERT_EXPIRED (certs.ts). Callers judge only CAs (basicConstraints CA:TRUE): a certificate without is a pin or E_MATCH_NEVER.
  if (defect !== null && defect.kind !== 'expired') {
    log.report(
      'E_CA_UNUSABLE',
      site,
      `CA certificate ${label} (${subjectOf(cert)}) can issue no client certificate: ${defect.problem}; every certificate below it would be refused`,
    );
    return false;
  }
  const nc = facts?.nameConstraints;
  const forms = nc ? [...nc.permitted, ...nc.excluded].filter((s) => typeof s.form === 'number').map((s) => `0x${(s.form as number).toString(16)}`) : [];
  if (forms.length > 0) {
    log.report(
      'W_CA_NAME_FORMS',
      site,
      `CA certificate ${label} (${subjectOf(cert)}) has name constraints of a form mtlsgate does not evaluate (GeneralName tag ${[...new Set(forms)].join(', ')}): a certificate below it carrying a name of that form is refused`,
    );
  }
  return true;
}

/** A certificate in client_certificates that signs certificates but is no CA: it is pinned, and what it issued is refused. */
export function checkPinnedSigner(cert: CertInfo, site: Site, label: string, log: DiagnosticLog): void {
  if (cert.isCa || !cert.keyCertSign) return;
  log.report(
    'W_CERT_NOT_CA',
    site,
    `${label} (${subjectOf(cert)}) has keyUsage keyCertSign but no basicConstraints CA:TRUE: it is pinned as a client certificate, not trusted as a CA, so every certificate it issued is refused (RFC 5280 6.1.4; OpenSSL without -x509_strict would take it as a CA); reissue it with basicConstraints CA:TRUE to trust it as a CA`,
  );
}
