// The subject fields a certificate_match (or an API's client_certificates entry) can name, and
// what their `*` means: one definition for the compiler (checks, overlaps) and the runtime (the
// index it matches leaves with), so a pattern matches the same names in `check` and in `serve`.
export const MATCH_FIELDS = ['san_uri', 'san_dns', 'san_email', 'subject_cn'] as const;
export type MatchField = (typeof MATCH_FIELDS)[number];

/** What `*` may not cross in each field (subject_cn: nothing, `*` is any run of characters). */
export const WILDCARD_STOPS: Record<MatchField, string> = { san_uri: '/', san_dns: '.', san_email: '@.', subject_cn: '' };

/** One field value as a regex (anchored; `*` = one or more characters that are not a stop; DNS names ignore case). */
export function fieldPattern(field: MatchField, value: string): RegExp {
  const stops = WILDCARD_STOPS[field].replace(/[\\\]^-]/g, '\\$&');
  const any = stops === '' ? '.+' : `[^${stops}]+`;
  const source = value
    .split('*')
    .map((part) => part.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&'))
    .join(any);
  return new RegExp(`^${source}$`, field === 'san_dns' ? 'i' : '');
}
