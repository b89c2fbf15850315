// The bundle reader: verifies format and digest before it parses a byte, then the shape.
// The runtime does not carry ajv: the shape check is hand-written.
import { createHash } from 'node:crypto';
import { BUNDLE_FORMAT, type Bundle, type BundleContent } from './types.ts';

export class BundleError extends Error {
  override name = 'BundleError';
}

const HEADER_PREFIX = `{"format":"${BUNDLE_FORMAT}","digest":"sha256:`;
const CONTENT_MARK = '","content":';

/**
 * Verifies and parses a bundle: format, digest (before parsing the content), then shape.
 * Throws BundleError with a message that says what is wrong and how to fix it.
 */
export function loadBundle(bytes: Uint8Array | string): Bundle {
  const buf = typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length === 0) throw new BundleError('bundle is empty');
  const head = buf.subarray(0, Math.min(buf.length, 256)).toString('utf8');
  if (!head.startsWith('{"format":')) {
    throw new BundleError('not an mtlsgate bundle (expected {"format":"' + BUNDLE_FORMAT + '",...}); produce one with `mtlsgate compile`');
  }
  if (!head.startsWith(`{"format":"${BUNDLE_FORMAT}"`)) {
    const m = /^\{"format":"([^"]*)"/.exec(head);
    throw new BundleError(
      `unsupported bundle format ${JSON.stringify(m ? m[1] : '?')}; this runtime reads ${BUNDLE_FORMAT}: recompile with the matching mtlsgate`,
    );
  }
  if (!head.startsWith(HEADER_PREFIX)) throw new BundleError('bundle header is malformed (digest missing); recompile it');
  const digestStart = HEADER_PREFIX.length;
  const digest = head.slice(digestStart, digestStart + 64);
  if (!/^[0-9a-f]{64}$/.test(digest) || head.slice(digestStart + 64, digestStart + 64 + CONTENT_MARK.length) !== CONTENT_MARK) {
    throw new BundleError('bundle header is malformed (digest is not 64 hex characters); recompile it');
  }
  const contentStart = Buffer.byteLength(HEADER_PREFIX + digest + CONTENT_MARK, 'utf8');
  let end = buf.length;
  while (end > contentStart && (buf[end - 1] === 0x0a || buf[end - 1] === 0x0d || buf[end - 1] === 0x20)) end--;
  if (end <= contentStart || buf[end - 1] !== 0x7d /* } */) {
    throw new BundleError('bundle is truncated (no closing brace); was it copied while being written?');
  }
  const body = buf.subarray(contentStart, end - 1);
  const actual = createHash('sha256').update(body).digest('hex');
  if (actual !== digest) {
    throw new BundleError(
      `bundle digest mismatch: header says sha256:${digest.slice(0, 12)}…, content hashes to sha256:${actual.slice(0, 12)}…; the file was truncated or edited after compile`,
    );
  }
  let content: unknown;
  try {
    content = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new BundleError(`bundle content is not valid JSON: ${(err as Error).message}`);
  }
  verifyShape(content);
  return { format: BUNDLE_FORMAT, digest: 'sha256:' + digest, content };
}

// ---- shape verification (hand-written: the runtime does not carry ajv) ----

function fail(path: string, what: string): never {
  throw new BundleError(`bundle shape: ${path} ${what}`);
}
function isObj(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
function obj(v: unknown, path: string): Record<string, unknown> {
  if (!isObj(v)) fail(path, 'must be an object');
  return v;
}
function str(v: unknown, path: string): string {
  if (typeof v !== 'string') fail(path, 'must be a string');
  return v;
}
function strOrNull(v: unknown, path: string): void {
  if (v !== null && typeof v !== 'string') fail(path, 'must be a string or null');
}
function bool(v: unknown, path: string): void {
  if (typeof v !== 'boolean') fail(path, 'must be a boolean');
}
function strArray(v: unknown, path: string): string[] {
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) fail(path, 'must be an array of strings');
  return v as string[];
}
const HEX64 = /^[0-9a-f]{64}$/;
function posNum(v: unknown, path: string): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) fail(path, 'must be a positive number');
}

