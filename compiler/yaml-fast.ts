// A fast parser for the plain subset of YAML that config files are written in: block mappings
// and sequences, plain and quoted one-line scalars, one-line flow sequences, `{}`, literal block
// scalars (`|` for inline PEM), comments and `---`. It exists for speed: the `yaml` library
// takes ~60 µs per small document, and a 100,000-key config is 100,000 documents.
//
// It never guesses: the moment a file steps outside the subset (anchors, tags, folded or
// multi-line scalars, escapes, odd indentation, anything malformed), it returns null and the
// caller parses the whole file with the `yaml` library, which is also what reports syntax
// errors. Scalars resolve as the YAML 1.2 core schema does (the `yaml` library's default);
// test/compiler-parse.test.ts checks that both front ends agree.
import type { YamlMap, YamlNode, YamlScalar, YamlSeq } from './source.ts';

class Unsupported extends Error {}

/**
 * A config document holds a few dozen nodes (the biggest real ones: access_rights over a few
 * thousand APIs). One of millions (a 64 MiB mapping of 5,000,000 keys) held `check` for 90 s
 * and 2.7 GB, and its duplicate keys ended it out of memory: refused while it is read.
 */
export const MAX_DOCUMENT_NODES = 200_000;
export const DOCUMENT_TOO_LARGE = `a YAML document may hold at most ${MAX_DOCUMENT_NODES} lines or values (config documents hold dozens; split a list of keys into one document per key)`;

/** A document past MAX_DOCUMENT_NODES: reported at `offset` (where the document starts). */
export class DocumentTooLarge extends Error {
  constructor(readonly offset: number) {
    super(DOCUMENT_TOO_LARGE);
  }
}
const bail = (): never => {
  throw new Unsupported();
};

interface Line {
  /** Offset of the first content character in the file text. */
  start: number;
  indent: number;
  /** Text after the indentation (the whole rest of the line). */
  content: string;
}

