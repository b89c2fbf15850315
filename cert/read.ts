// Reading certificates from what users give: PEM text (any number of CERTIFICATE blocks, other
// blocks ignored) or one DER certificate; and writing a DER back as PEM. Parsing into fields is
// left to node:crypto's X509Certificate (or cert/der.ts for the two facts the compiler needs fast).
/** A certificate file larger than this is not one (a CA bundle of every public root is ~200 KiB). */
export const MAX_CERT_FILE_BYTES = 16 * 1024 * 1024;

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;

export interface PemBlock {
  /** The label: "CERTIFICATE", "PRIVATE KEY", ... */
  label: string;
  /** The decoded body (base64 is decoded leniently: garbage shows up when the DER is parsed). */
  der: Buffer;
}

/** Every PEM block in `text`, in order. */
export function pemBlocks(text: string): PemBlock[] {
  return [...text.matchAll(PEM_BLOCK)].map((m) => ({ label: m[1], der: Buffer.from(m[2], 'base64') }));
}

/** The DER of every CERTIFICATE block in `text`, in order. */
export function certificateDers(text: string): Buffer[] {
  return pemBlocks(text)
    .filter((b) => b.label === 'CERTIFICATE')
    .map((b) => b.der);
}

/** True when the text holds PEM armour (so it is not binary DER). */
export function isPem(text: string): boolean {
  return text.includes('-----BEGIN ');
}

/** PEM of a DER certificate, 64 base64 characters a line (as OpenSSL writes it). */
export function derToPem(der: Uint8Array): string {
  const b64 = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '');
  return `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`;
}

/**
 * Why certificate bytes that OpenSSL parsed are not the certificate it reads (`raw`: what it
 * writes back, and what the gateway fingerprints), or null when they are. Node's
 * X509Certificate ignores bytes after the certificate and re-encodes a longer length form.
 */
export function notExactlyOneCertificate(der: Uint8Array, raw: Uint8Array): { extraBytes: Uint8Array | null; problem: string } | null {
  if (Buffer.from(der.buffer, der.byteOffset, der.byteLength).equals(raw)) return null;
  const trailing = der.length > raw.length && Buffer.from(der.buffer, der.byteOffset, raw.length).equals(raw);
  if (trailing) {
    const extra = der.subarray(raw.length);
    return { extraBytes: extra, problem: `has ${extra.length} bytes after the certificate` };
  }
  return { extraBytes: null, problem: 'is not in DER form (OpenSSL re-encodes it, so its SHA-256 would not be the one the gateway sees)' };
}
