// A verified bundle in the form the runtime serves it from at scale (built in a worker thread
// on reload, on the main thread at start-up).
//
// Receiving parsed keys from a worker costs the main thread as much as parsing them (structured
// clone rebuilds every object), and a record per key costs memory at 1,000,000 keys. So the key
// columns of the bundle's file form (bundle/types.ts `WireContent`) become typed arrays that are
// transferred, not copied: key ids as UTF-8 with end offsets, each key's session number,
// fingerprints and token hashes as hex text with their key rows, and hash slots over each
// (runtime/hash-slots.ts) so that every lookup is O(1). The small parts (APIs, CAs, routes,
// the interned sessions) travel as plain objects. runtime/compact-keys.ts reads it.
import { hexAt, hexCount } from '../bundle/wire.ts';
import type { BundleApi, BundleCa, BundleContent, BundleRevocation, BundleSession, WireContent } from '../bundle/types.ts';
import { buildSlots, findInSlots, hashHex, hashHexBytes, hashString } from './hash-slots.ts';
import { type SerialArrays, SerialTable, SerialTableBuilder } from './serial-table.ts';

export interface CompactBundle {
  digest: string;
  /** The header's signature (bundle/sign.ts), verified by the store before the worker ran; or null. */
  signature: string | null;
  /** SHA-256 of the file bytes (the digest covers the content only). */
  bytesSha256: string;
  /** What the key checks found wrong (bundle/checks.ts `checkWireKeys`), or null. */
  keyError: string | null;
  apis: Record<string, BundleApi>;
  cas: Record<string, BundleCa>;
  routes: BundleContent['index']['routes'];
  /** certificate_match rules by key id (kept whole: the snapshot indexes them at load). */
  matches: BundleContent['index']['matches'];
  /** The compiled CRLs, each one's `serials` emptied: they are in `crlTables`. */
  revocation: BundleContent['revocation'];
  /** CA fingerprint -> the serials of its compiled CRL, as a SerialTable's arrays (transferred: compactCrls). */
  crlTables: Record<string, SerialArrays>;
  sessions: BundleSession[];
  /** Key id -> expiry, and the inactive key ids (both sparse). */
  expires: Record<string, string>;
  inactive: string[];
  /** Key ids in ascending order, UTF-8, concatenated; keyIdEnds[i] = byte end of id i; keyIdSlots over them. */
  keyIds: Uint8Array;
  keyIdEnds: Int32Array;
  keyIdSlots: Int32Array;
  /** Per key: its session (index into `sessions`). */
  keySession: Int32Array;
  /** Per key: its token hash (index into tokenHashes), or -1. */
  keyToken: Int32Array;
  /** Key -> its certificates: keyCertList[keyCertStart[k] .. keyCertStart[k+1]) are fingerprint indexes. */
  keyCertStart: Int32Array;
  keyCertList: Int32Array;
  /** Certificate fingerprints (64 hex characters each) in ascending order, concatenated; certSlots over them. */
  certFingerprints: Uint8Array;
  certSlots: Int32Array;
  /** Per fingerprint: index of its key, or -1 (no key). */
  certKeys: Int32Array;
  /** [fingerprint index, apis] for the fingerprints APIs pin (most have none). */
  certApis: [number, string[]][];
  /** Token SHA-256s (64 hex characters each) in ascending order, concatenated; tokenSlots over them. */
  tokenHashes: Uint8Array;
  tokenSlots: Int32Array;
  /** Per token hash: index of its key. */
  tokenKeys: Int32Array;
  /** Certificates with a notAfter, soonest first: a fingerprint index, or -(j+1) for otherExpiring[j]; and the time (s). */
  expiryOrder: Int32Array;
  expiryTimes: Float64Array;
  /** Fingerprints with a notAfter outside the certificate table (CAs), ascending. */
  otherExpiring: string[];
}

