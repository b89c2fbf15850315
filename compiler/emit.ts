// Stage 6: the bundle content with its lookup indexes. The small maps are built with their keys
// in sorted order; the per-key maps (keys, certificates, tokens, not_after) are not sorted here:
// the writer (bundle/wire.ts `encodeContent`) orders them itself, so the same config always
// gives the same bytes, and sorting 1,000,000 entries twice would show in compile time.
import { X509Certificate } from 'node:crypto';
import type { BundleApi, BundleContent, BundleKey, BundleRevocation, CertIndexEntry, CertMatch, WireContent } from '../bundle/types.ts';
import { encodeParts } from '../bundle/wire.ts';
import type { ResolvedApis } from './check-apis.ts';
import type { ResolvedKeys } from './check-keys.ts';
import { buildWireFromTable } from './emit-table.ts';

const byKey = <V>(a: [string, V], b: [string, V]) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);

/** A plain object of `entries` with its keys inserted in sorted order. */
export function sortedRecord<V>(entries: Iterable<[string, V]>): Record<string, V> {
  const list = [...entries];
  // Ids usually arrive in order (files and documents are read sorted): skip the sort then.
  let sorted = true;
  for (let i = 1; sorted && i < list.length; i++) if (list[i - 1][0] > list[i][0]) sorted = false;
  return Object.fromEntries(sorted ? list : list.sort(byKey));
}

/**
 * The lookup indexes of a bundle, derived from its records alone: certificate fingerprint ->
 * (static-mTLS APIs pinning it, the key it identifies), token SHA-256 -> key, host -> listen
 * path -> API, key -> certificate_match. The records are taken as checked (one API per host
 * and listen path, one key per certificate and token). The gateway tests build their bundles'
 * indexes with this same function (test/helpers/bundle-builder.ts), so an indexing bug here
 * shows there too.
 */
export function buildIndex(apis: Iterable<BundleApi>, keys: Iterable<BundleKey>, matches: ReadonlyMap<string, CertMatch> = new Map()): BundleContent['index'] {
  const certs = new Map<string, CertIndexEntry>();
  const routes = new Map<string, Map<string, string>>();
  for (const api of apis) {
    const host = api.domain ?? '*';
    const paths = routes.get(host) ?? new Map<string, string>();
    paths.set(api.listen_path, api.id);
    routes.set(host, paths);
    if (!api.use_mutual_tls_auth) continue;
    for (const fp of api.client_certificates) {
      const entry = certs.get(fp);
      if (entry) entry.apis.push(api.id);
      else certs.set(fp, { apis: [api.id], key: null });
    }
  }
  for (const entry of certs.values()) entry.apis.sort();
  const tokens: Array<[string, string]> = [];
  for (const key of keys) {
    for (const fp of key.certificates) {
      const entry = certs.get(fp);
      if (entry) entry.key = key.id;
      else certs.set(fp, { apis: [], key: key.id });
    }
    if (key.token_sha256 !== null) tokens.push([key.token_sha256, key.id]);
  }
  return {
    certs: Object.fromEntries(certs),
    matches: sortedRecord(matches),
    routes: sortedRecord([...routes].map(([host, paths]): [string, Record<string, string>] => [host, sortedRecord(paths)])),
    tokens: Object.fromEntries(tokens),
  };
}

/**
 * The bundle's file form straight from the resolved config (bundle/wire.ts `encodeParts`):
 * no record-per-key maps or certificate index objects are built on the way, which at 1,000,000
 * keys is most of this stage's time and memory (`expandContent` gives the records back).
 */
export function buildWire(apis: ResolvedApis, keys: ResolvedKeys, revocation: BundleRevocation): WireContent {
  // Keys resolved in worker threads come as columns (compiler/key-table.ts).
  if (!(keys.keys instanceof Map)) return buildWireFromTable(apis, keys.keys, keys.matches, revocation);
  const records = keys.keys;
  const notAfter = new Map<string, number>();
  for (const source of [apis.notAfter, keys.notAfter]) for (const [fp, ms] of source) notAfter.set(fp, Math.floor(ms / 1000));
  for (const [fp, ca] of apis.cas) if (!notAfter.has(fp)) notAfter.set(fp, Math.floor(Date.parse(new X509Certificate(ca.pem).validTo) / 1000));
  const pins = new Map<string, string[]>();
  for (const api of apis.apis.values()) {
    if (!api.use_mutual_tls_auth) continue;
    for (const fp of api.client_certificates) pins.set(fp, [...(pins.get(fp) ?? []), api.id]);
  }
  for (const list of pins.values()) list.sort();
  const index = buildIndex(apis.apis.values(), [], keys.matches);
  return encodeParts({
    apis: sortedRecord(apis.apis),
    cas: sortedRecord(apis.cas),
    revocation,
    routes: index.routes,
    matches: index.matches,
    keyIds: [...records.keys()],
    keyOf: (id) => records.get(id)!,
    pins,
    notAfter,
  });
}
