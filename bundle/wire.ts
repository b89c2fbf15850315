// The bundle's file form (format v2) and back: `encodeContent` turns the content the compiler
// builds (one record per key, every key carrying its merged session) into columns, with each
// distinct session written once; `expandContent` gives readers the same `BundleContent` again.
// The runtime at scale skips the expansion and reads the columns (runtime/bundle-worker-compact.ts).
import type { BundleContent, BundleKey, BundleSession, CertIndexEntry, WireContent } from './types.ts';

const HEX64 = 64;

/** JSON of a value, memoised per object: keys sharing a policy list share its objects. */
function memoJson(cache: Map<unknown, string>, value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  let s = cache.get(value);
  if (s === undefined) cache.set(value, (s = JSON.stringify(value)));
  return s;
}

/** Ascending in JavaScript string order (UTF-16 code units: the default sort's order, and `<`'s). */
function ascending(values: string[]): string[] {
  return values.sort();
}

/** What the file form is made from: the content's small parts as they are, its keys and certificates as sources. */
export interface ContentParts extends Pick<WireContent, 'apis' | 'cas' | 'revocation' | 'routes' | 'matches'> {
  /** Every key id (any order) and its record. */
  keyIds: string[];
  keyOf(id: string): BundleKey;
  /** Fingerprint -> the APIs pinning it (static mTLS), sorted. */
  pins: Iterable<[string, string[]]>;
  /** Fingerprint -> notAfter (seconds since the epoch), for every certificate given as a PEM. */
  notAfter: ReadonlyMap<string, number>;
}

/**
 * The file form of a bundle's content. Certificates and tokens are indexed from the keys that
 * name them (and the APIs that pin them); a certificate or token named by two keys throws:
 * the compiler refuses that config, so it is an internal error here, never a config one.
 */
export function encodeParts(parts: ContentParts): WireContent {
  const ids = ascending([...parts.keyIds]);
  // Interning by value (not by object identity), so equal sessions share one entry whoever built them.
  const json = new Map<unknown, string>();
  const sessionIndex = new Map<string, number>();
  const sessions: BundleSession[] = [];
  const session: number[] = new Array(ids.length);
  const expires: Record<string, string> = {};
  const inactive: string[] = [];
  const certRow = new Map<string, number>();
  const tokenRow = new Map<string, number>();
  for (let i = 0; i < ids.length; i++) {
    const key = parts.keyOf(ids[i]);
    const deny = key.on_limiter_error === 'deny';
    const id = `${memoJson(json, key.access_rights)}\n${memoJson(json, key.policies)}\n${memoJson(json, key.quota)}\n${memoJson(json, key.rate)}\n${deny}`;
    let s = sessionIndex.get(id);
    if (s === undefined) {
      sessionIndex.set(id, (s = sessions.length));
      // on_limiter_error is absent unless a policy asks for 'deny' (as in the key records).
      const entry: BundleSession = { access_rights: key.access_rights, policies: key.policies, quota: key.quota, rate: key.rate };
      if (deny) entry.on_limiter_error = 'deny';
      sessions.push(entry);
    }
    session[i] = s;
    if (key.expires !== null) expires[key.id] = key.expires;
    if (key.is_inactive) inactive.push(key.id);
    for (const fp of key.certificates) {
      if (certRow.has(fp)) throw new Error(`internal error: certificate ${fp} identifies two keys (${ids[certRow.get(fp)!]}, ${key.id})`);
      certRow.set(fp, i);
    }
    if (key.token_sha256 !== null) {
      if (tokenRow.has(key.token_sha256)) throw new Error(`internal error: keys ${ids[tokenRow.get(key.token_sha256)!]} and ${key.id} have the same token`);
      tokenRow.set(key.token_sha256, i);
    }
  }
  const pins = new Map(parts.pins);
  for (const fp of pins.keys()) if (!certRow.has(fp)) certRow.set(fp, -1);
  const pinnedBy: Record<string, string[]> = {};
  for (const fp of ascending([...pins.keys()])) pinnedBy[fp] = pins.get(fp)!;

  const fingerprints = ascending([...certRow.keys()]);
  const certKey: number[] = new Array(fingerprints.length);
  const notAfter: (number | null)[] = new Array(fingerprints.length);
  for (let i = 0; i < fingerprints.length; i++) {
    certKey[i] = certRow.get(fingerprints[i])!;
    notAfter[i] = parts.notAfter.get(fingerprints[i]) ?? null;
  }
  const others: string[] = [];
  for (const fp of parts.notAfter.keys()) if (!certRow.has(fp)) others.push(fp);
  const otherNotAfter: Record<string, number> = {};
  for (const fp of ascending(others)) otherNotAfter[fp] = parts.notAfter.get(fp)!;

  const hashes = ascending([...tokenRow.keys()]);
  return {
    apis: parts.apis,
    cas: parts.cas,
    certs: { apis: pinnedBy, hex: fingerprints.join(''), key: certKey, not_after: notAfter },
    keys: { expires, ids, inactive, session },
    matches: parts.matches,
    not_after: otherNotAfter,
    revocation: parts.revocation,
    routes: parts.routes,
    sessions,
    tokens: { hex: hashes.join(''), key: hashes.map((h) => tokenRow.get(h)!) },
  };
}