/** Text as bytes in an ArrayBuffer of their own (so it can be transferred). */
function ownBytes(text: string, encoding: 'utf8' | 'latin1'): Uint8Array {
  const bytes = new Uint8Array(Buffer.byteLength(text, encoding));
  Buffer.from(bytes.buffer).write(text, encoding);
  return bytes;
}

const RANK_BITS = 2 ** 21;

/**
 * The time-sorted expiry list: by notAfter, then fingerprint. Certificate indexes are already in
 * fingerprint order, so they sort as one numeric array (time * 2^21 + index: a plain Float64Array
 * sort, ~20 times quicker than a comparator at 1,000,000 entries) and are merged with the few
 * others (CAs).
 */
function expiryList(w: WireContent): { order: Int32Array; times: Float64Array; others: string[] } {
  const others = Object.keys(w.not_after).sort();
  const n = w.certs.not_after.length;
  const certTimes = w.certs.not_after;
  let certs: Int32Array;
  const fits = n < RANK_BITS && certTimes.every((t) => t === null || (Number.isInteger(t) && t >= 0 && t < 2 ** 32));
  if (fits) {
    const composite = new Float64Array(n);
    let m = 0;
    for (let i = 0; i < n; i++) if (certTimes[i] !== null) composite[m++] = (certTimes[i] as number) * RANK_BITS + i;
    const sorted = composite.subarray(0, m).sort();
    certs = new Int32Array(m);
    for (let e = 0; e < m; e++) certs[e] = sorted[e] % RANK_BITS;
  } else {
    const entries: number[] = [];
    for (let i = 0; i < n; i++) if (certTimes[i] !== null) entries.push(i);
    certs = Int32Array.from(entries).sort((a, b) => (certTimes[a] as number) - (certTimes[b] as number) || a - b);
  }
  const rest = others
    .map((_, j) => -(j + 1))
    .sort((a, b) => w.not_after[others[-a - 1]] - w.not_after[others[-b - 1]] || (others[-a - 1] < others[-b - 1] ? -1 : 1));
  const timeOf = (e: number) => (e >= 0 ? (certTimes[e] as number) : w.not_after[others[-e - 1]]);
  const fpOf = (e: number) => (e >= 0 ? hexAt(w.certs.hex, e) : others[-e - 1]);
  const order = new Int32Array(certs.length + rest.length);
  let a = 0;
  let b = 0;
  for (let o = 0; o < order.length; o++) {
    const takeCert = b >= rest.length || (a < certs.length && (timeOf(certs[a]) - timeOf(rest[b]) || (fpOf(certs[a]) < fpOf(rest[b]) ? -1 : 1)) < 0);
    order[o] = takeCert ? certs[a++] : rest[b++];
  }
  return { order, times: Float64Array.from(order, timeOf), others };
}

