// Source files and the compiler's own light YAML node tree. Both YAML front ends (the fast
// subset parser and the full `yaml` library) produce this tree, so every later stage maps a
// value back to a line:col the same way, and a node costs a few fields, not a CST.
import { readRegularFile } from '../common/regular-file.ts';
import { lastAtOrBelow } from '../common/sorted.ts';

/** A config file's text without its UTF-8 byte order mark (editors on Windows write one; YAML positions count from after it). */
export function withoutBom(text: string): string {
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/**
 * The most bytes one config file (*.yaml, or `check -` on standard input) may hold: 64 MiB.
 * Generous: about 600,000 keys in one file, and a 1,000,000-key config is ~100 MB spread over
 * many files (docs/scale.md). The YAML parser holds ~10 times a file's size while it works, so a
 * bound is what keeps a stray multi-gigabyte file (a log, a dump, /dev/zero behind a *.yaml link)
 * from taking the compiler's memory; a real config past it is split into several files.
 */
export const MAX_CONFIG_FILE_BYTES = 64 * 1024 * 1024;

/** One config file's bytes, read as the compiler reads every one (a regular file, at most MAX_CONFIG_FILE_BYTES). */
export function readConfigBytes(absPath: string): Buffer {
  return readRegularFile(absPath, MAX_CONFIG_FILE_BYTES);
}

export interface SourceFile {
  /** Display path: relative to the config directory, "/" separators. */
  path: string;
  /** Absolute path on disk (relative certificate paths resolve from its directory). */
  absPath: string;
  text: string;
  /** SHA-256 of `text` when known without reading it (its stat equals the snapshot's record: known-files.ts). */
  textSha256?: string;
  /** Its stat (known-files.ts `statKey`) taken before it was read, when it had settled (not racily clean): the snapshot records it. */
  stat?: string;
  /** Offsets where each line starts; computed on first use (most files never need it). */
  lineStarts?: number[];
}

export interface YamlScalar {
  type: 'scalar';
  offset: number;
  value: unknown;
}
export interface YamlEntry {
  key: string;
  keyOffset: number;
  value: YamlNode;
}
export interface YamlMap {
  type: 'map';
  offset: number;
  entries: YamlEntry[];
}
export interface YamlSeq {
  type: 'seq';
  offset: number;
  items: YamlNode[];
}
export type YamlNode = YamlScalar | YamlMap | YamlSeq;

/** One YAML document of a file: its node tree and plain value. */
export interface SourceDoc {
  file: SourceFile;
  root: YamlNode;
  value: unknown;
}

export function positionOf(file: SourceFile, offset: number): { line: number; col: number } {
  if (!file.lineStarts) {
    const starts = [0];
    const text = file.text;
    for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) starts.push(i + 1);
    file.lineStarts = starts;
  }
  const line = lastAtOrBelow(file.lineStarts, offset);
  return { line: line + 1, col: offset - file.lineStarts[line] + 1 };
}

function entryOf(map: YamlMap, key: string): YamlEntry | undefined {
  for (const e of map.entries) if (e.key === key) return e;
  return undefined;
}

/**
 * The node at `path` (map keys and sequence indexes) or, when it does not exist, the deepest
 * existing ancestor. With `atKey`, the last segment's map key itself (for unknown fields).
 */
export function locate(root: YamlNode, path: readonly (string | number)[], atKey = false): number {
  let node: YamlNode = root;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i];
    if (node.type === 'map') {
      const e = entryOf(node, String(seg));
      if (!e) return node.offset;
      if (atKey && i === path.length - 1) return e.keyOffset;
      node = e.value;
    } else if (node.type === 'seq' && typeof seg === 'number' && seg < node.items.length) {
      node = node.items[seg];
    } else {
      return node.offset;
    }
  }
  return node.offset;
}

/** Converts a JSON pointer (ajv's instancePath) to path segments. */
export function pointerToPath(pointer: string): (string | number)[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => {
      const seg = s.replace(/~1/g, '/').replace(/~0/g, '~');
      return /^(0|[1-9][0-9]*)$/.test(seg) ? Number(seg) : seg;
    });
}
