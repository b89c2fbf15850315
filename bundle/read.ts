// The bundle reader: verifies format and digest before it parses a byte, then the shape.
// The runtime does not carry ajv: the shape check is hand-written.
import { isAscii } from 'node:buffer';
import { createHash } from 'node:crypto';
import { containsPrivateKey } from '../cert/private-key.ts';
import {
  type AccessRight,
  type AllowedUrl,
  BUNDLE_FORMAT,
  type Bundle,
  type DocumentFormat,
  MANIFEST_FORMAT,
  type ShardContent,
  type BundleApi,
  type BundleCa,
  type BundleCrl,
  type BundleCrlIssuer,
  type BundleRevocation,
  type BundleSession,
  type CertMatch,
  type ForwardClientCert,
  type UpstreamTls,
  type Quota,
  type RateLimit,
  type WireCerts,
  type WireContent,
  type WireHexTable,
  type WireKeys,
  XFCC_FIELDS,
} from './types.ts';
import { expandContent, hexAt, hexCount, keyRow } from './wire.ts';

export class BundleError extends Error {
  override name = 'BundleError';
}

const CONTENT_MARK = '","content":';
/** An optional signature between digest and content (bundle/sign.ts); verified by the caller that holds a key. */
const SIGNATURE_FIELD = /^","signature":"(ed25519:[0-9a-f]{16}:(?:[0-9TZ:.-]{24}:)?[A-Za-z0-9+/=]{1,200})/;

/**
 * Verifies and parses a bundle: format, digest (before parsing the content), then shape, and
 * gives its content as records and indexes (bundle/wire.ts `expandContent`).
 * Throws BundleError with a message that says what is wrong and how to fix it.
 */
export function loadBundle(bytes: Uint8Array | string): Bundle {
  const { digest, signature, wire } = loadWireBundle(bytes);
  return { format: BUNDLE_FORMAT, digest, signature, content: expandContent(wire) };
}

/** A verified bundle in its file form: what the runtime reads at scale, without expanding a record per key. */
export interface WireBundle {
  /** "sha256:<hex>" of the content bytes. */
  digest: string;
  /** The header's signature (bundle/sign.ts), not verified here; or null. */
  signature: string | null;
  wire: WireContent;
}

/** `loadBundle` without the expansion: the same checks, the same errors. */
export function loadWireBundle(bytes: Uint8Array | string): WireBundle {
  const { digest, signature, content } = readDocument(bytes, BUNDLE_FORMAT, 'bundle');
  verifyShape(content);
  return { digest, signature, wire: content };
}

/** A verified document's header and its parsed (not yet shape-checked) content. */
interface Document {
  digest: string;
  signature: string | null;
  content: unknown;
}

/**
 * The header of a bundle, manifest or shard file (bundle/write.ts), its digest checked against
 * the content bytes before a byte is parsed, then the content parsed. `what` names the file in
 * messages. Throws BundleError.
 */
export function readDocument(bytes: Uint8Array | string, format: DocumentFormat, what: string): Document {
  const buf = typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerPrefix = `{"format":"${format}","digest":"sha256:`;
  if (buf.length === 0) throw new BundleError(`${what} is empty`);
  const head = buf.subarray(0, Math.min(buf.length, 512)).toString('utf8');
  if (!head.startsWith('{"format":')) {
    throw new BundleError(`not an mtlsgate ${what} (expected {"format":"${format}",...}); produce one with \`mtlsgate compile\``);
  }
  if (!head.startsWith(`{"format":"${format}"`)) {
    const m = /^\{"format":"([^"]*)"/.exec(head);
    const found = m ? m[1] : '?';
    const hint = formatHint(format, found);
    throw new BundleError(`unsupported ${what} format ${JSON.stringify(found)}; this runtime reads ${format}${hint}`);
  }
  if (!head.startsWith(headerPrefix)) throw new BundleError(`${what} header is malformed (digest missing); recompile it`);
  const digestStart = headerPrefix.length;
  const digest = head.slice(digestStart, digestStart + 64);
  const signature = SIGNATURE_FIELD.exec(head.slice(digestStart + 64));
  const afterSignature = digestStart + 64 + (signature ? signature[0].length : 0);
  if (!/^[0-9a-f]{64}$/.test(digest) || head.slice(afterSignature, afterSignature + CONTENT_MARK.length) !== CONTENT_MARK) {
    throw new BundleError(`${what} header is malformed (digest is not 64 hex characters); recompile it`);
  }
  const contentStart = Buffer.byteLength(head.slice(0, afterSignature) + CONTENT_MARK, 'utf8');
  let end = buf.length;
  while (end > contentStart && (buf[end - 1] === 0x0a || buf[end - 1] === 0x0d || buf[end - 1] === 0x20)) end--;
  if (end <= contentStart || buf[end - 1] !== 0x7d /* } */) {
    throw new BundleError(`${what} is truncated (no closing brace); was it copied while being written?`);
  }
  const body = buf.subarray(contentStart, end - 1);
  const actual = createHash('sha256').update(body).digest('hex');
  if (actual !== digest) {
    throw new BundleError(
      `${what} digest mismatch: header says sha256:${digest.slice(0, 12)}…, content hashes to sha256:${actual.slice(0, 12)}…; the file was truncated or edited after compile`,
    );
  }
  let content: unknown;
  try {
    // ASCII (the usual case) decodes as latin1: a copy instead of a UTF-8 decode, and a one-byte string JSON.parse reads faster.
    content = JSON.parse(isAscii(body) ? body.toString('latin1') : body.toString('utf8'));
  } catch (err) {
    throw new BundleError(`${what} content is not valid JSON: ${(err as Error).message}`);
  }
  return { digest: 'sha256:' + digest, signature: signature ? signature[1] : null, content };
}

