// Which API a request names: host (exact domain first, then the domain-less APIs), then the
// longest listen_path that is a "/"-segment prefix of the normalised path. A lookup costs one
// Map probe per path segment, whatever the number of APIs.
//
// Normalisation (before routing; the normalised path is what allowed_urls see and what is
// forwarded, so the gateway and the upstream agree on the API): common/path-normalise.ts, the
// one normaliser, which the compiler's listen_path check uses too; what it refuses is listed
// there. Refused here too, with 400 request.bad_path, because an upstream could read them otherwise:
//   - "#" anywhere in the target, the query string too (pathEnd keeps it in the path);
//   - ".." leaving the API that the path before it names;
//   - a segment with trailing dots or spaces ("/admin./x", "/admin%20/x": Windows drops
//     both) when the path without them names another API;
//   - a path whose case-folded form names a more specific API than the path itself
//     ("/ADMIN/x" when "/admin/" exists): listen paths match case-sensitively (RFC 3986 paths
//     are), and a backend that ignores case must not be reachable through a more open API;
//   - an escaped code point folding to letters (NFKC, or Windows' best fit: "%C4%81" a with
//     macron, "%C4%B1" dotless i) when the folded path names a more specific API
//     ("/%EF%BD%81dmin/x", "/adm%C4%B1n/x"); look-alikes of punctuation ("%EF%BC%8F"
//     fullwidth "/", "%E2%88%95" division slash, "%C2%A0", C1 controls) the normaliser refuses.
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
import { compatibilityFolded } from '../common/path-lookalikes.ts';
import { normalisePath, withoutTrailingDotsAndSpaces } from '../common/path-normalise.ts';

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
  if ('fault' in n) return BAD_PATH;
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
