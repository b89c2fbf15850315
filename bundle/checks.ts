// The semantic rules a bundle must meet beyond its shape: the ones the runtime applies when it
// builds a snapshot (runtime/snapshot.ts) and the compiler applies to every declaration that
// ends up in a bundle (compiler/check-*.ts, then `bundleProblems` over the whole content). One
// definition of each rule, so nothing `mtlsgate compile` accepts is refused by `mtlsgate serve`.
//
// Each rule returns either the value the runtime needs (a parsed upstream, a compiled pattern,
// an expiry time, a CA certificate) or a problem phrased to follow the field's name and value:
//   api a: target_url "http://u:p@h/" must not carry credentials (user:password@)
// The runtime prefixes the record it cannot use; the compiler reports the problem at the YAML
// node the value came from.
import { X509Certificate } from 'node:crypto';
import { RE2JS } from 're2js';
import type { BundleKey, Quota, RateLimit, WireContent } from './types.ts';

export type Checked<T> = { ok: true; value: T } | { ok: false; problem: string };

const ok = <T>(value: T): Checked<T> => ({ ok: true, value });
const refused = <T>(problem: string): Checked<T> => ({ ok: false, problem });

/** Where an API's requests go: the upstream origin and the path every forwarded path starts with. */
export interface UpstreamTarget {
  /** "http://host:port" (the pool key). */
  origin: string;
  /** The URL's path without its trailing "/" ("" for "http://host:port/"). */
  basePath: string;
}

/**
 * An API's target_url: an absolute http(s) URL with nothing the proxy would silently drop or
 * leak (credentials are not sent as Basic auth; a query or fragment would not be forwarded).
 */
export function checkTargetUrl(targetUrl: string): Checked<UpstreamTarget> {
  let url: URL;
  try {
    url = new URL(targetUrl);
  } catch {
    return refused('is not an absolute URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return refused('must be http:// or https://');
  // The runtime's message has always named all three; the compiler names which one it found.
  const carried = [url.username !== '' || url.password !== '' ? 'credentials' : '', url.search !== '' ? 'a query' : '', url.hash !== '' ? 'a fragment' : '']
    .filter(Boolean)
    .join(' and ');
  if (carried !== '') return refused(`must not carry a query, fragment or credentials (it has ${carried})`);
  const path = url.pathname;
  return ok({ origin: url.origin, basePath: path.endsWith('/') ? path.slice(0, -1) : path });
}

/** A compiled allowed_urls pattern: true when it matches somewhere in the path. */
export interface UrlPattern {
  test(path: string): boolean;
}

/**
 * An allowed_urls entry's regular expression, compiled as the request path matches it: with
 * RE2 semantics (re2js), in time linear in the path whatever the pattern. A backtracking
 * RegExp let `^/users/([a-z0-9]+)+/profile$` and a 29-character path block the event loop
 * for 3 s. RE2 has no lookaround and no backreferences: such patterns are refused.
 */
export function checkAllowedUrl(source: string): Checked<UrlPattern> {
  try {
    return ok(RE2JS.compile(source));
  } catch (err) {
    const e = err as { error?: string; input?: string | null; message: string };
    const at = e.input && e.input !== source ? ` at \`${e.input.slice(0, 20)}\`` : '';
    return refused(`cannot run in RE2 (linear time): ${e.error ?? e.message}${at}`);
  }
}

/** A key's expiry, in ms since the epoch (the runtime compares it with Date.now()). */
export function checkExpires(expires: string): Checked<number> {
  const at = Date.parse(expires);
  return Number.isNaN(at) ? refused('is not an ISO-8601 time') : ok(at);
}

/** A CA trust anchor's PEM: a readable certificate that is a CA (OpenSSL's X509_check_ca: basicConstraints CA:TRUE, keyCertSign if keyUsage). */
export function checkCaPem(pem: string): Checked<X509Certificate> {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem);
  } catch (err) {
    return refused(`is not a readable certificate: ${(err as Error).message}`);
  }
  return cert.ca ? ok(cert) : refused('is not a CA certificate (no basicConstraints CA:TRUE, or a keyUsage without keyCertSign)');
}