/** What to do when a file of another mtlsgate format is given where `expected` is read. */
function formatHint(expected: DocumentFormat, found: string): string {
  if (expected === BUNDLE_FORMAT && found === MANIFEST_FORMAT) return ": this is a sharded bundle's manifest; give its directory (or its URL) as --bundle";
  if (expected === BUNDLE_FORMAT || expected === MANIFEST_FORMAT) return ': recompile with the matching mtlsgate';
  return '';
}

// ---- shape verification (hand-written: the runtime does not carry ajv) ----
// One table of field checks per bundle type, each `satisfies Record<keyof Type, Check>`: a field
// added to a type in types.ts does not compile until it is checked here.

type Check = (v: unknown, path: string) => void;

export function fail(path: string, what: string): never {
  throw new BundleError(`bundle shape: ${path} ${what}`);
}
function isObj(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
function obj(v: unknown, path: string): Record<string, unknown> {
  if (!isObj(v)) fail(path, 'must be an object');
  return v;
}
function str(v: unknown, path: string): void {
  if (typeof v !== 'string') fail(path, 'must be a string');
}
function strOrNull(v: unknown, path: string): void {
  if (v !== null && typeof v !== 'string') fail(path, 'must be a string or null');
}
function bool(v: unknown, path: string): void {
  if (typeof v !== 'boolean') fail(path, 'must be a boolean');
}
function strArray(v: unknown, path: string): asserts v is string[] {
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) fail(path, 'must be an array of strings');
}
const HEX64 = /^[0-9a-f]{64}$/;
/** A serial number as the bundle writes it: lowercase hex, no leading zeros. */
const SERIAL = /^(0|[1-9a-f][0-9a-f]*)$/;
function posNum(v: unknown, path: string): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) fail(path, 'must be a positive number');
}
function listenPath(v: unknown, path: string): void {
  str(v, path);
  if (!(v as string).startsWith('/') || !(v as string).endsWith('/')) fail(path, 'must start and end with "/"');
}
function fingerprint(v: unknown, path: string): void {
  if (typeof v !== 'string' || !HEX64.test(v)) fail(path, 'must be a fingerprint (64 lowercase hex)');
}
function fingerprints(v: unknown, path: string): void {
  strArray(v, path);
  for (const fp of v) if (!HEX64.test(fp)) fail(path, `holds a non-fingerprint ${JSON.stringify(fp)}`);
}
function certificatePem(v: unknown, path: string): void {
  str(v, path);
  if (!(v as string).includes('BEGIN CERTIFICATE')) fail(path, 'must be a PEM certificate');
  if (containsPrivateKey(v as string)) fail(path, 'holds private key material');
}
/** An object whose fields pass `shape` (fields not in the type are ignored, as JSON readers do). */
/** Optional field: absent, or the string "deny". */
function denyIfPresent(v: unknown, path: string): void {
  if (v !== undefined && v !== 'deny') fail(path, 'must be "deny" when present');
}
function record(shape: Record<string, Check>): Check {
  const fields = Object.entries(shape);
  return (v, path) => {
    const o = obj(v, path);
    for (let i = 0; i < fields.length; i++) fields[i][1](o[fields[i][0]], `${path}.${fields[i][0]}`);
  };
}
/** Absent, or passing `check`. */
function optional(check: Check): Check {
  return (v, path) => {
    if (v !== undefined) check(v, path);
  };
}
function nullable(check: Check): Check {
  return (v, path) => {
    if (v !== null) check(v, path);
  };
}
function arrayOf(check: Check): Check {
  return (v, path) => {
    if (!Array.isArray(v)) fail(path, 'must be an array');
    for (const item of v) check(item, `${path}[]`);
  };
}
function mapOf(check: Check): Check {
  return (v, path) => {
    const o = obj(v, path);
    for (const k in o) check(o[k], `${path}.${k}`);
  };
}

