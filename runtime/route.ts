// Which API a request names: host (exact domain first, then the domain-less APIs), then the
// longest listen_path that is a "/"-segment prefix of the normalised path. A lookup costs one
// Map probe per path segment, whatever the number of APIs.
//
// Normalisation (before routing; the normalised path is what allowed_urls see and what is
// forwarded, so the gateway and the upstream agree on the API). Envoy's normalize_path,
// merge_slashes and path_with_escaped_slashes_action=REJECT are the reference:
//   - percent-encoded unreserved characters (ALPHA DIGIT - . _ ~) are decoded, other escapes
//     kept with upper-case hex (RFC 3986 6.2.2); a malformed escape is refused;
//   - runs of "/" are merged into one;
//   - "." and ".." segments are resolved (RFC 3986 5.2.4).
// Refused with 400 request.bad_path, because an upstream could read them otherwise:
//   - an encoded "/" or "\" (%2F, %5C) and a literal "\";
//   - ";" (path parameters: "/admin;x/y" is "/admin/y" to some servers);
//   - "#" anywhere in the target, the query string too (a URL parser ends the path there);
//   - a control character, encoded (%00-%1F, %7F: a C backend stops at NUL, CR/LF split log
//     lines) or raw, a raw space, and a raw byte beyond ASCII (HTTP/2 carries them);
//   - percent-encoded bytes that are not UTF-8 ("%C0%AE": an overlong "." to an old decoder);
//   - ".." climbing above the root, or out of the API that the path before it names;
//   - a segment of only dots and spaces other than "." and ".." ("..%20", "..."): trimmed,
//     it is "", "." or "..", depending on the reader;
//   - a segment with trailing dots or spaces ("/admin./x", "/admin%20/x": Windows drops
//     both) when the path without them names another API;
//   - a path whose case-folded form names a more specific API than the path itself
//     ("/ADMIN/x" when "/admin/" exists): listen paths match case-sensitively (RFC 3986 paths
//     are), and a backend that ignores case must not be reachable through a more open API;
//   - an escaped code point that is a look-alike of punctuation, space or a control to a
//     reader folding Unicode compatibility forms (NFKC) or mapping to a Windows code page
//     ("%EF%BC%8F" fullwidth "/", "%E2%88%95" division slash, "%C2%A0", C1 controls), and one
//     folding to letters (NFKC, or Windows' best fit: "%C4%81" a with macron, "%C4%B1" dotless
//     i) when the folded path names a more specific API ("/%EF%BD%81dmin/x", "/adm%C4%B1n/x").
// Most paths need none of this: one scan finds them plain and they are used as they are.

/** listen_path (starts and ends with "/") -> value, per host. */
export interface RouteTables<A> {
  byHost: ReadonlyMap<string, ReadonlyMap<string, A>>;
  /** APIs without a domain. */
  anyHost: ReadonlyMap<string, A>;
}

interface Routed<A> {
  api: A;
  /** The normalised path (no query string). */
  path: string;
}

export const BAD_PATH = 'bad' as const;

// The host half of a route (runtime/host.ts), exported here with the path half.
export { BAD_HOST, hostOf, withoutRootDot } from './host.ts';
import { compatibilityFolded, hexValue, isLookalike } from '../common/path-lookalikes.ts';

function longestPrefix<A>(table: ReadonlyMap<string, A>, path: string): A | undefined {
  if (table.size === 0) return undefined;
  // "/payments" names the API on "/payments/" too.
  if (path.charCodeAt(path.length - 1) !== 47 /* / */) {
    const whole = table.get(path + '/');
    if (whole !== undefined) return whole;
  }
  for (let slash = slashBefore(path, path.length); slash >= 0; slash = slashBefore(path, slash)) {
    const api = table.get(slash === path.length - 1 ? path : path.slice(0, slash + 1));
    if (api !== undefined) return api;
  }
  return undefined;
}

/** The last "/" of `path` before index `end`, or -1. (String.prototype.lastIndexOf is a call into C++: ~250 instructions.) */
function slashBefore(path: string, end: number): number {
  let i = end - 1;
  while (i >= 0 && path.charCodeAt(i) !== 47 /* / */) i--;
  return i;
}

function lookupRoute<A>(tables: RouteTables<A>, host: string, path: string): A | undefined {
  // Most gateways name no domain: no host string hashed then.
  const own = tables.byHost.size === 0 ? undefined : tables.byHost.get(host);
  if (own !== undefined) {
    const api = longestPrefix(own, path);
    if (api !== undefined) return api;
  }
  return longestPrefix(tables.anyHost, path);
}

/** RFC 3986 unreserved: ALPHA / DIGIT / "-" / "." / "_" / "~". */
function isUnreserved(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c === 45 || c === 46 || c === 95 || c === 126;
}

