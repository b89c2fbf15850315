// Behind a TLS-terminating load balancer (`--client-cert-header` with `--trusted-proxies`): the
// client's certificate arrives in a request header instead of the handshake. On a request from
// a trusted proxy the header is the client certificate (the proxy's own TLS certificate, if it
// presents one, is not the client's); from any other address the header is dropped unread.
// Either way the header never reaches the upstream, which gets the identity the API's
// forward_client_cert says, as for a handshake certificate.
//
// The formats:
//   client-cert  RFC 9440: `Client-Cert: :<base64 DER>:` (+ `Client-Cert-Chain: :<DER>:, ...`)
//   xfcc         Envoy's `X-Forwarded-Client-Cert`: the `Cert="<URL-encoded PEM>"` (and `Chain=`)
//                of the last element, the one the nearest proxy appended (Envoy appends its
//                element at the end, after a comma)
//   NAME         any other header holding URL-encoded PEM, leaf first then its chain
//                (AWS ALB `X-Amzn-Mtls-Clientcert`, nginx `$ssl_client_escaped_cert`)
//
// A header value is parsed once: the identity (runtime/identity.ts's ClientIdentity, the one a
// handshake builds, with its per-snapshot verdict memos) is cached by the exact header text in
// an LRU bounded in entries and in characters, so a stream of requests from the same clients
// parses nothing and a flood of distinct certificates holds a few MB at most.
import { X509Certificate } from 'node:crypto';
import { certificateDers } from '../cert/read.ts';
import { refusal, type Refusal } from './errors.ts';
import { ClientIdentity } from './identity.ts';
import type { TrustedProxies } from './trusted-proxies.ts';

export type CertHeaderFormat = 'client-cert' | 'xfcc' | 'pem';

export interface CertHeaderSpec {
  format: CertHeaderFormat;
  /** Lower-case header name. */
  header: string;
  /** RFC 9440's Client-Cert-Chain, read and dropped with `header`; null for the other formats. */
  chainHeader: string | null;
}

/** Headers the gateway itself depends on: never a certificate header. */
const RESERVED = new Set([
  'host',
  'connection',
  'content-length',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
  'keep-alive',
  'expect',
  'authorization',
  'cookie',
  'content-type',
]);