function serials(v: unknown, path: string): void {
  strArray(v, path);
  for (const s of v) if (!SERIAL.test(s)) fail(path, `holds a malformed serial ${JSON.stringify(s)}`);
}
function httpUrls(v: unknown, path: string): void {
  strArray(v, path);
  for (const u of v) if (!/^https?:\/\//.test(u)) fail(path, `holds a non-http(s) URL ${JSON.stringify(u)}`);
}
function finiteNumber(v: unknown, path: string): void {
  if (typeof v !== 'number' || !Number.isFinite(v)) fail(path, 'must be a number');
}
function xfccFields(v: unknown, path: string): void {
  strArray(v, path);
  for (const f of v) if (!(XFCC_FIELDS as readonly string[]).includes(f)) fail(path, `holds an unknown element ${JSON.stringify(f)}`);
}

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

function intArray(v: unknown, path: string): asserts v is number[] {
  if (!Array.isArray(v)) fail(path, 'must be an array');
  for (let i = 0; i < v.length; i++) if (!Number.isInteger(v[i])) fail(`${path}[${i}]`, 'must be an integer');
}
function notAfters(v: unknown, path: string): void {
  if (!Array.isArray(v)) fail(path, 'must be an array');
  for (let i = 0; i < v.length; i++)
    if (v[i] !== null && (typeof v[i] !== 'number' || !Number.isFinite(v[i]))) fail(`${path}[${i}]`, 'must be a number or null');
}
/**
 * Strictly ascending 64-character lowercase hex values, concatenated. Checked by Node's hex
 * decoder (it stops at the first non-hex character) and on the decoded bytes, whose order is the
 * hex order: ~1,000,000 values at start-up.
 */
function hexTable(v: unknown, path: string): void {
  str(v, path);
  const hex = v as string;
  const b = hex.length % 64 === 0 && hex.toLowerCase() === hex ? Buffer.from(hex, 'hex') : null;
  if (b === null || b.length * 2 !== hex.length) fail(path, 'must be 64-character lowercase hex values, concatenated');
  for (let i = 32; i < b.length; i += 32) if (b.compare(b, i, i + 32, i - 32, i) >= 0) fail(path, `must be strictly ascending (value ${i / 32} is not)`);
}
function ascendingStrings(v: unknown, path: string): void {
  strArray(v, path);
  for (let i = 1; i < v.length; i++) if (!(v[i - 1] < v[i])) fail(path, `must be strictly ascending (${JSON.stringify(v[i])} is not)`);
}
function sessionsOf(v: unknown, path: string): void {
  if (!Array.isArray(v)) fail(path, 'must be an array');
  for (let i = 0; i < v.length; i++) record(SESSION_SHAPE)(v[i], `${path}[${i}]`);
}

const WIRE_KEYS_SHAPE = { ids: ascendingStrings, session: intArray, expires: mapOf(str), inactive: ascendingStrings } satisfies Record<keyof WireKeys, Check>;
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
    if (!isObj(cas[fp])) fail(path, `names CA ${fp} missing from content.cas`);
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
  for (const fp in revocation.crls) if (!isObj(crlIssuers[fp])) knownCa(fp, `content.revocation.crls.${fp}`);
  const urlIssuers = revocation.crl_url_issuers ?? {};
  for (const url in urlIssuers) {
    if (!revocation.crl_urls.includes(url)) fail(`content.revocation.crl_url_issuers`, `names ${JSON.stringify(url)}, which is not among crl_urls`);
    if (!isObj(crlIssuers[urlIssuers[url]])) knownCa(urlIssuers[url], `content.revocation.crl_url_issuers`);
  }
  for (const host in routes) {
    const paths = routes[host];
    for (const lp in paths) if (!isObj(apis[paths[lp]])) fail(`content.routes.${host}.${lp}`, 'names an API missing from content.apis');
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
    if (!isObj(cas[fp])) fail(path, `names CA ${fp} missing from content.cas`);
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
    for (const api of certs.apis[fp]) if (!isObj(apis[api])) fail(p, `names API ${JSON.stringify(api)} missing from content.apis`);
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
