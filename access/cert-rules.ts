// Words for the certificate rules a bundle holds beyond fingerprints, shared by `explain` and
// `who`: certificate_match (a key, or an API's client_certificates object entry, identified by
// subject under a CA) and revocation (deny list, compiled CRLs, CRL URLs). Descriptions only:
// every verdict comes from the runtime's stages.
import type { Bundle, CertMatch } from '../bundle/types.ts';
import { count } from '../common/count.ts';

const MATCH_FIELDS = ['subject_cn', 'san_uri', 'san_dns', 'san_email'] as const;

/** `CA "CN=Other CA" issued it, with subject_cn stranger` */
export function describeMatch(bundle: Bundle, m: CertMatch): string {
  const issuer = bundle.content.cas[m.issuer]?.subject ?? `sha256:${m.issuer}`;
  const fields = MATCH_FIELDS.filter((f) => m[f] !== null).map((f) => `${f} ${m[f]}`);
  return `CA "${issuer}" issued it (path validation)${fields.length > 0 ? `, with ${fields.join(' and ')}` : ''}`;
}

/**
 * What can revoke certificates of CA `caFingerprint` (null: any certificate): compiled CRLs,
 * the deny list, CRL URLs; "" when the bundle revokes nothing.
 */
export function revocationOf(bundle: Bundle, caFingerprint: string | null): string {
  const r = bundle.content.revocation;
  const parts: string[] = [];
  const crl = caFingerprint === null ? undefined : r.crls[caFingerprint];
  if (crl !== undefined) parts.push(`its CRL revokes ${count(crl.serials.length, 'serial')} (revocation ${crl.sources.join(', ')})`);
  if (r.denied.length > 0) parts.push(`the deny list names ${count(r.denied.length, 'certificate')}`);
  if (r.crl_urls.length > 0)
    parts.push(
      `CRLs at ${r.crl_urls.join(', ')} are fetched by the running gateway only (not consulted here: with --crl-stale open, the default, an unfetched CRL refuses nothing)`,
    );
  return parts.join('; ');
}
