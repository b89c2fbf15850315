// The compile snapshot's witness table and key id list (compiler/compile-snapshot.ts) on disk, in
// chunks of CHUNK_FILES key files each: certs-K.txt (the paths, one a line), certs-K.bin (their
// witnesses, WITNESS_FIELDS Float64s a path) and ids-K.txt (the key ids, each followed by a
// newline) for chunk K. At 1,000,000 keys the three tables are 68 MB; one key file changed
// used to write (and hash) all of them again, ~0.2-0.3 s of a recompile. Now a chunk whose key
// files are the previous snapshot's same files at the same places is not written at all: its
// files and digests stay. In memory the chunks are one table again (the witness check, the patch
// and the next write read it as before): the paths joined by newlines in shared memory, the
// witnesses after one another, the ids after one another.
import { closeSync, fstatSync, openSync, readdirSync, readSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { sha256Hex } from './certs.ts';
import { lineStarts, WITNESS_FIELDS, type WitnessTable } from './witness-check.ts';

/** Key files a chunk holds (the last one fewer). */
export const CHUNK_FILES = 64;

/** A chunk as state.json names it: its key files, its rows, and the SHA-256 of each of its files. */
export interface ChunkDigest {
  files: number;
  rows: number;
  paths: string;
  witnesses: string;
  ids: string;
}

const names = (k: number) => ({ text: `certs-${k}.txt`, bin: `certs-${k}.bin`, ids: `ids-${k}.txt` });

/** The three files of a chunk, as bytes to write. */
export interface ChunkBytes {
  text: Buffer;
  bin: Buffer;
  ids: Buffer;
}

/** The writes a chunk's bytes make, and its digest. */
export function chunkWrites(k: number, files: number, rows: number, bytes: ChunkBytes): { digest: ChunkDigest; writes: [string, Uint8Array][] } {
  const n = names(k);
  return {
    digest: { files, rows, paths: sha256Hex(bytes.text), witnesses: sha256Hex(bytes.bin), ids: sha256Hex(bytes.ids) },
    writes: [
      [n.text, bytes.text],
      [n.bin, bytes.bin],
      [n.ids, bytes.ids],
    ],
  };
}

/**
 * Chunk files beyond the `count` chunks a snapshot names (it had more before), and the one-file
 * tables of format v6 (certs.txt, certs.bin, ids.txt: 68 MB at 1,000,000 keys): removed (best effort).
 */
export function removeChunksFrom(dir: string, count: number): void {
  try {
    for (const name of readdirSync(dir)) {
      const m = /^(?:certs|ids)(?:-(\d+))?\.(?:txt|bin)$/.exec(name);
      if (m && (m[1] === undefined || Number(m[1]) >= count)) rmSync(join(dir, name), { force: true });
    }
  } catch {}
}

/** Opens every file, allocates one buffer for them all (`separator`: bytes between two non-empty ones), reads them into it; null when one cannot be read whole. */
function readAll(paths: string[], shared: boolean, separator: number | null): { bytes: Buffer; at: number[]; sizes: number[] } | null {
  const fds: number[] = [];
  try {
    const sizes: number[] = [];
    for (const p of paths) {
      fds.push(openSync(p, 'r'));
      sizes.push(fstatSync(fds[fds.length - 1]!).size);
    }
    const nonEmpty = sizes.filter((s) => s > 0).length;
    const total = sizes.reduce((a, b) => a + b, 0) + (separator === null ? 0 : Math.max(0, nonEmpty - 1));
    const bytes = shared ? Buffer.from(new SharedArrayBuffer(total)) : Buffer.allocUnsafe(total);
    const at: number[] = [];
    let o = 0;
    let first = true;
    for (let i = 0; i < fds.length; i++) {
      if (separator !== null && sizes[i]! > 0) {
        if (!first) bytes[o++] = separator;
        first = false;
      }
      at.push(o);
      let read = 0;
      while (read < sizes[i]!) {
        const n = readSync(fds[i]!, bytes, o + read, sizes[i]! - read, read);
        if (n === 0) return null;
        read += n;
      }
      o += sizes[i]!;
    }
    return { bytes, at, sizes };
  } catch {
    return null;
  } finally {
    for (const fd of fds) closeSync(fd);
  }
}

/**
 * The witness table of `chunks` in `dir` (paths and witnesses in shared memory, where the witness
 * check's workers read them), or null when a chunk file does not have the digest the state names.
 */
export function readChunkedWitnesses(dir: string, chunks: readonly ChunkDigest[], root: string): WitnessTable | null {
  const text = readAll(
    chunks.map((_, k) => join(dir, names(k).text)),
    true,
    10,
  );
  const bin = readAll(
    chunks.map((_, k) => join(dir, names(k).bin)),
    true,
    null,
  );
  if (text === null || bin === null) return null;
  let lines = 0;
  for (let k = 0; k < chunks.length; k++) {
    const c = chunks[k]!;
    const t = text.bytes.subarray(text.at[k], text.at[k]! + text.sizes[k]!);
    const b = bin.bytes.subarray(bin.at[k], bin.at[k]! + bin.sizes[k]!);
    if (b.length !== c.rows * 8 * WITNESS_FIELDS || (c.rows === 0) !== (t.length === 0)) return null;
    if (sha256Hex(t) !== c.paths || sha256Hex(b) !== c.witnesses) return null;
    lines += c.rows;
  }
  const starts = lineStarts(text.bytes, lines);
  // Exactly `lines` lines: the last one starts inside the text and holds no newline.
  if (lines > 0 && (starts[lines - 1]! > text.bytes.length || text.bytes.indexOf(10, starts[lines - 1]) !== -1)) return null;
  // (A SharedArrayBuffer starts 8-byte aligned: the Float64s are read in place.)
  const stats = new Float64Array(bin.bytes.buffer, 0, lines * WITNESS_FIELDS);
  return { text: text.bytes, stats, starts, root };
}

/** The key ids of `chunks` one after another, or null when a chunk file does not have the digest the state names. */
export function readChunkedIds(dir: string, chunks: readonly ChunkDigest[]): Buffer | null {
  const ids = readAll(
    chunks.map((_, k) => join(dir, names(k).ids)),
    false,
    null,
  );
  if (ids === null) return null;
  for (let k = 0; k < chunks.length; k++) if (sha256Hex(ids.bytes.subarray(ids.at[k], ids.at[k]! + ids.sizes[k]!)) !== chunks[k]!.ids) return null;
  return ids.bytes;
}
