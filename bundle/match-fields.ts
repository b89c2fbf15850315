// The subject fields a certificate_match (or an API's client_certificates entry) can name, and
// what their `*` means: one definition for the compiler (checks, overlaps) and the runtime (the
// index it matches leaves with), so a pattern matches the same names in `check` and in `serve`.
export const MATCH_FIELDS = ['san_uri', 'san_dns', 'san_email', 'subject_cn'] as const;
export type MatchField = (typeof MATCH_FIELDS)[number];

/** What `*` may not cross in each field (subject_cn: nothing, `*` is any run of characters). */
export const WILDCARD_STOPS: Record<MatchField, string> = { san_uri: '/?#', san_dns: '.', san_email: '@.', subject_cn: '' };

/** Where a `*` stands in a san_uri pattern; that decides what it may stand for. */
export type UriPart = 'scheme' | 'authority' | 'path' | 'query';

// What one `*` stands for. A DNS label: letters, digits and "-". A SPIFFE ID path segment:
// letters, digits, ".", "-", "_" (the SPIFFE ID spec; no percent-encoding). Any other URI's path
// segment: RFC 3986 pchar, but no percent-encoding that decodes to "/" or "\" (a consumer that
// decodes would see two segments), ".", "%" (decoded twice it could be either) or a control
// character; "?" and "#" end the path, so they are never inside a `*` either.
const DNS_LABEL_RUN = '[A-Za-z0-9-]+';
const SPIFFE_SEGMENT_RUN = '[A-Za-z0-9._-]+';
const URI_SEGMENT_RUN = "(?:[A-Za-z0-9._~!$&'()*+,;=:@-]|%(?![01]|2[eEfF5]|5[cC]|7[fF])[0-9A-Fa-f]{2})+";
/** A path holding a "." or ".." segment (what a `*` must not make: it would mean another path once resolved). */
const DOT_SEGMENT = '(?![^?#]*/\\.\\.?(?:[/?#]|$))';
const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:/;

/** The part of the URI pattern each `*` stands in, in order (no scheme: every `*` is in 'scheme'). */
export function uriWildcardParts(pattern: string): UriPart[] {
  const parts: UriPart[] = [];
  const scheme = SCHEME.exec(pattern)?.[0].length ?? 0;
  const hasAuthority = scheme > 0 && pattern.startsWith('//', scheme);
  const authorityEnd = hasAuthority ? endOf(pattern, scheme + 2, '/?#') : scheme;
  const pathEnd = endOf(pattern, authorityEnd, '?#');
  for (let i = pattern.indexOf('*'); i !== -1; i = pattern.indexOf('*', i + 1)) {
    parts.push(i < scheme || scheme === 0 ? 'scheme' : i < authorityEnd ? 'authority' : i < pathEnd ? 'path' : 'query');
  }
  return parts;
}

function endOf(text: string, from: number, stops: string): number {
  for (let i = from; i < text.length; i++) if (stops.includes(text[i])) return i;
  return text.length;
}

function escaped(part: string): string {
  return part.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/** One san_uri pattern as a regex: each `*` one host label or one path segment; never a dot segment. */
function uriPattern(value: string): RegExp {
  const spiffe = value.startsWith('spiffe://');
  const runs = uriWildcardParts(value).map((part) =>
    part === 'authority' ? DNS_LABEL_RUN : part === 'path' ? (spiffe ? SPIFFE_SEGMENT_RUN : URI_SEGMENT_RUN) : '(?!)',
  );
  const pieces = value.split('*');
  let source = escaped(pieces[0]);
  for (let i = 1; i < pieces.length; i++) source += runs[i - 1] + escaped(pieces[i]);
  return new RegExp(`^${DOT_SEGMENT}${source}$`);
}

/**
 * One field value as a regex (anchored; `*` = one or more characters: in san_uri one path
 * segment or host label of allowed characters, in san_dns one label, in san_email no "@" or
 * ".", in subject_cn any; DNS names ignore case).
 */
export function fieldPattern(field: MatchField, value: string): RegExp {
  if (field === 'san_uri') return uriPattern(value);
  const any = field === 'san_dns' ? DNS_LABEL_RUN : field === 'san_email' ? '[^@.]+' : '.+';
  return new RegExp(`^${value.split('*').map(escaped).join(any)}$`, field === 'san_dns' ? 'i' : '');
}
