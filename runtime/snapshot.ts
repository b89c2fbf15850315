// The request path's view of a bundle: everything a request needs, prepared at load time
// (route Maps, CA certificate objects, upstream URL parts, per-host "asks for a client
// certificate", every allowed_urls regex compiled). Per-key objects are made on a key's first
// request from those prepared parts, so a 100,000-key bundle swaps in without building 100,000
// objects. A request reads one snapshot on arrival and uses it to the end.
// A snapshot is built either from a parsed bundle (`buildSnapshot`) or from the compact form a
// worker thread verified (`buildCompactSnapshot`, runtime/bundle-worker-compact.ts).
import {
  BundleCheckError,
  caProblem,
  checkCaPem,
  checkKeys,
  checkTargetUrl,
  keyExpiry,
  keyPattern,
  type PatternCache,
  type UrlPattern,
} from '../bundle/checks.ts';
import type { Bundle, BundleApi, BundleCa, BundleContent, BundleKey } from '../bundle/types.ts';
import type { CompactBundle } from './bundle-worker-compact.ts';
import { CompactKeys } from './compact-keys.ts';
import { type ExpiryList, expiryOf } from './expiry-list.ts';
import { ShardedKeys, type ShardSet } from './sharded-keys.ts';
import { AMBIGUOUS, type ClientIdentity, type TrustedCa } from './identity.ts';
import { MatchIndex, type PreparedMatch, prepareMatch } from './match-index.ts';
import { crlStore, RevocationView } from './revocation.ts';
import { redactUrl } from './redact.ts';
import type { RouteTables } from './route.ts';
import { loadUpstreamTls } from './upstream-tls.ts';
import { markOriginsInUse, upstreamFor, type Upstream } from './upstreams.ts';

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

interface PreparedUrl {
  readonly pattern: UrlPattern;
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
  /** Hosts with a domain-bound API -> does TLS ask for a client certificate there. */
  readonly certHosts: ReadonlyMap<string, boolean>;
  /** For any other host (and connections without SNI): do domain-less APIs need one. */
  readonly certOnOtherHosts: boolean;
  /**
   * Connections keep the certificate chain their client sent: some API trusts a CA (whole, or
   * for some subjects), a key is matched by subject, or an API forwards Client-Cert-Chain.
   */
  readonly trustsCas: boolean;
  /** Revocation as this bundle (and the CRLs fetched meanwhile) says. */
  readonly revocation: RevocationView;
  /** Certificates with a known notAfter, soonest first (the expiry metrics and admin list). */
  readonly expiry: ExpiryList;
  /** The key a leaf fingerprint identifies. */
  keyByCert(fingerprint: string): PreparedKey | undefined;
  /**
   * The key a client certificate identifies: by fingerprint first, else by certificate_match
   * (one hash lookup per connection, cached on the identity); AMBIGUOUS_KEY when two rules match.
   */
  keyOfIdentity(identity: ClientIdentity, now: number): PreparedKey | typeof AMBIGUOUS_KEY | undefined;
  /** Every CA the bundle trusts, and the intermediates it names as CRL issuers: fetched CRLs must be signed by one of these. */
  revocationCas(): TrustedCa[];
  /** Who names a certificate: the key it identifies and the APIs that pin or trust it. */
  namesOf(fingerprint: string): { key: string | null; apis: string[] };
  /** Keys whose certificate_match names this CA as issuer, in id order ([] for none). */
  keysMatchedUnder(caFingerprint: string): readonly string[];
  /** The key whose token hashes to this SHA-256 hex. */
  keyByToken(sha256Hex: string): PreparedKey | undefined;
  key(id: string): PreparedKey | undefined;
}

export const AMBIGUOUS_KEY = Symbol('ambiguous key');

function expiryFromRecord(notAfter: Record<string, number>): ExpiryList {
  const entries = Object.entries(notAfter).sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : 1));
  return expiryOf({ times: Float64Array.from(entries, (e) => e[1]), fingerprint: (i) => entries[i][0] });
}

function expiryFromCompact(c: CompactBundle, keys: CompactKeys): ExpiryList {
  return expiryOf({ times: c.expiryTimes, fingerprint: (i) => keys.expiringAt(i) });
}

/** Does a connection for this SNI host ("" = none) get a CertificateRequest. */
export function hostNeedsCertificate(snapshot: Snapshot, host: string): boolean {
  return snapshot.certHosts.get(host) ?? snapshot.certOnOtherHosts;
}