function verifyShape(c: unknown): asserts c is BundleContent {
  const content = obj(c, 'content');
  const apis = obj(content.apis, 'content.apis');
  const keys = obj(content.keys, 'content.keys');
  const cas = obj(content.cas, 'content.cas');
  const index = obj(content.index, 'content.index');
  const certs = obj(index.certs, 'content.index.certs');
  for (const [id, raw] of Object.entries(apis)) {
    const p = `content.apis.${id}`;
    const a = obj(raw, p);
    if (a.id !== id) fail(`${p}.id`, 'must equal its map key');
    str(a.name, `${p}.name`);
    strOrNull(a.domain, `${p}.domain`);
    const lp = str(a.listen_path, `${p}.listen_path`);
    if (!lp.startsWith('/') || !lp.endsWith('/')) fail(`${p}.listen_path`, 'must start and end with "/"');
    str(a.target_url, `${p}.target_url`);
    for (const f of ['strip_listen_path', 'use_keyless', 'use_mutual_tls_auth', 'use_certificate', 'strip_auth_data', 'forward_client_cert']) {
      bool(a[f], `${p}.${f}`);
    }
    str(a.auth_header_name, `${p}.auth_header_name`);
    for (const fp of strArray(a.client_certificates, `${p}.client_certificates`))
      if (!HEX64.test(fp)) fail(`${p}.client_certificates`, `holds a non-fingerprint ${JSON.stringify(fp)}`);
    for (const fp of strArray(a.client_cas, `${p}.client_cas`)) if (!isObj(cas[fp])) fail(`${p}.client_cas`, `names CA ${fp} missing from content.cas`);
  }
  for (const [id, raw] of Object.entries(keys)) {
    const p = `content.keys.${id}`;
    const k = obj(raw, p);
    if (k.id !== id) fail(`${p}.id`, 'must equal its map key');
    for (const fp of strArray(k.certificates, `${p}.certificates`)) {
      if (!HEX64.test(fp)) fail(`${p}.certificates`, `holds a non-fingerprint ${JSON.stringify(fp)}`);
      const entry = certs[fp];
      if (!isObj(entry) || entry.key !== id) fail(`${p}.certificates`, `names ${fp}, which content.index.certs does not map to this key`);
    }
    strOrNull(k.token_sha256, `${p}.token_sha256`);
    strArray(k.policies, `${p}.policies`);
    const ar = obj(k.access_rights, `${p}.access_rights`);
    for (const [api, r] of Object.entries(ar)) {
      const rp = `${p}.access_rights.${api}`;
      const right = obj(r, rp);
      if (right.allowed_urls !== null) {
        if (!Array.isArray(right.allowed_urls)) fail(`${rp}.allowed_urls`, 'must be an array or null');
        for (const u of right.allowed_urls) {
          const uo = obj(u, `${rp}.allowed_urls[]`);
          str(uo.url, `${rp}.allowed_urls[].url`);
          strArray(uo.methods, `${rp}.allowed_urls[].methods`);
        }
      }
    }
    if (k.rate !== null) {
      const r = obj(k.rate, `${p}.rate`);
      posNum(r.rate, `${p}.rate.rate`);
      posNum(r.per, `${p}.rate.per`);
    }
    if (k.quota !== null) {
      const q = obj(k.quota, `${p}.quota`);
      posNum(q.max, `${p}.quota.max`);
      posNum(q.renewal, `${p}.quota.renewal`);
    }
    strOrNull(k.expires, `${p}.expires`);
    bool(k.is_inactive, `${p}.is_inactive`);
  }
  for (const [fp, raw] of Object.entries(cas)) {
    const p = `content.cas.${fp}`;
    const ca = obj(raw, p);
    if (!str(ca.pem, `${p}.pem`).includes('BEGIN CERTIFICATE')) fail(`${p}.pem`, 'must be a PEM certificate');
    if (/PRIVATE KEY/.test(ca.pem as string)) fail(`${p}.pem`, 'holds private key material');
    str(ca.subject, `${p}.subject`);
    strArray(ca.apis, `${p}.apis`);
  }
  for (const [fp, raw] of Object.entries(certs)) {
    const p = `content.index.certs.${fp}`;
    if (!HEX64.test(fp)) fail(p, 'key must be a fingerprint');
    const e = obj(raw, p);
    strArray(e.apis, `${p}.apis`);
    if (e.key !== null && !isObj(keys[e.key as string])) fail(`${p}.key`, 'names a key missing from content.keys');
  }
  const tokens = obj(index.tokens, 'content.index.tokens');
  for (const [h, id] of Object.entries(tokens)) {
    if (!HEX64.test(h)) fail(`content.index.tokens`, 'keys must be SHA-256 hex');
    if (!isObj(keys[id as string])) fail(`content.index.tokens.${h}`, 'names a key missing from content.keys');
  }
  const routes = obj(index.routes, 'content.index.routes');
  for (const [host, paths] of Object.entries(routes)) {
    for (const [lp, id] of Object.entries(obj(paths, `content.index.routes.${host}`))) {
      if (!isObj(apis[id as string])) fail(`content.index.routes.${host}.${lp}`, 'names an API missing from content.apis');
    }
  }
}
