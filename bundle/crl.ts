// Certificate revocation lists (RFC 5280 section 5), read straight from the DER: the issuer's
// signature, the update times and the revoked serial numbers. Shared by both halves: the
// compiler reads CRL files, the runtime the CRLs it fetches from crl_urls. A DER walk costs a
// few ms for a 10,000-entry CRL, where building an object per entry costs far more.
import { verify, type X509Certificate } from 'node:crypto';
import { oidText, readTlv, type Tlv } from '../cert/der.ts';

export interface Crl {
  /** The signed part (tbsCertList), exactly as it stands in the DER. */
  tbs: Buffer;
  /** Signature algorithm OID (dotted). */
  algorithm: string;
  signature: Buffer;
  thisUpdate: Date;
  nextUpdate: Date | null;
  /** Revoked serial numbers: lowercase hex without leading zeros. */
  serials: string[];
}

function digits(buf: Uint8Array, at: number, n: number): number {
  let v = 0;
  for (let i = 0; i < n; i++) {
    const d = buf[at + i] - 48;
    if (d < 0 || d > 9) throw new RangeError('bad time');
    v = v * 10 + d;
  }
  return v;
}

function timeOf(buf: Uint8Array, t: Tlv): Date {
  let at = t.start;
  let year: number;
  if (t.tag === 0x17 && t.end - t.start === 13) {
    const yy = digits(buf, at, 2);
    year = yy >= 50 ? 1900 + yy : 2000 + yy;
    at += 2;
  } else if (t.tag === 0x18 && t.end - t.start === 15) {
    year = digits(buf, at, 4);
    at += 4;
  } else throw new RangeError('unsupported time encoding');
  if (buf[t.end - 1] !== 0x5a) throw new RangeError('time is not UTC');
  return new Date(Date.UTC(year, digits(buf, at, 2) - 1, digits(buf, at + 2, 2), digits(buf, at + 4, 2), digits(buf, at + 6, 2), digits(buf, at + 8, 2)));
}

/** A serial number as every part of mtlsgate writes it: lowercase hex, no leading zeros. */
export function normaliseSerial(hex: string): string {
  const s = hex.toLowerCase().replace(/^0+/, '');
  return s === '' ? '0' : s;
}

// OpenSSL writes X509 CRL; some libraries (@peculiar/x509 among them) write plain CRL.
const PEM_CRL = /-----BEGIN (?:X509 )?CRL-----([\s\S]*?)-----END (?:X509 )?CRL-----/;

/** DER of a CRL given as PEM text or DER bytes. Throws Error saying what is wrong. */
export function crlDer(bytes: Buffer): Buffer {
  if (bytes[0] === 0x30) return bytes;
  const m = PEM_CRL.exec(bytes.toString('latin1'));
  if (!m) throw new Error('is neither a DER CRL nor PEM with -----BEGIN X509 CRL-----');
  return Buffer.from(m[1], 'base64');
}

/** Parses a CRL (PEM or DER). Throws Error saying what is wrong. */
export function parseCrl(bytes: Buffer): Crl {
  const der = crlDer(bytes);
  try {
    const outer = readTlv(der, 0, der.length);
    if (outer.tag !== 0x30) throw new RangeError('not a SEQUENCE');
    const tbs = readTlv(der, outer.start, outer.end);
    const sigAlg = readTlv(der, tbs.end, outer.end);
    const sigBits = readTlv(der, sigAlg.end, outer.end);
    if (tbs.tag !== 0x30 || sigAlg.tag !== 0x30 || sigBits.tag !== 0x03) throw new RangeError('not a CertificateList');
    const algorithm = oidText(der, readTlv(der, sigAlg.start, sigAlg.end));
    let t = readTlv(der, tbs.start, tbs.end);
    if (t.tag === 0x02) t = readTlv(der, t.end, tbs.end); // version
    // t: signature AlgorithmIdentifier; then issuer Name
    const issuer = readTlv(der, t.end, tbs.end);
    const thisUpdateTlv = readTlv(der, issuer.end, tbs.end);
    const thisUpdate = timeOf(der, thisUpdateTlv);
    let at = thisUpdateTlv.end;
    let nextUpdate: Date | null = null;
    const serials: string[] = [];
    if (at < tbs.end) {
      let next = readTlv(der, at, tbs.end);
      if (next.tag === 0x17 || next.tag === 0x18) {
        nextUpdate = timeOf(der, next);
        at = next.end;
        next = at < tbs.end ? readTlv(der, at, tbs.end) : next;
      }
      if (at < tbs.end && next.tag === 0x30) {
        // revokedCertificates: SEQUENCE OF SEQUENCE { userCertificate INTEGER, revocationDate, ... }
        for (let e = next.start; e < next.end; ) {
          const entry = readTlv(der, e, next.end);
          e = entry.end;
          const serial = readTlv(der, entry.start, entry.end);
          if (serial.tag !== 0x02) throw new RangeError('entry without a serial number');
          serials.push(normaliseSerial(Buffer.from(der.subarray(serial.start, serial.end)).toString('hex')));
        }
      }
    }
    return {
      tbs: der.subarray(tbs.head, tbs.end),
      algorithm,
      signature: der.subarray(sigBits.start + 1, sigBits.end),
      thisUpdate,
      nextUpdate,
      serials,
    };
  } catch (err) {
    throw new Error(`is not a readable CRL (${(err as Error).message})`);
  }
}

const HASH_OF: Record<string, string | null> = {
  '1.2.840.113549.1.1.5': 'sha1',
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
  '1.3.101.112': null, // Ed25519
  '1.3.101.113': null, // Ed448
};

/** Does `ca` sign this CRL (a CA certificate whose key verifies the signature)? */
export function crlSignedBy(crl: Crl, ca: X509Certificate): boolean {
  if (!(crl.algorithm in HASH_OF) || !ca.ca) return false;
  try {
    return verify(HASH_OF[crl.algorithm], crl.tbs, ca.publicKey, crl.signature);
  } catch {
    return false;
  }
}
