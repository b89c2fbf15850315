// The bundle reader: verifies format and digest before it parses a byte, then the shape.
// The runtime does not carry ajv: the shape check is hand-written.
import { isAscii } from 'node:buffer';
import { createHash } from 'node:crypto';
import { BundleError } from './bundle-error.ts';
import { type DocumentHeader, HeaderError, readHeader } from './header.ts';
import { verifyShape } from './shape.ts';
import { BUNDLE_FORMAT, type Bundle, type DocumentFormat, type WireContent } from './types.ts';
import { expandContent } from './wire.ts';

/**
 * Verifies and parses a bundle: format, digest (before parsing the content), then shape, and
 * gives its content as records and indexes (bundle/wire.ts `expandContent`).
 * Throws BundleError with a message that says what is wrong and how to fix it.
 */
export function loadBundle(bytes: Uint8Array | string): Bundle {
  const { digest, signature, wire } = loadWireBundle(bytes);
  return { format: BUNDLE_FORMAT, digest, signature, content: expandContent(wire) };
}

/** A verified bundle in its file form: what the runtime reads at scale, without expanding a record per key. */
export interface WireBundle {
  /** "sha256:<hex>" of the content bytes. */
  digest: string;
  /** The header's signature (bundle/sign.ts), not verified here; or null. */
  signature: string | null;
  wire: WireContent;
}

/** `loadBundle` without the expansion: the same checks, the same errors. */
export function loadWireBundle(bytes: Uint8Array | string): WireBundle {
  const { digest, signature, content } = readDocument(bytes, BUNDLE_FORMAT, 'bundle');
  verifyShape(content);
  return { digest, signature, wire: content };
}

/** A verified document's header and its parsed (not yet shape-checked) content. */
interface Document {
  digest: string;
  signature: string | null;
  content: unknown;
}

/**
 * The header of a bundle, manifest or shard file (bundle/write.ts), its digest checked against
 * the content bytes before a byte is parsed, then the content parsed. `what` names the file in
 * messages. Throws BundleError.
 */
export function readDocument(bytes: Uint8Array | string, format: DocumentFormat, what: string): Document {
  const buf = typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let header: DocumentHeader;
  try {
    header = readHeader(buf, [format], what);
  } catch (err) {
    throw err instanceof HeaderError ? new BundleError(err.message) : err;
  }
  const { digest, signature, contentStart } = header;
  let end = buf.length;
  while (end > contentStart && (buf[end - 1] === 0x0a || buf[end - 1] === 0x0d || buf[end - 1] === 0x20)) end--;
  if (end <= contentStart || buf[end - 1] !== 0x7d /* } */) {
    throw new BundleError(`${what} is truncated (no closing brace); was it copied while being written?`);
  }
  const body = buf.subarray(contentStart, end - 1);
  const actual = createHash('sha256').update(body).digest('hex');
  if (`sha256:${actual}` !== digest) {
    throw new BundleError(
      `${what} digest mismatch: header says ${digest.slice(0, 19)}…, content hashes to sha256:${actual.slice(0, 12)}…; the file was truncated or edited after compile`,
    );
  }
  let content: unknown;
  try {
    // ASCII (the usual case) decodes as latin1: a copy instead of a UTF-8 decode, and a one-byte string JSON.parse reads faster.
    content = JSON.parse(isAscii(body) ? body.toString('latin1') : body.toString('utf8'));
  } catch (err) {
    throw new BundleError(`${what} content is not valid JSON: ${(err as Error).message}`);
  }
  return { digest, signature, content };
}
