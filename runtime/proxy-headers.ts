// Which headers go upstream with a request, and which of the upstream's go back to the client:
// hop-by-hop fields dropped both ways, the gateway's own (X-Forwarded-*, the client certificate,
// the key id) set by it alone, and the client's claims about its address or the request target
// kept only from a trusted proxy.
import { type IncomingHttpHeaders, validateHeaderName, validateHeaderValue } from 'node:http';
import { clientCertChainField, clientCertField } from './forward-identity.ts';
import { ONE_VALUE_OVER_HTTP2 } from './repeated-fields.ts';
import type { ForwardRequest } from './proxy.ts';

// RFC 9110 7.6.1: connection-specific fields are not forwarded (plus those Connection names).
// HTTP2-Settings too (RFC 7540 3.2.1, h2c's upgrade): node:http2 refuses to send it, as it does
// the others.
const HOP_BY_HOP = new Set([
  'connection',
  'http2-settings',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);
/**
 * Never taken from the client: the gateway sets these itself. "expect": node:http already
 * answered the client's 100-continue, and undici refuses requests that carry it.
 */
const SET_BY_GATEWAY = ['host', 'expect', 'x-forwarded-client-cert', 'client-cert', 'client-cert-chain', 'x-forwarded-proto', 'x-forwarded-host'];
/**
 * A request target other than the one the gateway routed and checked: some frameworks (IIS URL
 * Rewrite, Symfony before 2.8.44/3.4.14/4.1.3, Zend) route by these instead of the request line,
 * so `/public/x` with `X-Original-URL: /admin/delete` would reach a path no stage admitted.
 */
const TARGET_OVERRIDE = ['x-original-url', 'x-rewrite-url'];
/**
 * Where the request came from: the gateway writes X-Forwarded-For (and appends to a trusted
 * proxy's Forwarded) itself, below.
 */
const FORWARDED = ['x-forwarded-for', 'forwarded'];
/**
 * Headers that name the client's address, which applications take for it: nginx's realip
 * module and Kong read X-Real-IP by default, remix-utils' getClientIPAddress and Umami read
 * the others (X-Client-IP and True-Client-IP before X-Forwarded-For), Rails' remote_ip
 * Client-IP. Only a trusted proxy (--trusted-proxies) may say them; from anyone else they are
 * dropped, so an upstream that reads one finds none rather than the client's claim.
 */
const CLIENT_ADDRESS = [
  'x-real-ip',
  'true-client-ip',
  'x-client-ip',
  'client-ip',
  'x-cluster-client-ip',
  'cf-connecting-ip',
  'fastly-client-ip',
  'fly-client-ip',
  'x-forwarded',
  'forwarded-for',
];
/**
 * The same names with "_" for some "-" ("x_forwarded_for", "x-forwarded_client_cert"), from
 * anyone: CGI, WSGI (Python's wsgiref, gunicorn before 22), PHP and IIS server variables name a
 * header HTTP_X_FORWARDED_FOR whichever of the two it was sent with, and join or pick among the
 * copies, so the client's "X_Forwarded_Client_Cert" reached such an upstream as the gateway's
 * header (section 40). nginx, Apache httpd and Envoy's headers_with_underscores_action drop
 * them for this reason. Precomputed: the per-header lookup stays one Set probe.
 */
const UNDERSCORED = underscoreVariants([...SET_BY_GATEWAY, ...TARGET_OVERRIDE, ...FORWARDED, ...CLIENT_ADDRESS]);
/** What a trusted proxy's request never carries upstream as it came: one lookup per header. */
const NOT_FROM_PROXY = new Set([...HOP_BY_HOP, ...SET_BY_GATEWAY, ...TARGET_OVERRIDE, ...FORWARDED, ...UNDERSCORED]);
/** What any other client's request never carries upstream: the same one lookup per header. */
const NOT_FROM_CLIENT = new Set([...NOT_FROM_PROXY, ...CLIENT_ADDRESS]);

/**
 * Every other spelling of each name with "-" or "_" between its parts ("x-key-id": "x_key_id",
 * "x-key_id", ...; "x_key_id": "x-key-id", ...): the names a CGI reader takes for it.
 */
export function underscoreVariants(names: Iterable<string>): string[] {
  const out: string[] = [];
  for (const name of names) {
    const parts = name.split(/[-_]/);
    // 2^(separators) spellings (a name has at most 4 separators here), the name itself left out.
    for (let mask = 0; mask < 1 << (parts.length - 1); mask++) {
      let variant = parts[0];
      for (let i = 1; i < parts.length; i++) variant += (mask & (1 << (i - 1)) ? '_' : '-') + parts[i];
      if (variant !== name) out.push(variant);
    }
  }
  return out;
}

/** Names listed in a Connection header (lower-cased), or null. */
function connectionNamed(value: string | string[] | undefined): Set<string> | null {
  if (value === undefined) return null;
  // The usual values name no extra header: skip the parse (and, for their common spellings, the lower-casing).
  if (value === 'keep-alive' || value === 'Keep-Alive' || value === 'close' || value === 'Close') return null;
  if (typeof value === 'string' && value.length <= 10) {
    const v = value.toLowerCase();
    if (v === 'keep-alive' || v === 'close') return null;
  }
  const names = new Set<string>();
  for (const part of (Array.isArray(value) ? value.join(',') : value).split(',')) {
    const name = part.trim().toLowerCase();
    if (name !== '' && name !== 'close' && name !== 'keep-alive') names.add(name);
  }
  return names.size === 0 ? null : names;
}

/** Headers some frameworks read as "the real method": never forwarded when methods are restricted. */
const METHOD_OVERRIDE = new Set(['x-http-method-override', 'x-http-method', 'x-method-override']);

/** A header list: name, value, name, value... (names lower case, each once). */
export type HeaderList = Array<string | string[]>;

/**
 * The request's headers for its upstream, as a list: undici takes it as it is (an object costs
 * it Object.keys and a property lookup per header, and building one here a store per header into
 * an object of a new shape each time).
 */
export function upstreamHeaderList(f: ForwardRequest): HeaderList {
  const incoming = f.req.headers;
  const named = connectionNamed(incoming.connection);
  const stripAuth = f.api.def.strip_auth_data && !f.api.def.use_keyless ? f.api.def.auth_header_name : null;
  const forward = f.api.def.forward_client_cert;
  const keyIdHeaders = f.api.keyIdHeaders;
  const trusted = f.viaTrustedProxy;
  const notForwarded = trusted ? NOT_FROM_PROXY : NOT_FROM_CLIENT;
  const out: HeaderList = [];
  for (const name in incoming) {
    if (notForwarded.has(name) || name === stripAuth || named?.has(name) || keyIdHeaders?.has(name)) continue;
    if (name.charCodeAt(0) === 58 /* ":" HTTP/2 pseudo-header */) continue;
    if (f.stripMethodOverride && METHOD_OVERRIDE.has(name)) continue;
    out.push(name, incoming[name]!);
  }
  // What the gateway sets from here on: none of these names came from the client (filtered above).
  const own = out.length;
  if (f.grpc && incoming.te === 'trailers') out.push('te', 'trailers');
  const remote = f.remote;
  // A client's own X-Forwarded-For is a claim anyone can make: only a trusted proxy's is kept.
  const forwardedFor = trusted ? incoming['x-forwarded-for'] : undefined;
  out.push('x-forwarded-for', forwardedFor === undefined ? remote : `${forwardedFor}, ${remote}`);
  // RFC 7239: a trusted proxy's Forwarded gets this hop too (as X-Forwarded-For does); the
  // gateway starts none itself (neither do Envoy, nginx or Kong): an upstream reads X-Forwarded-For.
  if (trusted && incoming.forwarded !== undefined) out.push('forwarded', `${incoming.forwarded}, for=${forwardedNode(remote)}`);
  out.push('x-forwarded-proto', 'https');
  const host = f.http2 ? (incoming[':authority'] ?? incoming.host) : incoming.host;
  if (host !== undefined) out.push('x-forwarded-host', host as string);
  const identity = f.identity;
  if (identity !== null) {
    if (forward.xfcc.length > 0) out.push('x-forwarded-client-cert', identity.forwardedClientCert(forward.xfcc));
    if (forward.rfc9440) {
      out.push('client-cert', clientCertField(identity.leaf.raw));
      const chain = identity.chainDers();
      if (chain.length > 0) out.push('client-cert-chain', clientCertChainField(chain));
    }
  }
  // The one configurable name: it replaces a header of the same name set above.
  if (forward.key_id_header !== null && f.keyId !== null) setHeader(out, own, forward.key_id_header, f.keyId);
  return out;
}

/** Sets `name` in list[from..]: replaces its value there, or appends it. */
function setHeader(list: HeaderList, from: number, name: string, value: string): void {
  for (let i = from; i < list.length; i += 2) {
    if (list[i] === name) {
      list[i + 1] = value;
      return;
    }
  }
  list.push(name, value);
}

/** upstreamHeaderList as an object (node:http2 and the WebSocket upgrade take one). */
export function upstreamHeaders(f: ForwardRequest): Record<string, string | string[]> {
  return headerObject(upstreamHeaderList(f));
}

/** An address as a Forwarded `for=` node (RFC 7239 6): IPv6 bracketed and quoted. */
function forwardedNode(address: string): string {
  if (address === '') return 'unknown';
  return address.includes(':') ? `"[${address}]"` : address;
}

/** The upstream's answer headers for the client, as a list (node:http's writeHead takes one as it is). */
export function clientHeaderList(upstream: IncomingHttpHeaders): HeaderList {
  const named = connectionNamed(upstream.connection);
  const out: HeaderList = [];
  for (const name in upstream) {
    if (HOP_BY_HOP.has(name) || named?.has(name)) continue;
    const value = upstream[name];
    if (value !== undefined) out.push(name, value);
  }
  return out;
}

/**
 * The upstream's trailers for the client, or null when none is left: the same hop-by-hop rule
 * as its headers, a repeated field joined into one value (HTTP/2 refuses an array for a
 * single-value field), and a field node:http would refuse to write dropped. node:http2 sends
 * trailers from an event handler, after the answer's end: a field it refuses there
 * ("transfer-encoding" from an HTTP/1.1 upstream) threw out of the handler and took the
 * process down (section 40). Only an answer with trailers pays for this (gRPC's).
 */
export function clientTrailers(trailers: IncomingHttpHeaders): Record<string, string> | null {
  let out: Record<string, string> | null = null;
  for (const name in trailers) {
    const value = trailers[name];
    if (value === undefined || HOP_BY_HOP.has(name) || name.charCodeAt(0) === 58 /* ":" */) continue;
    const joined = Array.isArray(value) ? value.join(', ') : value;
    try {
      validateHeaderName(name);
      validateHeaderValue(name, joined);
    } catch {
      continue; // a field node:http would refuse: the rest still go
    }
    (out ??= {})[name] = joined;
  }
  return out;
}

/** clientHeaderList as an object (node:http2 takes one). */
export function clientHeaders(upstream: IncomingHttpHeaders): Record<string, string | string[]> {
  return headerObject(clientHeaderList(upstream));
}

/**
 * clientHeaders for an HTTP/2 client (docs/security.md section 51). An upstream that sends one
 * of node:http2's single-valued fields twice (two `X-Content-Type-Options: nosniff`, one added by
 * the application and one by its server) had the answer refused (502, node:http2 throws on the
 * array) where an HTTP/1.1 client got both copies. Such a field is given as an HTTP/1.1 browser
 * reads the copies (Fetch's "get" joins them with ", "): identical copies as one, others joined.
 * Costs one type test per field; Set-Cookie stays one field per cookie.
 */
export function http2ClientHeaders(upstream: IncomingHttpHeaders): Record<string, string | string[]> {
  return headerObject(clientHeaderList(upstream), true);
}

function headerObject(list: HeaderList, oneValueOverHttp2 = false): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (let i = 0; i < list.length; i += 2) {
    const name = list[i] as string;
    const value = list[i + 1];
    if (oneValueOverHttp2 && typeof value !== 'string' && ONE_VALUE_OVER_HTTP2.has(name))
      out[name] = value.every((v) => v === value[0]) ? value[0] : value.join(', ');
    else out[name] = value;
  }
  return out;
}

export function checkHeaders(...groups: Array<Record<string, string | string[]> | null>): void {
  for (const group of groups) {
    if (group === null) continue;
    for (const name in group) {
      validateHeaderName(name);
      const value = group[name];
      for (const v of Array.isArray(value) ? value : [value]) validateHeaderValue(name, v);
    }
  }
}