/** The file form of `content` (its certificate and token indexes are derived from its keys and pins again). */
export function encodeContent(content: BundleContent): WireContent {
  const pins: [string, string[]][] = [];
  for (const fp in content.index.certs) if (content.index.certs[fp].apis.length > 0) pins.push([fp, content.index.certs[fp].apis]);
  return encodeParts({
    apis: content.apis,
    cas: content.cas,
    revocation: content.revocation,
    routes: content.index.routes,
    matches: content.index.matches,
    keyIds: Object.keys(content.keys),
    keyOf: (id) => content.keys[id],
    pins,
    notAfter: new Map(Object.entries(content.not_after)),
  });
}

/** Row of key `id` in ascending `ids` (binary search), or -1. */
export function keyRow(ids: readonly string[], id: string): number {
  let lo = 0;
  let hi = ids.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if (ids[mid] === id) return mid;
    if (ids[mid]! < id) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

/** The i-th 64-character value of a hex table. */
export function hexAt(hex: string, i: number): string {
  return hex.slice(i * HEX64, (i + 1) * HEX64);
}

/** Number of values in a hex table. */
export function hexCount(hex: string): number {
  return hex.length / HEX64;
}

/** One key of verified wire content, as a record (the session's objects are shared, not copied). */
export function wireKey(w: WireContent, i: number, certificates: string[], token: string | null, inactive: ReadonlySet<string>): BundleKey {
  const id = w.keys.ids[i];
  return sessionKey(w.sessions[w.keys.session[i]], {
    certificate_match: Object.hasOwn(w.matches, id) ? w.matches[id] : null,
    certificates,
    expires: Object.hasOwn(w.keys.expires, id) ? w.keys.expires[id] : null,
    id,
    is_inactive: inactive.has(id),
    token_sha256: token,
  });
}

/** A key's record from its own fields and its session (whose objects are shared, not copied). */
export function sessionKey(s: BundleSession, own: Omit<BundleKey, keyof BundleSession>): BundleKey {
  const key: BundleKey = { access_rights: s.access_rights, ...own, policies: s.policies, quota: s.quota, rate: s.rate };
  if (s.on_limiter_error === 'deny') key.on_limiter_error = 'deny';
  return key;
}

/** The content as records and indexes again (verified wire content: every row reference is in range). */
export function expandContent(w: WireContent): BundleContent {
  const ids = w.keys.ids;
  const certsOf: string[][] = ids.map(() => []);
  const tokenOf: (string | null)[] = new Array(ids.length).fill(null);
  const certs: Record<string, CertIndexEntry> = {};
  const notAfter = new Map<string, number>(Object.entries(w.not_after));
  for (let i = 0; i < w.certs.key.length; i++) {
    const fp = hexAt(w.certs.hex, i);
    const k = w.certs.key[i];
    if (k >= 0) certsOf[k].push(fp);
    certs[fp] = { apis: Object.hasOwn(w.certs.apis, fp) ? w.certs.apis[fp] : [], key: k < 0 ? null : ids[k] };
    const t = w.certs.not_after[i];
    if (t !== null) notAfter.set(fp, t);
  }
  const tokens: Record<string, string> = {};
  for (let i = 0; i < w.tokens.key.length; i++) {
    const h = hexAt(w.tokens.hex, i);
    tokens[h] = ids[w.tokens.key[i]];
    tokenOf[w.tokens.key[i]] = h;
  }
  const inactive = new Set(w.keys.inactive);
  const keys: Record<string, BundleKey> = {};
  for (let i = 0; i < ids.length; i++) keys[ids[i]] = wireKey(w, i, certsOf[i], tokenOf[i], inactive);
  return {
    apis: w.apis,
    cas: w.cas,
    index: { certs, matches: w.matches, routes: w.routes, tokens },
    keys,
    not_after: Object.fromEntries([...notAfter].sort((a, b) => (a[0] < b[0] ? -1 : 1))),
    revocation: w.revocation,
  };
}
