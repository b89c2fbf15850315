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

function ascending(values: string[]): string[] {
  return values.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * The file form of `content`. Throws Error when the records and indexes disagree (a key's
 * certificate or token the index does not map to it): the compiler builds them together, so
 * that is an internal error, never a config one.
 */
export function encodeContent(content: BundleContent): WireContent {
  const ids = ascending(Object.keys(content.keys));
  const row = new Map<string, number>();
  for (let i = 0; i < ids.length; i++) row.set(ids[i], i);

  // Interning by value (not by object identity), so equal sessions share one entry whoever built them.
  const json = new Map<unknown, string>();
  const sessionIndex = new Map<string, number>();
  const sessions: BundleSession[] = [];
  const session: number[] = new Array(ids.length);
  const expires: Record<string, string> = {};
  const inactive: string[] = [];
  const certs = content.index.certs;
  const tokens = content.index.tokens;
  for (let i = 0; i < ids.length; i++) {
    const key = content.keys[ids[i]];
    const id = `${memoJson(json, key.access_rights)}\n${memoJson(json, key.policies)}\n${memoJson(json, key.quota)}\n${memoJson(json, key.rate)}`;
    let s = sessionIndex.get(id);
    if (s === undefined) {
      sessionIndex.set(id, (s = sessions.length));
      sessions.push({ access_rights: key.access_rights, policies: key.policies, quota: key.quota, rate: key.rate });
    }
    session[i] = s;
    if (key.expires !== null) expires[key.id] = key.expires;
    if (key.is_inactive) inactive.push(key.id);
    for (const fp of key.certificates) {
      if (!Object.hasOwn(certs, fp) || certs[fp].key !== key.id)
        throw new Error(`internal error: key ${key.id} names certificate ${fp}, which the index does not map to it`);
    }
    if (key.token_sha256 !== null && tokens[key.token_sha256] !== key.id) throw new Error(`internal error: key ${key.id}'s token is not in the index`);
  }

  const fingerprints = ascending(Object.keys(certs));
  const certKey: number[] = new Array(fingerprints.length);
  const notAfter: (number | null)[] = new Array(fingerprints.length);
  const pinnedBy: Record<string, string[]> = {};
  for (let i = 0; i < fingerprints.length; i++) {
    const fp = fingerprints[i];
    const entry = certs[fp];
    certKey[i] = entry.key === null ? -1 : (row.get(entry.key) ?? -1);
    if (entry.key !== null && certKey[i] < 0) throw new Error(`internal error: the index maps certificate ${fp} to key ${entry.key}, which does not exist`);
    notAfter[i] = Object.hasOwn(content.not_after, fp) ? content.not_after[fp] : null;
    if (entry.apis.length > 0) pinnedBy[fp] = entry.apis;
  }
  const otherNotAfter: Record<string, number> = {};
  for (const fp of ascending(Object.keys(content.not_after))) if (!Object.hasOwn(certs, fp)) otherNotAfter[fp] = content.not_after[fp];

  const hashes = ascending(Object.keys(tokens));
  const tokenKey = hashes.map((h) => row.get(tokens[h]) ?? -1);
  if (tokenKey.includes(-1)) throw new Error('internal error: the token index names a key that does not exist');

  return {
    apis: content.apis,
    cas: content.cas,
    certs: { apis: pinnedBy, hex: fingerprints.join(''), key: certKey, not_after: notAfter },
    keys: { expires, ids, inactive, session },
    matches: content.index.matches,
    not_after: otherNotAfter,
    revocation: content.revocation,
    routes: content.index.routes,
    sessions,
    tokens: { hex: hashes.join(''), key: tokenKey },
  };
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
  const s = w.sessions[w.keys.session[i]];
  return {
    access_rights: s.access_rights,
    certificate_match: Object.hasOwn(w.matches, id) ? w.matches[id] : null,
    certificates,
    expires: Object.hasOwn(w.keys.expires, id) ? w.keys.expires[id] : null,
    id,
    is_inactive: inactive.has(id),
    policies: s.policies,
    quota: s.quota,
    rate: s.rate,
    token_sha256: token,
  };
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
