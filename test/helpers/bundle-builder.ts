// Builds bundles for the gateway tests from short API and key descriptions: fills the defaults
// the compiler fills (bundle/defaults.ts) and lets the compiler's index stage (compiler/emit.ts
// buildIndex) derive the indexes (certificates, tokens, routes), so an indexing bug in the
// compiler shows in the gateway tests too. Goes through serializeBundle + loadBundle so every
// test bundle is a verified one.
import { createHash, X509Certificate } from 'node:crypto';
import { API_DEFAULTS, KEY_DEFAULTS } from '../../bundle/defaults.ts';
import { loadBundle } from '../../bundle/read.ts';
import { buildIndex } from '../../compiler/emit.ts';
import { fingerprintOf } from '../../cert/fingerprint.ts';
import { subjectLine } from '../../cert/subject.ts';
import { serializeBundle } from '../../bundle/write.ts';
import type { Bundle, BundleApi, BundleContent, BundleKey } from '../../bundle/types.ts';

export type ApiSpec = Partial<BundleApi> & { id: string; listen_path: string; target_url: string; client_ca_pems?: string[] };
export type KeySpec = Partial<BundleKey> & { id: string };

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

function fingerprintOfPem(pem: string): string {
  return fingerprintOf(new X509Certificate(pem).raw);
}

/** An API with the defaults the compiler fills in (bundle/defaults.ts: token auth, no certificates), then `over`. */
export function apiWithDefaults(id: string, over: Partial<BundleApi> = {}): BundleApi {
  return {
    ...API_DEFAULTS,
    id,
    name: id,
    listen_path: `/${id}/`,
    target_url: 'http://127.0.0.1:9101',
    client_certificates: [],
    client_cas: [],
    client_matches: [],
    // A copy: tests edit bundles in place, and the default is shared and frozen.
    forward_client_cert: { ...API_DEFAULTS.forward_client_cert, xfcc: [] },
    ...over,
  };
}

/** A key with the compiler's defaults (no certificate, token, rights or limits), then `over`. */
export function keyWithDefaults(id: string, over: Partial<BundleKey> = {}): BundleKey {
  return { ...KEY_DEFAULTS, id, certificates: [], policies: [], access_rights: {}, ...over };
}

/** A bundle's content with nothing in it: no API, key, CA or revocation, an empty index. */
export function emptyBundleContent(): BundleContent {
  return {
    apis: {},
    keys: {},
    cas: {},
    not_after: {},
    revocation: { crl_urls: [], crls: {}, denied: [] },
    index: { certs: {}, tokens: {}, matches: {}, routes: {} },
  };
}

export function bundleContent(apis: ApiSpec[], keys: KeySpec[] = []): BundleContent {
  const content = emptyBundleContent(); // its index filled below
  for (const spec of apis) {
    const { client_ca_pems, ...fields } = spec;
    const api = apiWithDefaults(spec.id, { client_cas: [], ...fields });
    for (const pem of client_ca_pems ?? []) {
      const fp = fingerprintOfPem(pem);
      const ca = (content.cas[fp] ??= { pem, subject: subjectLine(new X509Certificate(pem)), apis: [] });
      ca.apis.push(api.id);
      api.client_cas.push(fp);
    }
    api.client_cas.sort();
    api.client_certificates = [...api.client_certificates].sort();
    content.apis[api.id] = api;
  }
  for (const spec of keys) {
    const key = keyWithDefaults(spec.id, spec);
    content.keys[key.id] = key;
  }
  // The indexes come from the compiler's own index stage, not from a copy of it.
  content.index = buildIndex(Object.values(content.apis), Object.values(content.keys));
  return content;
}

/** The "static" API of the gateway tests: /static/, no key needed, only the pinned certificates admitted. */
export function pinnedStaticApi(targetUrl: string, fingerprints: string[], over: Partial<ApiSpec> = {}): ApiSpec {
  return {
    id: 'static',
    listen_path: '/static/',
    target_url: targetUrl,
    use_keyless: true,
    use_mutual_tls_auth: true,
    client_certificates: fingerprints,
    ...over,
  };
}

/** A verified bundle, as the runtime would load it from disk. */
export function buildBundle(apis: ApiSpec[], keys: KeySpec[] = []): Bundle {
  return loadBundle(serializeBundle(bundleContent(apis, keys)));
}
