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

// Characters that can forge a line or hide and reorder text in a terminal, a log or a pull
// request annotation: controls, format characters (bidi overrides, zero-width), line and
// paragraph separators. Messages carry text from certificates (subjects) that no excerpt cut.
const HIDDEN = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;
const HIDDEN_ALL = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu;

/** A diagnostic's message with every such character written as \uXXXX (other text unchanged). */
export function visibleText(message: string): string {
  if (!HIDDEN.test(message)) return message;
  return message.replace(HIDDEN_ALL, (c) => {
    const hex = c.codePointAt(0)!.toString(16);
    return hex.length <= 4 ? `\\u${hex.padStart(4, '0')}` : `\\u{${hex}}`;
  });
}
