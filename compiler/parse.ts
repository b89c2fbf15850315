// Stage 2: YAML text -> documents (node tree with offsets + plain value). The fast subset
// parser handles ordinary config files; anything else goes through the `yaml` library, which
// also turns syntax errors into positioned diagnostics. Duplicate keys are found here, on the
// node tree, for both front ends alike (the second key gets the error, the first is related).
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseAllDocuments, type Document, type Node as YNode } from 'yaml';
import type { DiagnosticLog } from './diagnostics.ts';
import { excerpt } from './excerpt.ts';
import { DOCUMENT_TOO_LARGE, DocumentTooLarge, MAX_DOCUMENT_NODES, parseFast } from './yaml-fast.ts';
import type { SourceDoc, SourceFile, YamlNode } from './source.ts';

class NonStringKey extends Error {
  constructor(readonly offset: number) {
    super('non-string key');
  }
}

/**
 * Alias expansion bounds, per document. A YAML alias copies the node it names, so nested
 * aliases grow exponentially ("billion laughs": 405 bytes kept `check` busy for a minute).
 * Config files use an anchor a handful of times; these limits are far above that and far
 * below anything that costs time: at most MAX_ALIASES aliases expanded (nested ones
 * included) and at most MAX_EXPANDED_NODES nodes added by expansion.
 */
export const MAX_ALIASES = 1_000;
const MAX_EXPANDED_NODES = 100_000;

/** Nested deeper than MAX_DEPTH, or a tag outside the YAML 1.2 core schema: a syntax problem at `offset`. */
class Refused extends Error {
  constructor(
    readonly offset: number,
    readonly why: string,
  ) {
    super(why);
  }
}

/**
 * A file outside the fast parser's subset goes to the `yaml` library, which holds ~200 bytes
 * of objects per byte of a flow mapping: a 64 MiB `{k0: v, k1: v, ...}` ran into the 4 GB heap
 * and was killed after 3 minutes. At most 4 MiB of such YAML (a second or two, under 1 GB);
 * block style, which every generator and the bench write, is read up to the 64 MiB file bound.
 */
export const MAX_FULL_YAML_CHARS = 4 * 1024 * 1024;

/** Collections nested deeper than this are refused (config documents nest a handful of levels). */
const MAX_DEPTH = 100;
const TOO_DEEP = `collections nested more than ${MAX_DEPTH} levels deep`;

/**
 * The tags a config value may carry: the YAML 1.2 core schema's. Any other (!!binary, !!set,
 * !!js/function, !include, ...) would be dropped by the library with a warning, leaving a
 * string, or make a value the schema cannot describe (!!binary: bytes, checked as a mapping).
 */
const CORE_TAGS = new Set(['str', 'int', 'float', 'bool', 'null', 'map', 'seq'].map((t) => `tag:yaml.org,2002:${t}`));

function checkTag(node: YNode, fallbackOffset: number): void {
  if (node.tag !== undefined && !CORE_TAGS.has(node.tag)) {
    const shown = node.tag.startsWith('tag:yaml.org,2002:') ? `!!${node.tag.slice(18)}` : node.tag;
    throw new Refused(
      node.range?.[0] ?? fallbackOffset,
      `tag ${excerpt(shown)} is not supported: config values are plain strings, numbers, true/false, null, lists and mappings`,
    );
  }
}

class AliasBound extends Error {
  constructor(
    readonly offset: number,
    readonly why: string,
  ) {
    super(why);
  }
}

/** Converts one document's `yaml` library nodes to the compiler's node tree, bounding alias expansion. */
class Converter {
  private aliases = 0;
  private expanded = 0;
  /** > 0 while expanding an alias: nested aliases were charged with the outer one. */
  private inside = 0;
  /** Nodes made so far (aliases' copies included): at most MAX_DOCUMENT_NODES, as the fast parser. */
  private nodes = 0;
  /** Expanded size (nodes, aliases counted as what they expand to) of each node seen, computed once. */
  private readonly sizes = new Map<unknown, { nodes: number; aliases: number }>();

  constructor(private readonly doc: Document) {}

  /** Size of `node` once every alias inside it is expanded, without expanding anything (memoised: linear). */
  private sizeOf(node: unknown, depth: number): { nodes: number; aliases: number } {
    if (depth > 100) return { nodes: Infinity, aliases: Infinity };
    const known = this.sizes.get(node);
    if (known) return known;
    // A node met again while its own size is being computed is an alias loop: infinite.
    const isObject = node !== null && typeof node === 'object';
    if (isObject) this.sizes.set(node, { nodes: Infinity, aliases: Infinity });
    let size = { nodes: 1, aliases: 0 };
    if (isAlias(node)) {
      const inner = this.sizeOf(node.resolve(this.doc), depth + 1);
      size = { nodes: inner.nodes, aliases: inner.aliases + 1 };
    } else if (isMap(node)) {
      for (const pair of node.items) {
        const v = this.sizeOf(pair.value, depth + 1);
        size = { nodes: size.nodes + 1 + v.nodes, aliases: size.aliases + v.aliases };
      }
    } else if (isSeq(node)) {
      for (const item of node.items) {
        const v = this.sizeOf(item, depth + 1);
        size = { nodes: size.nodes + v.nodes, aliases: size.aliases + v.aliases };
      }
    }
    if (isObject) this.sizes.set(node, size);
    return size;
  }

