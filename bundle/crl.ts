// Certificate revocation lists (RFC 5280 section 5), read straight from the DER: the issuer's
// signature, the update times and the revoked serial numbers. Shared by both halves: the
// compiler reads CRL files, the runtime the CRLs it fetches from crl_urls. A DER walk costs a
// few ms for a 10,000-entry CRL, where building an object per entry costs far more.
import { verify, type X509Certificate } from 'node:crypto';
import { childrenOf, oidText, readTlv, type Tlv } from '../cert/der.ts';

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
  /** cRLNumber (lowercase hex, no leading zeros), or null: orders two CRLs of one CA. */
  number: string | null;
}

// CRL extensions (RFC 5280 5.2) this reader processes; a CRL marking any other critical is refused.
const CRL_NUMBER = '2.5.29.20';
const DELTA_CRL_INDICATOR = '2.5.29.27';
const ISSUING_DISTRIBUTION_POINT = '2.5.29.28';
const AUTHORITY_KEY_ID = '2.5.29.35';

/**
 * Refuses what is not a complete CRL of its issuer: a delta CRL (only the changes since a base
 * CRL), an issuingDistributionPoint narrowing it to CA certificates, attribute certificates or
 * some reasons, or making it indirect (entries of other issuers), and any other critical
 * extension. Read as a complete list, each would un-revoke what it leaves out, and anyone on
 * the plain-HTTP path to a crl_url can serve one (they are signed by the CA all the same).
 * onlyContainsUserCerts is accepted: it covers every leaf, the certificates a CRL here revokes.
 */