const KEY = /^([^\s'"#[\]{},&*!|>%@`?:-][^\s:]*|-[^\s:][^\s:]*)[ ]*:(?=[ ]|$)/;
const INT = /^[-+]?[0-9]+$/;
const FLOAT = /^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$/;

/** Resolves a plain scalar as the YAML 1.2 core schema does. */
function resolvePlain(s: string): unknown {
  if (s === '' || s === '~' || s === 'null' || s === 'Null' || s === 'NULL') return null;
  if (s === 'true' || s === 'True' || s === 'TRUE') return true;
  if (s === 'false' || s === 'False' || s === 'FALSE') return false;
  const c = s.charCodeAt(0);
  // Only strings that start like a number can be one.
  if ((c >= 48 && c <= 57) || c === 43 || c === 45 || c === 46) {
    if (INT.test(s)) return parseInt(s, 10);
    if (/^0o[0-7]+$/.test(s)) return parseInt(s.slice(2), 8);
    if (/^0x[0-9a-fA-F]+$/.test(s)) return parseInt(s.slice(2), 16);
    if (FLOAT.test(s)) return parseFloat(s);
    if (/^[-+]?\.(?:inf|Inf|INF)$/.test(s)) return s[0] === '-' ? -Infinity : Infinity;
    if (/^\.(?:nan|NaN|NAN)$/.test(s)) return NaN;
  }
  return s;
}

/** Drops a trailing ` # comment` and trailing spaces from a plain scalar's line remainder. */
function plainText(rest: string): string {
  const hash = rest.search(/[ \t]#/);
  const s = (hash === -1 ? rest : rest.slice(0, hash)).replace(/[ \t]+$/, '');
  if (s.startsWith('#')) return '';
  // ": " inside, or a trailing ":", would be a mapping where YAML allows none: let yaml report it.
  if (/:(?:[ \t]|$)/.test(s) || s.includes('\t')) bail();
  return s;
}

/** Text after a closing quote must be blank or a comment. */
function afterQuote(rest: string): void {
  if (!/^[ \t]*(?:#.*)?$/.test(rest)) bail();
}

class FastParser {
  private lines: Line[] = [];
  private i = 0;
  constructor(private readonly text: string) {}

  parseAll(): YamlNode[] {
    const docs: YamlNode[] = [];
    const text = this.text;
    let current: Line[] = [];
    const flush = () => {
      this.lines = current;
      this.i = 0;
      this.skipBlank();
      if (this.i < this.lines.length) {
        docs.push(this.parseNode(0));
        this.skipBlank();
        if (this.i < this.lines.length) bail();
      }
      current = [];
    };
    // Line by line, never the whole file split at once (a 64 MiB file is millions of lines).
    // The text after a final newline is not a line (it would be a blank line to block scalars).
    let offset = 0;
    do {
      let newline = text.indexOf('\n', offset);
      if (newline === -1) newline = text.length;
      const orig = text.slice(offset, newline);
      const r = orig.endsWith('\r') ? orig.slice(0, -1) : orig;
      if (r.startsWith('---') && (r.length === 3 || r[3] === ' ')) {
        if (r.slice(3).trim() !== '' && !r.slice(3).trim().startsWith('#')) bail();
        flush();
      } else if (r.startsWith('...') || r.startsWith('%')) {
        bail();
      } else {
        let indent = 0;
        while (r.charCodeAt(indent) === 32) indent++;
        if (r.charCodeAt(indent) === 9) bail(); // tabs in indentation (even on a blank line): yaml's call
        if (current.length === MAX_DOCUMENT_NODES) throw new DocumentTooLarge(current[0].start);
        current.push({ start: offset + indent, indent, content: r.slice(indent) });
      }
      offset = newline + 1;
    } while (offset < text.length);
    flush();
    return docs;
  }

  private isBlank(l: Line): boolean {
    return l.content === '' || l.content[0] === '#' || /^[ \t]*$/.test(l.content);
  }
  private skipBlank(): void {
    while (this.i < this.lines.length && this.isBlank(this.lines[this.i])) this.i++;
  }
  private peek(): Line | undefined {
    this.skipBlank();
    return this.lines[this.i];
  }

  private parseNode(minIndent: number): YamlNode {
    const l = this.peek();
    if (!l || l.indent < minIndent) bail();
    if (l!.content === '-' || l!.content.startsWith('- ')) return this.parseSeq(l!.indent);
    if (KEY.test(l!.content)) return this.parseMap(l!.indent);
    return bail();
  }

  private parseMap(indent: number): YamlMap {
    const map: YamlMap = { type: 'map', offset: this.lines[this.i].start, entries: [] };
    for (let l = this.peek(); l && l.indent === indent; l = this.peek()) {
      const m = KEY.exec(l.content);
      if (!m) {
        if (l.content === '-' || l.content.startsWith('- ')) break; // a sequence at the parent's indent ends this map
        bail();
      }
      const key = m![1];
      const restAt = m![0].length;
      const afterColon = l.content.slice(restAt);
      const rest = afterColon.replace(/^[ \t]+/, '');
      const valueStart = l.start + restAt + (afterColon.length - rest.length);
      this.i++;
      let value: YamlNode;
      if (rest === '' || rest[0] === '#') {
        const next = this.peek();
        if (next && next.indent > indent) value = this.parseNode(indent + 1);
        else if (next && next.indent === indent && (next.content === '-' || next.content.startsWith('- '))) value = this.parseSeq(indent);
        else value = { type: 'scalar', offset: valueStart, value: null };
      } else {
        value = this.inlineValue(rest, valueStart, indent);
      }
      map.entries.push({ key: resolveKey(key), keyOffset: l.start, value });
    }
    const after = this.peek();
    if (after && after.indent > indent) bail();
    return map;
  }

  private parseSeq(indent: number): YamlSeq {
    const seq: YamlSeq = { type: 'seq', offset: this.lines[this.i].start, items: [] };
    for (let l = this.peek(); l && l.indent === indent && (l.content === '-' || l.content.startsWith('- ')); l = this.peek()) {
      let pad = 1;
      while (l.content[pad] === ' ') pad++;
      if (l.content[pad] === '\t') bail(); // a tab after the dash: yaml's call
      const rest = l.content.slice(pad);
      if (rest === '' || rest[0] === '#') {
        this.i++;
        const next = this.peek();
        seq.items.push(next && next.indent > indent ? this.parseNode(indent + 1) : { type: 'scalar', offset: l.start + pad, value: null });
      } else if (rest === '-' || rest.startsWith('- ') || KEY.test(rest)) {
        // Compact nested node ("- url: x" / "- - a"): re-read this line as if it started at the item.
        this.lines[this.i] = { start: l.start + pad, indent: indent + pad, content: rest };
        seq.items.push(this.parseNode(indent + pad));
      } else {
        this.i++;
        seq.items.push(this.inlineValue(rest, l.start + pad, indent));
      }
    }
    const after = this.peek();
    if (after && after.indent > indent) bail();
    return seq;
  }

  /** A value that starts on the current line (already consumed) at `offset`. */
  private inlineValue(rest: string, offset: number, parentIndent: number): YamlNode {
    const c = rest[0];
    if (c === '"') {
      const end = rest.indexOf('"', 1);
      if (end === -1 || rest.slice(1, end).includes('\\')) bail();
      afterQuote(rest.slice(end + 1));
      return this.endOfValue({ type: 'scalar', offset, value: rest.slice(1, end) }, parentIndent);
    }
    if (c === "'") {
      const m = /^'((?:[^']|'')*)'/.exec(rest);
      if (!m) bail();
      afterQuote(rest.slice(m![0].length));
      return this.endOfValue({ type: 'scalar', offset, value: m![1].replace(/''/g, "'") }, parentIndent);
    }
    if (c === '[') return this.endOfValue(this.flowSeq(rest, offset), parentIndent);
    if (c === '{') {
      if (!/^\{[ ]*\}[ \t]*(?:#.*)?$/.test(rest)) bail();
      return this.endOfValue({ type: 'map', offset, entries: [] }, parentIndent);
    }
    if (c === '|') return this.literalBlock(rest, offset, parentIndent);
    if ('&*!%@`>]},'.includes(c) || rest === '-' || rest.startsWith('- ') || rest.startsWith('? ')) bail();
    return this.endOfValue({ type: 'scalar', offset, value: resolvePlain(plainText(rest)) }, parentIndent);
  }

  /** A one-line value must not be continued on a more indented line (a multi-line scalar). */
  private endOfValue(node: YamlNode, parentIndent: number): YamlNode {
    const next = this.peek();
    if (next && next.indent > parentIndent) bail();
    return node;
  }

  private flowSeq(rest: string, offset: number): YamlSeq {
    const close = rest.indexOf(']');
    if (close === -1) bail();
    afterQuote(rest.slice(close + 1));
    const inner = rest.slice(1, close);
    if (/[[\]{}#"'&*!|>%@`]/.test(inner)) bail();
    const items: YamlScalar[] = [];
    let at = 1;
    const parts = inner.split(',', MAX_DOCUMENT_NODES + 1);
    if (parts.length > MAX_DOCUMENT_NODES) throw new DocumentTooLarge(offset);
    parts.forEach((part, idx) => {
      const lead = part.length - part.trimStart().length;
      const s = part.trim();
      if (s === '') {
        // "[]" and a trailing comma are fine; an empty item in the middle is not.
        if (!(parts.length === 1 || idx === parts.length - 1)) bail();
      } else {
        if (/:(?:[ \t]|$)/.test(s) || /^[-?:](?:[ \t]|$)/.test(s)) bail();
        items.push({ type: 'scalar', offset: offset + at + lead, value: resolvePlain(s) });
      }
      at += part.length + 1;
    });
    return { type: 'seq', offset, items };
  }

  private literalBlock(header: string, offset: number, parentIndent: number): YamlScalar {
    const m = /^\|([-+]?)(?:[ \t]+(?:#.*)?)?$/.exec(header);
    if (!m) bail();
    const chomp = m![1];
    const body: string[] = [];
    let blockIndent = -1;
    while (this.i < this.lines.length) {
      const l = this.lines[this.i];
      const blank = /^[ \t]*$/.test(l.content);
      if (blank) {
        if (blockIndent === -1 && l.indent > 0) bail(); // a leading blank line with spaces: let yaml judge the indentation
        if (l.content !== '') bail(); // tabs on a blank line of a block scalar: yaml's call
        body.push('');
        this.i++;
        continue;
      }
      if (blockIndent === -1) {
        if (l.indent <= parentIndent) break;
        blockIndent = l.indent;
      }
      if (l.indent < blockIndent) break;
      body.push(' '.repeat(l.indent - blockIndent) + l.content.replace(/\r$/, ''));
      this.i++;
    }
    // Trailing blank lines belong to the block only for chomping; give back none of them.
    let last = body.length;
    while (last > 0 && body[last - 1] === '') last--;
    const content = body.slice(0, last).join('\n');
    let value: string;
    if (last === 0) value = '';
    else if (chomp === '-') value = content;
    else if (chomp === '+') value = body.join('\n') + '\n';
    else value = content + '\n';
    return { type: 'scalar', offset, value };
  }
}

/** Plain map keys resolve like values but are always used as strings (JSON object keys). */
function resolveKey(s: string): string {
  const v = resolvePlain(s);
  if (typeof v === 'string') return v;
  if (Number.isInteger(v) && String(v) === s) return s;
  return bail();
}

/** The documents of `text` as node trees, or null when the file needs the full YAML parser. */
export function parseFast(text: string): YamlNode[] | null {
  // A lone CR is a line break to YAML; this parser splits on LF only.
  if (/\r(?!\n)/.test(text)) return null;
  try {
    return new FastParser(text).parseAll();
  } catch (err) {
    if (err instanceof Unsupported) return null;
    throw err;
  }
}
