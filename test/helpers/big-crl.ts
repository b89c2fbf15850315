// CRLs of a million entries for the tests, built as DER by hand and signed with node:crypto:
// `openssl ca` takes minutes for that many, @peculiar/x509 builds an object per entry.
import { sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { subjectNameDer } from '../../cert/der.ts';

/** One DER TLV (definite length). */
export function tlv(tag: number, body: Buffer): Buffer {
  return Buffer.concat([tlvHead(tag, body.length), body]);
}

function tlvHead(tag: number, n: number): Buffer {
  const len: number[] = [];
  if (n < 128) len.push(n);
  else {
    for (let x = n; x > 0; x = Math.floor(x / 256)) len.unshift(x & 0xff);
    len.unshift(0x80 | len.length);
  }
  return Buffer.from([tag, ...len]);
}

/** UTCTime of `d` (whole seconds). */
export function utcTime(d: Date): Buffer {
  return tlv(0x17, Buffer.from(`${d.toISOString().slice(2, 19).replace(/[-T:]/g, '')}Z`));
}

/** ecdsa-with-SHA256 AlgorithmIdentifier. */
export const ECDSA_SHA256 = tlv(0x30, tlv(0x06, Buffer.from([0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02])));

/** DER INTEGER content of a certificate serial given as hex (a 00 in front when the high bit is set). */
function integerOf(hex: string): Buffer {
  const b = Buffer.from(hex.length % 2 === 1 ? `0${hex}` : hex, 'hex');
  return b[0] >= 0x80 ? Buffer.concat([Buffer.from([0]), b]) : b;
}

/**
 * A complete CRL (DER) of the CA at `caCert` (PEM file; its P-256 key at `caKey`) revoking
 * `count` made-up 20-byte serials (0x11, zeros, the entry number in the last 4 bytes) plus
 * `extra` (hex serials, e.g. a real client certificate's), thisUpdate a minute ago.
 */
export function bigCrl(caCert: string, caKey: string, count: number, extra: string[] = []): Buffer {
  const issuer = subjectNameDer(new X509Certificate(readFileSync(caCert)).raw);
  if (issuer === null) throw new Error('no subject in the CA certificate');
  const date = utcTime(new Date(Date.now() - 60_000));
  // Every made-up entry: SEQUENCE { INTEGER (20 bytes), UTCTime } = 39 bytes, written in place.
  const entryLength = 2 + 22 + date.length;
  const made = Buffer.alloc(count * entryLength);
  for (let i = 0, at = 0; i < count; i++, at += entryLength) {
    made[at] = 0x30;
    made[at + 1] = entryLength - 2;
    made[at + 2] = 0x02;
    made[at + 3] = 20;
    made[at + 4] = 0x11;
    made.writeUInt32BE(i + 1, at + 20);
    date.copy(made, at + 24);
  }
  const extras = extra.map((hex) => tlv(0x30, Buffer.concat([tlv(0x02, integerOf(hex)), date])));
  // The extras in the middle: a lookup must find what is not at either end.
  const half = Math.floor(count / 2) * entryLength;
  const list = Buffer.concat([made.subarray(0, half), ...extras, made.subarray(half)]);
  const tbs = tlv(
    0x30,
    Buffer.concat([tlv(0x02, Buffer.from([1])), ECDSA_SHA256, issuer, date, utcTime(new Date(Date.now() + 86_400_000)), tlvHead(0x30, list.length), list]),
  );
  const signature = sign('sha256', tbs, readFileSync(caKey));
  return tlv(0x30, Buffer.concat([tbs, ECDSA_SHA256, tlv(0x03, Buffer.concat([Buffer.from([0]), signature]))]));
}