function readCrlExtensions(der: Buffer, exts: Tlv): string | null {
  let number: string | null = null;
  for (const ext of childrenOf(der, readTlv(der, exts.start, exts.end))) {
    const parts = childrenOf(der, ext);
    const id = oidText(der, parts[0]);
    const critical = parts.length === 3 && parts[1].tag === 0x01 && der[parts[1].start] !== 0;
    const value = readTlv(der, parts[parts.length - 1].start, parts[parts.length - 1].end);
    if (id === DELTA_CRL_INDICATOR) throw new RangeError('it is a delta CRL (deltaCRLIndicator): give the complete CRL');
    if (id === ISSUING_DISTRIBUTION_POINT) {
      for (const field of childrenOf(der, value)) {
        // [1] onlyContainsUserCerts, [2] onlyContainsCACerts, [3] onlySomeReasons, [4] indirectCRL, [5] onlyContainsAttributeCerts
        const on = field.tag === 0x83 || der[field.start] !== 0;
        if (on && [0x82, 0x83, 0x84, 0x85].includes(field.tag))
          throw new RangeError('its issuingDistributionPoint makes it a partial or indirect CRL: give the complete CRL');
      }
    } else if (id === CRL_NUMBER) {
      number = normaliseSerial(Buffer.from(der.subarray(value.start, value.end)).toString('hex'));
    } else if (critical && id !== AUTHORITY_KEY_ID) throw new RangeError(`critical extension ${id} is not processed`);
  }
  return number;
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

/**
 * A certificate's serial (node:crypto's `serialNumber`) as a CRL entry's serial is written: the
 * hex of the INTEGER's content bytes, normalised. For a positive serial that is the hex node
 * gives; a negative one (RFC 5280 forbids them, OpenSSL issues and accepts them) node writes as
 * `-05`, while its DER content, and so the CRL's entry, is two's complement `fb`. Without this a
 * revoked certificate with a negative serial passed every CRL. (Two's complement makes -5 and
 * 251 both `fb`: a CRL revoking one refuses the other too, closed rather than open.)
 */
export function certificateSerial(serialNumber: string): string {
  if (!serialNumber.startsWith('-')) return normaliseSerial(serialNumber);
  const magnitude = BigInt(`0x${serialNumber.slice(1) || '0'}`);
  if (magnitude === 0n) return '0';
  // The fewest bytes whose signed range holds -magnitude, then the value modulo 256^bytes.
  let bytes = 1n;
  while (magnitude > 1n << (8n * bytes - 1n)) bytes++;
  return normaliseSerial(((1n << (8n * bytes)) - magnitude).toString(16));
}

// OpenSSL writes X509 CRL; some libraries (@peculiar/x509 among them) write plain CRL.
const PEM_CRL_BEGIN = ['-----BEGIN X509 CRL-----', '-----BEGIN CRL-----'];
const PEM_CRL_END = ['-----END X509 CRL-----', '-----END CRL-----'];

/** Where the first of `marks` stands in `text` from `from` on: [index, length], or null. */
function firstOf(text: string, marks: string[], from: number): [number, number] | null {
  let found: [number, number] | null = null;
  for (const mark of marks) {
    const at = text.indexOf(mark, from);
    if (at !== -1 && (found === null || at < found[0])) found = [at, mark.length];
  }
  return found;
}

/**
 * DER of a CRL given as PEM text or DER bytes. Throws Error saying what is wrong. The first
 * BEGIN and the first END after it, found with indexOf: linear in the body. A lazy regex
 * (`BEGIN(.*?)END`) retried from every BEGIN that has no END after it, and a crl_url answer of
 * 400 KB of "-----BEGIN X509 CRL-----" took 3 s on the event loop (64 MiB: hours), from anyone
 * who answers a plain-HTTP crl_url (docs/security.md section 46).
 */
function crlDer(bytes: Buffer): Buffer {
  if (bytes[0] === 0x30) return bytes;
  const text = bytes.toString('latin1');
  const begin = firstOf(text, PEM_CRL_BEGIN, 0);
  const end = begin === null ? null : firstOf(text, PEM_CRL_END, begin[0] + begin[1]);
  if (begin === null || end === null) throw new Error('is neither a DER CRL nor PEM with -----BEGIN X509 CRL-----');
  return Buffer.from(text.slice(begin[0] + begin[1], end[0]), 'base64');
}

/** What a CRL's signature covers and is, read without walking its entries: cheap at any size. */
export interface SignedCrl {
  /** The whole CRL as DER. */
  der: Buffer;
  /** The signed part (tbsCertList), exactly as it stands in the DER. */
  tbs: Buffer;
  /** Signature algorithm OID (dotted). */
  algorithm: string;
  signature: Buffer;
  /** The issuer Name's DER (to find which CA signed it without checking every CA's signature). */
  issuer: Buffer;
}

/**
 * The signed parts of a CRL (PEM or DER); throws Error saying what is wrong. A fetched CRL's
 * signature is checked on these before its entries are walked: whoever answers a plain-HTTP
 * crl_url could otherwise make the gateway walk 64 MiB of made-up entries (8 s on the event
 * loop) before the signature refused them (docs/security.md section 46).
 */
export function signedCrl(bytes: Buffer): SignedCrl {
  const der = crlDer(bytes);
  try {
    return readSigned(der).signed;
  } catch (err) {
    throw new Error(`is not a readable CRL (${(err as Error).message})`);
  }
}

function readSigned(der: Buffer): { signed: SignedCrl; tbs: Tlv; issuer: Tlv } {
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
  const signed: SignedCrl = {
    der,
    tbs: der.subarray(tbs.head, tbs.end),
    algorithm,
    signature: der.subarray(sigBits.start + 1, sigBits.end),
    issuer: der.subarray(issuer.head, issuer.end),
  };
  return { signed, tbs, issuer };
}

/** Parses a CRL (PEM or DER), entries and all. Throws Error saying what is wrong. */
export function parseCrl(bytes: Buffer): Crl {
  const serials: string[] = [];
  const crl = walkCrl(bytes, (der, start, end) => serials.push(normaliseSerial(Buffer.from(der.subarray(start, end)).toString('hex'))));
  return { ...crl, serials };
}

/**
 * Reads a CRL (PEM or DER), handing each entry's serial (the INTEGER's content bytes in `der`)
 * to `onSerial`, or walking no entry when it is null (what a floor needs: the update times and
 * the cRLNumber). Throws Error saying what is wrong. The entries' checks (a serial, no critical
 * entry extension) are made only when they are walked.
 */
export function walkCrl(bytes: Buffer, onSerial: ((der: Buffer, start: number, end: number) => void) | null): Omit<Crl, 'serials'> {
  const der = crlDer(bytes);
  try {
    const { signed, tbs, issuer } = readSigned(der);
    const thisUpdateTlv = readTlv(der, issuer.end, tbs.end);
    const thisUpdate = timeOf(der, thisUpdateTlv);
    let at = thisUpdateTlv.end;
    let nextUpdate: Date | null = null;
    let number: string | null = null;
    let entriesSeen = false;
    while (at < tbs.end) {
      const next = readTlv(der, at, tbs.end);
      at = next.end;
      if ((next.tag === 0x17 || next.tag === 0x18) && nextUpdate === null && !entriesSeen) nextUpdate = timeOf(der, next);
      else if (next.tag === 0x30) {
        entriesSeen ||= next.end > next.start;
        if (onSerial === null) continue;
        // revokedCertificates: SEQUENCE OF SEQUENCE { userCertificate INTEGER, revocationDate, crlEntryExtensions }
        for (let e = next.start; e < next.end; ) {
          const entry = readTlv(der, e, next.end);
          e = entry.end;
          const [serial, , entryExts] = childrenOf(der, entry);
          if (serial?.tag !== 0x02) throw new RangeError('entry without a serial number');
          // certificateIssuer (an indirect CRL's) and any other critical entry extension: not processed.
          if (entryExts !== undefined && hasCriticalExtension(der, entryExts)) throw new RangeError('an entry has a critical extension (an indirect CRL?)');
          onSerial(der, serial.start, serial.end);
        }
      } else if (next.tag === 0xa0) number = readCrlExtensions(der, next);
    }
    return {
      tbs: signed.tbs,
      algorithm: signed.algorithm,
      signature: signed.signature,
      thisUpdate,
      nextUpdate,
      number,
    };
  } catch (err) {
    throw new Error(`is not a readable CRL (${(err as Error).message})`);
  }
}

function hasCriticalExtension(der: Buffer, exts: Tlv): boolean {
  return childrenOf(der, exts).some((ext) => {
    const parts = childrenOf(der, ext);
    return parts.length === 3 && parts[1].tag === 0x01 && der[parts[1].start] !== 0;
  });
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

/**
 * What a floor is made of (runtime/cluster/verify-taken.ts): the thisUpdate (ms) and cRLNumber
 * of the CRL `bytes` (PEM or DER) if `ca` signed it, else why not. The signature before the
 * header; no entry walked.
 */
export function crlFloorOf(bytes: Buffer, ca: X509Certificate): { thisUpdate: number; number: string | null } | string {
  try {
    const signed = signedCrl(bytes);
    if (!crlSignedBy(signed, ca)) return 'its signature does not verify against the CA certificate sent with it';
    const header = walkCrl(signed.der, null);
    return { thisUpdate: header.thisUpdate.getTime(), number: header.number };
  } catch (err) {
    return (err as Error).message;
  }
}

/** Does `ca` sign this CRL (a CA certificate whose key verifies the signature)? */
export function crlSignedBy(crl: Pick<Crl, 'tbs' | 'algorithm' | 'signature'>, ca: X509Certificate): boolean {
  if (!(crl.algorithm in HASH_OF) || !ca.ca) return false;
  try {
    return verify(HASH_OF[crl.algorithm], crl.tbs, ca.publicKey, crl.signature);
  } catch {
    return false;
  }
}
