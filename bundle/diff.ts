// Who gains or loses access between two bundles (`mtlsgate diff OLD NEW`).
//
// A pure function over two BundleContent values: no I/O, no clock. It answers the reviewer's
// question for a config change ("after this deploy, which certificates and keys can reach
// which API that could not before, and the reverse"), then lists the API and key fields that
// changed. Access is computed per API as a set of grants, one per way in:
//   - pinned_certificate: a leaf fingerprint on a static-mTLS API's list;
//   - ca_certificate: a CA on a static-mTLS API's list (it admits every leaf it issued);
//   - key_certificate: a certificate that identifies an active key granted a dynamic-mTLS API
//     (auth.use_certificate), so the certificate alone gets the key's access;
//   - key: an active key granted the API (by its token, its certificate, or both).
// Grants present only in NEW were gained, only in OLD were lost. Expiry dates are reported as
// key changes, not evaluated: the diff does not read the clock.
import type { BundleApi, BundleContent, BundleKey, Fingerprint } from './types.ts';

export type AccessGrant =
  | { kind: 'pinned_certificate'; fingerprint: Fingerprint; key: string | null }
  | { kind: 'ca_certificate'; fingerprint: Fingerprint; subject: string }
  | { kind: 'key_certificate'; fingerprint: Fingerprint; key: string }
  | { kind: 'key'; key: string; credentials: Array<'certificate' | 'token'> };

export interface ApiAccessChange {
  api: string;
  gained: AccessGrant[];
  lost: AccessGrant[];
}

export interface FieldChange {
  /** Dotted path of the field, e.g. "use_mutual_tls_auth" or "access_rights.profile". */
  field: string;
  /** JSON value before and after; undefined = absent on that side. */
  old?: unknown;
  new?: unknown;
}

export interface ItemChange {
  id: string;
  fields: FieldChange[];
}

export interface BundleDiff {
  identical: boolean;
  apis: { added: string[]; removed: string[]; changed: ItemChange[] };
  access: ApiAccessChange[];
  keys: { added: string[]; removed: string[]; changed: ItemChange[] };
}

/**
 * Which API fields are compared one by one (the certificate lists are reported as access grants
 * too). Every field of BundleApi is listed, so a new one cannot be left out unnoticed.
 */
const API_FIELDS = {
  id: false, // the map key: a different id is a different API
  name: true,
  domain: true,
  listen_path: true,
  target_url: true,
  strip_listen_path: true,
  upstream_http2: true,
  upstream_tls: true,
  use_keyless: true,
  use_mutual_tls_auth: true,
  use_certificate: true,
  auth_header_name: true,
  client_certificates: true,
  client_cas: true,
  client_matches: true,
  strip_auth_data: true,
  forward_client_cert: true,
} satisfies Record<keyof BundleApi, boolean>;

/** Which key fields are compared as a whole; every field of BundleKey is listed. */
const KEY_FIELDS = {
  id: false, // the map key
  certificates: true,
  certificate_match: true,
  token_sha256: true,
  policies: true,
  access_rights: false, // compared per API in keyChange
  rate: true,
  quota: true,
  expires: true,
  is_inactive: true,
  on_limiter_error: true,
} satisfies Record<keyof BundleKey, boolean>;

function compared<T>(fields: Record<keyof T, boolean>): Array<keyof T> {
  return (Object.keys(fields) as Array<keyof T>).filter((f) => fields[f]);
}
const COMPARED_API_FIELDS = compared<BundleApi>(API_FIELDS);
const COMPARED_KEY_FIELDS = compared<BundleKey>(KEY_FIELDS);

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * Stable identity of a grant, for set difference and sorting. The key a pinned certificate maps
 * to is not part of it: a certificate that stays pinned keeps its access whatever key it names.
 */
function grantId(g: AccessGrant): string {
  switch (g.kind) {
    case 'pinned_certificate':
    case 'ca_certificate':
    case 'key_certificate':
      return `${g.kind}:${g.fingerprint}`;
    case 'key':
      return `key:${g.key}`;
  }
}

