// Distinguished names on one line: node:crypto prints one RDN per line ("CN=alice\nO=acme");
// messages, logs, the bundle and the portal show "CN=alice, O=acme".
import type { X509Certificate } from 'node:crypto';

export function oneLineName(dn: string): string {
  return dn.split('\n').filter(Boolean).join(', ');
}

/** The certificate's subject on one line. */
export function subjectLine(cert: X509Certificate): string {
  return oneLineName(cert.subject);
}
