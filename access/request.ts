// Turning a test case's (or explain's) request into what the stages decide: host and path from
// a path or full URL, the token as a header of the API it reaches, `as_key` as that key's
// token_sha256 (a described request may state its token by hash: tests hold no secrets).
import type { Bundle } from '../bundle/types.ts';
import type { DescribedRequest } from '../runtime/stages/decide.ts';

export interface RequestSpec {
  method: string;
  /** "/path?query" or "https://host[:port]/path?query". */
  url: string;
  asKey: string | null;
  token: string | null;
  headers: Record<string, string>;
}

/**
 * Host and path of a described request's URL, or why it has none: a path, or http(s)://HOST
 * followed by a path (the schema of kind: test and explain's arguments take the same shape).
 */
export function splitUrl(url: string): { host: string; path: string } | { problem: string } {
  if (url.startsWith('/')) return { host: '', path: url };
  const m = /^https?:\/\/([^/?#]+)([^#]*)/i.exec(url);
  if (!m) return { problem: `url ${JSON.stringify(url)} is neither a path (/...) nor an http(s) URL with a host (https://HOST/...)` };
  return { host: m[1], path: m[2] === '' ? '/' : m[2] };
}

/**
 * The described request, or a problem (an `as_key` that names no key, or a key without a
 * token). `apiHeader` names the auth header of the API the request routes to (for `token`).
 */
export function describe(bundle: Bundle, spec: RequestSpec, apiHeader: string | null): DescribedRequest | { problem: string } {
  const url = splitUrl(spec.url);
  if ('problem' in url) return url;
  const { host, path } = url;
  const headers: Record<string, string> = { ...spec.headers };
  const req: DescribedRequest = { method: spec.method, host, path, headers };
  if (spec.asKey !== null) {
    // Own entries only: as_key "constructor" names no key (an inherited member is not one).
    const key = Object.hasOwn(bundle.content.keys, spec.asKey) ? bundle.content.keys[spec.asKey] : undefined;
    if (key === undefined) return { problem: `as_key names key "${spec.asKey}", which is not in the bundle` };
    if (key.token_sha256 === null) return { problem: `as_key "${spec.asKey}": that key has no token (give its certificate instead)` };
    req.tokenSha256 = key.token_sha256;
  } else if (spec.token !== null && apiHeader !== null) {
    headers[apiHeader] = spec.token;
  }
  return req;
}
