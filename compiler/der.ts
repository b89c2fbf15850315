// The two facts the compiler needs from every certificate, read straight from the DER: the
// validity period and whether basicConstraints says cA. node:crypto's X509Certificate costs
// ~200 µs a certificate on this machine (30 s for 100,000 keys); walking the DER costs ~2 µs.
// Anything this reader does not understand returns null and the caller falls back to
// X509Certificate, so an unusual but valid certificate is never rejected here.

export interface CertFacts {
  notBefore: Date;
  notAfter: Date;
  isCa: boolean;
}

interface Tlv {
  tag: number;
  /** Offset of the value. */
  start: number;
  /** Offset just past the value. */
  end: number;
}

function readTlv(buf: Uint8Array, at: number, limit: number): Tlv {
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
  return { tag, start, end: start + len };
}

function parseTime(buf: Uint8Array, t: Tlv): Date {
  const s = Buffer.from(buf.buffer, buf.byteOffset + t.start, t.end - t.start).toString('latin1');
  let m: RegExpExecArray | null;
  let year: number;
  if (t.tag === 0x17) {
    m = /^(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(s);
    if (!m) throw new RangeError('bad UTCTime');
    const yy = Number(m[1]);
    year = yy >= 50 ? 1900 + yy : 2000 + yy;
  } else if (t.tag === 0x18) {
    m = /^(\d\d\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(s);
    if (!m) throw new RangeError('bad GeneralizedTime');
    year = Number(m[1]);
  } else throw new RangeError('not a time');
  return new Date(Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])));
}

// 2.5.29.19 basicConstraints
const BASIC_CONSTRAINTS = [0x55, 0x1d, 0x13];

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
    const nb = readTlv(der, validity.start, validity.end);
    const na = readTlv(der, nb.end, validity.end);
    const facts: CertFacts = { notBefore: parseTime(der, nb), notAfter: parseTime(der, na), isCa: false };
    t = readTlv(der, (at = validity.end), tbs.end); // subject
    if (t.tag !== 0x30) return null;
    t = readTlv(der, (at = t.end), tbs.end); // subjectPublicKeyInfo
    if (t.tag !== 0x30) return null;
    for (at = t.end; at < tbs.end; at = t.end) {
      t = readTlv(der, at, tbs.end);
      if (t.tag !== 0xa3) continue; // issuerUniqueID / subjectUniqueID
      const exts = readTlv(der, t.start, t.end);
      for (let e = exts.start; e < exts.end; ) {
        const ext = readTlv(der, e, exts.end);
        e = ext.end;
        const oid = readTlv(der, ext.start, ext.end);
        if (oid.tag !== 0x06) return null;
        if (oid.end - oid.start !== 3 || der[oid.start] !== BASIC_CONSTRAINTS[0] || der[oid.start + 1] !== BASIC_CONSTRAINTS[1] || der[oid.start + 2] !== BASIC_CONSTRAINTS[2]) continue;
        let v = readTlv(der, oid.end, ext.end);
        if (v.tag === 0x01) v = readTlv(der, v.end, ext.end); // critical
        if (v.tag !== 0x04) return null;
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
