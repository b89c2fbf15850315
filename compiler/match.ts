// certificate_match (on a key) and the object entries of an API's client_certificates: a CA
// plus subject fields. Resolved here to bundle form (the issuer by fingerprint, its PEM among
// the trusted CAs), with the problems that make a matcher never match reported at the field:
// an issuer that is not a CA, a malformed SPIFFE ID or DNS name, a `*` where it cannot match.
import { type MatchField, uriWildcardParts } from '../bundle/match-fields.ts';
import type { BundleCa, CertMatch, Fingerprint } from '../bundle/types.ts';
import { parsePin } from '../cert/fingerprint.ts';
import { caPem, type CertLoader, isInlinePem, subjectOf } from './certs.ts';
import { checkTrustedCa } from './check-ca.ts';
import { excerpt } from './excerpt.ts';
import type { DiagnosticLog, Site } from './diagnostics.ts';
import type { CertMatchSpec } from './model.ts';

/** The trusted CAs of the whole config (API entries and matcher issuers), by fingerprint. */
export type CaRegistry = Map<Fingerprint, BundleCa>;

/** Adds a CA to the registry (its PEM for the runtime), noting the API that trusts it, if any. */
function registerCa(cas: CaRegistry, cert: Parameters<typeof caPem>[0], apiId: string | null): void {
  const ca = cas.get(cert.fingerprint) ?? { apis: [], pem: caPem(cert), subject: subjectOf(cert) };
  if (apiId !== null && !ca.apis.includes(apiId)) ca.apis.push(apiId);
  cas.set(cert.fingerprint, ca);
}

// RFC 3986 unreserved + sub-delims + ":" "@" within a path segment; SPIFFE forbids percent-encoding
// and "." / ".." segments, and a trust domain is lower-case letters, digits, ".", "-", "_".
const SPIFFE_TRUST_DOMAIN = /^[a-z0-9._-]+$/;
const SPIFFE_SEGMENT = /^[A-Za-z0-9._*-]+$/;
const DNS_LABEL = /^(\*|[a-z0-9*]([a-z0-9*-]*[a-z0-9*])?)$/;

/** Why a san_uri value can never be a valid SPIFFE ID, or null (non-SPIFFE URIs are taken as given). */
function spiffeProblem(uri: string): string | null {
  if (!uri.toLowerCase().startsWith('spiffe://')) return null;
  if (!uri.startsWith('spiffe://')) return 'the scheme must be lower-case "spiffe://"';
  const rest = uri.slice('spiffe://'.length);
  const slash = rest.indexOf('/');
  const domain = slash === -1 ? rest : rest.slice(0, slash);
  if (domain === '') return 'the trust domain is empty';
  if (!SPIFFE_TRUST_DOMAIN.test(domain)) return `the trust domain "${domain}" may hold only lower-case letters, digits, ".", "-" and "_"`;
  if (slash === -1) return null;
  const path = rest.slice(slash);
  if (path === '/' || path.endsWith('/')) return 'a SPIFFE ID path must not end with "/"';
  for (const seg of path.slice(1).split('/')) {
    if (seg === '') return 'a SPIFFE ID path has no empty segments ("//")';
    if (seg === '.' || seg === '..') return `a SPIFFE ID path has no "${seg}" segments`;
    if (!SPIFFE_SEGMENT.test(seg))
      return `the path segment "${seg}" holds a character SPIFFE does not allow (letters, digits, ".", "-", "_" only; no percent-encoding, query or fragment)`;
  }
  return null;
}

/**
 * Why a `*` in a san_uri that is not a SPIFFE ID can never stand where it is, or null: it stands
 * for one host label or one path segment (bundle/match-fields.ts), so it needs an absolute URI
 * around it and cannot be in the query or fragment; and a `*` pattern never matches a path
 * with a "." or ".." segment.
 */
