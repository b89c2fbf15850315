// Tyk names a certificate in its certificate store by id: the org id followed by the SHA-256 (hex)
// of the certificate's DER, or the SHA-256 alone. That hash is exactly mtlsgate's fingerprint, so
// an id becomes a `sha256:` pin. A file path (Tyk also accepts those) stays a path.

const HEX_ID = /^[0-9a-fA-F]{64,}$/;
const PATH_LIKE = /[/\\]|\.(pem|crt|cer)$/i;

export type CertEntry = { pin: string } | { path: string } | { unknown: string };

export function certEntry(entry: string): CertEntry {
  if (HEX_ID.test(entry)) return { pin: `sha256:${entry.slice(-64).toLowerCase()}` };
  if (PATH_LIKE.test(entry)) return { path: entry };
  return { unknown: entry };
}
