// Stage 6: the bundle content with its lookup indexes. Every map is built with its keys in
// sorted order and every object with its fields in sorted order, so serializeBundle (which
// sorts keys, and reuses whatever is already sorted) writes it without copying, and the same
// config always gives the same bytes.
import type { BundleContent, CertIndexEntry } from '../bundle/types.ts';
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

export function buildContent(apis: ResolvedApis, keys: ResolvedKeys): BundleContent {
  const certs = new Map<string, CertIndexEntry>();
  for (const [fp, pinnedBy] of apis.pins) certs.set(fp, { apis: pinnedBy, key: null });
  for (const [fp, keyId] of keys.certs) {
    const entry = certs.get(fp);
    if (entry) entry.key = keyId;
    else certs.set(fp, { apis: [], key: keyId });
  }
  const routes = sortedRecord([...apis.routes].map(([host, paths]): [string, Record<string, string>] => [host, sortedRecord(paths)]));
  return {
    apis: sortedRecord(apis.apis),
    cas: sortedRecord(apis.cas),
    index: { certs: sortedRecord(certs), routes, tokens: sortedRecord(keys.tokens) },
    keys: sortedRecord(keys.keys),
  };
}
