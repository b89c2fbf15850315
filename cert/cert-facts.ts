// What path validation, subject matching and X-Forwarded-Client-Cert need from a certificate
// and node:crypto's X509Certificate does not give exactly: basicConstraints pathLen, the
// keyUsage bits, extendedKeyUsage OIDs, subject alternative names one by one (Node joins them
// into one string whose commas are ambiguous) and the subject's attributes with their raw
// values (for CN matching and RFC 2253 escaping). Read from the DER once per certificate.

import { childrenOf, MAX_KEY_BITS, oidText, publicKeyBits, readTlv, type Tlv } from './der.ts';
import { addSubjectNames, canonicalRdns, type ConstrainedNames, type NameConstraints, parseNameConstraints } from './name-constraints.ts';

export interface CertFacts {
  /** basicConstraints cA. */
  ca: boolean;
  /** basicConstraints pathLenConstraint, or null (absent: unlimited). */
  pathLen: number | null;
  /** keyUsage bits (bit 0 = digitalSignature ... bit 5 = keyCertSign), or null when the extension is absent. */
  keyUsage: number | null;
  /** extendedKeyUsage OIDs, or null when the extension is absent. */
  eku: string[] | null;
  sanUris: string[];
  sanDns: string[];
  sanEmails: string[];
  /** Subject attributes in DER order (most significant first): [type OID, value]. */
  subject: [string, string][];
  /** Every name a CA's name constraints bound (subject DN, all SANs, emailAddress, host-like CNs). */
  names: ConstrainedNames;
  /** nameConstraints (a CA's), or null. */
  nameConstraints: NameConstraints | null;
  /** Size of the public key: an RSA modulus in bits; any other key, the bits of its subjectPublicKey. */
  keyBits: number;
  /**
   * Why path validation must refuse this certificate whatever else holds, or null: a critical
   * extension it does not process, or an extension given twice (RFC 5280 4.2: a verifier MUST
   * reject both; OpenSSL does).
   */
  unprocessable: string | null;
}

const KEY_CERT_SIGN = 1 << 5;
const EKU_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const EKU_ANY = '2.5.29.37.0';
export const OID_CN = '2.5.4.3';
const KU_DIGITAL_SIGNATURE = 1 << 0;
const KU_KEY_AGREEMENT = 1 << 4;

/**
 * Extensions path validation processes (the others are informational: AKI, SKI, CRL
 * distribution points, AIA ... and a certificate marking one of those critical is refused, as
 * OpenSSL refuses it). certificatePolicies is listed as OpenSSL lists it: with no policy required
 * by the verifier, the policy tree constrains nothing; policyConstraints, policyMappings and
 * inhibitAnyPolicy are not processed, so a path holding them critical fails.
 */
const PROCESSED_EXTENSIONS = new Set([
  '2.5.29.19', // basicConstraints
  '2.5.29.15', // keyUsage
  '2.5.29.37', // extendedKeyUsage
  '2.5.29.17', // subjectAltName
  '2.5.29.30', // nameConstraints
  '2.5.29.32', // certificatePolicies
]);

function text(b: Uint8Array, t: Tlv): string {
  const bytes = Buffer.from(b.buffer, b.byteOffset + t.start, t.end - t.start);
  if (t.tag === 0x1e) return Buffer.from(bytes).swap16().toString('utf16le'); // BMPString (big-endian UTF-16)
  if (t.tag === 0x0c) return bytes.toString('utf8'); // UTF8String
  return bytes.toString('latin1'); // PrintableString, IA5String, T61String (as Latin-1)
}

