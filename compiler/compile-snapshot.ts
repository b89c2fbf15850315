// The compile cache's snapshot (`compile --cache DIR`, DIR/snapshot/): the previous compile's
// output and what each key file contributed to it, in a form that loads in about a second at
// 1,000,000 keys, so that a recompile after a few key files changed patches the previous bundle
// (compiler/snapshot-compile.ts) instead of merging 1,000 per-file entries and building the
// bundle's indexes from 1,000,000 records again (compiler/key-cache.ts is that slower path).
//
// Its files, written to temporary names and renamed, state.json last:
// - state.json: a SHA-256 line, then JSON: format, compiler build, the keys-stage context digest
//   (APIs, policies, options: cached-keys.ts `keysContext`), the frame digest (what the bundle's
//   other parts take from the APIs' certificate files: snapshot-frame.ts), the bundle's document digest, the
//   SHA-256 of the other files, and per key file its path, text SHA-256, documents, validity window, diagnostics, key
//   ids and the range of its certificate files in the witness table;
// - bundle.json: the bundle file the compile wrote (serializeWire of its content);
// - certs-K.txt / certs-K.bin / ids-K.txt, a chunk of key files each (snapshot-chunks.ts): every
//   certificate file a key file read (one path a line, relative to the config directory when
//   inside it) and its witness (size, mtimeMs, ctimeMs, ino; size -1: it could not be stat'ed),
//   Float64 columns; and the key ids.
// Nothing is trusted unless every digest matches: a torn or edited snapshot is ignored (the
// compile takes the per-file path). It holds fingerprints, token SHA-256s, diagnostics and the
// bundle: never a private key or a token.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { join, sep } from 'node:path';
import { documentDigest } from '../bundle/write.ts';
import { type FileIdentity, type SameBytesFile, writeFileAtomic } from '../common/atomic-write.ts';
import type { FileWitness } from './certs.ts';
import { readDigestedJson, writeDigestedJson } from './digested-json.ts';
import type { Diagnostic } from './diagnostics.ts';
import { compilerCode } from './key-cache.ts';
import { CHUNK_FILES, type ChunkBytes, type ChunkDigest, chunkWrites, readChunkedIds, readChunkedWitnesses, removeChunksFrom } from './snapshot-chunks.ts';
import { WITNESS_FIELDS, type WitnessTable } from './witness-check.ts';

// v6: witnesses hold the ctime too (WITNESS_FIELDS); v7: the tables in chunks (snapshot-chunks.ts).
const FORMAT = 'mtlsgate.compile-snapshot/v7';

export interface SnapshotFile {
  path: string;
  /** SHA-256 of the file's text. */
  text: string;
  docs: number;
  validFrom: number;
  /** null: no time-dependent result. */
  validUntil: number | null;
  diagnostics: Diagnostic[];
  /** Its key ids are ids.txt's bytes [ids[0], ids[1]) (each id followed by a newline). */
  ids: [number, number];
  /** Its certificate files are witnesses [certs[0], certs[1]). */
  certs: [number, number];
  /** Witness index -> SHA-256 of a certificate read within RACY_MS of its mtime. */
  racy?: Record<string, string>;
  /** The file's stat when it was read, if it had settled (compiler/known-files.ts): while it holds, the file is not read. */
  stat?: string;
}

export interface SnapshotState {
  format: string;
  code: string;
  context: string;
  /** snapshot-frame.ts `frameDigest` of the APIs the bundle was compiled with. */
  frame: string;
  /** The config directory (absolute): certs.txt's relative paths are relative to it. */
  root: string;
  /** bundle.json's document digest ("sha256:<hex>" of its content bytes). */
  bundle: string;
  /** The witness and id tables' chunks, in order (CHUNK_FILES key files each). */
  chunks: ChunkDigest[];
  files: SnapshotFile[];
}

/** What a compile that patched the snapshot hands back for the next one: the previous files, and whether its bundle is unchanged. */
export interface PreviousSnapshot {
  state: SnapshotState;
  table: WitnessTable;
  ids: Buffer;
  sameBundle: boolean;
}

