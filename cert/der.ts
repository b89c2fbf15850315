// The facts the compiler needs from every certificate, read straight from the DER: the
// validity period, whether basicConstraints says cA, and whether keyUsage says keyCertSign. node:crypto's X509Certificate costs
// ~200 µs a certificate on this machine (30 s for 100,000 keys); walking the DER costs ~2 µs.
// (notBefore is not needed: a certificate not yet valid is the runtime's business.)
// Anything this reader does not understand returns null and the caller falls back to
// X509Certificate, so an unusual but valid certificate is never rejected here.

export interface CertFacts {
  notAfter: Date;
  isCa: boolean;
  /** keyUsage holds keyCertSign (false without a keyUsage): with isCa false, a pin that looks meant as a CA. */
  keyCertSign: boolean;
  /** The public key's bits (an RSA modulus's) when its SubjectPublicKeyInfo is large enough to hold more than MAX_KEY_BITS, else 0. */
  bigKeyBits: number;
}

/** One DER tag-length-value: the one reader bundle/crl.ts and cert/cert-facts.ts use too. */
export interface Tlv {
  tag: number;
  /** Offset of the value. */
  start: number;
  /** Offset just past the value. */
  end: number;
  /** Offset of the tag byte. */
  head: number;
}

export function readTlv(buf: Uint8Array, at: number, limit: number): Tlv {
  if (at + 2 > limit) throw new RangeError('truncated');
  const tag = buf[at];
  let len = buf[at + 1];
  let start = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || start + n > limit) throw new RangeError('bad length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[start + i];
    start += n;
  }
  if (start + len > limit) throw new RangeError('truncated');
  return { tag, start, end: start + len, head: at };
}

/** The TLVs inside a constructed one. */
export function childrenOf(buf: Uint8Array, t: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let at = t.start; at < t.end; ) {
    const c = readTlv(buf, at, t.end);
    out.push(c);
    at = c.end;
  }
  return out;
}

/** An OBJECT IDENTIFIER's value in dotted form. */
export function oidText(buf: Uint8Array, t: Tlv): string {
  const parts: number[] = [];
  let value = 0;
  for (let i = t.start; i < t.end; i++) {
    value = value * 128 + (buf[i] & 0x7f);
    if ((buf[i] & 0x80) === 0) {
      if (parts.length === 0) parts.push(value < 80 ? Math.floor(value / 40) : 2, value < 80 ? value % 40 : value - 80);
      else parts.push(value);
      value = 0;
    }
  }
  return parts.join('.');
}

/** True when the TLV's length is written in the fewest bytes (as DER requires and OpenSSL writes it). */
function shortestLength(buf: Uint8Array, t: Tlv): boolean {
  const lengthBytes = t.start - t.head - 1;
  const len = t.end - t.start;
  if (len < 0x80) return lengthBytes === 1;
  return buf[t.head + 2] !== 0 && lengthBytes === 1 + Math.ceil(Math.log2(len + 1) / 8);
}

/** A TLV and, when constructed, everything inside it, in shortest lengths. */
function shortestThroughout(buf: Uint8Array, t: Tlv): boolean {
  if (!shortestLength(buf, t)) return false;
  return (buf[t.head] & 0x20) === 0 || childrenOf(buf, t).every((c) => shortestThroughout(buf, c));
}

/**
 * True when OpenSSL would write these certificate bytes back as they are (X509Certificate.raw,
 * which the gateway fingerprints): one SEQUENCE spanning every byte, of three parts, the
 * signature algorithm and value in shortest lengths. OpenSSL keeps the signed part's bytes as
 * read and re-encodes the rest, so bytes after the certificate or a longer length form give a
 * fingerprint no TLS connection will ever have. False means: ask OpenSSL (the slow path).
 */
export function writtenBackAsIs(der: Uint8Array): boolean {
  try {
    const cert = readTlv(der, 0, der.length);
    if (cert.tag !== 0x30 || cert.end !== der.length || !shortestLength(der, cert)) return false;
    const parts = childrenOf(der, cert);
    return parts.length === 3 && shortestThroughout(der, parts[1]) && shortestThroughout(der, parts[2]);
  } catch {
    return false;
  }
}

/** Two ASCII digits at `at` as a number (NaN when they are not digits). */
function digits2(buf: Uint8Array, at: number): number {
  const a = buf[at] - 48;
  const b = buf[at + 1] - 48;
  return a >= 0 && a <= 9 && b >= 0 && b <= 9 ? a * 10 + b : NaN;
}

/** UTCTime (YYMMDDHHMMSSZ) or GeneralizedTime (YYYYMMDDHHMMSSZ), read from the bytes. */
function parseTime(buf: Uint8Array, t: Tlv): Date {
  let at = t.start;
  let year: number;
  if (t.tag === 0x17 && t.end - t.start === 13) {
    const yy = digits2(buf, at);
    year = yy >= 50 ? 1900 + yy : 2000 + yy;
    at += 2;
  } else if (t.tag === 0x18 && t.end - t.start === 15) {
    year = digits2(buf, at) * 100 + digits2(buf, at + 2);
    at += 4;
  } else throw new RangeError('unsupported time encoding');
  if (buf[t.end - 1] !== 0x5a /* Z */) throw new RangeError('time is not UTC');
  const ms = Date.UTC(year, digits2(buf, at) - 1, digits2(buf, at + 2), digits2(buf, at + 4), digits2(buf, at + 6), digits2(buf, at + 8));
  if (Number.isNaN(ms)) throw new RangeError('bad time');
  return new Date(ms);
}

