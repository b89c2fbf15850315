// The caller's certificate as the upstream receives it: Envoy's X-Forwarded-Client-Cert
// (Hash, Cert, Subject, URI, DNS) and RFC 9440 Client-Cert / Client-Cert-Chain. Every value is
// built to be a valid header value whatever the certificate holds (non-ASCII subjects, quotes,
// commas, semicolons, equals signs): a request never fails because of its certificate's text.
import type { X509Certificate } from 'node:crypto';
import type { XfccField } from '../bundle/types.ts';
import { type CertFacts, rfc2253 } from '../cert/cert-facts.ts';

interface Leaf {
  readonly fingerprint: string;
  readonly leaf: X509Certificate;
}

/** XFCC value escaping (Envoy): a value holding `,` `;` `=` `"` or a space is double-quoted, with `"` and `\` escaped. */
function xfccQuote(value: string): string {
  return /[,;="\s\\]/.test(value) ? `"${value.replace(/["\\]/g, '\\$&')}"` : value;
}

/** Anything outside printable ASCII, percent-encoded (a SAN is IA5String, so this is rare). */
function asciiOnly(value: string): string {
  return value.replace(/[^\x21-\x7e]/g, (c) => encodeURIComponent(c));
}

function pem(der: Buffer): string {
  const b64 = der.toString('base64').replace(/.{64}/g, '$&\n');
  return `-----BEGIN CERTIFICATE-----\n${b64}${b64.endsWith('\n') ? '' : '\n'}-----END CERTIFICATE-----\n`;
}

/**
 * One XFCC element for the caller, Envoy's order (Hash, Cert, Subject, URI, DNS). Subject is
 * the RFC 2253 string, quoted as Envoy quotes it (the RFC 2253 escapes are the only escapes:
 * `"` inside it is already `\"`); the string is plain ASCII (non-ASCII written \XX).
 */
export function xfccValue(id: Leaf, facts: CertFacts | null, fields: readonly XfccField[]): string {
  const parts: string[] = [];
  for (const field of fields) {
    switch (field) {
      case 'Hash':
        parts.push(`Hash=${id.fingerprint}`);
        break;
      case 'Cert':
        parts.push(`Cert="${encodeURIComponent(pem(id.leaf.raw))}"`);
        break;
      case 'Subject':
        parts.push(`Subject="${facts === null ? '' : rfc2253(facts)}"`);
        break;
      case 'URI':
        for (const uri of facts?.sanUris ?? []) parts.push(`URI=${xfccQuote(asciiOnly(uri))}`);
        break;
      case 'DNS':
        for (const dns of facts?.sanDns ?? []) parts.push(`DNS=${xfccQuote(asciiOnly(dns))}`);
        break;
    }
  }
  return parts.join(';');
}

/** RFC 9440 section 2: a certificate as a Structured Field Byte Sequence, `:base64(DER):`. */
export function clientCertField(der: Buffer): string {
  return `:${der.toString('base64')}:`;
}

/** RFC 9440 Client-Cert-Chain: a list of byte sequences, the certificates behind the leaf. */
export function clientCertChainField(chain: readonly Buffer[]): string {
  return chain.map(clientCertField).join(', ');
}
