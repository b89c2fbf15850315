// The shape of a bundle's content, one table of field checks per type, each
// `satisfies Record<keyof Type, Check>`: a field added to a type in types.ts does not compile
// until it is checked here. Then the cross-references between the parts (session numbers, key
// rows, ascending tables, one token per key, CAs and APIs named).
import type {
  AccessRight,
  AllowedUrl,
  ShardContent,
  BundleApi,
  BundleCa,
  BundleCrl,
  BundleCrlIssuer,
  BundleRevocation,
  BundleSession,
  CertMatch,
  ForwardClientCert,
  UpstreamTls,
  Quota,
  RateLimit,
  WireCerts,
  WireContent,
  WireHexTable,
  WireKeys,
} from './types.ts';
import {
  arrayOf,
  ascendingStrings,
  bool,
  certificatePem,
  type Check,
  denyIfPresent,
  fail,
  fingerprint,
  fingerprints,
  finiteNumber,
  HEX64,
  hexTable,
  httpUrls,
  intArray,
  isObj,
  keyIds,
  listenPath,
  mapOf,
  notAfters,
  nullable,
  optional,
  posNum,
  record,
  serials,
  str,
  strArray,
  strOrNull,
  xfccFields,
} from './shape-checks.ts';
import { hexAt, hexCount, keyRow } from './wire.ts';

/** `issuer` must name an entry of content.cas (checked below). */
const MATCH_SHAPE = {
  issuer: str,
  san_dns: strOrNull,
  san_email: strOrNull,
  san_uri: strOrNull,
  subject_cn: strOrNull,
} satisfies Record<keyof CertMatch, Check>;
const FORWARD_SHAPE = { xfcc: xfccFields, rfc9440: bool, key_id_header: strOrNull } satisfies Record<keyof ForwardClientCert, Check>;
const CRL_SHAPE = { serials, next_update: strOrNull, sources: strArray } satisfies Record<keyof BundleCrl, Check>;
/** `ca` must name an entry of content.cas (checked below). */
const CRL_ISSUER_SHAPE = { pem: certificatePem, subject: str, ca: str } satisfies Record<keyof BundleCrlIssuer, Check>;
const REVOCATION_SHAPE = {
  crls: mapOf(record(CRL_SHAPE)),
  crl_issuers: optional(mapOf(record(CRL_ISSUER_SHAPE))),
  crl_urls: httpUrls,
  crl_url_issuers: optional(mapOf(fingerprint)),
  denied: fingerprints,
} satisfies Record<keyof BundleRevocation, Check>;

const UPSTREAM_TLS_SHAPE = {
  ca_pem: strOrNull,
  pinned_sha256: fingerprints,
  server_name: strOrNull,
  client_certificate_file: strOrNull,
  client_key_file: strOrNull,
} satisfies Record<keyof UpstreamTls, Check>;

const API_SHAPE = {
  id: str,
  name: str,
  domain: strOrNull,
  listen_path: listenPath,
  target_url: str,
  strip_listen_path: bool,
  upstream_http2: bool,
  upstream_tls: nullable(record(UPSTREAM_TLS_SHAPE)),
  use_keyless: bool,
  use_mutual_tls_auth: bool,
  use_certificate: bool,
  auth_header_name: str,
  client_certificates: fingerprints,
  /** Each must name an entry of content.cas (checked below). */
  client_cas: strArray,
  client_matches: arrayOf(record(MATCH_SHAPE)),
  strip_auth_data: bool,
  forward_client_cert: record(FORWARD_SHAPE),
} satisfies Record<keyof BundleApi, Check>;

const ALLOWED_URL_SHAPE = { url: str, methods: strArray } satisfies Record<keyof AllowedUrl, Check>;
const ACCESS_RIGHT_SHAPE = { allowed_urls: nullable(arrayOf(record(ALLOWED_URL_SHAPE))) } satisfies Record<keyof AccessRight, Check>;
const RATE_SHAPE = { rate: posNum, per: posNum } satisfies Record<keyof RateLimit, Check>;
const QUOTA_SHAPE = { max: posNum, renewal: posNum } satisfies Record<keyof Quota, Check>;

