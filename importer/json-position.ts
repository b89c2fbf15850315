// Where a JSON pointer lands in a JSON text, as line:col (1-based), for findings that must name
// a place a person can jump to (`apps/a.json:4:15`), not only a pointer. A small scanner, not
// a parser: the text was already parsed (importer/sources.ts), so it is valid JSON; it walks
// the text once, skipping values that are not on the pointer's path.
import { pointerToPath } from '../compiler/source.ts';

const WS = new Set([' ', '\t', '\n', '\r']);

class Scanner {
  i = 0;
  constructor(readonly text: string) {}
  ws(): void {
    while (this.i < this.text.length && WS.has(this.text[this.i])) this.i++;
  }
  /** Skips the string starting at i (a '"'), returns its value. */
  string(): string {
    const start = this.i;
    this.i++;
    while (this.text[this.i] !== '"') this.i += this.text[this.i] === '\\' ? 2 : 1;
    this.i++;
    return JSON.parse(this.text.slice(start, this.i)) as string;
  }
  /** Skips one value of any kind starting at i. */
  value(): void {
    const c = this.text[this.i];
    if (c === '"') this.string();
    else if (c === '{' || c === '[') {
      let depth = 0;
      do {
        const d = this.text[this.i];
        if (d === '"') {
          this.string();
          continue;
        }
        if (d === '{' || d === '[') depth++;
        else if (d === '}' || d === ']') depth--;
        this.i++;
      } while (depth > 0);
    } else while (this.i < this.text.length && !',}] \t\r\n'.includes(this.text[this.i])) this.i++;
  }
}

/** The offset of the value at `pointer` in `text` (a BOM counts as nothing), or of its deepest existing ancestor. */
export function offsetOfPointer(text: string, pointer: string): number {
  const s = new Scanner(text);
  if (text.charCodeAt(0) === 0xfeff) s.i = 1;
  s.ws();
  for (const seg of pointerToPath(pointer)) {
    const at = s.i;
    const open = text[s.i];
    if (open !== '{' && open !== '[') return at;
    s.i++;
    let found = false;
    for (let index = 0; ; index++) {
      s.ws();
      if (text[s.i] === '}' || text[s.i] === ']') break;
      let name: string | number = index;
      if (open === '{') {
        name = s.string();
        s.ws();
        s.i++; // ':'
        s.ws();
      }
      if (String(name) === String(seg)) {
        found = true;
        break;
      }
      s.value();
      s.ws();
      if (text[s.i] === ',') s.i++;
    }
    if (!found) return at;
  }
  return s.i;
}

/** `line:col` (1-based; col counts UTF-16 code units from the line's start) of `pointer` in `text`. */
export function lineColOfPointer(text: string, pointer: string): { line: number; col: number } {
  const offset = offsetOfPointer(text, pointer);
  let line = 1;
  let lineStart = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  for (let i = text.indexOf('\n'); i !== -1 && i < offset; i = text.indexOf('\n', i + 1)) {
    line++;
    lineStart = i + 1;
  }
  return { line, col: offset - lineStart + 1 };
}