/** How isPlainPath treats each ASCII character: plain, not plain, or look at the next one. */
const PLAIN = 0;
const NOT_PLAIN = 1;
const SLASH = 2;
const DOT = 3;
const SCAN_CLASS = (() => {
  const table = new Uint8Array(128);
  for (let c = 0; c <= 0x20; c++) table[c] = NOT_PLAIN; // controls, space
  table[0x7f] = NOT_PLAIN;
  for (let c = 65; c <= 90; c++) table[c] = NOT_PLAIN; // A-Z: the case-fold check
  for (const ch of '%\\;#') table[ch.charCodeAt(0)] = NOT_PLAIN;
  table[47] = SLASH;
  table[46] = DOT;
  return table;
})();

/**
 * True when the path needs no normalisation: no "%", "\", ";", "#", no "//", no dot segment, no
 * segment ending in ".", no upper-case letter, control, space or character beyond ASCII. One
 * pass over the characters (one table load each), no allocation.
 */
export function isPlainPath(path: string): boolean {
  const n = path.length;
  for (let i = 0; i < n; i++) {
    const c = path.charCodeAt(i);
    if (c >= 128) return false;
    const kind = SCAN_CLASS[c];
    if (kind === PLAIN) continue;
    if (kind === NOT_PLAIN) return false;
    const next = path.charCodeAt(i + 1);
    if (kind === SLASH) {
      if (next === 47 || next === 46) return false;
    } else if (next === 47 || i + 1 === n) return false;
  }
  return true;
}

/**
 * Decodes unreserved escapes, upper-cases the others, merges slashes, resolves dot segments.
 * Returns BAD_PATH for what an upstream could read otherwise (the list at the top of this file:
 * separators, ";", "#", controls, raw non-ASCII, escapes that are not UTF-8 or are look-alikes
 * of punctuation, a segment of only dots and spaces), and `firstDot`: the number of segments before the first dot segment (-1: none).
 */
export function normalisePath(raw: string): { path: string; firstDot: number; before: string } | typeof BAD_PATH {
  let decoded = '';
  // The UTF-8 sequence the escaped bytes are in: continuation bytes still expected, and the
  // range the next one must fall in (narrower after E0, ED, F0, F4: no overlong form, no
  // surrogate, nothing above U+10FFFF; Unicode 15 table 3-7).
  let need = 0;
  let low = 0x80;
  let high = 0xbf;
  /** The code point the sequence makes, so far. */
  let cp = 0;
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c !== 37 /* % */) {
      if (need !== 0 || c <= 0x20 || c >= 0x7f || c === 92 /* \\ */ || c === 59 /* ; */ || c === 35 /* # */) return BAD_PATH;
      decoded += raw[i];
      continue;
    }
    const hi = hexValue(raw.charCodeAt(i + 1));
    const lo = hexValue(raw.charCodeAt(i + 2));
    if (hi < 0 || lo < 0) return BAD_PATH;
    const byte = hi * 16 + lo;
    if (need !== 0) {
      if (byte < low || byte > high) return BAD_PATH;
      cp = (cp << 6) | (byte & 0x3f);
      need--;
      low = 0x80;
      high = 0xbf;
      // Here, before dot segments are resolved: "/x/%EF%BC%8F/../admin" is "/x///../admin" to a folding reader.
      if (need === 0 && isLookalike(cp)) return BAD_PATH;
    } else if (byte >= 0x80) {
      if (byte >= 0xc2 && byte <= 0xdf) {
        need = 1;
        cp = byte & 0x1f;
      } else if (byte >= 0xe0 && byte <= 0xef) {
        need = 2;
        cp = byte & 0x0f;
        if (byte === 0xe0) low = 0xa0;
        else if (byte === 0xed) high = 0x9f;
      } else if (byte >= 0xf0 && byte <= 0xf4) {
        need = 3;
        cp = byte & 0x07;
        if (byte === 0xf0) low = 0x90;
        else if (byte === 0xf4) high = 0x8f;
      } else return BAD_PATH; // a continuation byte alone, C0/C1 (overlong ASCII), F5-FF
    } else if (byte < 0x20 || byte === 0x7f || byte === 0x2f || byte === 0x5c) return BAD_PATH;
    decoded += isUnreserved(byte) ? String.fromCharCode(byte) : `%${raw.slice(i + 1, i + 3).toUpperCase()}`;
    i += 2;
  }
  if (need !== 0) return BAD_PATH;
  const segments = decoded.split('/');
  const out: string[] = [];
  let firstDot = -1;
  let before = '/';
  for (let i = 1; i < segments.length; i++) {
    const seg = segments[i];
    const last = i === segments.length - 1;
    if (seg === '' && !last) continue; // merged slashes
    if (seg === '.' || seg === '..') {
      if (firstDot === -1) {
        firstDot = out.length;
        before = '/' + out.join('/') + (out.length > 0 ? '/' : '');
      }
      if (seg === '..') {
        if (out.length === 0) return BAD_PATH;
        out.pop();
      }
      // "/a/b/.." is the directory "/a/": keep the trailing slash.
      if (last) out.push('');
      continue;
    }
    if (onlyDotsAndSpaces(seg)) return BAD_PATH;
    out.push(seg);
  }
  return { path: '/' + out.join('/'), firstDot, before };
}

