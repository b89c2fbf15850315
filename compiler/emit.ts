// Stage 6: the bundle content with its lookup indexes, in a stable order (serializeBundle sorts
// object keys; arrays are sorted here), so the same config always gives the same bytes.
import type { BundleContent, CertIndexEntry } from '../runtime/bundle.ts';
import type { ResolvedApis } from './check-apis.ts';
import type { ResolvedKeys } from './check-keys.ts';

export function buildContent(apis: ResolvedApis, keys: ResolvedKeys): BundleContent {
  const certs: Record<string, CertIndexEntry> = {};
  for (const [fp, pinnedBy] of apis.pins) certs[fp] = { apis: pinnedBy, key: null };
  for (const [fp, keyId] of keys.certs) {
    const entry = certs[fp];
    if (entry) entry.key = keyId;
    else certs[fp] = { apis: [], key: keyId };
  }
  const routes: Record<string, Record<string, string>> = {};
  for (const [host, paths] of apis.routes) routes[host] = Object.fromEntries(paths);
  return {
    apis: Object.fromEntries(apis.apis),
    keys: Object.fromEntries(keys.keys),
    cas: Object.fromEntries(apis.cas),
    index: { certs, tokens: Object.fromEntries(keys.tokens), routes },
  };
}
