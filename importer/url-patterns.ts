// Tyk path patterns (allowed_urls, a version's endpoint lists such as white_list) as Tyk reads
// them, and as mtlsgate allowed_urls. Tyk matches against the whole request path (or, with
// enable_path_prefix_matching, also the path after the listen path); mtlsgate matches the path
// after the listen path. So a pattern that starts with the API's listen path loses it, mux
// templates become regexes as Tyk makes them, and the gateway's prefix/suffix matching become ^ and $.
import type { PathMatching } from './context.ts';

const MUX_PARAM = /{([^}]+)}/g;

function isMuxTemplate(p: string): boolean {
  const open = p.split('{').length - 1;
  return open > 0 && open === p.split('}').length - 1;
}

/** A Tyk path pattern (allowed_urls, an endpoint list) as the regex Tyk itself makes of it (Tyk's PreparePathRegexp). */
export function tykPathRegex(pattern: string, matching: PathMatching): string {
  let p = pattern;
  if (isMuxTemplate(p)) p = p.replace(MUX_PARAM, '([^/]+)');
  if (p.includes('/*')) p = p.replaceAll('/*/', '/[^/]+/').replaceAll('/*', '/.*');
  if (matching.prefix && p.startsWith('/')) p = `^${p}`;
  if (matching.suffix && !p.endsWith('$')) p = `${p}$`;
  return p;
}

/** A Tyk allowed_urls pattern as a regex on the path after `listenPath`. */
export function convertUrlPattern(pattern: string, listenPath: string, matching: PathMatching): string {
  const p = tykPathRegex(pattern, matching);
  const anchored = p.startsWith('^');
  let body = anchored ? p.slice(1) : p;
  const lp = listenPath.replace(/\/+$/, '');
  if (lp !== '' && body.startsWith(lp) && (body.length === lp.length || body[lp.length] === '/' || body[lp.length] === '$')) {
    body = body.slice(lp.length);
    if (!body.startsWith('/')) body = `/${body}`;
  }
  return (anchored ? '^' : '') + body;
}
