// The request path's view of a bundle: everything a request needs, prepared at load time
// (route Maps, CA certificate objects, upstream URL parts, per-host "asks for a client
// certificate", every allowed_urls regex compiled). Per-key objects are made on a key's first
// request from those prepared parts, so a 100,000-key bundle swaps in without building 100,000
// objects. A request reads one snapshot on arrival and uses it to the end.
// A snapshot is built either from a parsed bundle (`buildSnapshot`) or from the compact form a
// worker thread verified (`buildCompactSnapshot`, runtime/bundle-worker-compact.ts).
import { checkKeys, type PatternCache } from '../bundle/checks.ts';
import type { Bundle, BundleApi, BundleCa, BundleContent } from '../bundle/types.ts';
import type { CompactBundle } from './bundle-worker-compact.ts';
import { CompactKeys } from './compact-keys.ts';
import { type ExpiryList, expiryOf } from './expiry-list.ts';
import { ShardedKeys, type ShardSet } from './sharded-keys.ts';
import { AMBIGUOUS, type ClientIdentity, type TrustedCa } from './identity.ts';
import { MatchIndex, type PreparedMatch, prepareMatch } from './match-index.ts';
import { keyIdHeadersOf, type PreparedApi, prepareApi } from './prepared-api.ts';
import { type KeySource, ParsedKeys, type PreparedKey, prepareKey } from './prepared-key.ts';
import { crlStore, RevocationView } from './revocation.ts';
import type { SerialArrays } from './serial-table.ts';
import type { RouteTables } from './route.ts';
import { crlUrlIssuers, trustedCa, withCrlIssuers } from './trusted-cas.ts';
import { markOriginsInUse } from './upstreams.ts';

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
  /** The compiled CRLs' serials as the bundle worker built them (a compact bundle's). */
  crlTables?: Record<string, SerialArrays>;
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
    new RevocationView(parts.revocation, crlSigners, crlStore, parts.crlTables),
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