/** `--client-cert-header client-cert|xfcc|NAME`; throws Error with the reason on a bad NAME. */
export function certHeaderSpec(value: string): CertHeaderSpec {
  const name = value.trim().toLowerCase();
  if (name === 'client-cert') return { format: 'client-cert', header: 'client-cert', chainHeader: 'client-cert-chain' };
  if (name === 'xfcc' || name === 'x-forwarded-client-cert') return { format: 'xfcc', header: 'x-forwarded-client-cert', chainHeader: null };
  if (!/^[a-z0-9!#$%&'*+.^_`|~-]+$/.test(name))
    throw new Error(`${JSON.stringify(value)} is not a header name (client-cert, xfcc, or a header name like x-amzn-mtls-clientcert)`);
  if (RESERVED.has(name)) throw new Error(`${name} cannot carry the client certificate: the gateway reads it for its own purpose`);
  return { format: 'pem', header: name, chainHeader: null };
}

/** A header value that is no certificate in its format: the request is refused (400 mtls.cert_header_invalid). */
export const INVALID = Symbol('invalid client certificate header');

/** RFC 8941 byte sequence `:base64:`, or null. */
function byteSequence(text: string): Buffer | null {
  const m = /^:([A-Za-z0-9+/]+={0,2}):$/.exec(text.trim());
  return m === null ? null : Buffer.from(m[1], 'base64');
}

const isSpace = (c: string | undefined): boolean => c === ' ' || c === '\t';

/**
 * XFCC parsed strictly (Envoy's grammar): elements separated by `,`, each `key=value` pairs
 * separated by `;`, a value either a double-quoted string (`\"` and `\\` escapes) or plain text
 * without `"`, `,` or `;`. Null for anything else. Strict because the header may carry what the
 * client sent in front of the element the proxy appended (Envoy's APPEND_FORWARD): a lenient
 * reading let an unbalanced quote in the client's part swallow the proxy's separator, so that
 * the "last element" was the client's and named a certificate of the client's choosing.
 */
export function xfccElements(text: string): Array<Array<[string, string]>> | null {
  const elements: Array<Array<[string, string]>> = [];
  let pairs: Array<[string, string]> = [];
  const n = text.length;
  let i = 0;
  for (;;) {
    while (isSpace(text[i])) i++;
    const eq = text.indexOf('=', i);
    if (eq === -1) return null;
    const key = text.slice(i, eq);
    if (!/^[A-Za-z]+$/.test(key)) return null;
    i = eq + 1;
    let value: string;
    if (text[i] === '"') {
      value = '';
      let start = ++i;
      for (;;) {
        if (i >= n) return null; // unterminated
        const c = text[i];
        if (c === '"') break;
        if (c === '\\') {
          if (i + 1 >= n) return null;
          value += text.slice(start, i) + text[i + 1];
          i += 2;
          start = i;
        } else i++;
      }
      value += text.slice(start, i);
      i++;
    } else {
      const start = i;
      while (i < n && text[i] !== ';' && text[i] !== ',') {
        if (text[i] === '"') return null;
        i++;
      }
      value = text.slice(start, i).trim();
    }
    pairs.push([key, value]);
    while (isSpace(text[i])) i++;
    if (i >= n) {
      elements.push(pairs);
      return elements;
    }
    if (text[i] === ',') {
      elements.push(pairs);
      pairs = [];
    } else if (text[i] !== ';') return null;
    i++;
  }
}

/** Leaf and chain DERs of the last XFCC element's Cert (and Chain, which includes the leaf). */
function fromXfcc(value: string): { leaf: Buffer; chain: Buffer[] } | null {
  const elements = xfccElements(value);
  if (elements === null) return null;
  let cert: string | null = null;
  let chain: string | null = null;
  for (const [name, text] of elements[elements.length - 1]) {
    const key = name.toLowerCase();
    if (key === 'cert') {
      if (cert !== null) return null; // two certificates in one element
      cert = text;
    } else if (key === 'chain') chain = text;
  }
  if (cert === null) return null;
  const leaf = pemCertificates(decodeURIComponent(cert));
  if (leaf === null || leaf.length !== 1) return null;
  const all = chain === null ? [] : pemCertificates(decodeURIComponent(chain));
  if (all === null) return null;
  return { leaf: leaf[0], chain: all.filter((d) => !d.equals(leaf[0])) };
}

/**
 * PEM CERTIFICATE blocks and the whitespace between them, nothing else. node:http (and
 * node:http2) join the copies of a repeated header with ", ": a proxy that appends its header
 * to the client's instead of replacing it (HAProxy's add-header, a Lua or CDN rule) sends
 * "<client's>, <proxy's>", and the first block, the client's, was read as the leaf: holding
 * only the victim's public certificate, the client was the victim. Other text (a comma, any
 * other block) means several values or a value the proxy did not write: no certificate.
 * The classes are disjoint from "-": linear time.
 */
const PEM_CERTIFICATES = /^\s*(?:-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]*-----END CERTIFICATE-----\s*)+$/;

function pemCertificates(text: string): Buffer[] | null {
  return PEM_CERTIFICATES.test(text) ? certificateDers(text) : null;
}

/** Leaf and chain DERs a header value names, or null when it is not a certificate in `format`. Throws on a malformed escape. */
export function parseCertHeader(format: CertHeaderFormat, value: string, chainValue: string | undefined): { leaf: Buffer; chain: Buffer[] } | null {
  switch (format) {
    case 'client-cert': {
      const leaf = byteSequence(value);
      if (leaf === null) return null;
      const chain: Buffer[] = [];
      if (chainValue !== undefined && chainValue.trim() !== '') {
        for (const item of chainValue.split(',')) {
          const der = byteSequence(item);
          if (der === null) return null;
          chain.push(der);
        }
      }
      return { leaf, chain };
    }
    case 'xfcc':
      return fromXfcc(value);
    case 'pem': {
      const ders = pemCertificates(decodeURIComponent(value));
      return ders === null ? null : { leaf: ders[0], chain: ders.slice(1) };
    }
  }
}

/** The identity a header value names, INVALID when it names none. */
function identityOfValue(spec: CertHeaderSpec, value: string, chainValue: string | undefined): ClientIdentity | typeof INVALID {
  try {
    const parsed = parseCertHeader(spec.format, value, chainValue);
    if (parsed === null) return INVALID;
    const leaf = new X509Certificate(parsed.leaf);
    // Exactly one certificate: node:crypto ignores bytes after the DER, which would let
    // different header texts (or a PEM body run into the next one) name the same certificate.
    if (leaf.raw.length !== parsed.leaf.length) return INVALID;
    return new ClientIdentity(leaf, parsed.chain);
  } catch {
    return INVALID; // a malformed %-escape, or DER that is no certificate
  }
}

/** The last header value a connection sent and its identity (runtime/trusted-proxies.ts keeps the trust verdict alike). */
const LAST = Symbol('mtlsgate.lastCertHeader');
interface LastSeen {
  value: string;
  chainValue: string | undefined;
  id: ClientIdentity | typeof INVALID;
}

/** Distinct header values whose identity is kept. */
const CACHE_SIZE = 4096;
/** And at most this many characters of header values (node:http caps a request's headers at 16 KiB). */
const CACHE_CHARS = 8 << 20;

export class CertHeaderReader {
  /** Header value (with the chain header's, if any) -> identity; Map order is recency (oldest first). */
  private readonly cache = new Map<string, ClientIdentity | typeof INVALID>();
  /** Characters of the keys in `cache`. */
  private chars = 0;
  parses = 0;

  constructor(
    readonly spec: CertHeaderSpec,
    readonly trusted: TrustedProxies,
    private readonly cacheSize = CACHE_SIZE,
  ) {}

  /**
   * The client identity of a request on `socket`: from the header when the socket's peer is a
   * trusted proxy (null without the header, INVALID for a header that is no certificate),
   * else `handshake`. Deletes the header(s) from `headers` in both cases, so no stage sees and
   * no upstream receives them.
   */
  identity(
    headers: Record<string, string | string[] | undefined>,
    socket: { remoteAddress?: string },
    handshake: ClientIdentity | null,
  ): ClientIdentity | null | typeof INVALID {
    const { header, chainHeader } = this.spec;
    const value = headers[header];
    const chainValue = chainHeader === null ? undefined : headers[chainHeader];
    if (value !== undefined) delete headers[header];
    if (chainValue !== undefined) delete headers[chainHeader!];
    if (!this.trusted.trustsSocket(socket)) return handshake;
    if (value === undefined) return null;
    // A repeated header is no single certificate: an array here; values node:http joined with
    // ", " are the parse's (XFCC's last element is the nearest proxy's; RFC 9440 and PEM refuse them).
    if (typeof value !== 'string' || Array.isArray(chainValue)) return INVALID;
    // The last value on this connection first: a string comparison, no hashing of the value.
    const memo = socket as { [LAST]?: LastSeen };
    const last = memo[LAST];
    if (last !== undefined && last.value === value && last.chainValue === chainValue) return last.id;
    const id = this.lookup(value, chainValue);
    memo[LAST] = { value, chainValue, id };
    return id;
  }

  private lookup(value: string, chainValue: string | undefined): ClientIdentity | typeof INVALID {
    const key = chainValue === undefined ? value : `${value}\n${chainValue}`;
    let id = this.cache.get(key);
    if (id !== undefined) {
      // Most recently used goes last; cheap (no parse, no allocation).
      this.cache.delete(key);
      this.cache.set(key, id);
      return id;
    }
    this.parses++;
    id = identityOfValue(this.spec, value, chainValue);
    while (this.cache.size > 0 && (this.cache.size >= this.cacheSize || this.chars + key.length > CACHE_CHARS)) {
      const oldest = this.cache.keys().next().value as string;
      this.cache.delete(oldest);
      this.chars -= oldest.length;
    }
    this.cache.set(key, id);
    this.chars += key.length;
    return id;
  }
}

/** What a request's arrival establishes when `--client-cert-header` is on. */
export interface Arrival {
  /** The identity the stages see (the handshake's when the request is refused). */
  identity: ClientIdentity | null;
  /** Answers the request before the stages run, or null. */
  refusal: Refusal | null;
  /** The connection's peer is in --trusted-proxies: its forwarding headers are kept (runtime/proxy.ts). */
  viaTrustedProxy: boolean;
}

/**
 * What a transport needs at a request's arrival when `--client-cert-header` is on: the identity
 * the stages see or the refusal that answers the request before they run, and whether the peer
 * is a trusted proxy (decided once per connection). `plain`: the `--listen-plain` listener,
 * which serves trusted proxies only.
 */
export function arrivalIdentity(
  reader: CertHeaderReader,
  headers: Record<string, string | string[] | undefined>,
  socket: { remoteAddress?: string },
  handshake: ClientIdentity | null,
  plain: boolean,
): Arrival {
  const viaTrustedProxy = reader.trusted.trustsSocket(socket);
  if (plain && !viaTrustedProxy) return { identity: handshake, refusal: refusal('request.untrusted_proxy'), viaTrustedProxy };
  const id = reader.identity(headers, socket, handshake);
  if (id === INVALID) return { identity: handshake, refusal: refusal('mtls.cert_header_invalid'), viaTrustedProxy };
  return { identity: id, refusal: null, viaTrustedProxy };
}
