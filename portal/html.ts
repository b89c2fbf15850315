// HTML built by a tagged template that escapes every interpolated value unless it is already
// `Html` (the output of another `html` template). User input can therefore only reach a page
// as text: there is no API that inserts a plain string unescaped. Characters that hide or
// reorder text (bidi overrides and isolates, zero-width characters, other controls, line and
// paragraph separators) are shown as \uXXXX, as diagnostics show them (common/visible-text.ts):
// a certificate subject or a name from the identity provider such as "\u202emoc.elpmaxe@ada"
// would otherwise read "ada@example.com" on the admin page. Newlines and tabs stay (a
// certificate pasted back into its text area).
import { visibleOnPage } from '../common/visible-text.ts';

export class Html {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escapes text for an HTML text node or a double- or single-quoted attribute value. */
export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

type Part = Html | string | number | boolean | null | undefined | Part[];

function render(part: Part): string {
  if (part === null || part === undefined || part === false) return '';
  if (part instanceof Html) return part.text;
  if (Array.isArray(part)) return part.map(render).join('');
  return escapeHtml(visibleOnPage(String(part)));
}

/** html`<p>${userText}</p>`: strings are escaped, Html values and arrays of them are inserted. */
export function html(strings: TemplateStringsArray, ...values: Part[]): Html {
  let out = strings[0];
  for (let i = 0; i < values.length; i++) out += render(values[i]) + strings[i + 1];
  return new Html(out);
}
