// What a bundle holds beside its keys, as the compile snapshot's patch (snapshot-compile.ts) sees
// it. The patch copies the previous bundle's APIs, CAs, routes, pins and other certificates'
// notAfter as bytes; the keys-stage context (cached-keys.ts `keysContext`) covers the APIs'
// records, and the frame digest here covers the rest they depend on: the notAfter of every
// certificate the APIs name by PEM (a pin given as a file or as a fingerprint, the CAs a chain
// brings along) and the CAs themselves. The revocation part is made again on every compile
// (a few CRL files) and written into the patched bundle when it changed; access tests are
// validated again and run on the patched bundle as on any other.
import type { BundleRevocation } from '../bundle/types.ts';
import { canonicalJson } from '../bundle/write.ts';
import type { ResolvedApis } from './check-apis.ts';
import { contextDigest } from './key-cache.ts';
import type { PatchFrame } from './section-patch.ts';

const byKey = <V>(a: [string, V], b: [string, V]) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);

/** The digest of what the non-key parts of the bundle take from the APIs' certificate files (the snapshot keeps it). */
export function frameDigest(apis: ResolvedApis): string {
  return contextDigest({
    frame: 1,
    cas: [...apis.cas].sort(byKey),
    notAfter: [...apis.notAfter].sort(byKey),
  });
}

/** What section-patch.ts needs of the APIs and the revocation documents of this compile. */
export function patchFrame(apis: ResolvedApis, revocation: BundleRevocation): PatchFrame {
  return { apiNotAfter: apis.notAfter, cas: apis.cas, revocation: Buffer.from(canonicalJson(revocation), 'utf8') };
}
