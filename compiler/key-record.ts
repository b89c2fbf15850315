// A key's bundle row compared and written in canonical form, for the snapshot compile
// (compiler/snapshot-compile.ts): the previous bundle's sessions were read back from JSON, so
// its objects have their keys sorted; a resolved key is compared with, and put in, that form.
import type { BundleKey, BundleSession } from '../bundle/types.ts';

/** The canonical JSON of a value (object keys sorted): the previous bundle's sessions were read back from JSON. */
function canon(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canon);
  if (v === null || typeof v !== 'object') return v;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(v).sort()) if ((v as Record<string, unknown>)[k] !== undefined) out[k] = canon((v as Record<string, unknown>)[k]);
  return out;
}

/** Everything a key's bundle row says, as one comparable string. */
export function recordId(k: BundleKey): string {
  return JSON.stringify([
    canon(k.access_rights),
    canon(k.policies),
    canon(k.quota),
    canon(k.rate),
    k.on_limiter_error === 'deny',
    k.certificate_match,
    [...k.certificates].sort(),
    k.expires,
    k.is_inactive,
    k.token_sha256,
  ]);
}

/** A new key whose session objects are in the previous bundle's (sorted) key order, so that patchWire finds an equal session. */
export function withCanonSession(k: BundleKey): BundleKey {
  return {
    ...k,
    access_rights: canon(k.access_rights) as BundleSession['access_rights'],
    policies: canon(k.policies) as BundleSession['policies'],
    quota: canon(k.quota) as BundleSession['quota'],
    rate: canon(k.rate) as BundleSession['rate'],
  };
}
