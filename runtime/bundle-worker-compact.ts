// A verified bundle in the form a worker thread hands to the main thread.
//
// Receiving a parsed 100,000-key bundle from a worker costs the main thread as much as parsing
// it (structured clone rebuilds every object), so the big maps travel as a few byte arrays
// (UTF-8 text with Int32Array end offsets) that are transferred, not copied; the snapshot looks
// entries up by binary search and parses one key's JSON on its first request. The small parts
// (apis, cas, routes) travel as plain objects.
import { BUNDLE_FORMAT, type Bundle, type BundleApi, type BundleCa, type BundleContent, type BundleKey } from '../bundle/types.ts';

export interface CompactBundle {
  digest: string;
  /** The header's signature (bundle/sign.ts), verified by the store before the worker ran; or null. */
  signature: string | null;
  /** SHA-256 of the file bytes (the digest covers the content only). */
  bytesSha256: string;
  /** What the worker found wrong with a key's expiry or allowed_urls pattern (bundle/checks.ts `checkKeys`), or null. */
  keyError: string | null;
  apis: Record<string, BundleApi>;
  cas: Record<string, BundleCa>;
  routes: BundleContent['index']['routes'];
  /** certificate_match rules by key id (kept whole: the snapshot indexes them at load). */
  matches: BundleContent['index']['matches'];
  revocation: BundleContent['revocation'];
  /** content.not_after, sorted by time: fingerprints (64 hex each) concatenated, and their times (s). */
  expiryFingerprints: Uint8Array;
  expiryTimes: Float64Array;
  /** Key ids in ascending (JavaScript string) order, UTF-8, concatenated; keyIdEnds[i] = byte end of id i. */
  keyIds: Uint8Array;
  keyIdEnds: Int32Array;
  /** JSON of each key, in keyIds order, UTF-8, concatenated; keyJsonEnds[i] = byte end of key i. */
  keyJson: Uint8Array;
  keyJsonEnds: Int32Array;
  /** Certificate fingerprints (64 hex characters each) in ascending order, concatenated. */
  certFingerprints: Uint8Array;
  /** Per fingerprint: index of its key in keyIds, or -1 (no key). */
  certKeys: Int32Array;
  /** [fingerprint index, apis] for the fingerprints APIs pin (most have none). */
  certApis: [number, string[]][];
  /** Token SHA-256s (64 hex characters each) in ascending order, concatenated. */
  tokenHashes: Uint8Array;
  /** Per token hash: index of its key in keyIds. */
  tokenKeys: Int32Array;
}

const HEX64_LENGTH = 64;

/** Strings as one UTF-8 byte array (its own ArrayBuffer, so it can be transferred) and their byte ends. */
function pack(strings: string[]): { bytes: Uint8Array; ends: Int32Array } {
  const ends = new Int32Array(strings.length);
  let at = 0;
  for (let i = 0; i < strings.length; i++) ends[i] = at += Buffer.byteLength(strings[i], 'utf8');
  const bytes = new Uint8Array(at);
  Buffer.from(bytes.buffer).write(strings.join(''), 'utf8');
  return { bytes, ends };
}

/** Flattens a verified bundle (runs in the worker; the big part of the cost is JSON.stringify per key). */
export function compactBundle(bundle: Bundle, bytesSha256: string, keyError: string | null): CompactBundle {
  const content = bundle.content;
  const ids = Object.keys(content.keys).sort();
  const indexOf = new Map<string, number>();
  const jsons: string[] = new Array(ids.length);
  for (let i = 0; i < ids.length; i++) {
    indexOf.set(ids[i], i);
    jsons[i] = JSON.stringify(content.keys[ids[i]]);
  }
  const fingerprints = Object.keys(content.index.certs).sort();
  const certKeys = new Int32Array(fingerprints.length);
  const certApis: [number, string[]][] = [];
  fingerprints.forEach((fp, i) => {
    const entry = content.index.certs[fp];
    certKeys[i] = entry.key === null ? -1 : indexOf.get(entry.key)!;
    if (entry.apis.length > 0) certApis.push([i, entry.apis]);
  });
  const hashes = Object.keys(content.index.tokens).sort();
  const tokenKeys = new Int32Array(hashes.length);
  hashes.forEach((h, i) => (tokenKeys[i] = indexOf.get(content.index.tokens[h])!));
  const ids8 = pack(ids);
  const json8 = pack(jsons);
  const expiring = Object.entries(content.not_after).sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : 1));
  return {
    digest: bundle.digest,
    signature: bundle.signature ?? null,
    bytesSha256,
    keyError,
    apis: content.apis,
    cas: content.cas,
    routes: content.index.routes,
    matches: content.index.matches,
    revocation: content.revocation,
    expiryFingerprints: pack(expiring.map((e) => e[0])).bytes,
    expiryTimes: Float64Array.from(expiring, (e) => e[1]),
    keyIds: ids8.bytes,
    keyIdEnds: ids8.ends,
    keyJson: json8.bytes,
    keyJsonEnds: json8.ends,
    certFingerprints: pack(fingerprints).bytes,
    certKeys,
    certApis,
    tokenHashes: pack(hashes).bytes,
    tokenKeys,
  };
}

