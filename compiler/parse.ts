// Stage 2: YAML text -> documents (node tree with offsets + plain value). The fast subset
// parser handles ordinary config files; anything else goes through the `yaml` library, which
// also turns syntax errors into positioned diagnostics. Duplicate keys are found here, on the
// node tree, for both front ends alike (the second key gets the error, the first is related).
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseAllDocuments, type Document, type Node as YNode } from 'yaml';
import type { DiagnosticLog } from './diagnostics.ts';
import { parseFast } from './yaml-fast.ts';
import type { SourceDoc, SourceFile, YamlNode } from './source.ts';

class NonStringKey extends Error {
  constructor(readonly offset: number) {
    super('non-string key');
  }
}

/** Converts a `yaml` library node to the compiler's node tree. */
function convert(node: unknown, doc: Document, fallbackOffset: number, depth = 0): YamlNode {
  if (depth > 100) throw new NonStringKey(fallbackOffset); // alias loops: reported as a syntax problem
  if (isAlias(node)) return convert(node.resolve(doc), doc, node.range?.[0] ?? fallbackOffset, depth + 1);
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
        return { key, keyOffset, value: convert(pair.value, doc, valueOffset, depth + 1) };
      }),
    };
  }
  if (isSeq(node)) {
    const offset = node.range?.[0] ?? fallbackOffset;
    return { type: 'seq', offset, items: node.items.map((item) => convert(item, doc, offset, depth + 1)) };
  }
  if (isScalar(node)) return { type: 'scalar', offset: node.range?.[0] ?? fallbackOffset, value: node.value };
  return { type: 'scalar', offset: fallbackOffset, value: null };
}

/** The plain JavaScript value of a node (what the schema validates). */
export function toValue(node: YamlNode): unknown {
  if (node.type === 'scalar') return node.value;
  if (node.type === 'seq') return node.items.map(toValue);
  const out: Record<string, unknown> = {};
  for (const e of node.entries) out[e.key] = toValue(e.value);
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
        log.report('E_YAML_DUPLICATE_KEY', { file, offset: e.keyOffset }, `duplicate key "${e.key}" in this mapping`, [
          { site: { file, offset: first }, message: `"${e.key}" first set here` },
        ]);
      }
      if (e.value.type !== 'scalar') reportDuplicateKeys(file, e.value, log);
    }
  }
}

export function parseWithYamlLibrary(file: SourceFile, log: DiagnosticLog): YamlNode[] {
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(file.text, { lineCounter, uniqueKeys: false, prettyErrors: false, strict: true });
  const roots: YamlNode[] = [];
  for (const doc of Array.isArray(docs) ? docs : []) {
    if (doc.errors.length > 0) {
      for (const err of doc.errors) {
        const { line, col } = lineCounter.linePos(err.pos[0]);
        log.reportAt('E_YAML_SYNTAX', file.path, line, col, err.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, ''));
      }
      continue;
    }
    // An empty document (e.g. after a trailing ---) holds nothing to check.
    if (doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null)) continue;
    try {
      roots.push(convert(doc.contents, doc, doc.range[0]));
    } catch (err) {
      if (!(err instanceof NonStringKey)) throw err;
      log.report('E_YAML_SYNTAX', { file, offset: err.offset }, 'mapping keys must be plain strings (no lists, maps or alias loops as keys)');
    }
  }
  return roots;
}

export function parseSources(files: SourceFile[], log: DiagnosticLog): SourceDoc[] {
  const out: SourceDoc[] = [];
  for (const file of files) {
    const roots = parseFast(file.text) ?? parseWithYamlLibrary(file, log);
    for (const root of roots) {
      reportDuplicateKeys(file, root, log);
      out.push({ file, root, value: toValue(root) });
    }
  }
  return out;
}
