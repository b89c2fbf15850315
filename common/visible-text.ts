// Characters that can forge a line or hide and reorder text in a terminal, a log or a pull
// request annotation: controls (C0, DEL and C1: ESC starts a terminal escape sequence, U+009B is
// one by itself), format characters (bidi overrides such as U+202E, zero-width spaces, tag
// characters) and line or paragraph separators. Text from certificates (subjects), file names
// and config values reaches diagnostics and command output; every printer shows these as
// \uXXXX through this one module (Trojan Source, CVE-2021-42574; terminal escape injection).
const HIDDEN = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;
const HIDDEN_ALL = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu;
/** The same, but a line feed: for output of several lines. */
const HIDDEN_BUT_LF = /(?!\n)[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu;
/** The same, but line feeds, carriage returns and tabs: for text laid out on a page. */
const HIDDEN_BUT_LAYOUT = /(?![\n\r\t])[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu;

const escaped = (c: string): string => {
  const hex = c.codePointAt(0)!.toString(16);
  return hex.length <= 4 ? `\\u${hex.padStart(4, '0')}` : `\\u{${hex}}`;
};

/** `text` with every such character written as \uXXXX (\u{XXXXX} above U+FFFF); other text unchanged. */
export function visibleText(text: string): string {
  if (!HIDDEN.test(text)) return text;
  return text.replace(HIDDEN_ALL, escaped);
}

/** visibleText for output of several lines: line feeds stay line feeds. */
export function visibleLines(text: string): string {
  if (!HIDDEN.test(text)) return text;
  return text.replace(HIDDEN_BUT_LF, escaped);
}

/** visibleText for a web page (portal/html.ts): line feeds, carriage returns and tabs are layout and stay. */
export function visibleOnPage(text: string): string {
  if (!HIDDEN.test(text)) return text;
  return text.replace(HIDDEN_BUT_LAYOUT, escaped);
}

/**
 * JSON text (JSON.stringify's) with every such character inside strings as a JSON \uXXXX escape
 * (each UTF-16 unit of one above U+FFFF): the same value to a parser, nothing hidden to a
 * terminal. JSON.stringify escapes C0 controls only, not DEL, C1, U+202E or U+200B. A line
 * feed is left: inside a string JSON.stringify has escaped it, outside it is indentation.
 */
export function visibleJson(json: string): string {
  if (!HIDDEN.test(json)) return json;
  return json.replace(HIDDEN_BUT_LF, (c) => {
    let out = '';
    for (let i = 0; i < c.length; i++) out += `\\u${c.charCodeAt(i).toString(16).padStart(4, '0')}`;
    return out;
  });
}