/**
 * One key file's part, as the compile that writes the snapshot has it: its witnesses, or (a file
 * kept from the previous snapshot) their rows [certs[0], certs[1]) of the previous table.
 */
export type SnapshotInputFile = Omit<SnapshotFile, 'certs' | 'racy' | 'ids'> & ({ witnesses: WitnessColumns; ids: string } | { previous: SnapshotFile });

/**
 * One key file's certificate files in the witness table's form, made where the file was resolved
 * (a key worker thread hands these back instead of a pair per certificate file): `paths` one a
 * line (relative to the config directory when inside it), `stats` (WITNESS_FIELDS) per path,
 * `racy` SHA-256s by row within the file.
 */
export interface WitnessColumns {
  count: number;
  paths: string;
  stats: Float64Array;
  racy?: Record<string, string>;
}

/** The witnesses of one file as columns; null when a path holds a newline (no snapshot then: one path a line). */
export function witnessColumns(witnesses: readonly (readonly [string, FileWitness])[], root: string): WitnessColumns | null {
  const inside = `${root}${sep}`;
  const paths: string[] = [];
  const stats = new Float64Array(witnesses.length * WITNESS_FIELDS);
  const racy: Record<string, string> = {};
  let racyAny = false;
  for (let i = 0; i < witnesses.length; i++) {
    const [abs, w] = witnesses[i];
    if (abs.includes('\n')) return null;
    paths.push(abs.startsWith(inside) ? abs.slice(inside.length) : abs);
    if (w === null) stats[i * WITNESS_FIELDS] = -1;
    else stats.set([w.size, w.mtimeMs, w.ctimeMs, w.ino], i * WITNESS_FIELDS);
    if (w?.sha256 !== undefined) {
      racy[i] = w.sha256;
      racyAny = true;
    }
  }
  return { count: witnesses.length, paths: paths.join('\n'), stats, ...(racyAny ? { racy } : {}) };
}

/** The previous snapshot's key ids (its chunks one after another), or null when a chunk does not have the digest the state names. */
export function readSnapshotIds(cacheDir: string, state: SnapshotState): Buffer | null {
  const bytes = readChunkedIds(dirOf(cacheDir), state.chunks);
  if (bytes === null) return null;
  for (const f of state.files) if (!(f.ids[0] >= 0 && f.ids[0] <= f.ids[1] && f.ids[1] <= bytes.length)) return null;
  return bytes;
}

/** A file's key ids from the id table. */
export function idsOf(ids: Buffer, file: SnapshotFile): string[] {
  if (file.ids[1] === file.ids[0]) return [];
  return ids.toString('utf8', file.ids[0], file.ids[1] - 1).split('\n');
}

const dirOf = (cacheDir: string) => join(cacheDir, 'snapshot');

/** The snapshot's state (null: none, another build's, or corrupt); the witness table is read by `readWitnesses`. */
export function readSnapshotState(cacheDir: string): SnapshotState | null {
  const state = readDigestedJson(join(dirOf(cacheDir), 'state.json')) as SnapshotState | null;
  if (state === null || typeof state !== 'object') return null;
  if (
    state.format !== FORMAT ||
    state.code !== compilerCode() ||
    typeof state.root !== 'string' ||
    typeof state.frame !== 'string' ||
    !Array.isArray(state.files) ||
    !Array.isArray(state.chunks) ||
    state.chunks.reduce((n, c) => n + c.files, 0) !== state.files.length
  )
    return null;
  return state;
}

/** The witness table, or null when its files do not have the digests the state names. */
export function readWitnesses(cacheDir: string, state: SnapshotState): WitnessTable | null {
  const table = readChunkedWitnesses(dirOf(cacheDir), state.chunks, state.root);
  if (table === null) return null;
  const lines = table.stats.length / WITNESS_FIELDS;
  for (const f of state.files) if (!(f.certs[0] >= 0 && f.certs[0] <= f.certs[1] && f.certs[1] <= lines)) return null;
  return table;
}

