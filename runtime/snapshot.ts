// The request path's view of a bundle: everything a request needs, prepared once at load time
// (Maps, compiled regexes, CA certificate objects, upstream URL parts, per-host "asks for a
// client certificate"). A request reads one snapshot on arrival and uses it to the end; the
// request path parses nothing.
import { X509Certificate } from 'node:crypto';
import type { Bundle, BundleApi, BundleKey } from './bundle.ts';
import type { TrustedCa } from './identity.ts';
import type { RouteTables } from './route.ts';
import { markOriginsInUse, upstreamFor, type Upstream } from './upstreams.ts';

export interface PreparedApi {
  readonly def: BundleApi;
  readonly id: string;
  /** use_mutual_tls_auth or auth.use_certificate: TLS asks this API's hosts for a certificate. */
  readonly usesCertificate: boolean;
  readonly pinned: ReadonlySet<string>;
  readonly cas: readonly TrustedCa[];
  readonly upstream: Upstream;
  /** Target URL's path without its trailing "/" ("" for "http://host:port/"). */
  readonly targetBase: string;
  /** Characters of the request path to drop before forwarding (listen_path minus its last "/"), 0 when not stripping. */
  readonly stripLength: number;
  /** Length of listen_path minus its last "/": the path allowed_urls see starts there. */
  readonly restStart: number;
}

export interface PreparedUrl {
  readonly pattern: RegExp;
  /** null = every method. */
  readonly methods: ReadonlySet<string> | null;
}

export interface PreparedKey {
  readonly def: BundleKey;
  readonly id: string;
  /** ms since the epoch; Infinity = never. */
  readonly expiresAt: number;
  /** api id -> null (the whole API) or the allowed URLs. */
  readonly rights: ReadonlyMap<string, readonly PreparedUrl[] | null>;
  /** Has a rate limit or quota: the limiter is consulted. */
  readonly limited: boolean;
}

export interface Snapshot {
  readonly bundle: Bundle;
  readonly digest: string;
  readonly routes: RouteTables<PreparedApi>;
  /** Leaf fingerprint -> the key it identifies. */
  readonly keyByCert: ReadonlyMap<string, PreparedKey>;
  /** Token SHA-256 hex -> key. */
  readonly keyByToken: ReadonlyMap<string, PreparedKey>;
  readonly keys: ReadonlyMap<string, PreparedKey>;
  /** Hosts with a domain-bound API -> does TLS ask for a client certificate there. */
  readonly certHosts: ReadonlyMap<string, boolean>;
  /** For any other host (and connections without SNI): do domain-less APIs need one. */
  readonly certOnOtherHosts: boolean;
  /** Some API trusts a CA: connections keep the certificate chain their client sent. */
  readonly trustsCas: boolean;
}

/** Does a connection for this SNI host ("" = none) get a CertificateRequest. */
export function hostNeedsCertificate(snapshot: Snapshot, host: string): boolean {
  return snapshot.certHosts.get(host) ?? snapshot.certOnOtherHosts;
}

