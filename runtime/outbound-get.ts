// Every GET the runtime sends on its own (a bundle URL's poll, a sharded bundle's shards, a
// crl_url) goes through here, so what it sends and where it may be sent is decided in one place
// (docs/security.md section 49):
// - A URL's userinfo (`https://user:pass@host/...`) goes out as HTTP Basic, as curl sends it;
//   undici sent nothing from it and the poll failed with a bare 401. Never over plain http:// to
//   a host that is not loopback: the password would cross the network in the clear, to whoever
//   is on the path. Never to another origin a redirect leads to.
// - Redirects are followed only where the caller allows them (crl_urls: CRL distribution points
//   do redirect to CDNs), at most MAX_REDIRECTS, never from https to http, and never to a
//   loopback, link-local or private address unless the configured URL's own address was of that
//   kind: whoever answers a plain-HTTP crl_url could otherwise make the gateway send GETs to its
//   admin port or to cloud metadata (169.254.169.254). The address checked is the one connected
//   to (the resolver's answer), so a name that resolves to 127.0.0.1 is no way round it.
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { Agent, type Dispatcher, request } from 'undici';
import { isLoopback, redactUrl } from './redact.ts';

export const MAX_REDIRECTS = 5;

export class OutboundRefused extends Error {
  override name = 'OutboundRefused';
}

/** Why `url`'s credentials may not be sent, or null (none, https, or a loopback host). */
export function credentialsRefusal(url: string): string | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return null;
  }
  if (u.username === '' && u.password === '') return null;
  if (u.protocol === 'https:' || isLoopback(u.hostname)) return null;
  return `${redactUrl(url)} carries a user name and password over plain http to a host that is not loopback: they would cross the network in the clear. Use https`;
}

type AddressKind = 'public' | 'private' | 'loopback' | 'link-local';

const kinds: Array<[AddressKind, BlockList]> = [
  ['loopback', blocks(['127.0.0.0/8', '0.0.0.0/8'], ['::1/128', '::/128'])],
  ['link-local', blocks(['169.254.0.0/16'], ['fe80::/10'])],
  ['private', blocks(['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10'], ['fc00::/7'])],
];

function blocks(v4: string[], v6: string[]): BlockList {
  const list = new BlockList();
  for (const r of v4) list.addSubnet(r.split('/')[0], Number(r.split('/')[1]), 'ipv4');
  for (const r of v6) list.addSubnet(r.split('/')[0], Number(r.split('/')[1]), 'ipv6');
  return list;
}

/** What kind of address `ip` is (an IPv4-mapped IPv6 address as its IPv4 one). */
export function addressKind(ip: string): AddressKind {
  const bare = ip.replace(/^\[|\]$/g, '');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(bare)?.[1];
  const address = mapped ?? bare;
  const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
  for (const [kind, list] of kinds) if (list.check(address, family)) return kind;
  return 'public';
}

interface GetOptions {
  headers?: Record<string, string>;
  headersTimeout: number;
  bodyTimeout: number;
  signal: AbortSignal;
  /** Redirects to follow (0: a 3xx is the answer, for the caller to refuse). */
  redirects: number;
}

