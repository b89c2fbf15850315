// The header every bundle, manifest and shard file starts with (bundle/write.ts writes it,
// bundle/sign.ts puts the signature in it):
//   {"format":"<format>","digest":"sha256:<64 hex>"[,"signature":"<signature>"],"content":...
// Read here only: by the reader (bundle/read.ts, which checks the digest against the content
// before it parses a byte) and by the signer and the verifier (bundle/sign.ts, which work from
// the header alone), so the two cannot disagree on where the content starts or what a
// signature field may hold.
import type { DocumentFormat } from './types.ts';
import { BUNDLE_FORMAT, MANIFEST_FORMAT } from './types.ts';

/** The header cannot be read; the message says why (the caller's error class carries it). */
export class HeaderError extends Error {
  override name = 'HeaderError';
}

export const SIGNATURE_MARK = '","signature":"';
export const CONTENT_MARK = '","content":';
/** ed25519:<key id>:[<signed at>:]<base64>; the time (v2) is an ISO-8601 UTC instant in milliseconds, absent in v1. */
export const SIGNATURE = /^ed25519:([0-9a-f]{16}):(?:(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z):)?([A-Za-z0-9+/]{86}==)$/;
/** The header is within the first bytes (format, 71-character digest, a signature of at most ~150). */
const HEAD_BYTES = 512;

export interface DocumentHeader {
  format: DocumentFormat;
  /** "sha256:<hex>" of the content bytes, as the header states it (not checked here). */
  digest: string;
  /** The signature field, of the SIGNATURE form but not verified; null when there is none. */
  signature: string | null;
  /** Byte offsets: just after the digest's hex; where `","content":` starts (= digestEnd when unsigned); the content's first byte. */
  digestEnd: number;
  signatureEnd: number;
  contentStart: number;
}

/**
 * The header of `bytes`, a document of one of `formats`; `what` names the file in messages
 * ("bundle", "manifest", "shard 3"). Throws HeaderError saying what is wrong and what to do.
 */
export function readHeader(bytes: Uint8Array, formats: readonly DocumentFormat[], what: string): DocumentHeader {
  if (bytes.length === 0) throw new HeaderError(`${what} is empty`);
  // Latin-1: a character a byte, so an offset in `head` is an offset in the file. The header is
  // ASCII; a byte that is not fails the checks below.
  const head = Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.length, HEAD_BYTES)).toString('latin1');
  if (!head.startsWith('{"format":')) {
    const expected = formats.map((f) => `{"format":"${f}",...}`).join(' or ');
    throw new HeaderError(`not an mtlsgate ${what} (expected ${expected}); produce one with \`mtlsgate compile\``);
  }
  const format = formats.find((f) => head.startsWith(`{"format":"${f}"`));
  if (format === undefined) {
    const found = /^\{"format":"([^"]*)"/.exec(head)?.[1] ?? '?';
    throw new HeaderError(`unsupported ${what} format ${JSON.stringify(found)}; this runtime reads ${formats.join(' or ')}${formatHint(formats, found)}`);
  }
  const prefix = `{"format":"${format}","digest":"sha256:`;
  if (!head.startsWith(prefix)) throw new HeaderError(`${what} header is malformed (digest missing); recompile it`);
  const digestEnd = prefix.length + 64;
  const hex = head.slice(prefix.length, digestEnd);
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new HeaderError(`${what} header is malformed (digest is not 64 hex characters); recompile it`);
  let signature: string | null = null;
  let signatureEnd = digestEnd;
  if (head.startsWith(SIGNATURE_MARK, digestEnd)) {
    const start = digestEnd + SIGNATURE_MARK.length;
    signatureEnd = head.indexOf('"', start);
    if (signatureEnd === -1) throw new HeaderError(`${what} header is malformed (unterminated signature)`);
    signature = head.slice(start, signatureEnd);
    if (!SIGNATURE.test(signature))
      throw new HeaderError(`${what} signature is malformed (expected ed25519:<key id>:<signed at>:<base64>); sign it again with \`mtlsgate compile --sign\``);
  }
  if (!head.startsWith(CONTENT_MARK, signatureEnd))
    throw new HeaderError(`${what} header is malformed (no "content" after the ${signature === null ? 'digest' : 'signature'}); recompile it`);
  return { format, digest: `sha256:${hex}`, signature, digestEnd, signatureEnd, contentStart: signatureEnd + CONTENT_MARK.length };
}

/** What to do when a file of another mtlsgate format is given where one format is read. */
function formatHint(expected: readonly DocumentFormat[], found: string): string {
  if (expected.length !== 1) return '';
  if (expected[0] === BUNDLE_FORMAT && found === MANIFEST_FORMAT) return ": this is a sharded bundle's manifest; give its directory (or its URL) as --bundle";
  if (expected[0] === BUNDLE_FORMAT || expected[0] === MANIFEST_FORMAT) return ': recompile with the matching mtlsgate';
  return '';
}