/** Every grant on one API in one bundle, keyed by grantId. */
function grantsFor(content: BundleContent, apiId: string): Map<string, AccessGrant> {
  const grants = new Map<string, AccessGrant>();
  const api = content.apis[apiId];
  if (!api) return grants;
  const add = (g: AccessGrant) => grants.set(grantId(g), g);
  if (api.use_mutual_tls_auth) {
    for (const fp of api.client_certificates) add({ kind: 'pinned_certificate', fingerprint: fp, key: content.index.certs[fp]?.key ?? null });
    for (const fp of api.client_cas) add({ kind: 'ca_certificate', fingerprint: fp, subject: content.cas[fp]?.subject ?? '' });
  }
  // Keyless APIs ignore keys entirely: nobody gains access through a key there.
  if (api.use_keyless) return grants;
  for (const key of Object.values(content.keys)) {
    if (key.is_inactive || !Object.hasOwn(key.access_rights, apiId)) continue;
    const credentials: Array<'certificate' | 'token'> = [];
    if (key.certificates.length > 0 || key.certificate_match !== null) credentials.push('certificate');
    if (key.token_sha256) credentials.push('token');
    add({ kind: 'key', key: key.id, credentials });
    if (api.use_certificate) for (const fp of key.certificates) add({ kind: 'key_certificate', fingerprint: fp, key: key.id });
  }
  return grants;
}

/**
 * A pinned certificate that maps to no key on its own side may map to one on the other (a
 * revoked certificate whose key was deleted in the same change, or a new pin for a key that
 * existed before): name that key, since the reader wants to know whose certificate it is.
 */
function nameKey(g: AccessGrant, other: BundleContent): AccessGrant {
  if (g.kind !== 'pinned_certificate' || g.key !== null) return g;
  return { ...g, key: other.index.certs[g.fingerprint]?.key ?? null };
}

const KIND_ORDER: Record<AccessGrant['kind'], number> = { pinned_certificate: 0, ca_certificate: 1, key_certificate: 2, key: 3 };

function sortGrants(grants: AccessGrant[]): AccessGrant[] {
  return grants.sort((a, b) => KIND_ORDER[a.kind] - KIND_ORDER[b.kind] || (grantId(a) < grantId(b) ? -1 : grantId(a) > grantId(b) ? 1 : 0));
}

function accessChanges(oldC: BundleContent, newC: BundleContent, apiIds: string[]): ApiAccessChange[] {
  const out: ApiAccessChange[] = [];
  for (const api of apiIds) {
    const before = grantsFor(oldC, api);
    const after = grantsFor(newC, api);
    const gained = [...after].filter(([id]) => !before.has(id)).map(([, g]) => nameKey(g, oldC));
    const lost = [...before].filter(([id]) => !after.has(id)).map(([, g]) => nameKey(g, newC));
    if (gained.length > 0 || lost.length > 0) out.push({ api, gained: sortGrants(gained), lost: sortGrants(lost) });
  }
  return out;
}

function apiChange(a: BundleApi, b: BundleApi): FieldChange[] {
  return COMPARED_API_FIELDS.filter((f) => !sameJson(a[f], b[f])).map((f) => ({ field: f, old: a[f], new: b[f] }));
}

function keyChange(a: BundleKey, b: BundleKey): FieldChange[] {
  const fields: FieldChange[] = COMPARED_KEY_FIELDS.filter((f) => !sameJson(a[f], b[f])).map((f) => ({ field: f, old: a[f], new: b[f] }));
  const apis = [...new Set([...Object.keys(a.access_rights), ...Object.keys(b.access_rights)])].sort();
  for (const api of apis) {
    const before = Object.hasOwn(a.access_rights, api) ? a.access_rights[api] : undefined;
    const after = Object.hasOwn(b.access_rights, api) ? b.access_rights[api] : undefined;
    if (!sameJson(before, after)) fields.push({ field: `access_rights.${api}`, old: before, new: after });
  }
  return fields;
}

function compareItems<T>(
  before: Record<string, T>,
  after: Record<string, T>,
  fieldsOf: (a: T, b: T) => FieldChange[],
): { added: string[]; removed: string[]; changed: ItemChange[] } {
  const added = Object.keys(after)
    .filter((id) => !Object.hasOwn(before, id))
    .sort();
  const removed = Object.keys(before)
    .filter((id) => !Object.hasOwn(after, id))
    .sort();
  const changed: ItemChange[] = [];
  for (const id of Object.keys(before)
    .filter((k) => Object.hasOwn(after, k))
    .sort()) {
    const fields = fieldsOf(before[id], after[id]);
    if (fields.length > 0) changed.push({ id, fields });
  }
  return { added, removed, changed };
}

export function diffBundles(oldC: BundleContent, newC: BundleContent): BundleDiff {
  const apis = compareItems(oldC.apis, newC.apis, apiChange);
  const keys = compareItems(oldC.keys, newC.keys, keyChange);
  const apiIds = [...new Set([...Object.keys(oldC.apis), ...Object.keys(newC.apis)])].sort();
  const access = accessChanges(oldC, newC, apiIds);
  const identical =
    apis.added.length + apis.removed.length + apis.changed.length + keys.added.length + keys.removed.length + keys.changed.length + access.length === 0;
  return { identical, apis, access, keys };
}