/** Compiled allowed_urls patterns by source: keys sharing a policy share its pattern objects. */
export type PatternCache = Map<string, UrlPattern>;

/** A refused bundle record, with the message the runtime reports for it. */
export class BundleCheckError extends Error {
  override name = 'BundleCheckError';
}

/** The expiry of a key (Infinity = never); throws BundleCheckError naming the key. */
export function keyExpiry(key: BundleKey): number {
  if (key.expires === null) return Infinity;
  const checked = checkExpires(key.expires);
  if (!checked.ok) throw new BundleCheckError(`key ${key.id}: expires ${JSON.stringify(key.expires)} ${checked.problem}`);
  return checked.value;
}

/** One allowed_urls pattern of a key, compiled once per source; throws BundleCheckError naming the key and entry. */
export function keyPattern(cache: PatternCache, key: BundleKey, apiId: string, index: number, source: string): UrlPattern {
  let compiled = cache.get(source);
  if (compiled === undefined) {
    const checked = checkAllowedUrl(source);
    if (!checked.ok)
      throw new BundleCheckError(`key ${key.id}: access_rights.${apiId}.allowed_urls[${index}].url ${JSON.stringify(source)} ${checked.problem}`);
    compiled = checked.value;
    cache.set(source, compiled);
  }
  return compiled;
}

/**
 * The longest a limit may make a key wait: 100 years (of 365.25 days), for a rate's window, the
 * time one request of it stands for (per / rate) and a quota's period. Far past any real limit,
 * and it keeps every time the limiter computes well inside what it can store: past ~10^14 s a
 * reset time is no longer an integer Redis takes (PEXPIRE: "value is not an integer or out of
 * range"), and every request of such a key was a limiter fault answered by --on-limiter-error.
 */
export const MAX_LIMIT_SECONDS = 3_155_760_000;

/**
 * A key's effective limits past what the limiter can hold, or null. The compiler reports each
 * declared value at its position (compiler/limits.ts); the runtime refuses a bundle written by
 * other means that carries one (1e400 in JSON reads as Infinity), because one such key made the
 * Redis script fail, and the limiter then counted itself unavailable for every key. Written as
 * !(x <= bound) so that NaN is refused too.
 */
export function limitsProblem(rate: RateLimit | null | undefined, quota: Quota | null | undefined): string | null {
  if (rate !== null && rate !== undefined) {
    if (!(rate.per <= MAX_LIMIT_SECONDS)) return `rate.per ${rate.per} is past ${MAX_LIMIT_SECONDS} s (100 years)`;
    if (!(rate.rate <= Number.MAX_SAFE_INTEGER)) return `rate.rate ${rate.rate} is past ${Number.MAX_SAFE_INTEGER}`;
    if (!(rate.per / rate.rate <= MAX_LIMIT_SECONDS))
      return `rate ${rate.rate} per ${rate.per} s admits one request in more than ${MAX_LIMIT_SECONDS} s (100 years)`;
  }
  if (quota !== null && quota !== undefined) {
    if (!(quota.max <= Number.MAX_SAFE_INTEGER)) return `quota.max ${quota.max} is past ${Number.MAX_SAFE_INTEGER}`;
    if (!(quota.renewal <= MAX_LIMIT_SECONDS)) return `quota.renewal ${quota.renewal} is past ${MAX_LIMIT_SECONDS} s (100 years)`;
  }
  return null;
}

/** Checks one key's expiry, limits and allowed_urls patterns; throws BundleCheckError on the first problem. */
export function checkKey(key: BundleKey, cache: PatternCache): void {
  if (key.expires !== null) keyExpiry(key);
  const limits = limitsProblem(key.rate, key.quota);
  if (limits !== null) throw new BundleCheckError(`key ${key.id}: ${limits}`);
  const rights = key.access_rights;
  for (const apiId in rights) {
    const urls = rights[apiId].allowed_urls;
    if (urls !== null) for (let i = 0; i < urls.length; i++) keyPattern(cache, key, apiId, i, urls[i].url);
  }
}

