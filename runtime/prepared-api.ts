// An API of the bundle as the request path uses it: its upstream (pool, TLS settings, base
// path), pins as a Set, trusted CAs and certificate_match rules parsed, and the path offsets
// routing and forwarding need, all prepared when the snapshot is built.
import { BundleCheckError, checkTargetUrl } from '../bundle/checks.ts';
import type { BundleApi, BundleCa } from '../bundle/types.ts';
import type { TrustedCa } from './identity.ts';
import { type PreparedMatch, prepareMatch } from './match-index.ts';
import { underscoreVariants } from './proxy-headers.ts';
import { redactUrl } from './redact.ts';
import { trustedCa } from './trusted-cas.ts';
import { loadUpstreamTls } from './upstream-tls.ts';
import { upstreamFor, type Upstream } from './upstreams.ts';

export interface PreparedApi {
  readonly def: BundleApi;
  readonly id: string;
  /** use_mutual_tls_auth or auth.use_certificate: TLS asks this API's hosts for a certificate. */
  readonly usesCertificate: boolean;
  readonly pinned: ReadonlySet<string>;
  readonly cas: readonly TrustedCa[];
  /** client_certificates object entries: a CA trusted for some subjects only. */
  readonly matches: readonly PreparedMatch[];
  readonly upstream: Upstream;
  /** Target URL's path without its trailing "/" ("" for "http://host:port/"). */
  readonly targetBase: string;
  /** Characters of the request path to drop before forwarding (listen_path minus its last "/"), 0 when not stripping. */
  readonly stripLength: number;
  /** Length of listen_path minus its last "/": the path allowed_urls see starts there. */
  readonly restStart: number;
  /**
   * Every API's forward_client_cert.key_id_header in this bundle (lower case), or null when none
   * names one: a client's copy is removed on every API, not only on the one that sets it, since
   * APIs often share an upstream that trusts the header.
   */
  readonly keyIdHeaders: ReadonlySet<string> | null;
}

function prepareUpstream(api: BundleApi): { upstream: Upstream; targetBase: string } {
  const target = checkTargetUrl(api.target_url);
  // Quoted redacted: the refusal reaches /health, the logs and stderr, and a URL that is refused
  // for carrying credentials or a query is one whose secret must not be shown (redact.ts).
  if (!target.ok) throw new BundleCheckError(`api ${api.id}: target_url ${JSON.stringify(redactUrl(api.target_url))} ${target.problem}`);
  // Reads the client pair from disk: an unreadable key refuses this snapshot (start-up or reload).
  const tls = api.upstream_tls === null ? null : loadUpstreamTls(api.id, api.upstream_tls);
  return { upstream: upstreamFor(target.value.origin, api.upstream_http2, tls), targetBase: target.value.basePath };
}

/** The API's client_cas, each parsed once per snapshot (`cache`). */
function prepareCas(bundleCas: Record<string, BundleCa>, api: BundleApi, cache: Map<string, TrustedCa>): TrustedCa[] {
  return api.client_cas.map((fingerprint) => trustedCa(bundleCas, fingerprint, cache, api.id));
}

export function prepareApi(
  bundleCas: Record<string, BundleCa>,
  api: BundleApi,
  cas: Map<string, TrustedCa>,
  keyIdHeaders: ReadonlySet<string> | null,
): PreparedApi {
  const { upstream, targetBase } = prepareUpstream(api);
  const dirLength = api.listen_path.length - 1;
  return {
    def: api,
    id: api.id,
    usesCertificate: api.use_mutual_tls_auth || api.use_certificate,
    pinned: new Set(api.client_certificates),
    cas: prepareCas(bundleCas, api, cas),
    matches: api.client_matches.map((m) => prepareMatch(m, trustedCa(bundleCas, m.issuer, cas, api.id), null)),
    upstream,
    targetBase,
    stripLength: api.strip_listen_path ? dirLength : 0,
    restStart: dirLength,
    keyIdHeaders,
  };
}

/** The key id headers of every API, lower case; null when there are none. */
export function keyIdHeadersOf(apis: Record<string, BundleApi>): ReadonlySet<string> | null {
  const names = new Set<string>();
  for (const id in apis) {
    const name = apis[id].forward_client_cert.key_id_header;
    if (name === null) continue;
    names.add(name.toLowerCase());
    // "X_Key_Id" is the same header to a CGI or WSGI upstream (runtime/proxy-headers.ts, UNDERSCORED).
    for (const variant of underscoreVariants([name.toLowerCase()])) names.add(variant);
  }
  return names.size === 0 ? null : names;
}