  convert(node: unknown, fallbackOffset: number, depth = 0): YamlNode {
    if (depth > MAX_DEPTH) throw isAlias(node) ? new NonStringKey(fallbackOffset) : new Refused(fallbackOffset, TOO_DEEP); // alias loops: reported as a syntax problem
    if (isAlias(node)) {
      const at = node.range?.[0] ?? fallbackOffset;
      // Charge the whole expansion (nested aliases included) before doing any of it, so the
      // bound holds at the first alias that crosses it and the diagnostic points there.
      if (this.inside === 0) {
        const size = this.sizeOf(node, 0);
        this.aliases += size.aliases;
        this.expanded += size.nodes;
        if (this.aliases > MAX_ALIASES || this.expanded > MAX_EXPANDED_NODES) {
          const what = Number.isFinite(size.nodes) ? `${size.nodes} nodes through ${size.aliases} nested aliases` : 'an alias loop';
          throw new AliasBound(
            at,
            `alias *${node.source} expands to ${what}; a document may expand at most ${MAX_ALIASES} aliases and ${MAX_EXPANDED_NODES} nodes (nested aliases grow exponentially)`,
          );
        }
      }
      this.inside++;
      try {
        return this.expand(node.resolve(this.doc), at, depth + 1);
      } finally {
        this.inside--;
      }
    }
    return this.expand(node, fallbackOffset, depth);
  }

  private expand(node: unknown, fallbackOffset: number, depth: number): YamlNode {
    if (depth > MAX_DEPTH) throw new Refused(fallbackOffset, TOO_DEEP);
    if (++this.nodes > MAX_DOCUMENT_NODES) throw new DocumentTooLarge(this.doc.range?.[0] ?? fallbackOffset);
    if (isAlias(node)) return this.convert(node, fallbackOffset, depth);
    if (isMap(node) || isSeq(node) || isScalar(node)) checkTag(node, fallbackOffset);
    if (isMap(node)) {
      const offset = node.range?.[0] ?? fallbackOffset;
      return {
        type: 'map',
        offset,
        entries: node.items.map((pair) => {
          const k = pair.key as YNode | null;
          const keyOffset = k?.range?.[0] ?? offset;
          if (k !== null && !isScalar(k)) throw new NonStringKey(keyOffset);
          const key = k === null || k.value === null ? '' : String(k.value);
          const valueOffset = (pair.value as YNode | null)?.range?.[0] ?? k?.range?.[1] ?? keyOffset;
          return { key, keyOffset, value: this.convert(pair.value, valueOffset, depth + 1) };
        }),
      };
    }
    if (isSeq(node)) {
      const offset = node.range?.[0] ?? fallbackOffset;
      return { type: 'seq', offset, items: node.items.map((item) => this.convert(item, offset, depth + 1)) };
    }
    if (isScalar(node)) return { type: 'scalar', offset: node.range?.[0] ?? fallbackOffset, value: node.value };
    return { type: 'scalar', offset: fallbackOffset, value: null };
  }
}

/**
 * The plain JavaScript value of a node (what the schema validates). A key `__proto__` is an
 * own property like any other (an unknown field to the schema): assigned, it would set the
 * object's prototype, and its fields would be read as if set, unseen by Object.keys and by the
 * duplicate-key check.
 */
export function toValue(node: YamlNode): unknown {
  if (node.type === 'scalar') return node.value;
  if (node.type === 'seq') return node.items.map(toValue);
  const out: Record<string, unknown> = {};
  for (const e of node.entries) {
    if (e.key === '__proto__') Object.defineProperty(out, e.key, { value: toValue(e.value), enumerable: true, writable: true, configurable: true });
    else out[e.key] = toValue(e.value);
  }
  return out;
}