/** The columns and tables are checked against each other in verifyShape. */
const SESSION_SHAPE = {
  access_rights: mapOf(record(ACCESS_RIGHT_SHAPE)),
  policies: strArray,
  quota: nullable(record(QUOTA_SHAPE)),
  rate: nullable(record(RATE_SHAPE)),
  on_limiter_error: denyIfPresent,
} satisfies Record<keyof BundleSession, Check>;

function sessionsOf(v: unknown, path: string): void {
  if (!Array.isArray(v)) fail(path, 'must be an array');
  for (let i = 0; i < v.length; i++) record(SESSION_SHAPE)(v[i], `${path}[${i}]`);
}

const WIRE_KEYS_SHAPE = { ids: keyIds, session: intArray, expires: mapOf(str), inactive: ascendingStrings } satisfies Record<keyof WireKeys, Check>;
const HEX_TABLE_SHAPE = { hex: hexTable, key: intArray } satisfies Record<keyof WireHexTable, Check>;
const CERTS_SHAPE = { ...HEX_TABLE_SHAPE, not_after: notAfters, apis: mapOf(strArray) } satisfies Record<keyof WireCerts, Check>;

const CA_SHAPE = { pem: certificatePem, subject: str, apis: strArray } satisfies Record<keyof BundleCa, Check>;

/** Each part's entries; the cross-references between parts are checked in verifyShape. */
const CONTENT_SHAPE = {
  apis: mapOf(record(API_SHAPE)),
  cas: mapOf(record(CA_SHAPE)),
  revocation: record(REVOCATION_SHAPE),
  routes: mapOf(mapOf(str)),
  matches: mapOf(record(MATCH_SHAPE)),
  sessions: sessionsOf,
  keys: record(WIRE_KEYS_SHAPE),
  certs: record(CERTS_SHAPE),
  tokens: record(HEX_TABLE_SHAPE),
  not_after: mapOf(finiteNumber),
} satisfies Record<keyof WireContent, Check>;

/** The key parts of a content (a bundle's, or a shard's), as a shard holds them. */
const KEY_PARTS_SHAPE = {
  matches: CONTENT_SHAPE.matches,
  sessions: CONTENT_SHAPE.sessions,
  keys: CONTENT_SHAPE.keys,
  certs: CONTENT_SHAPE.certs,
  tokens: CONTENT_SHAPE.tokens,
} satisfies Record<keyof ShardContent, Check>;

export function verifyShape(c: unknown): asserts c is WireContent {
  record(CONTENT_SHAPE)(c, 'content');
  const { apis, cas, revocation, routes, not_after } = c as WireContent;
  const knownCa = (fp: string, path: string) => {
    if (!entryOf(cas, fp)) fail(path, `names CA ${fp} missing from content.cas`);
  };
  for (const id in apis) {
    const p = `content.apis.${id}`;
    if (apis[id].id !== id) fail(`${p}.id`, 'must equal its map key');
    for (const fp of apis[id].client_cas) knownCa(fp, `${p}.client_cas`);
    for (const m of apis[id].client_matches) knownCa(m.issuer, `${p}.client_matches`);
  }
  for (const fp in not_after) if (!HEX64.test(fp)) fail('content.not_after', 'keys must be fingerprints');
  const crlIssuers = revocation.crl_issuers ?? {};
  for (const fp in crlIssuers) knownCa(crlIssuers[fp].ca, `content.revocation.crl_issuers.${fp}.ca`);
  for (const fp in revocation.crls) if (!entryOf(crlIssuers, fp)) knownCa(fp, `content.revocation.crls.${fp}`);
  const urlIssuers = revocation.crl_url_issuers ?? {};
  for (const url in urlIssuers) {
    if (!revocation.crl_urls.includes(url)) fail('content.revocation.crl_url_issuers', `names ${JSON.stringify(url)}, which is not among crl_urls`);
    if (!entryOf(crlIssuers, urlIssuers[url])) knownCa(urlIssuers[url], 'content.revocation.crl_url_issuers');
  }
  for (const host in routes) {
    const paths = routes[host];
    for (const lp in paths) if (!entryOf(apis, paths[lp])) fail(`content.routes.${host}.${lp}`, 'names an API missing from content.apis');
  }
  checkKeyParts(c as WireContent, apis, cas);
}

