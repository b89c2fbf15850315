// A client identity from a PEM (an access test's certificate, `explain --cert`, `who --certs`):
// the leaf is the first certificate, the ones after it are the chain the client would send.
// It is the runtime's own ClientIdentity (runtime/identity.ts), the object the gateway builds
// from a TLS connection, so path validation, expiry, extendedKeyUsage, certificate_match and
// revocation are judged by the same code, on the same facts (cert/cert-facts.ts).
import { X509Certificate } from 'node:crypto';
import { certificateDers } from '../cert/read.ts';
import { ClientIdentity } from '../runtime/identity.ts';

/** Throws when the PEM holds no certificate or an unparsable one. */
export function identityFromPem(pem: string): ClientIdentity {
  const ders = certificateDers(pem);
  if (ders.length === 0) throw new Error('no -----BEGIN CERTIFICATE----- block');
  return new ClientIdentity(new X509Certificate(ders[0]), ders.slice(1));
}

/**
 * Identities parsed once per run. A ClientIdentity caches verdicts the way one TLS connection
 * does (chain to each CA, certificate_match, revocation), and the chain verdict depends on the
 * moment it was judged (intermediates' validity), so one identity serves one PEM at one
 * instant: the cache key is both. Cases without `at:` share the run's instant.
 */
export class IdentityCache {
  private readonly byPem = new Map<string, ClientIdentity>();

  get(pem: string, now: number): ClientIdentity {
    const key = `${now}\0${pem}`;
    let identity = this.byPem.get(key);
    if (identity === undefined) {
      identity = identityFromPem(pem);
      this.byPem.set(key, identity);
    }
    return identity;
  }
}