/** The buffers a postMessage of `c` can transfer rather than copy. */
export function transferables(c: CompactBundle): ArrayBuffer[] {
  const arrays = [
    c.keyIds,
    c.keyIdEnds,
    c.keyJson,
    c.keyJsonEnds,
    c.certFingerprints,
    c.certKeys,
    c.tokenHashes,
    c.tokenKeys,
    c.expiryFingerprints,
    c.expiryTimes,
  ];
  return arrays.map((a) => a.buffer as ArrayBuffer);
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function entry(text: Buffer, entryEnds: Int32Array, i: number): string {
  return text.toString('utf8', i === 0 ? 0 : entryEnds[i - 1], entryEnds[i]);
}

function hexAt(text: Buffer, i: number): string {
  return text.toString('latin1', i * HEX64_LENGTH, (i + 1) * HEX64_LENGTH);
}

/** Index of `id` in a sorted concatenation with end offsets, or -1. */
function findVariable(text: Buffer, entryEnds: Int32Array, id: string): number {
  let lo = 0;
  let hi = entryEnds.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const at = entry(text, entryEnds, mid);
    if (at === id) return mid;
    if (at < id) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

/** Index of a 64-character hex string in a sorted concatenation of them, or -1. */
function findHex64(text: Buffer, hex: string): number {
  if (hex.length !== HEX64_LENGTH) return -1;
  let lo = 0;
  let hi = text.length / HEX64_LENGTH - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const at = hexAt(text, mid);
    if (at === hex) return mid;
    if (at < hex) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

/** Read access to a compact bundle's keys and indexes, and the whole content back on demand. */
export class CompactKeys {
  private readonly ids: Buffer;
  private readonly json: Buffer;
  private readonly fingerprints: Buffer;
  private readonly tokens: Buffer;

  constructor(private readonly c: CompactBundle) {
    this.ids = asBuffer(c.keyIds);
    this.json = asBuffer(c.keyJson);
    this.fingerprints = asBuffer(c.certFingerprints);
    this.tokens = asBuffer(c.tokenHashes);
  }

  private keyAt(i: number): BundleKey {
    return JSON.parse(entry(this.json, this.c.keyJsonEnds, i)) as BundleKey;
  }

  key(id: string): BundleKey | undefined {
    const i = findVariable(this.ids, this.c.keyIdEnds, id);
    return i < 0 ? undefined : this.keyAt(i);
  }

  /** Id of the key a certificate identifies (undefined: unknown fingerprint or no key). */
  keyIdByCert(fingerprint: string): string | undefined {
    const i = findHex64(this.fingerprints, fingerprint);
    const k = i < 0 ? -1 : this.c.certKeys[i];
    return k < 0 ? undefined : entry(this.ids, this.c.keyIdEnds, k);
  }

  keyIdByToken(sha256Hex: string): string | undefined {
    const i = findHex64(this.tokens, sha256Hex);
    return i < 0 ? undefined : entry(this.ids, this.c.keyIdEnds, this.c.tokenKeys[i]);
  }

  /** The full parsed bundle (slow for big bundles: only for callers that really need it). */
  toBundle(): Bundle {
    const c = this.c;
    const keys: Record<string, BundleKey> = {};
    const ids: string[] = [];
    for (let i = 0; i < c.keyIdEnds.length; i++) {
      ids.push(entry(this.ids, c.keyIdEnds, i));
      keys[ids[i]] = this.keyAt(i);
    }
    const apisOf = new Map(c.certApis);
    const certs: BundleContent['index']['certs'] = {};
    for (let i = 0; i < c.certKeys.length; i++) {
      const key = c.certKeys[i];
      certs[hexAt(this.fingerprints, i)] = { apis: apisOf.get(i) ?? [], key: key < 0 ? null : ids[key] };
    }
    const tokens: Record<string, string> = {};
    for (let i = 0; i < c.tokenKeys.length; i++) tokens[hexAt(this.tokens, i)] = ids[c.tokenKeys[i]];
    const notAfter: Record<string, number> = {};
    const expiry = asBuffer(c.expiryFingerprints);
    const order = [...c.expiryTimes.keys()].sort((a, b) => (hexAt(expiry, a) < hexAt(expiry, b) ? -1 : 1));
    for (const i of order) notAfter[hexAt(expiry, i)] = c.expiryTimes[i];
    return {
      format: BUNDLE_FORMAT,
      digest: c.digest,
      signature: c.signature,
      content: {
        apis: c.apis,
        keys,
        cas: c.cas,
        not_after: notAfter,
        revocation: c.revocation,
        index: { certs, tokens, matches: c.matches, routes: c.routes },
      },
    };
  }
}
