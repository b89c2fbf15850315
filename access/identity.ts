// A client identity from a PEM (an access test's or `explain`'s --cert): the leaf is the first
// certificate, the ones after it are the chain the client would send. The same ClientIdentity
// class the gateway builds from a TLS connection, so CA checks and expiry behave alike.
import { X509Certificate } from 'node:crypto';
import { ClientIdentity } from '../runtime/identity.ts';

const PEM_CERT = /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g;

/** Throws when the PEM holds no certificate or an unparsable one. */
export function identityFromPem(pem: string): ClientIdentity {
  const ders = [...pem.matchAll(PEM_CERT)].map((m) => Buffer.from(m[1].replace(/\s+/g, ''), 'base64'));
  if (ders.length === 0) throw new Error('no -----BEGIN CERTIFICATE----- block');
  return new ClientIdentity(new X509Certificate(ders[0]), ders.slice(1));
}
