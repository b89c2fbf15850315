// The limit periods a policy or key gives in seconds (`per`, `quota_renewal_rate`) may also be
// written as durations: `30s`, `1m`, `1h`, `1d`, `1m30s`, or Kong's words `second`, `minute`,
// `hour`, `day`. Tyk configs carry numbers (kept as they are), Kong users think in
// minutes; both mean the same window. The string becomes its number of seconds before the
// schema sees the document, so every later stage and the bundle still hold numbers, and a string
// that is no duration is left for the schema to refuse with the forms it accepts.

/** The fields that hold a period in seconds, in policy and key documents. */
const SECONDS_FIELDS = ['per', 'quota_renewal_rate'] as const;

const UNIT_SECONDS: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3_600, d: 86_400 };
const WORDS: Record<string, number> = { second: 1, minute: 60, hour: 3_600, day: 86_400 };

/** Seconds in a duration string, or null when it is not one (units ms, s, m, h, d; or a word). */
function durationSeconds(text: string): number | null {
  const t = text.trim().toLowerCase();
  if (Object.hasOwn(WORDS, t)) return WORDS[t];
  const parts = [...t.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== t) return null;
  let seconds = 0;
  for (const p of parts) seconds += Number(p[1]) * UNIT_SECONDS[p[2]];
  return seconds > 0 ? seconds : null;
}

/** Replaces each duration string among a policy's or key's period fields by its seconds (in place). */
export function normaliseSeconds(kind: string, value: Record<string, unknown>): void {
  if (kind !== 'policy' && kind !== 'key') return;
  for (const field of SECONDS_FIELDS) {
    const v = value[field];
    if (typeof v !== 'string') continue;
    const seconds = durationSeconds(v);
    if (seconds !== null) value[field] = seconds;
  }
}
