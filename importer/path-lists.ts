// A classic version's extended_paths (and the older `paths`), reported field by field: the
// allow and block lists change who reaches what, so each says which paths, and in which
// direction the imported API differs (wider or narrower than Tyk). The other middleware lists
// are named with what they did. None of them is converted: mtlsgate restricts paths per key
// or policy (allowed_urls), not per API.
import type { ImportReport } from './report.ts';
import { ptr } from './report.ts';
import { isUnset, obj, str, type JsonObject } from './values.ts';

const WIDER =
  "the imported API answers every path under its listen path to the keys granted it (wider than in Tyk): list the allowed paths in the policies' or keys' allowed_urls (url and methods)";

/** Lists whose loss lets through what Tyk refused (or answered more often than Tyk allowed). */
const WIDER_LISTS = new Set(['white_list', 'black_list', 'internal', 'rate_limit']);

const REASONS: Record<string, string> = {
  white_list: `an allow list of paths for every client (Tyk refused any other path); ${WIDER}`,
  black_list: `a block list of paths for every client (Tyk refused these); ${WIDER}, or leave the blocked paths out of them`,
  ignored:
    'paths Tyk served without authentication; mtlsgate authenticates every path of the API (narrower than in Tyk: clients of those paths now need a key or certificate): put them in a keyless API of their own',
  internal: 'paths only other Tyk APIs could call (refused from outside); the imported API answers them from outside: leave them out of the allowed_urls',
  rate_limit: 'per-endpoint rate limits are not supported: mtlsgate limits per key',
  mock_response: 'mock responses are not supported: the request goes to the upstream',
  virtual: 'virtual endpoints (JavaScript) are not supported: the request goes to the upstream',
  url_rewrites: 'URL rewrites are not supported: the upstream gets the path as the client sent it (after strip_listen_path)',
  method_transforms: 'method transforms are not supported',
  transform: 'body transforms are not supported',
  transform_response: 'body transforms are not supported',
  transform_jq: 'body transforms are not supported',
  transform_jq_response: 'body transforms are not supported',
  transform_headers: 'header transforms are not supported',
  transform_response_headers: 'header transforms are not supported',
  hard_timeouts: 'per-path timeouts are not supported: serve --upstream-timeout applies to every path',
  circuit_breakers: 'circuit breakers are not supported',
  size_limits: 'request size limits per path are not supported',
  validate_json: 'request validation is not supported: the upstream gets the body unchecked',
  validate_request: 'request validation is not supported: the upstream gets the body unchecked',
  cache: 'response caching is not supported',
  advance_cache_config: 'response caching is not supported',
  track_endpoints: 'analytics settings are not supported (mtlsgate logs one JSON line per request)',
  do_not_track_endpoints: 'analytics settings are not supported (mtlsgate logs one JSON line per request)',
  go_plugin: 'Go plugins are not supported',
  persist_graphql: 'GraphQL is not supported',
};

/** The paths (and methods) a path list names, for the report: "GET /a, /b/{id}" (at most five). */
function pathsOf(list: unknown): string {
  if (!Array.isArray(list)) return '';
  const shown = list.slice(0, 5).map((raw) => {
    if (typeof raw === 'string') return raw;
    const e = obj(raw);
    const path = str(e.path) ?? str(e.url) ?? '?';
    const methods = Object.keys(obj(e.method_actions));
    const method = str(e.method);
    return `${methods.length > 0 ? `${methods.join(',')} ` : method ? `${method} ` : ''}${path}`;
  });
  return ` (${shown.join(', ')}${list.length > 5 ? `, and ${list.length - 5} more` : ''})`;
}

/** Reports each set list of `paths` (a version's extended_paths or paths), `base` its pointer; `converted`: a list carried over (white-lists.ts). */
export function reportPathLists(report: ImportReport, file: string, base: string, paths: JsonObject, converted?: string): void {
  for (const [field, value] of Object.entries(paths)) {
    if (isUnset(value) || field === converted) continue;
    const why = REASONS[field] ?? 'per-path middleware is not supported';
    report.drop(file, ptr(base, field), `${field}${pathsOf(value)} not converted: ${why}`, WIDER_LISTS.has(field) ? 'wider' : undefined);
  }
}