function prepareUpstream(api: BundleApi): { upstream: Upstream; targetBase: string } {
  const target = checkTargetUrl(api.target_url);
  if (!target.ok) throw new BundleCheckError(`api ${api.id}: target_url ${JSON.stringify(api.target_url)} ${target.problem}`);
  // Reads the client pair from disk: an unreadable key refuses this snapshot (start-up or reload).
  const tls = api.upstream_tls === null ? null : loadUpstreamTls(api.id, api.upstream_tls);
  return { upstream: upstreamFor(target.value.origin, api.upstream_http2, tls), targetBase: target.value.basePath };
}

function prepareCas(bundleCas: Record<string, BundleCa>, api: BundleApi, cache: Map<string, TrustedCa>): TrustedCa[] {
  return api.client_cas.map((fingerprint) => {
    let ca = cache.get(fingerprint);
    if (ca === undefined) {
      const entry = bundleCas[fingerprint];
      const cert = checkCaPem(entry.pem);
      if (!cert.ok) throw new BundleCheckError(caProblem(fingerprint, entry.subject, api.id, cert.problem));
      ca = { fingerprint, cert: cert.value };
      cache.set(fingerprint, ca);
    }
    return ca;
  });
}

/** A CA of content.cas as the request path uses it (parsed once per snapshot). */
function trustedCa(bundleCas: Record<string, BundleCa>, fingerprint: string, cache: Map<string, TrustedCa>, usedBy: string): TrustedCa {
  let ca = cache.get(fingerprint);
  if (ca === undefined) {
    const entry = bundleCas[fingerprint];
    const cert = checkCaPem(entry.pem);
    if (!cert.ok) throw new BundleCheckError(caProblem(fingerprint, entry.subject, usedBy, cert.problem));
    ca = { fingerprint, cert: cert.value };
    cache.set(fingerprint, ca);
  }
  return ca;
}

/**
 * The certificates a CRL may be signed by: the trusted CAs, and the intermediates the bundle
 * names as CRL issuers (the compiler verified each chains to a trusted CA). Parsed once per snapshot.
 */
function withCrlIssuers(cas: ReadonlyMap<string, TrustedCa>, revocation: BundleContent['revocation']): ReadonlyMap<string, TrustedCa> {
  const issuers = revocation.crl_issuers ?? {};
  if (Object.keys(issuers).length === 0) return cas;
  const signers = new Map(cas);
  for (const fp in issuers) {
    const cert = checkCaPem(issuers[fp].pem);
    if (!cert.ok) throw new BundleCheckError(caProblem(fp, issuers[fp].subject, 'the revocation list (crl_issuers)', cert.problem));
    if (!signers.has(fp)) signers.set(fp, { fingerprint: fp, cert: cert.value });
  }
  return signers;
}

/**
 * crl_url -> the CA allowed to sign its CRL (the compiler binds each: compiler/crl-url-issuers.ts).
 * A bundle compiled before the binding existed has none: with one CRL signer it is that one;
 * with several, the bundle is refused, since any of them could un-revoke the others' leaves.
 */
function crlUrlIssuers(revocation: BundleContent['revocation'], signers: ReadonlyMap<string, TrustedCa>): Map<string, string> {
  const bound = new Map<string, string>();
  for (const url of revocation.crl_urls) {
    const issuer = revocation.crl_url_issuers?.[url] ?? (signers.size === 1 ? [...signers.keys()][0] : undefined);
    // No CA at all: nothing could ever verify; the URL stays unbound (and stale), as before.
    if (issuer === undefined && signers.size === 0) continue;
    if (issuer === undefined || !signers.has(issuer))
      throw new BundleCheckError(
        `revocation: crl_url ${redactUrl(url)} is bound to no CA of the bundle (a bundle compiled before crl_urls were bound to their CA, with ${signers.size} CAs that sign CRLs: any of them could un-revoke the others' certificates): compile the config again with this mtlsgate`,
      );
    bound.set(url, issuer);
  }
  return bound;
}