const BUNDLE_HEAD = /^\{"format":"[a-z0-9./]+","digest":"(sha256:[0-9a-f]{64})","content":/;

/**
 * The previous bundle file, or null when it is not the one the state names: the state holds its
 * document digest (the SHA-256 of its content bytes, already computed when it was written), and
 * every byte is checked: the content against it, the header and the closing bytes by form.
 */
export function readSnapshotBundle(cacheDir: string, state: SnapshotState): Buffer | null {
  try {
    const bytes = readFileSync(join(dirOf(cacheDir), 'bundle.json'));
    const head = bytes.toString('latin1', 0, 200).match(BUNDLE_HEAD);
    if (!head || head[1] !== state.bundle || bytes.length < head[0].length + 2) return null;
    if (bytes[bytes.length - 1] !== 10 || bytes[bytes.length - 2] !== 0x7d) return null;
    const digest = createHash('sha256')
      .update(bytes.subarray(head[0].length, bytes.length - 2))
      .digest('hex');
    return `sha256:${digest}` === state.bundle ? bytes : null;
  } catch {
    return null;
  }
}

/**
 * Writes the snapshot (best effort: a snapshot that cannot be written only makes the next compile
 * slower). With `previous` (a patched compile), files that did not change are not written again.
 * Returns bundle.json as written (null: not written): the CLI links its output to it instead of
 * writing the same bytes again (common/atomic-write.ts).
 */
export function writeSnapshot(
  cacheDir: string,
  root: string,
  context: string,
  frame: string,
  bundle: Buffer,
  files: readonly SnapshotInputFile[],
  previous?: PreviousSnapshot,
): SameBytesFile | null {
  const dir = dirOf(cacheDir);
  if (files.some((f) => 'previous' in f) && (!previous || previous.table.root !== root)) return null;
  const out: SnapshotFile[] = [];
  const chunks: ChunkDigest[] = [];
  const writes: [string, Uint8Array][] = [];
  let at = 0;
  let idAt = 0;
  for (let from = 0, k = 0; from < files.length; from += CHUNK_FILES, k++) {
    const chunk = files.slice(from, from + CHUNK_FILES);
    // The previous snapshot's same files at the same places: the chunk's files stay as they are.
    const was = previous?.state.chunks[k];
    if (was && was.files === chunk.length && chunk.every((f, i) => 'previous' in f && f.previous === previous!.state.files[from + i])) {
      const first = previous!.state.files[from]!;
      const last = previous!.state.files[from + chunk.length - 1]!;
      const [row0, id0] = [first.certs[0], first.ids[0]];
      for (const f of chunk as Extract<SnapshotInputFile, { previous: SnapshotFile }>[]) {
        const { certs, ids, racy } = f.previous;
        const moved: Record<string, string> = {};
        for (const [i, sha] of Object.entries(racy ?? {})) moved[at + Number(i) - row0] = sha;
        const { previous: _, ...rest } = f;
        out.push({
          ...rest,
          ids: [idAt + ids[0] - id0, idAt + ids[1] - id0],
          certs: [at + certs[0] - row0, at + certs[1] - row0],
          ...(racy ? { racy: moved } : {}),
        });
      }
      at += last.certs[1] - row0;
      idAt += last.ids[1] - id0;
      chunks.push(was);
      continue;
    }
    const built = buildChunk(chunk, previous, at, idAt, out);
    const { digest, writes: more } = chunkWrites(k, chunk.length, built.rows, built.bytes);
    chunks.push(digest);
    writes.push(...more);
    at += built.rows;
    idAt += built.bytes.ids.length;
  }
  const sameBundle = previous?.sameBundle === true;
  if (!sameBundle) writes.push(['bundle.json', bundle]);
  const state: SnapshotState = {
    format: FORMAT,
    code: compilerCode(),
    context,
    frame,
    root,
    bundle: documentDigest(bundle),
    chunks,
    files: out,
  };
  const bundleFile = join(dir, 'bundle.json');
  try {
    mkdirSync(dir, { recursive: true });
    // bundle.json as this process wrote it (or, unchanged, as the previous compile did and this one read it).
    let written: FileIdentity | undefined = sameBundle ? statSync(bundleFile) : undefined;
    // The state names the other files' digests: written last, so a torn write is never trusted
    // (hence not fsynced either: what does not match is ignored).
    for (const [name, bytes] of writes) {
      const identity = writeFileAtomic(join(dir, name), bytes, { durable: false });
      if (name === 'bundle.json') written = identity;
    }
    writeDigestedJson(join(dir, 'state.json'), state);
    if (!previous || previous.state.chunks.length > chunks.length) removeChunksFrom(dir, chunks.length);
    return written ? { path: bundleFile, dev: written.dev, ino: written.ino, size: written.size } : null;
  } catch {
    return null;
  }
}

/**
 * The bytes of a chunk whose key files are not all the previous snapshot's same ones: the kept
 * files' rows and ids copied from the previous tables as they are (nothing decoded), the others'
 * from their columns. Appends each file's entry (ranges from `at` and `idAt`) to `out`.
 */
function buildChunk(
  files: readonly SnapshotInputFile[],
  previous: PreviousSnapshot | undefined,
  at: number,
  idAt: number,
  out: SnapshotFile[],
): { rows: number; bytes: ChunkBytes } {
  let rows = 0;
  for (const f of files) rows += 'witnesses' in f ? f.witnesses.count : f.previous.certs[1] - f.previous.certs[0];
  const stats = new Float64Array(rows * WITNESS_FIELDS);
  const segments: Uint8Array[] = [];
  const idParts: Uint8Array[] = [];
  let row = 0;
  let idBytes = 0;
  for (const f of files) {
    const racy: Record<string, string> = {};
    const start = row;
    const idStart = idBytes;
    if ('witnesses' in f) {
      const w = f.witnesses;
      if (w.count > 0) segments.push(Buffer.from(w.paths, 'utf8'));
      stats.set(w.stats, row * WITNESS_FIELDS);
      for (const [i, sha] of Object.entries(w.racy ?? {})) racy[at + row + Number(i)] = sha;
      row += w.count;
      const block = Buffer.from(f.ids === '' ? '' : `${f.ids}\n`, 'utf8');
      idParts.push(block);
      idBytes += block.length;
      const { witnesses: _, ids: _i, ...rest } = f;
      out.push({ ...rest, ids: [idAt + idStart, idAt + idBytes], certs: [at + start, at + row], ...(Object.keys(racy).length > 0 ? { racy } : {}) });
      continue;
    }
    const { table, ids: idTable } = previous!;
    const { certs, ids } = f.previous;
    const n = certs[1] - certs[0];
    if (n > 0) segments.push(table.text.subarray(table.starts[certs[0]]!, table.starts[certs[1]]! - 1));
    stats.set(table.stats.subarray(certs[0] * WITNESS_FIELDS, certs[1] * WITNESS_FIELDS), row * WITNESS_FIELDS);
    for (const [i, sha] of Object.entries(f.previous.racy ?? {})) racy[at + row + Number(i) - certs[0]] = sha;
    row += n;
    idParts.push(idTable.subarray(ids[0], ids[1]));
    idBytes += ids[1] - ids[0];
    const { previous: _, ...rest } = f;
    out.push({ ...rest, ids: [idAt + idStart, idAt + idBytes], certs: [at + start, at + row], ...(Object.keys(racy).length > 0 ? { racy } : {}) });
  }
  const parts: Uint8Array[] = [];
  const newline = Buffer.from('\n');
  for (const seg of segments) {
    if (parts.length > 0) parts.push(newline);
    parts.push(seg);
  }
  return { rows, bytes: { text: Buffer.concat(parts), bin: Buffer.from(stats.buffer, stats.byteOffset, stats.byteLength), ids: Buffer.concat(idParts) } };
}
