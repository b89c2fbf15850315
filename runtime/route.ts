// Which API a request names: host (exact domain first, then the domain-less APIs), then the
// longest listen_path that is a "/"-segment prefix of the normalised path. A lookup costs one
// Map probe per path segment, whatever the number of APIs.
//
// Normalisation. Most paths hold no dot segment, no "%" and no "\": they are used as they are.
// Otherwise the literal dot segments are resolved (RFC 3986 5.2.4, "%2e" counts as "."), and the
// request is refused (400 request.bad_path) when the path is ambiguous about its API:
//   - ".." climbing above the root;
//   - ".." taking the request out of the API that the path before it names
//     ("/payments/../admin/" is not a way into "admin");
//   - a dot segment hidden behind an encoded separator ("%2f", "%5c" or "\"), which an upstream
//     that decodes them would resolve where the gateway did not;
//   - an encoded separator that would name another API if it were decoded.
// The resolved path is what is checked (allowed_urls) and what is forwarded.

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

/**
 * "Host: Example.COM:8443" -> "example.com"; "[::1]:8443" -> "[::1]"; the fully qualified
 * "example.com." is "example.com" (the same host, and the same APIs).
 */
export function hostOf(hostHeader: string | undefined, sni: string): string {
  if (hostHeader === undefined || hostHeader === '') return withoutRootDot(sni);
  let end = hostHeader.length;
  if (hostHeader.charCodeAt(0) === 91 /* [ */) {
    const close = hostHeader.indexOf(']');
    if (close !== -1) end = close + 1;
  } else {
    const colon = hostHeader.indexOf(':');
    if (colon !== -1) end = colon;
  }
  if (end > 1 && hostHeader.charCodeAt(end - 1) === 46 /* . */) end--;
  return (end === hostHeader.length ? hostHeader : hostHeader.slice(0, end)).toLowerCase();
}

export function withoutRootDot(host: string): string {
  return host.length > 1 && host.charCodeAt(host.length - 1) === 46 /* . */ ? host.slice(0, -1) : host;
}

function longestPrefix<A>(table: ReadonlyMap<string, A>, path: string): A | undefined {
  if (table.size === 0) return undefined;
  // "/payments" names the API on "/payments/" too.
  if (path.charCodeAt(path.length - 1) !== 47 /* / */) {
    const whole = table.get(path + '/');
    if (whole !== undefined) return whole;
  }
  for (let slash = path.lastIndexOf('/'); slash >= 0; slash = slash === 0 ? -1 : path.lastIndexOf('/', slash - 1)) {
    const api = table.get(slash === path.length - 1 ? path : path.slice(0, slash + 1));
    if (api !== undefined) return api;
  }
  return undefined;
}

function lookupRoute<A>(tables: RouteTables<A>, host: string, path: string): A | undefined {
  const own = tables.byHost.get(host);
  if (own !== undefined) {
    const api = longestPrefix(own, path);
    if (api !== undefined) return api;
  }
  return longestPrefix(tables.anyHost, path);
}

/** 0: not a dot segment, 1: ".", 2: "..", with "%2e" read as ".". */
function dotSegment(segment: string): 0 | 1 | 2 {
  if (segment.length === 0 || segment.length > 6) return 0;
  const s = segment.length === 1 || segment.length === 2 ? segment : segment.toLowerCase().replaceAll('%2e', '.');
  return s === '.' ? 1 : s === '..' ? 2 : 0;
}

interface Resolution {
  /** null: ".." climbed above the root. */
  path: string | null;
  /** Index in `segments` of the first dot segment, or -1. */
  firstDot: number;
  segments: string[];
}

function resolveDots(path: string): Resolution {
  const segments = path.split('/');
  const out: string[] = [];
  let firstDot = -1;
  for (let i = 1; i < segments.length; i++) {
    const kind = dotSegment(segments[i]);
    if (kind === 0) {
      out.push(segments[i]);
      continue;
    }
    if (firstDot === -1) firstDot = i;
    if (kind === 2) {
      if (out.length === 0) return { path: null, firstDot, segments };
      out.pop();
    }
    // "/a/b/.." is the directory "/a/": keep the trailing slash.
    if (i === segments.length - 1) out.push('');
  }
  return { path: '/' + out.join('/'), firstDot, segments };
}

const ENCODED_SEPARATOR = /%2f|%5c|\\/i;
const ENCODED_SEPARATORS = /%2f|%5c|\\/gi;

/** Fast test: a path without these characters needs no normalisation. */
function isPlain(path: string): boolean {
  return path.indexOf('/.') === -1 && path.indexOf('%') === -1 && path.indexOf('\\') === -1;
}

/**
 * The API and normalised path for a request path (query string already removed), BAD_PATH
 * for a path that is ambiguous about its API, undefined when no API answers.
 */
export function routeRequest<A>(tables: RouteTables<A>, host: string, rawPath: string): Routed<A> | typeof BAD_PATH | undefined {
  if (rawPath.charCodeAt(0) !== 47 /* / */) return BAD_PATH; // absolute-form or "*": not for this gateway
  if (isPlain(rawPath)) {
    const api = lookupRoute(tables, host, rawPath);
    return api === undefined ? undefined : { api, path: rawPath };
  }
  const resolved = resolveDots(rawPath);
  if (resolved.path === null) return BAD_PATH;
  const path = resolved.path;
  const api = lookupRoute(tables, host, path);
  if (resolved.firstDot !== -1) {
    const before = resolved.segments.slice(0, resolved.firstDot).join('/') + '/';
    if (lookupRoute(tables, host, before) !== api) return BAD_PATH;
  }
  if (ENCODED_SEPARATOR.test(path)) {
    const decoded = path.replace(ENCODED_SEPARATORS, '/');
    const again = resolveDots(decoded);
    if (again.firstDot !== -1 || lookupRoute(tables, host, decoded) !== api) return BAD_PATH;
  }
  return api === undefined ? undefined : { api, path };
}
