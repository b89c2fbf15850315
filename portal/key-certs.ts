// A key's certificate list in its YAML file: renewing adds a certificate (the key then has a
// `certificates:` list, the old one and the new one), removing takes one out (a key keeps at
// least one). Comments and layout of the rest of the file are kept.
import { X509Certificate } from 'node:crypto';
import { parseDocument, Scalar, YAMLSeq } from 'yaml';
import { fingerprintOf } from '../cert/fingerprint.ts';

function pemFingerprint(pem: unknown): string | null {
  if (typeof pem !== 'string' || !pem.includes('BEGIN CERTIFICATE')) return null;
  try {
    return fingerprintOf(new X509Certificate(pem).raw);
  } catch {
    return null;
  }
}

function literal(pem: string): Scalar {
  const s = new Scalar(pem);
  s.type = Scalar.BLOCK_LITERAL;
  return s;
}

/** The inline PEMs a key declares now (`certificate`, or each of `certificates`), or null when one is not inline. */
function inlineCertificates(value: Record<string, unknown>): string[] | null {
  const list = Array.isArray(value.certificates) ? value.certificates : value.certificate === undefined ? [] : [value.certificate];
  return list.every((p) => pemFingerprint(p) !== null) ? (list as string[]) : null;
}

function withList(text: string, change: (pems: string[]) => string[] | string): string | { problem: string } {
  const doc = parseDocument(text);
  const value: unknown = doc.toJS();
  if (doc.errors.length > 0 || value === null || typeof value !== 'object') return { problem: 'The key file is not readable; ask an admin.' };
  const current = inlineCertificates(value as Record<string, unknown>);
  if (current === null) return { problem: 'This key names its certificates by file path; an admin changes it in the config directory.' };
  const next = change(current);
  if (typeof next === 'string') return { problem: next };
  doc.delete('certificate');
  doc.delete('certificates');
  if (next.length === 1) doc.set('certificate', literal(next[0]!));
  else {
    const seq = new YAMLSeq();
    for (const pem of next) seq.items.push(literal(pem));
    doc.set('certificates', seq);
  }
  return doc.toString({ lineWidth: 0 });
}

/** The key file with `pem` added to its certificates. */
export function withCertificateAdded(text: string, pem: string): string | { problem: string } {
  return withList(text, (pems) => [...pems, pem]);
}

/** The key file without the certificate of this fingerprint (refused when it is the last one). */
export function withCertificateRemoved(text: string, fingerprint: string): string | { problem: string } {
  return withList(text, (pems) => {
    const kept = pems.filter((p) => pemFingerprint(p) !== fingerprint);
    if (kept.length === pems.length) return 'This key has no such certificate.';
    if (kept.length === 0) return 'A key keeps at least one certificate: add the new one first, or switch the key off.';
    return kept;
  });
}