/** The answer (status, headers, body for the caller to read or dump) and the URL it came from. */
export async function outboundGet(url: string, opts: GetOptions): Promise<{ res: Dispatcher.ResponseData; url: string }> {
  const refusal = credentialsRefusal(url);
  if (refusal !== null) throw new OutboundRefused(refusal);
  const first = new URL(url);
  const authorization =
    first.username === '' && first.password === ''
      ? undefined
      : `Basic ${Buffer.from(`${decodeURIComponent(first.username)}:${decodeURIComponent(first.password)}`).toString('base64')}`;
  if (opts.redirects === 0) {
    const res = await request(withoutUserinfo(first), { method: 'GET', ...requestOptions(opts, authorization) });
    return { res, url };
  }
  // The kinds of address the configured URL reached: a redirect may lead to a public address or
  // to one of these, no other. Filled by the first connection (or the URL's own IP literal).
  const origin = new Set<AddressKind>();
  let hop = 0;
  const guard = new Agent({ connect: { lookup: guardedLookup(origin, () => hop === 0) } });
  try {
    let at = first;
    for (;;) {
      if (hop === 0 && isIP(bare(at.hostname)) !== 0) origin.add(addressKind(at.hostname));
      const sameOrigin = at.origin === first.origin;
      const res = await request(withoutUserinfo(at), { method: 'GET', dispatcher: guard, ...requestOptions(opts, sameOrigin ? authorization : undefined) });
      const location = res.headers.location;
      if (![301, 302, 303, 307, 308].includes(res.statusCode) || typeof location !== 'string') {
        // The agent closes once this body is read (close waits for requests under way).
        void guard.close();
        return { res, url: at.href };
      }
      await res.body.dump();
      const next = redirectTarget(at, location, ++hop, origin);
      at = next;
    }
  } catch (err) {
    void guard.destroy();
    throw err;
  }
}

/** Where a redirect from `from` leads, or OutboundRefused with why it is not followed. */
function redirectTarget(from: URL, location: string, hop: number, origin: ReadonlySet<AddressKind>): URL {
  const refuse = (why: string) => new OutboundRefused(`redirect from ${redactUrl(from.href)} not followed: ${why}`);
  let to: URL;
  try {
    to = new URL(location, from);
  } catch {
    throw refuse('its Location is not a URL');
  }
  if (hop > MAX_REDIRECTS) throw refuse(`more than ${MAX_REDIRECTS} redirects`);
  if (to.protocol !== 'http:' && to.protocol !== 'https:') throw refuse(`it leads to ${to.protocol} (only http and https)`);
  if (from.protocol === 'https:' && to.protocol === 'http:') throw refuse(`it leads from https to plain http (${redactUrl(to.href)})`);
  const literal = bare(to.hostname);
  if (isIP(literal) !== 0) {
    const why = kindRefusal(addressKind(literal), origin, literal);
    if (why !== null) throw refuse(`it leads to ${redactUrl(to.href)}: ${why}`);
  }
  return to;
}

function kindRefusal(kind: AddressKind, origin: ReadonlySet<AddressKind>, address: string): string | null {
  if (kind === 'public' || origin.has(kind)) return null;
  return `${address} is a ${kind} address, and the configured URL's is not (${[...origin].join(', ') || 'unknown'})`;
}

/** The resolver as net.connect calls it, recording (first connection) or checking (after a redirect) each address. */
function guardedLookup(origin: Set<AddressKind>, isFirst: () => boolean): LookupFunction {
  return (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses: LookupAddress[]) => {
      if (err) return callback(err, '', 0);
      let allowed = addresses;
      if (isFirst()) for (const a of addresses) origin.add(addressKind(a.address));
      else allowed = addresses.filter((a) => kindRefusal(addressKind(a.address), origin, a.address) === null);
      if (allowed.length === 0) {
        const why = kindRefusal(addressKind(addresses[0].address), origin, addresses[0].address);
        return callback(new OutboundRefused(`redirect to ${hostname} not followed: ${why}`), '', 0);
      }
      if (options.all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, allowed);
      callback(null, allowed[0].address, allowed[0].family);
    });
  };
}

const bare = (hostname: string) => hostname.replace(/^\[|\]$/g, '');

function withoutUserinfo(u: URL): string {
  if (u.username === '' && u.password === '') return u.href;
  const copy = new URL(u.href);
  copy.username = '';
  copy.password = '';
  return copy.href;
}

function requestOptions(opts: GetOptions, authorization: string | undefined) {
  return {
    headers: authorization === undefined ? (opts.headers ?? {}) : { ...opts.headers, authorization },
    headersTimeout: opts.headersTimeout,
    bodyTimeout: opts.bodyTimeout,
    signal: opts.signal,
  };
}
