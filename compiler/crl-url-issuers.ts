// Which CA signs the CRL at each crl_urls entry (docs/security.md section 34). A crl_url is
// plain HTTP and every CA of the config signs CRLs that verify, so a URL not bound to one CA
// could be answered with another CA's (empty) CRL and un-revoke what the right one revokes.
// An entry is `{url, issuer}` (issuer: a PEM file, inline PEM or sha256: pin, as
// certificate_match.issuer), or a bare URL, bound to:
//   1. the issuer of a certificate of the config (a trusted CA or a crl_issuers entry) whose
//      cRLDistributionPoints name the URL: RFC 5280 4.2.1.13, a certificate's distribution
//      point is where its issuer publishes the CRL that covers it (the one signer named so);
//   2. else the one crl_issuers entry of the entry's own revocation document, when it names one
//      (a document listing an intermediate and a URL is about that intermediate's CRL);
//   3. else the one CRL signer the config has (one trusted CA and no crl_issuers);
//   4. else nothing: E_CRL_URL_ISSUER at the entry, asking for `issuer`. (A config that trusts
//      no CA at all compiles the URL unbound, as before: no CRL from it can ever be taken.)
// The runtime takes a CRL from the URL only when the bound CA signed it (runtime/crl-fetcher.ts).
import type { Fingerprint } from '../bundle/types.ts';
import { parsePin } from '../cert/fingerprint.ts';
import { crlDistributionUris } from '../cert/cert-facts.ts';
import { type CertLoader, isInlinePem } from './certs.ts';
import type { CrlSigner } from './crl-issuers.ts';
import type { DiagnosticLog, Site } from './diagnostics.ts';
import { excerpt } from './excerpt.ts';
import type { CrlUrlSpec } from './model.ts';

/** A crl_urls entry as written, with where it stands. */
export interface CrlUrlEntry {
  spec: string | CrlUrlSpec;
  site: Site;
  /** Where `issuer` stands (the entry itself for a bare URL). */
  issuerSite: Site;
  yamlAbsPath: string;
  /** The verified crl_issuers of the entry's revocation document. */
  documentIssuers: ReadonlySet<Fingerprint>;
}

const signedBy = (cert: CrlSigner['cert'], issuer: CrlSigner['cert']) => cert.checkIssued(issuer) && cert.verify(issuer.publicKey);

/**
 * URL -> the fingerprint of the one CA whose CRLs it may serve (null: the config has no CRL
 * signer at all); entries that cannot be bound are reported and left out.
 */
export function bindCrlUrls(
  entries: readonly CrlUrlEntry[],
  signers: readonly CrlSigner[],
  certs: CertLoader,
  log: DiagnosticLog,
): Map<string, Fingerprint | null> {
  const bound = new Map<string, Fingerprint | null>();
  const subjectOf = (fp: Fingerprint) => signers.find((s) => s.fingerprint === fp)?.subject ?? `sha256:${fp}`;
  const distributionPoints = signers.map((s) => ({ signer: s, uris: crlDistributionUris(s.cert.raw) }));
  for (const entry of entries) {
    const url = typeof entry.spec === 'string' ? entry.spec : entry.spec.url;
    if (typeof entry.spec === 'string' && signers.length === 0) {
      bound.set(url, null);
      continue;
    }
    const issuer = typeof entry.spec === 'string' ? bareUrlSigner(url, entry, signers, distributionPoints, log) : namedSigner(entry, signers, certs, log);
    if (issuer === null) continue;
    const before = bound.get(url);
    if (before != null && before !== issuer) {
      log.report(
        'E_CRL_URL_ISSUER',
        entry.issuerSite,
        `crl_urls ${url} is bound to "${subjectOf(issuer)}" here and to "${subjectOf(before)}" by another entry: one URL serves one CA's CRL`,
      );
      continue;
    }
    bound.set(url, issuer);
  }
  return bound;
}

function bareUrlSigner(
  url: string,
  { site, documentIssuers }: CrlUrlEntry,
  signers: readonly CrlSigner[],
  distributionPoints: readonly { signer: CrlSigner; uris: string[] }[],
  log: DiagnosticLog,
): Fingerprint | null {
  const named = new Set<Fingerprint>();
  for (const { signer, uris } of distributionPoints) {
    if (!uris.includes(url)) continue;
    for (const s of signers) if (signedBy(signer.cert, s.cert)) named.add(s.fingerprint);
  }
  if (named.size === 1) return [...named][0];
  if (named.size === 0 && documentIssuers.size === 1) return [...documentIssuers][0];
  if (named.size === 0 && signers.length === 1) return signers[0].fingerprint;
  const hint = `write it as {url: ${url}, issuer: <the CA's PEM file, inline PEM or sha256: pin>}`;
  if (named.size > 1)
    log.report('E_CRL_URL_ISSUER', site, `crl_urls ${url}: the CRL distribution points of certificates issued by ${named.size} different CAs name it: ${hint}`);
  else
    log.report(
      'E_CRL_URL_ISSUER',
      site,
      `crl_urls ${url}: the config has ${signers.length} CAs that may sign its CRL (${signers.map((s) => `"${s.subject}"`).join(', ')}) and no certificate's CRL distribution points name it, so the one allowed to is not known: ${hint}`,
    );
  return null;
}

function namedSigner(entry: CrlUrlEntry, signers: readonly CrlSigner[], certs: CertLoader, log: DiagnosticLog): Fingerprint | null {
  const { url, issuer } = entry.spec as CrlUrlSpec;
  const pin = parsePin(issuer);
  let fingerprint: Fingerprint;
  const label = isInlinePem(issuer) ? 'the inline issuer' : excerpt(issuer);
  if (pin?.ok) fingerprint = pin.fingerprint;
  else if (pin !== null) {
    log.report('E_FIELD_VALUE', entry.issuerSite, `issuer ${excerpt(issuer)} ${pin.problem}`);
    return null;
  } else {
    const loaded = certs.load(issuer, entry.issuerSite, entry.yamlAbsPath, { checkExpiry: false });
    if (loaded === null) return null;
    if (loaded.length !== 1) {
      log.report('E_CRL_URL_ISSUER', entry.issuerSite, `${label} holds ${loaded.length} certificates; the issuer of ${url} is exactly one CA certificate`);
      return null;
    }
    fingerprint = loaded[0].fingerprint;
  }
  if (signers.some((s) => s.fingerprint === fingerprint)) return fingerprint;
  log.report(
    'E_CRL_URL_ISSUER',
    entry.issuerSite,
    `issuer ${pin?.ok ? `sha256:${fingerprint}` : label} of ${url} is neither a CA the config trusts nor a crl_issuers entry: name it in an API's client_certificates, a certificate_match issuer, or under crl_issuers`,
  );
  return null;
}