function uriWildcardProblem(uri: string): string | null {
  if (!uri.includes('*')) return null;
  const parts = uriWildcardParts(uri);
  if (parts.includes('scheme')) return 'a `*` needs an absolute URI before it ("scheme:" or "scheme://host/")';
  if (parts.includes('query')) return 'a `*` stands for one host label or one path segment, not in a query or fragment';
  if (/\/\.\.?(?:[/?#]|$)/.test(uri.replace(/^[^?#]*?:\/\/[^/?#]*/, '').split(/[?#]/)[0]))
    return 'its path has a "." or ".." segment, which a `*` pattern never matches';
  return null;
}

function dnsProblem(name: string): string | null {
  if (name !== name.toLowerCase()) return null; // compared case-insensitively; normalised below
  const labels = name.split('.');
  for (const label of labels) {
    if (!DNS_LABEL.test(label)) return `"${label}" is not a DNS label (letters, digits and "-", not at either end)`;
  }
  if (labels[labels.length - 1].includes('*')) return 'a `*` in the last label would match a top-level domain';
  return null;
}

function emailProblem(email: string): string | null {
  const at = email.indexOf('@');
  if (at <= 0 || at !== email.lastIndexOf('@') || at === email.length - 1) return 'an email address has one "@" with text on both sides';
  return null;
}

/**
 * Resolves one matcher: its issuer loaded and registered as a trusted CA (for `apiId`, or for
 * a key when null), every field checked. Returns null when it can never match (reported at
 * `siteOf(field)`).
 */
export function resolveMatch(
  spec: CertMatchSpec,
  siteOf: (field: string) => Site,
  yamlAbsPath: string,
  certs: CertLoader,
  cas: CaRegistry,
  apiId: string | null,
  log: DiagnosticLog,
): CertMatch | null {
  let ok = true;
  let issuer: Fingerprint | null = null;
  const issuerSite = siteOf('issuer');
  const pin = parsePin(spec.issuer);
  if (pin?.ok) {
    issuer = pin.fingerprint;
    // A pin cannot carry the CA itself: it must name one whose PEM the config gives elsewhere.
    if (!cas.has(issuer)) {
      log.report(
        'E_MATCH_NEVER',
        issuerSite,
        `issuer sha256:${issuer} is not a CA certificate named elsewhere in the config (an API's client_certificates or another issuer): give the CA's PEM file or inline PEM`,
      );
      ok = false;
    } else if (apiId !== null && !cas.get(issuer)!.apis.includes(apiId)) cas.get(issuer)!.apis.push(apiId);
  } else if (pin !== null) {
    log.report('E_FIELD_VALUE', issuerSite, `issuer ${excerpt(spec.issuer)} ${pin.problem}`);
    ok = false;
  } else {
    const loaded = certs.load(spec.issuer, issuerSite, yamlAbsPath);
    const label = isInlinePem(spec.issuer) ? 'the inline issuer' : spec.issuer;
    if (loaded === null) ok = false;
    else if (loaded.length !== 1) {
      log.report('E_MATCH_NEVER', issuerSite, `${label} holds ${loaded.length} certificates; an issuer is exactly one CA certificate`);
      ok = false;
    } else if (!loaded[0].isCa) {
      log.report(
        'E_MATCH_NEVER',
        issuerSite,
        `${label} (${subjectOf(loaded[0])}) is not a CA certificate (basicConstraints cA is not set): no certificate can chain to it, so this matcher never matches`,
      );
      ok = false;
    } else {
      issuer = loaded[0].fingerprint;
      if (!cas.has(issuer)) checkTrustedCa(loaded[0], issuerSite, label, certs.now, log);
      registerCa(cas, loaded[0], apiId);
    }
  }

  const value = (field: MatchField): string | null => {
    const v = spec[field];
    if (v === undefined) return null;
    const problem =
      field === 'san_uri'
        ? (spiffeProblem(v) ?? (v.startsWith('spiffe://') ? null : uriWildcardProblem(v)))
        : field === 'san_dns'
          ? dnsProblem(v.toLowerCase())
          : field === 'san_email'
            ? emailProblem(v)
            : null;
    const doubled = v.includes('**') ? 'two `*` in a row match nothing more than one' : null;
    if (problem !== null || doubled !== null) {
      log.report('E_MATCH_NEVER', siteOf(field), `${field} ${excerpt(v)} can never match: ${problem ?? doubled}`);
      ok = false;
    }
    // DNS names and email domains compare case-insensitively (RFC 4343, RFC 5321 for the domain).
    if (field === 'san_dns') return v.toLowerCase();
    if (field === 'san_email') {
      const at = v.lastIndexOf('@');
      return at < 0 ? v : v.slice(0, at) + v.slice(at).toLowerCase();
    }
    return v;
  };
  const match: CertMatch = {
    issuer: issuer ?? '',
    san_dns: value('san_dns'),
    san_email: value('san_email'),
    san_uri: value('san_uri'),
    subject_cn: value('subject_cn'),
  };
  return ok && issuer !== null ? match : null;
}
