// What `serve` warns about in its own certificate (--tls-cert) at start and on SIGHUP: the
// mistakes that make every client fail the handshake while the gateway looks healthy. A CA
// certificate, an extended key usage without serverAuth (a client certificate passed by
// mistake), no subjectAltName (clients match host names against SANs only), or SANs that do
// not cover the host the gateway listens on. Warnings, not errors: behind a proxy or with
// other names in front, the operator may know better.
import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';

const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const ANY_EKU = '2.5.29.37.0';

/** Listening on every interface says nothing about the name clients use. */
function isWildcard(host: string): boolean {
  return host === '' || host === '0.0.0.0' || host === '::' || host === '[::]';
}

/** The warnings for the leaf (first) certificate of a PEM chain; [] when it looks right. */
export function serverCertWarnings(chainPem: Buffer | string, listenHost: string): string[] {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(chainPem);
  } catch {
    return []; // createSecureContext already refused anything unusable
  }
  const out: string[] = [];
  const subject = cert.subject.split('\n').filter(Boolean).join(', ');
  if (cert.ca) out.push(`--tls-cert (${subject}) is a CA certificate (basicConstraints CA:TRUE), not a server certificate`);
  // Node names the extended key usage list `keyUsage`; undefined = no extension = any use.
  const eku = cert.keyUsage;
  if (eku && eku.length > 0 && !eku.includes(SERVER_AUTH) && !eku.includes(ANY_EKU)) {
    out.push(`--tls-cert (${subject}) is not for servers: its extended key usage lacks serverAuth (${eku.join(', ')}); clients will refuse it`);
  }
  const sans = cert.subjectAltName;
  if (!sans) out.push(`--tls-cert (${subject}) has no subjectAltName: clients match the host name against SANs only, so no name verifies`);
  else if (!isWildcard(listenHost)) {
    const host = listenHost.replace(/^\[|\]$/g, '');
    const covered = isIP(host) ? cert.checkIP(host) !== undefined : cert.checkHost(host) !== undefined;
    if (!covered)
      out.push(`--tls-cert (${subject}) does not name the listening host ${host} (its SANs: ${sans}); clients connecting to ${host} will fail to verify it`);
  }
  return out;
}