/** A shard's parts: their shapes, then their references to each other and to the manifest's APIs and CAs. */
export function verifyKeyParts(c: unknown, apis: Record<string, BundleApi>, cas: Record<string, BundleCa>): asserts c is ShardContent {
  record(KEY_PARTS_SHAPE)(c, 'content');
  checkKeyParts(c as ShardContent, apis, cas);
}

/** The cross-references of the key parts (their shapes already checked). */
function checkKeyParts(c: ShardContent, apis: Record<string, BundleApi>, cas: Record<string, BundleCa>): void {
  const { matches, sessions, keys, certs, tokens } = c;
  const knownCa = (fp: string, path: string) => {
    if (!entryOf(cas, fp)) fail(path, `names CA ${fp} missing from content.cas`);
  };
  const knownKey = (id: string, path: string) => {
    if (keyRow(keys.ids, id) < 0) fail(path, `names key ${JSON.stringify(id)} missing from content.keys.ids`);
  };
  for (const id in matches) {
    knownKey(id, `content.matches.${id}`);
    knownCa(matches[id].issuer, `content.matches.${id}.issuer`);
  }
  const rows = keys.ids.length;
  if (keys.session.length !== rows) fail('content.keys.session', `must have one entry per key (${rows})`);
  for (let i = 0; i < rows; i++)
    if (keys.session[i] < 0 || keys.session[i] >= sessions.length) fail(`content.keys.session[${i}]`, 'names no entry of content.sessions');
  for (const id in keys.expires) knownKey(id, `content.keys.expires.${id}`);
  for (const id of keys.inactive) knownKey(id, 'content.keys.inactive');
  const fingerprints = hexCount(certs.hex);
  if (certs.key.length !== fingerprints) fail('content.certs.key', `must have one entry per fingerprint (${fingerprints})`);
  if (certs.not_after.length !== fingerprints) fail('content.certs.not_after', `must have one entry per fingerprint (${fingerprints})`);
  for (let i = 0; i < fingerprints; i++) if (certs.key[i] < -1 || certs.key[i] >= rows) fail(`content.certs.key[${i}]`, 'names no row of content.keys.ids');
  for (const fp in certs.apis) {
    const p = `content.certs.apis.${fp}`;
    if (!HEX64.test(fp) || !hexIncludes(certs.hex, fp)) fail(p, 'must name a fingerprint of content.certs.hex');
    for (const api of certs.apis[fp]) if (!entryOf(apis, api)) fail(p, `names API ${JSON.stringify(api)} missing from content.apis`);
  }
  const hashes = hexCount(tokens.hex);
  if (tokens.key.length !== hashes) fail('content.tokens.key', `must have one entry per token hash (${hashes})`);
  const hasToken = new Uint8Array(rows);
  for (let i = 0; i < hashes; i++) {
    const k = tokens.key[i];
    if (k < 0 || k >= rows) fail(`content.tokens.key[${i}]`, 'names no row of content.keys.ids');
    if (hasToken[k]++ > 0) fail(`content.tokens.key[${i}]`, `gives key ${JSON.stringify(keys.ids[k])} a second token`);
  }
}

/**
 * `map` holds an entry named `name` of its own: a name another part of the bundle refers to by
 * (an API id, a CA fingerprint) is looked up in the map's own entries only, so `__proto__` or
 * `constructor` names no entry (map[name] would find Object.prototype, and the reference would
 * pass here and fail later, or be read as an empty API).
 */
function entryOf(map: Record<string, unknown>, name: string): boolean {
  return Object.hasOwn(map, name) && isObj(map[name]);
}

function hexIncludes(hex: string, value: string): boolean {
  let lo = 0;
  let hi = hexCount(hex) - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const at = hexAt(hex, mid);
    if (at === value) return true;
    if (at < value) lo = mid + 1;
    else hi = mid - 1;
  }
  return false;
}
