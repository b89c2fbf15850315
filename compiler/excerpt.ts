// How a diagnostic shows a value taken from the config: escaped (JSON string syntax, with
// control and non-ASCII characters as \uXXXX, so nothing can forge a line or an annotation)
// and short (at most MAX_EXCERPT characters of it, then how long it really is). A diagnostic
// names the place; it never needs to repeat a whole value, which could be a secret read from
// a file that should not have been read.
const MAX_EXCERPT = 32;

const asciiOnly = (s: string) => s.replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

/** `"value"` (strings) or the JSON of a number/boolean/null, escaped and cut to MAX_EXCERPT characters. */
export function excerpt(value: unknown): string {
  const isString = typeof value === 'string';
  const text = isString ? value : (JSON.stringify(value) ?? String(value));
  const cut = text.length > MAX_EXCERPT ? text.slice(0, MAX_EXCERPT) : text;
  const shown = isString ? asciiOnly(JSON.stringify(cut)) : asciiOnly(cut);
  if (cut === text) return shown;
  return `${isString ? `${shown.slice(0, -1)}…"` : `${shown}…`} (${text.length} characters)`;
}

/** A file path for a message: escaped like an excerpt, but whole (a path names a place, it is not a value read from a file). */
export function quotedPath(path: string): string {
  return asciiOnly(JSON.stringify(path));
}