function prepareApi(bundleCas: Record<string, BundleCa>, api: BundleApi, cas: Map<string, TrustedCa>, keyIdHeaders: ReadonlySet<string> | null): PreparedApi {
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
function keyIdHeadersOf(apis: Record<string, BundleApi>): ReadonlySet<string> | null {
  const names = new Set<string>();
  for (const id in apis) {
    const name = apis[id].forward_client_cert.key_id_header;
    if (name !== null) names.add(name.toLowerCase());
  }
  return names.size === 0 ? null : names;
}

function prepareKey(key: BundleKey, cache: PatternCache): PreparedKey {
  const rights = new Map<string, PreparedUrl[] | null>();
  for (const [apiId, right] of Object.entries(key.access_rights)) {
    rights.set(
      apiId,
      right.allowed_urls === null
        ? null
        : right.allowed_urls.map((allowed, i) => ({
            pattern: keyPattern(cache, key, apiId, i, allowed.url),
            methods: allowed.methods.length === 0 ? null : new Set(allowed.methods.map((m) => m.toUpperCase())),
          })),
    );
  }
  return { def: key, id: key.id, expiresAt: keyExpiry(key), rights, limited: key.rate !== null || key.quota !== null };
}

/** Where a snapshot finds key definitions: a parsed bundle, or a compact one from the worker. */
interface KeySource {
  key(id: string): BundleKey | undefined;
  keyIdByCert(fingerprint: string): string | undefined;
  keyIdByToken(sha256Hex: string): string | undefined;
}

class ParsedKeys implements KeySource {
  constructor(private readonly content: BundleContent) {}

  key(id: string): BundleKey | undefined {
    return Object.hasOwn(this.content.keys, id) ? this.content.keys[id] : undefined;
  }

  keyIdByCert(fingerprint: string): string | undefined {
    const certs = this.content.index.certs;
    return Object.hasOwn(certs, fingerprint) ? (certs[fingerprint].key ?? undefined) : undefined;
  }

  keyIdByToken(sha256Hex: string): string | undefined {
    const tokens = this.content.index.tokens;
    return Object.hasOwn(tokens, sha256Hex) ? tokens[sha256Hex] : undefined;
  }
}

class PreparedBundle implements Snapshot {
  private readonly prepared = new Map<string, PreparedKey>();
  private parsed: Bundle | undefined;

  constructor(
    readonly digest: string,
    /** The whole parsed bundle, made when first asked for (a compact one parses every key). */
    private readonly bundleOf: () => Bundle,
    private readonly keys: KeySource,
    readonly routes: RouteTables<PreparedApi>,
    readonly certHosts: ReadonlyMap<string, boolean>,
    readonly certOnOtherHosts: boolean,
    readonly trustsCas: boolean,
    private readonly patterns: PatternCache,
    private readonly matchIndex: MatchIndex | null,
    readonly revocation: RevocationView,
    readonly expiry: ExpiryList,
    private readonly apiNames: (fingerprint: string) => string[],
    /** The trusted CAs and the bundle's CRL-issuing intermediates. */
    private readonly crlSigners: ReadonlyMap<string, TrustedCa>,
    private readonly matchedUnder: ReadonlyMap<string, string[]>,
  ) {}

  keysMatchedUnder(caFingerprint: string): readonly string[] {
    return this.matchedUnder.get(caFingerprint) ?? [];
  }

  revocationCas(): TrustedCa[] {
    return [...this.crlSigners.values()];
  }

  keyOfIdentity(identity: ClientIdentity, now: number): PreparedKey | typeof AMBIGUOUS_KEY | undefined {
    const byFingerprint = this.keyByCert(identity.fingerprint);
    if (byFingerprint !== undefined || this.matchIndex === null) return byFingerprint;
    const id = this.matchIndex.keyOf(identity, now);
    if (id === null) return undefined;
    return id === AMBIGUOUS ? AMBIGUOUS_KEY : this.key(id);
  }

  namesOf(fingerprint: string): { key: string | null; apis: string[] } {
    return { key: this.keys.keyIdByCert(fingerprint) ?? null, apis: this.apiNames(fingerprint) };
  }

  get bundle(): Bundle {
    return (this.parsed ??= this.bundleOf());
  }

  key(id: string): PreparedKey | undefined {
    let key = this.prepared.get(id);
    if (key === undefined) {
      const def = this.keys.key(id);
      if (def === undefined) return undefined;
      key = prepareKey(def, this.patterns);
      this.prepared.set(id, key);
    }
    return key;
  }

  keyByCert(fingerprint: string): PreparedKey | undefined {
    const id = this.keys.keyIdByCert(fingerprint);
    return id === undefined ? undefined : this.key(id);
  }

  keyByToken(sha256Hex: string): PreparedKey | undefined {
    const id = this.keys.keyIdByToken(sha256Hex);
    return id === undefined ? undefined : this.key(id);
  }
}

interface SnapshotParts {
  digest: string;
  apis: Record<string, BundleApi>;
  cas: Record<string, BundleCa>;
  routes: BundleContent['index']['routes'];
  matches: BundleContent['index']['matches'];
  revocation: BundleContent['revocation'];
}

/** Throws Error with a message naming the record it cannot use (APIs first, then `checkKeys`). */
function assemble(parts: SnapshotParts, keys: KeySource, bundleOf: () => Bundle, patterns: PatternCache, checkKeys: () => void, expiry: ExpiryList): Snapshot {
  const cas = new Map<string, TrustedCa>();
  const apis = new Map<string, PreparedApi>();
  const keyIdHeaders = keyIdHeadersOf(parts.apis);
  for (const api of Object.values(parts.apis)) apis.set(api.id, prepareApi(parts.cas, api, cas, keyIdHeaders));
  const keyRules: PreparedMatch[] = [];
  // Issuer -> the keys matched under it: the admin expiry list names them with a CA.
  const matchedUnder = new Map<string, string[]>();
  for (const id in parts.matches) {
    const issuer = parts.matches[id].issuer;
    keyRules.push(prepareMatch(parts.matches[id], trustedCa(parts.cas, issuer, cas, `key ${id}`), id));
    const ids = matchedUnder.get(issuer);
    if (ids === undefined) matchedUnder.set(issuer, [id]);
    else ids.push(id);
  }
  for (const ids of matchedUnder.values()) ids.sort();
  // Every CA of the bundle: CRLs (compiled or fetched) are matched against these.
  for (const fp in parts.cas) trustedCa(parts.cas, fp, cas, 'the revocation list');
  const crlSigners = withCrlIssuers(cas, parts.revocation);
  let chains = Object.keys(parts.cas).length > 0;
  for (const api of apis.values()) chains ||= api.def.forward_client_cert.rfc9440;
  const pinnedBy = new Map<string, string[]>();
  for (const api of apis.values()) for (const fp of api.pinned) pinnedBy.set(fp, [...(pinnedBy.get(fp) ?? []), api.id]);
  const apiNames = (fp: string) => pinnedBy.get(fp) ?? (Object.hasOwn(parts.cas, fp) ? parts.cas[fp].apis : []);
  crlStore.setUrls(parts.revocation.crl_urls, crlUrlIssuers(parts.revocation, crlSigners));

  const byHost = new Map<string, Map<string, PreparedApi>>();
  const anyHost = new Map<string, PreparedApi>();
  for (const [host, paths] of Object.entries(parts.routes)) {
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

  checkKeys();
  markOriginsInUse(new Set([...apis.values()].map((api) => api.upstream.key)));
  return new PreparedBundle(
    parts.digest,
    bundleOf,
    keys,
    { byHost, anyHost },
    certHosts,
    certOnOtherHosts,
    chains,
    patterns,
    keyRules.length === 0 ? null : new MatchIndex(keyRules),
    new RevocationView(parts.revocation, crlSigners, crlStore),
    expiry,
    apiNames,
    crlSigners,
    matchedUnder,
  );
}

/** Throws Error with a message naming the record it cannot use. */
export function buildSnapshot(bundle: Bundle): Snapshot {
  const content = bundle.content;
  const patterns: PatternCache = new Map();
  const parts = {
    digest: bundle.digest,
    apis: content.apis,
    cas: content.cas,
    routes: content.index.routes,
    matches: content.index.matches,
    revocation: content.revocation,
  };
  return assemble(
    parts,
    new ParsedKeys(content),
    () => bundle,
    patterns,
    () => checkKeys(content.keys, patterns),
    expiryFromRecord(content.not_after),
  );
}

/**
 * The snapshot of a bundle the worker verified and compacted: cheap on the main thread (keys
 * are made from their columns on first use). The worker already checked every key's expiry and
 * patterns; its finding is reported here, after the APIs', as `buildSnapshot` would.
 */
export function buildCompactSnapshot(compact: CompactBundle): Snapshot {
  const keys = new CompactKeys(compact);
  return assemble(
    compact,
    keys,
    () => keys.toBundle(),
    new Map(),
    () => {
      if (compact.keyError !== null) throw new Error(compact.keyError);
    },
    expiryFromCompact(compact, keys),
  );
}

/**
 * The snapshot of a sharded bundle (runtime/shard-set.ts): the manifest's small parts, keys
 * looked up through their shards. Cheap on the main thread, as for a compact bundle.
 */
export function buildShardedSnapshot(set: ShardSet): Snapshot {
  const keys = new ShardedKeys(set);
  return assemble(
    { ...set.base, matches: keys.matches() },
    keys,
    () => keys.toBundle(),
    new Map(),
    () => {
      const problem = keys.keyError();
      if (problem !== null) throw new Error(problem);
    },
    keys.expiry(),
  );
}