/** "...", "..%20", "%20": trimmed as Windows trims, nothing is left, or "." / ".." is. */
function onlyDotsAndSpaces(seg: string): boolean {
  if (seg === '') return false;
  for (let i = 0; i < seg.length; ) {
    if (seg.charCodeAt(i) === 46 /* . */) i++;
    else if (seg.startsWith('%20', i)) i += 3;
    else return false;
  }
  return true;
}

/** The path with trailing dots and spaces removed from every segment ("/admin.%20/x" -> "/admin/x"). */
function withoutTrailingDotsAndSpaces(path: string): string {
  return path.replace(/(?:\.|%20)+(?=\/|$)/g, '');
}

/** Length of the listen path an API was found under, for the "more specific" comparison. */
function matchedPrefixLength<A>(tables: RouteTables<A>, host: string, path: string): number {
  const own = tables.byHost.get(host);
  let best = -1;
  for (const table of own ? [own, tables.anyHost] : [tables.anyHost]) {
    if (path.charCodeAt(path.length - 1) !== 47 && table.has(path + '/')) return path.length + 1;
    for (let slash = path.lastIndexOf('/'); slash >= 0; slash = slash === 0 ? -1 : path.lastIndexOf('/', slash - 1)) {
      if (table.has(slash === path.length - 1 ? path : path.slice(0, slash + 1))) {
        best = Math.max(best, slash + 1);
        break;
      }
    }
    if (best !== -1) return best;
  }
  return best;
}

/**
 * Where the path ends in a request target: at its "?" (the query string is not routed), or at
 * the target's end when there is none, and when the query string holds a "#": the whole target
 * is the path then, which routing refuses (a "#" anywhere is request.bad_path; an upstream's URL
 * parser would end the query there). Costs a second scan only for a target with a query.
 */
export function pathEnd(target: string): number {
  const q = target.indexOf('?');
  return q === -1 || target.indexOf('#', q + 1) !== -1 ? target.length : q;
}

/**
 * The API and normalised path for a request path (query string already removed), BAD_PATH
 * for a path that is ambiguous about its API, undefined when no API answers.
 */
export function routeRequest<A>(tables: RouteTables<A>, host: string, rawPath: string): Routed<A> | typeof BAD_PATH | undefined {
  if (rawPath.charCodeAt(0) !== 47 /* / */) return BAD_PATH; // absolute-form or "*": not for this gateway
  if (isPlainPath(rawPath)) {
    const api = lookupRoute(tables, host, rawPath);
    return api === undefined ? undefined : { api, path: rawPath };
  }
  const n = normalisePath(rawPath);
  if (n === BAD_PATH) return BAD_PATH;
  const path = n.path;
  const api = lookupRoute(tables, host, path);
  // ".." must not leave the API that the path before it names.
  if (n.firstDot !== -1 && lookupRoute(tables, host, n.before) !== api) return BAD_PATH;
  // "/admin./x", "/admin%20/x": an upstream that drops trailing dots and spaces would see "/admin/x".
  if (path.indexOf('.') !== -1 || path.indexOf('%20') !== -1) {
    const stripped = withoutTrailingDotsAndSpaces(path);
    if (stripped !== path && lookupRoute(tables, host, stripped) !== api) return BAD_PATH;
  }
  // "/ADMIN/x": an upstream that ignores case would see "/admin/x".
  const folded = path.toLowerCase();
  if (folded !== path && namesMoreSpecific(tables, host, path, folded, api)) return BAD_PATH;
  // Escaped UTF-8 (section 37; look-alikes of punctuation were refused by normalisePath):
  // "/%EF%BD%81dmin/x" ("/ａdmin/x") is refused: a reader folding compatibility forms sees "/admin/x".
  if (path.indexOf('%') !== -1) {
    const compat = compatibilityFolded(path);
    if (compat !== null && namesMoreSpecific(tables, host, path, compat, api)) return BAD_PATH;
  }
  return api === undefined ? undefined : { api, path };
}

/** `variant`, the path as some reader sees it, names a more specific API than `api`, the one `path` names. */
function namesMoreSpecific<A>(tables: RouteTables<A>, host: string, path: string, variant: string, api: A | undefined): boolean {
  const other = lookupRoute(tables, host, variant);
  return other !== undefined && other !== api && matchedPrefixLength(tables, host, variant) > matchedPrefixLength(tables, host, path);
}