function reportDuplicateKeys(file: SourceFile, node: YamlNode, log: DiagnosticLog): void {
  if (node.type === 'seq') {
    for (const item of node.items) reportDuplicateKeys(file, item, log);
  } else if (node.type === 'map') {
    const entries = node.entries;
    // Config mappings are small: comparing pairs is cheaper than a Map per mapping, except for
    // big ones (access_rights over many APIs).
    const seen = entries.length > 16 ? new Map<string, number>() : undefined;
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i];
      let first: number | undefined;
      if (seen) {
        first = seen.get(e.key);
        if (first === undefined) seen.set(e.key, e.keyOffset);
      } else {
        for (let j = 0; j < i && first === undefined; j++) if (entries[j].key === e.key) first = entries[j].keyOffset;
      }
      if (first !== undefined) {
        log.report('E_YAML_DUPLICATE_KEY', { file, offset: e.keyOffset }, `duplicate key ${excerpt(e.key)} in this mapping`, [
          { site: { file, offset: first }, message: `${excerpt(e.key)} first set here` },
        ]);
      }
      if (e.value.type !== 'scalar') reportDuplicateKeys(file, e.value, log);
    }
  }
}

export function parseWithYamlLibrary(file: SourceFile, log: DiagnosticLog): YamlNode[] {
  if (file.text.length > MAX_FULL_YAML_CHARS) {
    log.report(
      'E_YAML_TOO_LARGE',
      { file, offset: 0 },
      `${file.text.length} characters of YAML outside the plain subset (flow mappings, anchors, tags, multi-line scalars, odd indentation or a syntax error): the full YAML parser reads at most ${MAX_FULL_YAML_CHARS} (4 MiB) a file; write it in block style or split it`,
    );
    return [];
  }
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(file.text, { lineCounter, uniqueKeys: false, prettyErrors: false, strict: true });
  const roots: YamlNode[] = [];
  for (const doc of Array.isArray(docs) ? docs : []) {
    if (doc.errors.length > 0) {
      for (const err of doc.errors) {
        const { line, col } = lineCounter.linePos(err.pos[0]);
        // The first line only, and capped: the library's messages may quote the source.
        // The library's own recursion gives out first on a file nested thousands deep.
        const said = /Maximum call stack size exceeded/.test(err.message) ? TOO_DEEP : err.message;
        const first = said.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
        log.reportAt('E_YAML_SYNTAX', file.path, line, col, first.length > 120 ? `${first.slice(0, 120)}…` : first);
      }
      continue;
    }
    // An empty document (e.g. after a trailing ---) holds nothing to check.
    if (doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null)) continue;
    try {
      roots.push(new Converter(doc).convert(doc.contents, doc.range[0]));
    } catch (err) {
      if (err instanceof AliasBound) log.report('E_YAML_ALIAS_BOUND', { file, offset: err.offset }, err.why);
      else if (err instanceof Refused) log.report('E_YAML_SYNTAX', { file, offset: err.offset }, err.why);
      else if (err instanceof DocumentTooLarge) log.report('E_YAML_TOO_LARGE', { file, offset: err.offset }, DOCUMENT_TOO_LARGE);
      else if (err instanceof NonStringKey)
        log.report('E_YAML_SYNTAX', { file, offset: err.offset }, 'mapping keys must be plain strings (no lists, maps or alias loops as keys)');
      else throw err;
    }
  }
  return roots;
}

/** Control characters YAML forbids in a file (c-printable admits tab, LF and CR only), and a CR not followed by LF. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this pattern finds
const FORBIDDEN = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|\r(?!\n)/;

/**
 * The first byte YAML forbids, said as such. The `yaml` library's own message for them was
 * about something else ("Implicit map keys need to be followed by map values" for a NUL,
 * "Nested mappings are not allowed in compact mappings" for old Mac line endings).
 */
function forbiddenCharacter(file: SourceFile, log: DiagnosticLog): boolean {
  const m = FORBIDDEN.exec(file.text);
  if (m === null) return false;
  const code = m[0].charCodeAt(0);
  const why =
    m[0] === '\r'
      ? 'a carriage return not followed by a line feed (old Mac line endings): re-save the file with LF or CRLF line endings'
      : `control character U+${code.toString(16).toUpperCase().padStart(4, '0')} is not allowed in a YAML file (of the control characters only tab, LF and CR are; a binary file?); in a double-quoted string write it as an escape (\\u${code.toString(16).padStart(4, '0')})`;
  log.report('E_YAML_SYNTAX', { file, offset: m.index }, why);
  return true;
}

export function parseSources(files: SourceFile[], log: DiagnosticLog): SourceDoc[] {
  const out: SourceDoc[] = [];
  for (const file of files) {
    if (forbiddenCharacter(file, log)) continue;
    let roots: YamlNode[];
    try {
      roots = parseFast(file.text) ?? parseWithYamlLibrary(file, log);
    } catch (err) {
      if (!(err instanceof DocumentTooLarge)) throw err;
      log.report('E_YAML_TOO_LARGE', { file, offset: err.offset }, DOCUMENT_TOO_LARGE);
      continue;
    }
    for (const root of roots) {
      reportDuplicateKeys(file, root, log);
      out.push({ file, root, value: toValue(root) });
    }
  }
  return out;
}
