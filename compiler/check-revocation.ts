// kind: revocation documents: CRL files verified against a CA the config trusts (and not past
// their nextUpdate), CRL URLs for the running gateway, and a deny list by fingerprint. All
// documents merge into one BundleRevocation: a revoked certificate is refused on every API.
import { X509Certificate } from 'node:crypto';
import { readRegularFile } from '../common/regular-file.ts';
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
import { type CrlSigner, resolveCrlIssuers } from './crl-issuers.ts';
import { bindCrlUrls, type CrlUrlEntry } from './crl-url-issuers.ts';
import { locate } from './source.ts';
import { count } from '../common/count.ts';

const HOUR_MS = 3_600_000;
/** A CRL whose nextUpdate is closer than this gets a warning: it must be re-issued soon. */
const CRL_WARNING_MS = 24 * HOUR_MS;

/** A CRL file larger than this is not read (the largest public CRLs are tens of MiB). */
const MAX_CRL_FILE_BYTES = 512 * 1024 * 1024;

function readCrl(path: string): Crl | string {
  let bytes: Buffer;
  try {
    bytes = readRegularFile(path, MAX_CRL_FILE_BYTES);
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

/**
 * The first instant this CRL's diagnostic may differ from the one at `now` (the live compile
 * keeps its result until then): entering the warning window, the hour count in it, stale.
 */
function crlChangesAt(next: number, now: number): number {
  if (next - now > CRL_WARNING_MS) return next - CRL_WARNING_MS;
  const hours = Math.floor((next - now) / HOUR_MS);
  // With whole hours left the count drops a millisecond after next - hours h; with none, stale at next.
  return hours <= 0 ? next : next - hours * HOUR_MS + 1;
}

export function resolveRevocations(docs: RevocationDoc[], cas: CaRegistry, certs: CertLoader, now: Date, log: DiagnosticLog): BundleRevocation {
  const trustedCas: CrlSigner[] = [];
  for (const [fingerprint, ca] of cas) trustedCas.push({ fingerprint, cert: new X509Certificate(ca.pem), subject: ca.subject });
  const unique = uniqueById(docs, 'revocation', log);
  // A CRL is signed by a trusted CA, or by an intermediate named under crl_issuers (crl-issuers.ts).
  const issuers = resolveCrlIssuers(unique.values(), trustedCas, certs, now, log);
  const trusted = [...trustedCas, ...issuers.signers];
  const crls = new Map<Fingerprint, { serials: Set<string>; next: number | null; sources: Set<string> }>();
  const urlEntries: CrlUrlEntry[] = [];
  const denied = new Set<Fingerprint>();

  for (const { doc, spec } of unique.values()) {
    const at = (path: (string | number)[]): Site => ({ file: doc.file, offset: locate(doc.root, path) });
    (spec.crl ?? []).forEach((entry, i) => {
      const site = at(['crl', i]);
      const path = resolve(dirname(doc.file.absPath), entry);
      const outside = certs.outside(path);
      if (outside !== null) return log.report('E_PATH_OUTSIDE', site, `CRL ${quotedPath(entry)} ${outside}`);
      certs.touched?.files.add(path);
      const crl = readCrl(path);
      if (typeof crl === 'string') return log.report('E_CRL_READ', site, `CRL ${entry} ${crl}`);
      const signer = trusted.find((ca) => crlSignedBy(crl, ca.cert));
      if (signer === undefined) {
        const known = trusted.length === 0 ? 'the config trusts no CA' : `trusted: ${trusted.map((c) => c.subject).join('; ')}`;
        return log.report(
          'E_CRL_UNVERIFIED',
          site,
          `CRL ${entry} is not signed by a CA the config trusts (${known}); name its CA in an API's client_certificates or a certificate_match issuer, or, for an intermediate's CRL, the intermediate under crl_issuers`,
        );
      }
      const next = crl.nextUpdate?.getTime() ?? null;
      if (next !== null) certs.touched?.changesAt?.push(crlChangesAt(next, now.getTime()));
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
    (spec.crl_urls ?? []).forEach((entry, i) => {
      const site = at(['crl_urls', i]);
      const issuerSite = typeof entry === 'string' ? site : at(['crl_urls', i, 'issuer']);
      urlEntries.push({ spec: entry, site, issuerSite, yamlAbsPath: doc.file.absPath, documentIssuers: issuers.byDocument.get(spec.id) ?? new Set() });
    });
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
  const bound = bindCrlUrls(urlEntries, trusted, certs, log);
  const urls = [...bound.keys()].sort();
  const revocation: BundleRevocation = { crl_urls: urls, crls: sortedCrls, denied: [...denied].sort() };
  // Only when there are some: a bundle without crl_urls keeps the bytes it had before.
  const boundUrls = urls.filter((url) => bound.get(url) !== null);
  if (boundUrls.length > 0) revocation.crl_url_issuers = Object.fromEntries(boundUrls.map((url) => [url, bound.get(url)!]));
  // Only when there are some: a bundle without keeps the bytes it had before crl_issuers existed.
  const issuerFps = Object.keys(issuers.bundle).sort();
  if (issuerFps.length > 0) revocation.crl_issuers = Object.fromEntries(issuerFps.map((fp) => [fp, issuers.bundle[fp]]));
  return revocation;
}