/** The facts of a certificate's DER; throws RangeError on a structure it cannot read. */
export function certFacts(der: Uint8Array): CertFacts {
  const names: ConstrainedNames = { dns: [], email: [], uri: [], ip: [], dn: [], other: [] };
  const facts: CertFacts = {
    ca: false,
    pathLen: null,
    keyUsage: null,
    eku: null,
    sanUris: [],
    sanDns: [],
    sanEmails: [],
    subject: [],
    names,
    nameConstraints: null,
    unprocessable: null,
    keyBits: 0,
  };
  const decode = (t: Tlv) => text(der, t);
  const cert = readTlv(der, 0, der.length);
  const tbs = readTlv(der, cert.start, cert.end);
  const fields = childrenOf(der, tbs);
  let i = fields[0].tag === 0xa0 ? 1 : 0; // version
  i += 4; // serialNumber, signature, issuer, validity
  const subject = fields[i];
  for (const rdn of childrenOf(der, subject)) {
    for (const atv of childrenOf(der, rdn)) {
      const [type, value] = childrenOf(der, atv);
      facts.subject.push([oidText(der, type), text(der, value)]);
    }
  }
  addSubjectNames(names, canonicalRdns(der, subject, decode), facts.subject);
  facts.keyBits = publicKeyBits(der, fields[i + 1]);
  const exts = fields.find((f) => f.tag === 0xa3);
  if (exts === undefined) return facts;
  const seen = new Set<string>();
  for (const ext of childrenOf(der, readTlv(der, exts.start, exts.end))) {
    const parts = childrenOf(der, ext);
    const id = oidText(der, parts[0]);
    const octets = parts[parts.length - 1];
    const value = readTlv(der, octets.start, octets.end);
    const critical = parts.length === 3 && parts[1].tag === 0x01 && der[parts[1].start] !== 0;
    if (seen.has(id)) facts.unprocessable ??= `extension ${id} given twice`;
    seen.add(id);
    if (critical && !PROCESSED_EXTENSIONS.has(id)) facts.unprocessable ??= `critical extension ${id} not processed`;
    if (id === '2.5.29.19') {
      for (const c of childrenOf(der, value)) {
        if (c.tag === 0x01) facts.ca = der[c.start] !== 0;
        else if (c.tag === 0x02) {
          let n = 0;
          for (let k = c.start; k < c.end; k++) n = n * 256 + der[k];
          facts.pathLen = n;
        }
      }
    } else if (id === '2.5.29.15') {
      // BIT STRING: first byte = unused bits; bit 0 is the most significant bit of the next byte.
      let bits = 0;
      for (let k = value.start + 1, shift = 0; k < value.end && shift < 16; k++, shift += 8) {
        for (let bit = 0; bit < 8; bit++) if (der[k] & (0x80 >> bit)) bits |= 1 << (shift + bit);
      }
      facts.keyUsage = bits;
    } else if (id === '2.5.29.37') {
      facts.eku = childrenOf(der, value).map((c) => oidText(der, c));
    } else if (id === '2.5.29.17') {
      for (const name of childrenOf(der, value)) {
        const s = Buffer.from(der.buffer, der.byteOffset + name.start, name.end - name.start).toString('latin1');
        if (name.tag === 0x86) facts.sanUris.push(s);
        else if (name.tag === 0x82) facts.sanDns.push(s.toLowerCase());
        else if (name.tag === 0x81) facts.sanEmails.push(s);
        else if (name.tag === 0x87) names.ip.push(Buffer.from(der.subarray(name.start, name.end)));
        else if (name.tag === 0xa4) names.dn.push(canonicalRdns(der, readTlv(der, name.start, name.end), decode));
        else names.other.push(name.tag);
      }
    } else if (id === '2.5.29.30') {
      facts.nameConstraints = parseNameConstraints(der, value, decode);
    }
  }
  names.dns.push(...facts.sanDns);
  names.email.push(...facts.sanEmails);
  names.uri.push(...facts.sanUris);
  return facts;
}

/**
 * The largest key a CA in a client's path may have (der.ts MAX_KEY_BITS, a leaf's bound too): a
 * client can send a chain of such certificates it made once and reuses on every connection.
 */
export const MAX_ISSUER_KEY_BITS = MAX_KEY_BITS;

/** extendedKeyUsage admits TLS client authentication: none, or one naming clientAuth (or any). */
function ekuAllowsClientAuth(f: CertFacts): boolean {
  return f.eku === null || f.eku.includes(EKU_CLIENT_AUTH) || f.eku.includes(EKU_ANY);
}

/** Why a certificate cannot stand above a client's leaf, by kind (the compiler reports some kinds with their own codes). */
export type IssuerDefect = {
  kind: 'not_yet_valid' | 'expired' | 'unreadable' | 'unprocessable' | 'eku' | 'key_usage' | 'name_constraints' | 'key_size';
  problem: string;
};

/**
 * Why `facts`' certificate, a CA, may issue no certificate in a client's path at `now`, whatever
 * is below it, or null: RFC 5280 6.1.4 (keyUsage keyCertSign when keyUsage is present, within
 * its validity), no critical extension left unprocessed, name constraints this
 * code understands (otherwise every path through it fails), and, as OpenSSL's "sslclient"
 * purpose requires of every CA in a client's path, an extendedKeyUsage, when present, that
 * admits clientAuth. One definition for path validation (runtime/identity.ts) and for
 * `mtlsgate check`, which reports a trusted CA that fails it (every leaf below would be refused).
 * Whether it is a CA at all is each caller's question: path validation asks OpenSSL
 * (X509Certificate.ca), the compiler reads basicConstraints (a certificate without it is a pin).
 */