function prepareUpstream(api: BundleApi): { upstream: Upstream; targetBase: string } {
  let url: URL;
  try {
    url = new URL(api.target_url);
  } catch {
    throw new Error(`api ${api.id}: target_url ${JSON.stringify(api.target_url)} is not an absolute URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new Error(`api ${api.id}: target_url ${JSON.stringify(api.target_url)} must be http:// or https://`);
  }
  if (url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
    throw new Error(`api ${api.id}: target_url ${JSON.stringify(api.target_url)} must not carry a query, fragment or credentials`);
  }
  const base = url.pathname.endsWith('/') ? url.pathname.slice(0, -1) : url.pathname;
  return { upstream: upstreamFor(url.origin), targetBase: base };
}

function prepareCas(bundle: Bundle, api: BundleApi, cache: Map<string, TrustedCa>): TrustedCa[] {
  return api.client_cas.map((fingerprint) => {
    let ca = cache.get(fingerprint);
    if (ca === undefined) {
      const entry = bundle.content.cas[fingerprint];
      let cert: X509Certificate;
      try {
        cert = new X509Certificate(entry.pem);
      } catch (err) {
        throw new Error(`ca ${fingerprint} (${entry.subject}) used by api ${api.id}: its PEM is not a readable certificate: ${(err as Error).message}`);
      }
      if (!cert.ca) throw new Error(`ca ${fingerprint} (${entry.subject}) used by api ${api.id} is not a CA certificate (basicConstraints CA:FALSE)`);
      ca = { fingerprint, cert };
      cache.set(fingerprint, ca);
    }
    return ca;
  });
}

function prepareApi(bundle: Bundle, api: BundleApi, cas: Map<string, TrustedCa>): PreparedApi {
  const { upstream, targetBase } = prepareUpstream(api);
  const dirLength = api.listen_path.length - 1;
  return {
    def: api,
    id: api.id,
    usesCertificate: api.use_mutual_tls_auth || api.use_certificate,
    pinned: new Set(api.client_certificates),
    cas: prepareCas(bundle, api, cas),
    upstream,
    targetBase,
    stripLength: api.strip_listen_path ? dirLength : 0,
    restStart: dirLength,
  };
}

function prepareKey(key: BundleKey): PreparedKey {
  let expiresAt = Infinity;
  if (key.expires !== null) {
    expiresAt = Date.parse(key.expires);
    if (Number.isNaN(expiresAt)) throw new Error(`key ${key.id}: expires ${JSON.stringify(key.expires)} is not an ISO-8601 time`);
  }
  const rights = new Map<string, PreparedUrl[] | null>();
  for (const [apiId, right] of Object.entries(key.access_rights)) {
    if (right.allowed_urls === null) {
      rights.set(apiId, null);
      continue;
    }
    rights.set(
      apiId,
      right.allowed_urls.map((allowed, i) => {
        let pattern: RegExp;
        try {
          pattern = new RegExp(allowed.url);
        } catch (err) {
          throw new Error(`key ${key.id}: access_rights.${apiId}.allowed_urls[${i}].url ${JSON.stringify(allowed.url)} is not a valid regular expression: ${(err as Error).message}`);
        }
        return { pattern, methods: allowed.methods.length === 0 ? null : new Set(allowed.methods.map((m) => m.toUpperCase())) };
      }),
    );
  }
  return { def: key, id: key.id, expiresAt, rights, limited: key.rate !== null || key.quota !== null };
}

/** Throws Error with a message naming the record it cannot use. */
export function buildSnapshot(bundle: Bundle): Snapshot {
  const content = bundle.content;
  const cas = new Map<string, TrustedCa>();
  const apis = new Map<string, PreparedApi>();
  for (const api of Object.values(content.apis)) apis.set(api.id, prepareApi(bundle, api, cas));

  const byHost = new Map<string, Map<string, PreparedApi>>();
  const anyHost = new Map<string, PreparedApi>();
  for (const [host, paths] of Object.entries(content.index.routes)) {
    const table = host === '*' ? anyHost : new Map<string, PreparedApi>();
    for (const [listenPath, apiId] of Object.entries(paths)) table.set(listenPath, apis.get(apiId)!);
    if (host !== '*') byHost.set(host.toLowerCase(), table);
  }

  let certOnOtherHosts = false;
  for (const api of anyHost.values()) certOnOtherHosts ||= api.usesCertificate;
  const certHosts = new Map<string, boolean>();
  for (const [host, table] of byHost) {
    let needs = certOnOtherHosts;
    for (const api of table.values()) needs ||= api.usesCertificate;
    certHosts.set(host, needs);
  }

  const keys = new Map<string, PreparedKey>();
  for (const key of Object.values(content.keys)) keys.set(key.id, prepareKey(key));
  const keyByCert = new Map<string, PreparedKey>();
  for (const [fingerprint, entry] of Object.entries(content.index.certs)) {
    if (entry.key !== null) keyByCert.set(fingerprint, keys.get(entry.key)!);
  }
  const keyByToken = new Map<string, PreparedKey>();
  for (const [hash, keyId] of Object.entries(content.index.tokens)) keyByToken.set(hash, keys.get(keyId)!);

  markOriginsInUse(new Set([...apis.values()].map((api) => api.upstream.origin)));
  return { bundle, digest: bundle.digest, routes: { byHost, anyHost }, keyByCert, keyByToken, keys, certHosts, certOnOtherHosts, trustsCas: cas.size > 0 };
}