/** The compact form of verified wire content (runs in the worker on reload). */
export function compactWire(w: WireContent, digest: string, signature: string | null, bytesSha256: string, keyError: string | null): CompactBundle {
  const ids = w.keys.ids;
  const rows = ids.length;
  const keyIdEnds = new Int32Array(rows);
  let at = 0;
  for (let i = 0; i < rows; i++) keyIdEnds[i] = at += Buffer.byteLength(ids[i], 'utf8');
  const keyIds = ownBytes(ids.join(''), 'utf8');

  const certs = hexCount(w.certs.hex);
  const keyCertStart = new Int32Array(rows + 1);
  for (let i = 0; i < certs; i++) if (w.certs.key[i] >= 0) keyCertStart[w.certs.key[i] + 1]++;
  for (let k = 0; k < rows; k++) keyCertStart[k + 1] += keyCertStart[k];
  const keyCertList = new Int32Array(keyCertStart[rows]);
  const filled = keyCertStart.slice(0, rows);
  for (let i = 0; i < certs; i++) if (w.certs.key[i] >= 0) keyCertList[filled[w.certs.key[i]]++] = i;
  const certFingerprints = ownBytes(w.certs.hex, 'latin1');
  const certSlots = buildSlots(certs, (i) => hashHexBytes(certFingerprints, i * 64));
  // The verifier checked that every pinned fingerprint is in the table.
  const certApis: [number, string[]][] = [];
  for (const fp in w.certs.apis) certApis.push([findInSlots(certSlots, hashHex(fp), (i) => hexAt(w.certs.hex, i) === fp), w.certs.apis[fp]]);

  const tokenHashes = ownBytes(w.tokens.hex, 'latin1');
  const keyToken = new Int32Array(rows).fill(-1);
  for (let i = 0; i < w.tokens.key.length; i++) keyToken[w.tokens.key[i]] = i;
  const expiry = expiryList(w);
  return {
    digest,
    signature,
    bytesSha256,
    keyError,
    apis: w.apis,
    cas: w.cas,
    routes: w.routes,
    matches: w.matches,
    ...compactCrls(w.revocation),
    sessions: w.sessions,
    expires: w.keys.expires,
    inactive: w.keys.inactive,
    keyIds,
    keyIdEnds,
    keyIdSlots: buildSlots(rows, (i) => hashString(ids[i])),
    keySession: Int32Array.from(w.keys.session),
    keyToken,
    keyCertStart,
    keyCertList,
    certFingerprints,
    certSlots,
    certKeys: Int32Array.from(w.certs.key),
    certApis,
    tokenHashes,
    tokenSlots: buildSlots(w.tokens.key.length, (i) => hashHexBytes(tokenHashes, i * 64)),
    tokenKeys: Int32Array.from(w.tokens.key),
    expiryOrder: expiry.order,
    expiryTimes: expiry.times,
    otherExpiring: expiry.others,
  };
}

/**
 * The compiled CRLs' serials as SerialTables' arrays, built here (in the worker on reload) and
 * transferred. Before, a bundle with a compiled CRL of 1,000,000 entries handed the main thread
 * 1,000,000 strings to clone and then to put in a Set, on the thread serving requests. The
 * lists themselves are emptied (runtime/compact-keys.ts puts them back for toWire).
 */
function compactCrls(r: BundleRevocation): { revocation: BundleRevocation; crlTables: Record<string, SerialArrays> } {
  const crls: BundleRevocation['crls'] = {};
  const crlTables: Record<string, SerialArrays> = {};
  for (const [fp, crl] of Object.entries(r.crls)) {
    const table = new SerialTableBuilder(crl.serials.length * 40);
    for (const serial of crl.serials) table.addHex(serial);
    crlTables[fp] = table.finish();
    crls[fp] = { ...crl, serials: [] };
  }
  return { revocation: { ...r, crls }, crlTables };
}

/** The compiled CRLs of `c` with their serials back in their lists. */
export function expandedRevocation(c: Pick<CompactBundle, 'revocation' | 'crlTables'>): BundleRevocation {
  const crls: BundleRevocation['crls'] = {};
  for (const [fp, crl] of Object.entries(c.revocation.crls))
    crls[fp] = { ...crl, serials: fp in c.crlTables ? new SerialTable(c.crlTables[fp]).list() : crl.serials };
  return { ...c.revocation, crls };
}

/** The buffers a postMessage of `c` can transfer rather than copy. */
export function transferables(c: CompactBundle): ArrayBuffer[] {
  const arrays = [
    c.keyIds,
    c.keyIdEnds,
    c.keyIdSlots,
    c.keySession,
    c.keyToken,
    c.keyCertStart,
    c.keyCertList,
    c.certFingerprints,
    c.certSlots,
    c.certKeys,
    c.tokenHashes,
    c.tokenSlots,
    c.tokenKeys,
    c.expiryOrder,
    c.expiryTimes,
    ...Object.values(c.crlTables).flatMap((t) => [t.hex, t.ends, t.slots]),
  ];
  // Arrays in a SharedArrayBuffer (a shard's tables the routing reads: runtime/shard-set.ts) are shared by posting, not transferred.
  return arrays.filter((a) => !(a.buffer instanceof SharedArrayBuffer)).map((a) => a.buffer as ArrayBuffer);
}
