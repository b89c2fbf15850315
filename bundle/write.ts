// The deterministic bundle writer (compiler side): same content, same bytes.
import { createHash } from 'node:crypto';
import {
  BUNDLE_FORMAT,
  type BundleContent,
  type DocumentFormat,
  MANIFEST_FORMAT,
  type ManifestContent,
  SHARD_FORMAT,
  type ShardContent,
  type WireContent,
} from './types.ts';
import { encodeContent } from './wire.ts';
import { CONTENT_MARK } from './header.ts';

/**
 * Returns `value` with object keys in sorted order, recursively. Parts that are already in
 * order (plain objects whose keys were inserted sorted, with no undefined values) are returned
 * as they are rather than copied: the compiler builds its content that way, which spares
 * copying a 100,000-key bundle. Either way JSON.stringify produces the same bytes.
 */
function sortKeysDeep(value: unknown): unknown {
  if (Array.isArray(value)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const v = sortKeysDeep(value[i]);
      if (out) out.push(v);
      else if (v !== value[i]) {
        out = value.slice(0, i);
        out.push(v);
      }
    }
    return out ?? value;
  }
  if (value !== null && typeof value === 'object') {
    const src = value as Record<string, unknown>;
    const keys = Object.keys(src);
    const proto = Object.getPrototypeOf(src);
    let reuse = proto === Object.prototype || proto === null;
    for (let i = 1; reuse && i < keys.length; i++) if (keys[i - 1] > keys[i]) reuse = false;
    // Children already sorted while checking are not sorted twice when the object is copied.
    const sortedValues: unknown[] = [];
    for (let i = 0; reuse && i < keys.length; i++) {
      const v = src[keys[i]];
      if (v === undefined) reuse = false;
      else {
        const sorted = sortKeysDeep(v);
        sortedValues.push(sorted);
        if (sorted !== v) reuse = false;
      }
    }
    if (reuse) return value;
    const order = keys.map((_, i) => i).sort((a, b) => (keys[a] < keys[b] ? -1 : keys[a] > keys[b] ? 1 : 0));
    const out: Record<string, unknown> = {};
    for (const i of order) {
      const v = src[keys[i]];
      if (v !== undefined) out[keys[i]] = i < sortedValues.length ? sortedValues[i] : sortKeysDeep(v);
    }
    return out;
  }
  return value;
}

/**
 * Serialises content deterministically: same content, same bytes. The content is written in
 * its file form (bundle/wire.ts `encodeContent`: keys as columns, shared sessions once).
 * Object keys are sorted (JSON.stringify then keeps insertion order, except that integer-like
 * keys come first in numeric order, which is just as deterministic); arrays keep their order.
 */
export function serializeBundle(content: BundleContent): Buffer {
  return serializeWire(encodeContent(content));
}

/** The bundle file of content already in its file form (tests use it to write a bundle the writer never would). */
export function serializeWire(wire: WireContent): Buffer {
  return serializeDocument(BUNDLE_FORMAT, wire);
}

/** A sharded bundle's manifest file (bundle/shards.ts). */
export function serializeManifest(manifest: ManifestContent): Buffer {
  return serializeDocument(MANIFEST_FORMAT, manifest);
}

/** A shard file (bundle/shards.ts). */
export function serializeShard(shard: ShardContent): Buffer {
  return serializeDocument(SHARD_FORMAT, shard);
}

/** `{"format":F,"digest":"sha256:<hex of the content bytes>","content":...}` + newline. */
function serializeDocument(format: DocumentFormat, content: unknown): Buffer {
  // Hash the string (hashing encodes it as UTF-8) and encode the file once: every extra copy
  // of a big bundle shows in compile time.
  const body = JSON.stringify(sortKeysDeep(content));
  const digest = createHash('sha256').update(body, 'utf8').digest('hex');
  return Buffer.from(`{"format":"${format}","digest":"sha256:${digest}${CONTENT_MARK}${body}}\n`, 'utf8');
}

/** A value's JSON as the writer writes it inside a document (object keys sorted). */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeysDeep(value));
}

/**
 * A bundle file from its content's bytes in pieces (compiler/section-patch.ts copies most of
 * them from the previous bundle): the same bytes serializeWire writes for the same content.
 * Returns the file and its "sha256:<hex>" digest.
 */
export function bundleOfContentBytes(pieces: readonly Uint8Array[]): { bytes: Buffer; digest: string } {
  const hash = createHash('sha256');
  for (const p of pieces) hash.update(p);
  const digest = `sha256:${hash.digest('hex')}`;
  const head = Buffer.from(`{"format":"${BUNDLE_FORMAT}","digest":"${digest}${CONTENT_MARK}`, 'utf8');
  return { bytes: Buffer.concat([head, ...pieces, Buffer.from('}\n')]), digest };
}

/** The "sha256:<hex>" digest in a document's header (as written by this module). */
export function documentDigest(bytes: Buffer): string {
  const head = bytes.subarray(0, 200).toString('latin1');
  const at = head.indexOf('"digest":"') + '"digest":"'.length;
  return head.slice(at, at + 71);
}
