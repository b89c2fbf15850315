// Stage 6: the bundle content with its lookup indexes. Every map is built with its keys in
// sorted order and every object with its fields in sorted order, so serializeBundle (which
// sorts keys, and reuses whatever is already sorted) writes it without copying, and the same
// config always gives the same bytes.
import { X509Certificate } from 'node:crypto';
import type { BundleContent, BundleRevocation, CertIndexEntry } from '../bundle/types.ts';
import type { ResolvedApis } from './check-apis.ts';
import type { ResolvedKeys } from './check-keys.ts';

const byKey = <V>(a: [string, V], b: [string, V]) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);

/** A plain object of `entries` with its keys inserted in sorted order. */
function sortedRecord<V>(entries: Iterable<[string, V]>): Record<string, V> {
  const list = [...entries];
  // Ids usually arrive in order (files and documents are read sorted): skip the sort then.
  let sorted = true;
  for (let i = 1; sorted && i < list.length; i++) if (list[i - 1][0] > list[i][0]) sorted = false;
  return Object.fromEntries(sorted ? list : list.sort(byKey));
}

export function buildContent(apis: ResolvedApis, keys: ResolvedKeys, revocation: BundleRevocation): BundleContent {
  const certs = new Map<string, CertIndexEntry>();
  for (const [fp, pinnedBy] of apis.pins) certs.set(fp, { apis: pinnedBy, key: null });
  for (const [fp, keyId] of keys.certs) {
    const entry = certs.get(fp);
    if (entry) entry.key = keyId;
    else certs.set(fp, { apis: [], key: keyId });
  }
  const routes = sortedRecord([...apis.routes].map(([host, paths]): [string, Record<string, string>] => [host, sortedRecord(paths)]));
  const notAfter = new Map<string, number>();
  for (const source of [apis.notAfter, keys.notAfter]) for (const [fp, ms] of source) notAfter.set(fp, Math.floor(ms / 1000));
  // CAs named only as a certificate_match issuer: few, so parsing their PEM here is cheap.
  for (const [fp, ca] of apis.cas) if (!notAfter.has(fp)) notAfter.set(fp, Math.floor(Date.parse(new X509Certificate(ca.pem).validTo) / 1000));
  return {
    apis: sortedRecord(apis.apis),
    cas: sortedRecord(apis.cas),
    index: { certs: sortedRecord(certs), matches: sortedRecord(keys.matches), routes, tokens: sortedRecord(keys.tokens) },
    keys: sortedRecord(keys.keys),
    not_after: sortedRecord(notAfter),
    revocation,
  };
}