/** A certificate's subject Name as its DER bytes (compared whole with a CRL's issuer), or null when the structure is not the usual one. */
export function subjectNameDer(der: Buffer): Buffer | null {
  try {
    const cert = readTlv(der, 0, der.length);
    const tbs = readTlv(der, cert.start, cert.end);
    let t = readTlv(der, tbs.start, tbs.end);
    if (t.tag === 0xa0) t = readTlv(der, t.end, tbs.end); // version
    // serialNumber, signature AlgorithmIdentifier, issuer, validity, then subject
    for (let i = 0; i < 4; i++) t = readTlv(der, t.end, tbs.end);
    return t.tag === 0x30 ? der.subarray(t.head, t.end) : null;
  } catch {
    return null;
  }
}

// 2.5.29.19 basicConstraints, 2.5.29.15 keyUsage: the same first two bytes.
const BASIC_CONSTRAINTS = [0x55, 0x1d, 0x13];
const KEY_USAGE_LAST = 0x0f;
/** keyCertSign is bit 5 of the keyUsage BIT STRING: in its first byte, 0x80 >> 5. */
const KEY_CERT_SIGN_BIT = 0x04;

/** Validity and cA from a certificate's DER, or null when the structure is not the usual one. */
export function readCertFacts(der: Uint8Array): CertFacts | null {
  try {
    const cert = readTlv(der, 0, der.length);
    if (cert.tag !== 0x30 || cert.end !== der.length) return null;
    const tbs = readTlv(der, cert.start, cert.end);
    if (tbs.tag !== 0x30) return null;
    let at = tbs.start;
    let t = readTlv(der, at, tbs.end);
    if (t.tag === 0xa0) t = readTlv(der, (at = t.end), tbs.end); // version
    if (t.tag !== 0x02) return null; // serialNumber
    t = readTlv(der, (at = t.end), tbs.end); // signature AlgorithmIdentifier
    if (t.tag !== 0x30) return null;
    t = readTlv(der, (at = t.end), tbs.end); // issuer
    if (t.tag !== 0x30) return null;
    const validity = readTlv(der, (at = t.end), tbs.end);
    if (validity.tag !== 0x30) return null;
    const notBefore = readTlv(der, validity.start, validity.end);
    const facts: CertFacts = { notAfter: parseTime(der, readTlv(der, notBefore.end, validity.end)), isCa: false, keyCertSign: false, bigKeyBits: 0 };
    t = readTlv(der, (at = validity.end), tbs.end); // subject
    if (t.tag !== 0x30) return null;
    t = readTlv(der, (at = t.end), tbs.end); // subjectPublicKeyInfo
    if (t.tag !== 0x30) return null;
    // The modulus is read only when the key's BIT STRING could hold one over the bound (~2 µs a certificate stays so).
    if (t.end - t.start > MAX_KEY_BITS / 8) facts.bigKeyBits = publicKeyBits(der, t);
    for (at = t.end; at < tbs.end; at = t.end) {
      t = readTlv(der, at, tbs.end);
      if (t.tag !== 0xa3) continue; // issuerUniqueID / subjectUniqueID
      const exts = readTlv(der, t.start, t.end);
      for (let e = exts.start; e < exts.end; ) {
        const ext = readTlv(der, e, exts.end);
        e = ext.end;
        const oid = readTlv(der, ext.start, ext.end);
        if (oid.tag !== 0x06) return null;
        if (oid.end - oid.start !== 3 || der[oid.start] !== BASIC_CONSTRAINTS[0] || der[oid.start + 1] !== BASIC_CONSTRAINTS[1]) continue;
        const last = der[oid.start + 2];
        if (last !== BASIC_CONSTRAINTS[2] && last !== KEY_USAGE_LAST) continue;
        let v = readTlv(der, oid.end, ext.end);
        if (v.tag === 0x01) v = readTlv(der, v.end, ext.end); // critical
        if (v.tag !== 0x04) return null;
        if (last === KEY_USAGE_LAST) {
          const bits = readTlv(der, v.start, v.end);
          if (bits.tag !== 0x03) return null;
          facts.keyCertSign = bits.end - bits.start > 1 && (der[bits.start + 1] & KEY_CERT_SIGN_BIT) !== 0;
          continue;
        }
        const seq = readTlv(der, v.start, v.end);
        if (seq.tag !== 0x30) return null;
        if (seq.start < seq.end) {
          const first = readTlv(der, seq.start, seq.end);
          facts.isCa = first.tag === 0x01 && first.end - first.start === 1 && der[first.start] !== 0;
        }
      }
    }
    return facts;
  } catch {
    return null;
  }
}

const RSA_KEY_OIDS = new Set(['1.2.840.113549.1.1.1', '1.2.840.113549.1.1.10']); // rsaEncryption, RSASSA-PSS

/** The size of a SubjectPublicKeyInfo's key: an RSA modulus's bits (RSAPublicKey's first INTEGER), else the key's own bits. */
export function publicKeyBits(der: Uint8Array, spki: Tlv): number {
  const [algorithm, key] = childrenOf(der, spki);
  const bits = (key.end - key.start - 1) * 8; // a BIT STRING's first byte counts unused bits
  if (!RSA_KEY_OIDS.has(oidText(der, childrenOf(der, algorithm)[0]))) return bits;
  const modulus = childrenOf(der, readTlv(der, key.start + 1, key.end))[0];
  let at = modulus.start;
  while (at < modulus.end && der[at] === 0) at++;
  return at === modulus.end ? 0 : (modulus.end - at) * 8 - Math.clz32(der[at]) + 24;
}

/**
 * The largest public key a certificate in a client's path may have, a CA's or a leaf's: verifying
 * a signature of an RSA key of 16,384 bits costs ~1.6 ms (60 times a 2,048-bit one). Go's
 * crypto/tls refuses RSA keys over 8,192 bits for the same reason (CVE-2023-29409).
 */
export const MAX_KEY_BITS = 8192;