export function issuerDefect(f: CertFacts | null, notBefore: number, notAfter: number, now: number): IssuerDefect | null {
  if (f === null) return { kind: 'unreadable', problem: 'its DER has a structure this reader does not understand' };
  if (now < notBefore) return { kind: 'not_yet_valid', problem: `it is not valid before ${new Date(notBefore).toISOString()} (its notBefore)` };
  if (now > notAfter) return { kind: 'expired', problem: `it expired on ${new Date(notAfter).toISOString()}` };
  // Before anything a signature check would cost: mayIssue (runtime/identity.ts) asks this of a sent intermediate before verifying with its key.
  if (f.keyBits > MAX_ISSUER_KEY_BITS)
    return {
      kind: 'key_size',
      problem: `its public key has ${f.keyBits} bits, more than ${MAX_ISSUER_KEY_BITS}: every signature it makes costs a verifier too much (reissue it with a key of at most ${MAX_ISSUER_KEY_BITS} bits)`,
    };
  if (f.unprocessable !== null)
    return { kind: 'unprocessable', problem: `it carries a ${f.unprocessable.replace(/^extension (.*) given twice$/, 'duplicate extension $1')}` };
  if (!ekuAllowsClientAuth(f))
    return {
      kind: 'eku',
      problem: `its extendedKeyUsage (${f.eku!.join(', ')}) does not admit clientAuth: a CA for other purposes issues no client certificate`,
    };
  if (f.keyUsage !== null && (f.keyUsage & KEY_CERT_SIGN) === 0)
    return { kind: 'key_usage', problem: 'its keyUsage lacks keyCertSign: it may not sign certificates' };
  if (f.nameConstraints?.unsupported)
    return { kind: 'name_constraints', problem: 'its nameConstraints have minimum, maximum or an unknown part, which fails every path' };
  return null;
}

/**
 * Allowed as a TLS client certificate (OpenSSL's "sslclient" purpose of the leaf): the
 * extendedKeyUsage admits clientAuth, and a keyUsage, when present, lets the key sign
 * (digitalSignature) or agree keys (keyAgreement); a CA certificate with keyCertSign alone is not.
 */
export function allowsClientAuth(f: CertFacts): boolean {
  return ekuAllowsClientAuth(f) && (f.keyUsage === null || (f.keyUsage & (KU_DIGITAL_SIGNATURE | KU_KEY_AGREEMENT)) !== 0);
}

/** The subject's common names. */
export function commonNames(f: CertFacts): string[] {
  return f.subject.filter(([type]) => type === OID_CN).map(([, v]) => v);
}

const SHORT_NAMES: Record<string, string> = {
  '2.5.4.3': 'CN',
  '2.5.4.6': 'C',
  '2.5.4.7': 'L',
  '2.5.4.8': 'ST',
  '2.5.4.10': 'O',
  '2.5.4.11': 'OU',
  '2.5.4.9': 'STREET',
  '0.9.2342.19200300.100.1.25': 'DC',
  '0.9.2342.19200300.100.1.1': 'UID',
  '1.2.840.113549.1.9.1': 'emailAddress',
  '2.5.4.5': 'serialNumber',
};

/**
 * The subject as RFC 2253 writes it (last RDN first, "," between), each value escaped as
 * OpenSSL's XN_FLAG_RFC2253 does, which is what Envoy puts in XFCC: `, + " \ < > ;` get a
 * backslash, so do a leading `#` or space and a trailing space, and every byte outside
 * printable ASCII is written \XX (its UTF-8 bytes in hex). The result is plain ASCII, so it
 * is always a valid header value.
 */
export function rfc2253(f: CertFacts): string {
  return f.subject
    .slice()
    .reverse()
    .map(([type, value]) => `${SHORT_NAMES[type] ?? type}=${escapeRfc2253(value)}`)
    .join(',');
}

function escapeRfc2253(value: string): string {
  let out = '';
  const bytes = Buffer.from(value, 'utf8');
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i];
    const ch = String.fromCharCode(c);
    if (c < 0x20 || c > 0x7e) out += `\\${c.toString(16).toUpperCase().padStart(2, '0')}`;
    else if (',+"\\<>;'.includes(ch) || (i === 0 && (ch === '#' || ch === ' ')) || (i === bytes.length - 1 && ch === ' ')) out += `\\${ch}`;
    else out += ch;
  }
  return out;
}

/**
 * The URIs a certificate's cRLDistributionPoints extension names (fullName entries): where the
 * CRL that covers this certificate, signed by its issuer, is published (RFC 5280 4.2.1.13).
 * Only the compiler needs them (binding a bare crl_url to its signer); [] when there are none
 * or the DER is not understood.
 */
export function crlDistributionUris(der: Uint8Array): string[] {
  try {
    const cert = readTlv(der, 0, der.length);
    const tbs = readTlv(der, cert.start, cert.end);
    const exts = childrenOf(der, tbs).find((f) => f.tag === 0xa3);
    if (exts === undefined) return [];
    const uris: string[] = [];
    for (const ext of childrenOf(der, readTlv(der, exts.start, exts.end))) {
      const parts = childrenOf(der, ext);
      if (oidText(der, parts[0]) !== '2.5.29.31') continue;
      const octets = parts[parts.length - 1];
      // SEQUENCE OF DistributionPoint { [0] distributionPoint { [0] fullName GeneralNames } ... }
      for (const point of childrenOf(der, readTlv(der, octets.start, octets.end))) {
        for (const name of childrenOf(der, point).filter((t) => t.tag === 0xa0)) {
          for (const full of childrenOf(der, name).filter((t) => t.tag === 0xa0)) {
            for (const general of childrenOf(der, full)) {
              if (general.tag === 0x86) uris.push(Buffer.from(der.subarray(general.start, general.end)).toString('latin1'));
            }
          }
        }
      }
    }
    return uris;
  } catch {
    return [];
  }
}
