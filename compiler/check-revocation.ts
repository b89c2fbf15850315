// kind: revocation documents: CRL files verified against a CA the config trusts (and not past
// their nextUpdate), CRL URLs for the running gateway, and a deny list by fingerprint. All
// documents merge into one BundleRevocation: a revoked certificate is refused on every API.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { type Crl, crlSignedBy, parseCrl } from '../bundle/crl.ts';
import type { BundleCrl, BundleRevocation, Fingerprint } from '../bundle/types.ts';
import { parsePin } from '../cert/fingerprint.ts';
import type { CertLoader } from './certs.ts';
import type { DiagnosticLog, Site } from './diagnostics.ts';
import { excerpt, quotedPath } from './excerpt.ts';
import { uniqueById } from './ids.ts';
import type { CaRegistry } from './match.ts';
import type { RevocationDoc } from './model.ts';
import { locate } from './source.ts';
import { count } from '../common/count.ts';

const HOUR_MS = 3_600_000;
/** A CRL whose nextUpdate is closer than this gets a warning: it must be re-issued soon. */
export const CRL_WARNING_MS = 24 * HOUR_MS;

function readCrl(path: string): Crl | string {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return `cannot be read (resolved to ${path}): ${code === 'ENOENT' ? 'no such file' : (code ?? (err as Error).message)}`;
  }
  try {
    return parseCrl(bytes);
  } catch (err) {
    return (err as Error).message;
  }
}

export function resolveRevocations(docs: RevocationDoc[], cas: CaRegistry, certs: CertLoader, now: Date, log: DiagnosticLog): BundleRevocation {
  const trusted: { fingerprint: Fingerprint; cert: X509Certificate; subject: string }[] = [];
  for (const [fingerprint, ca] of cas) trusted.push({ fingerprint, cert: new X509Certificate(ca.pem), subject: ca.subject });
  const crls = new Map<Fingerprint, { serials: Set<string>; next: number | null; sources: Set<string> }>();
  const urls = new Set<string>();
  const denied = new Set<Fingerprint>();

  for (const { doc, spec } of uniqueById(docs, 'revocation', log).values()) {
    const at = (path: (string | number)[]): Site => ({ file: doc.file, offset: locate(doc.root, path) });
    (spec.crl ?? []).forEach((entry, i) => {
      const site = at(['crl', i]);
      const path = resolve(dirname(doc.file.absPath), entry);
      const outside = certs.outside(path);
      if (outside !== null) return log.report('E_PATH_OUTSIDE', site, `CRL ${quotedPath(entry)} ${outside}`);
      const crl = readCrl(path);
      if (typeof crl === 'string') return log.report('E_CRL_READ', site, `CRL ${entry} ${crl}`);
      const signer = trusted.find((ca) => crlSignedBy(crl, ca.cert));
      if (signer === undefined) {
        const known = trusted.length === 0 ? 'the config trusts no CA' : `trusted: ${trusted.map((c) => c.subject).join('; ')}`;
        return log.report(
          'E_CRL_UNVERIFIED',
          site,
          `CRL ${entry} is not signed by a CA the config trusts (${known}); name its CA in an API's client_certificates or a certificate_match issuer`,
        );
      }
      const next = crl.nextUpdate?.getTime() ?? null;
      if (next !== null && next <= now.getTime()) {
        return log.report(
          'E_CRL_STALE',
          site,
          `CRL ${entry} (${signer.subject}) was due to be replaced on ${crl.nextUpdate!.toISOString()} (its nextUpdate): fetch or issue a current one`,
        );
      }
      if (next !== null && next - now.getTime() <= CRL_WARNING_MS) {
        const hours = Math.floor((next - now.getTime()) / HOUR_MS);
        log.report(
          'W_CRL_EXPIRING',
          site,
          `CRL ${entry} (${signer.subject}) reaches its nextUpdate on ${crl.nextUpdate!.toISOString()}, in ${count(hours, 'hour')}: compile again with a newer CRL before then`,
        );
      }
      const merged = crls.get(signer.fingerprint) ?? { serials: new Set<string>(), next: null, sources: new Set<string>() };
      for (const serial of crl.serials) merged.serials.add(serial);
      if (next !== null) merged.next = merged.next === null ? next : Math.min(merged.next, next);
      merged.sources.add(spec.id);
      crls.set(signer.fingerprint, merged);
    });
    for (const url of spec.crl_urls ?? []) urls.add(url);
    (spec.certificates ?? []).forEach((entry, i) => {
      const site = at(['certificates', i]);
      const pin = parsePin(entry);
      if (pin?.ok) return void denied.add(pin.fingerprint);
      if (pin !== null) return log.report('E_FIELD_VALUE', site, `certificates[${i}] ${excerpt(entry)} ${pin.problem}`);
      // A denied certificate may well be expired: its expiry is not this list's concern.
      for (const cert of certs.load(entry, site, doc.file.absPath, { checkExpiry: false }) ?? []) denied.add(cert.fingerprint);
    });
  }

  const sortedCrls: Record<Fingerprint, BundleCrl> = {};
  for (const fp of [...crls.keys()].sort()) {
    const c = crls.get(fp)!;
    sortedCrls[fp] = {
      next_update: c.next === null ? null : new Date(c.next).toISOString(),
      serials: [...c.serials].sort(),
      sources: [...c.sources].sort(),
    };
  }
  return { crl_urls: [...urls].sort(), crls: sortedCrls, denied: [...denied].sort() };
}