/**
 * Checks every key (throws BundleCheckError on the first problem) without building per-key
 * objects: the runtime runs it before a swap, so a 100,000-key bundle is refused or accepted
 * whole without a long event-loop stall.
 */
export function checkKeys(keys: Record<string, BundleKey>, cache: PatternCache = new Map()): void {
  // for-in, not Object.values: on a 100,000-entry object it is about twice as fast.
  for (const id in keys) checkKey(keys[id], cache);
}

/**
 * `checkKeys` on a bundle's file form, without a record per key: each interned session's
 * patterns are compiled (and its limits checked) once, reported (as `checkKeys` would) under the first key, by id, that
 * uses it; every expiry is checked.
 */
export function checkWireKeys(w: WireContent, cache: PatternCache = new Map()): void {
  const seen = new Uint8Array(w.sessions.length);
  for (let i = 0; i < w.keys.ids.length; i++) {
    const key = wireKeyToCheck(w, i, seen);
    if (key === null) continue;
    checkKey(key, cache);
    seen[w.keys.session[i]] = 1;
  }
}

const NO_RIGHTS = {};

/**
 * Key `i` of a bundle's file form as checkKey must see it, or null when nothing of it is left
 * to check: its session's rights and limits only while that session has not passed (`passed`),
 * its expiry always.
 */
function wireKeyToCheck(w: WireContent, i: number, passed: Uint8Array): BundleKey | null {
  const id = w.keys.ids[i];
  const s = w.keys.session[i];
  const expires = Object.hasOwn(w.keys.expires, id) ? w.keys.expires[id] : null;
  if (passed[s] === 1 && expires === null) return null;
  const first = passed[s] === 1 ? null : w.sessions[s];
  return { id, expires, access_rights: first?.access_rights ?? NO_RIGHTS, rate: first?.rate ?? null, quota: first?.quota ?? null } as BundleKey;
}

/** One problem of a bundle, and the record it belongs to (for the compiler to point at its YAML). */
export interface BundleProblem {
  record: { kind: 'api'; id: string } | { kind: 'key'; id: string };
  /** The runtime's message. */
  message: string;
}

/** The runtime's message for a CA an API trusts that it cannot use. */
export function caProblem(fingerprint: string, subject: string, apiId: string, problem: string): string {
  return `ca ${fingerprint} (${subject}) used by api ${apiId}: ${problem.startsWith('is not a readable') ? `its PEM ${problem}` : problem}`;
}

/**
 * Every problem the runtime would refuse the bundle for (it stops at the first; this lists them
 * all). The compiler runs it on what it is about to emit, as the last line of that promise.
 */
export function bundleProblems(content: WireContent): BundleProblem[] {
  const problems: BundleProblem[] = [];
  const cas = new Map<string, string | null>();
  for (const api of Object.values(content.apis)) {
    const record = { kind: 'api', id: api.id } as const;
    const target = checkTargetUrl(api.target_url);
    if (!target.ok) problems.push({ record, message: `api ${api.id}: target_url ${JSON.stringify(api.target_url)} ${target.problem}` });
    for (const fp of api.client_cas) {
      let problem = cas.get(fp);
      if (problem === undefined) {
        const checked = checkCaPem(content.cas[fp].pem);
        cas.set(fp, (problem = checked.ok ? null : checked.problem));
      }
      if (problem !== null) problems.push({ record, message: caProblem(fp, content.cas[fp].subject, api.id, problem) });
    }
  }
  // Every key as checkKey sees it, but a session that passed once is not checked again.
  const patterns: PatternCache = new Map();
  const passed = new Uint8Array(content.sessions.length);
  for (let i = 0; i < content.keys.ids.length; i++) {
    const key = wireKeyToCheck(content, i, passed);
    if (key === null) continue;
    try {
      checkKey(key, patterns);
      passed[content.keys.session[i]] = 1;
    } catch (err) {
      if (!(err instanceof BundleCheckError)) throw err;
      problems.push({ record: { kind: 'key', id: key.id }, message: err.message });
    }
  }
  return problems;
}
