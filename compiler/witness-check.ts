// Checks the compile snapshot's certificate witnesses (compiler/compile-snapshot.ts): which key
// files read a certificate file that is no longer what it was (size, mtimeMs, ctimeMs, ino; the
// SHA-256 of a racily clean one). At 1,000,000 certificate files that is 1,000,000 statSync calls,
// ~3.1 s on one thread here (2.2 s of it in the kernel); fs.promises.stat is ~4.5x that (one
// thread-pool round trip each, 14-16 s with 64 or 256 in flight). So big tables are shared out,
// a key file at a time, to worker threads that call statSync, while the main thread resolves the
// changed key files and reads the previous bundle. The paths and witnesses are handed over in
// SharedArrayBuffers (no copy per worker). (Session 17's workers took the stat from Node's
// deprecated process.binding('fs'), no Stats object: 18-26% less for the loop alone, ~9% of a
// recompile with nothing changed; session 18 went back to statSync: docs/scale.md.)
// A file found changed is reported at once (WitnessFindings), not only with the rest at the end:
// the caller resolves it again while the workers still stat the other files, so a rewritten
// certificate costs about what an edited key file costs instead of coming after the whole check.
// The workers post each one on a MessagePort of its own that the caller drains synchronously
// (receiveMessageOnPort): a worker's 'message' events would wait for turns of the event loop.
import { readFileSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { MessageChannel, type MessagePort, receiveMessageOnPort, Worker } from 'node:worker_threads';
import { sha256Hex } from './certs.ts';

/** Below this many witnesses the check runs on the calling thread (a worker costs ~30 ms to start). */
const WORKER_MIN = 50_000;

/** One key file's witnesses: [start, end) in the table, and SHA-256s by witness index (racily clean ones). */
export interface WitnessRange {
  start: number;
  end: number;
  racy?: Record<string, string>;
}

/** Float64 fields a witness takes in the table: size, mtimeMs, ctimeMs, ino (size -1: could not be stat'ed). */
export const WITNESS_FIELDS = 4;

/** The table: certs.txt's bytes (one path a line) and WITNESS_FIELDS Float64s per path. */
export interface WitnessTable {
  /** The directory relative paths are relative to (a line not starting with "/" is relative). */
  root: string;
  text: Uint8Array;
  stats: Float64Array;
  /** Where each line starts (lineStarts). */
  starts: Uint32Array | Float64Array;
}

// The worker: plain JavaScript (it runs from source and from the built CLI alike).
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { statSync, readFileSync } = require('node:fs');
const { createHash } = require('node:crypto');
const { text, starts, stats, ranges, next, root, found } = workerData;
const NO_THROW = { throwIfNoEntry: false };
// Buffer's UTF-8 slice over the shared bytes: no view per path (TextDecoder wants one).
const bytes = Buffer.from(text.buffer, text.byteOffset, text.byteLength);
const bad = [];
// The key files are taken one at a time from a shared counter: a worker the machine runs less
// checks fewer of them, and none waits idle for another's half.
for (let r = Atomics.add(next, 0, 1); r < ranges.length; r = Atomics.add(next, 0, 1)) {
  const { start, end, racy } = ranges[r].range;
  for (let i = start; i < end; i++) {
    const line = bytes.toString('utf8', starts[i], starts[i + 1] - 1);
    const path = line.charCodeAt(0) === 47 ? line : root + '/' + line;
    let ok;
    const w = i * ${WITNESS_FIELDS};
    try {
      // No exception for a missing file (one a key file names but that was not there).
      const st = statSync(path, NO_THROW);
      if (st === undefined) ok = stats[w] === -1;
      else {
        ok = stats[w] === st.size && stats[w + 1] === st.mtimeMs && stats[w + 2] === st.ctimeMs && stats[w + 3] === st.ino;
        if (ok && racy && racy[i] !== undefined) ok = createHash('sha256').update(readFileSync(path)).digest('hex') === racy[i];
      }
    } catch {
      ok = stats[w] === -1;
    }
    if (!ok) { bad.push(ranges[r].file); found.postMessage(ranges[r].file); break; }
  }
}
parentPort.postMessage({ bad });
`;

/** Line start offsets of `text` (one more than the lines: the last is text.length + 1), in shared memory. */
export function lineStarts(text: Uint8Array, lines: number): Uint32Array | Float64Array {
  const starts = text.length < 2 ** 32 ? new Uint32Array(new SharedArrayBuffer((lines + 1) * 4)) : new Float64Array(new SharedArrayBuffer((lines + 1) * 8));
  const buf = Buffer.from(text.buffer, text.byteOffset, text.byteLength);
  let at = 0;
  for (let i = 0; i < lines; i++) {
    starts[i] = at;
    const nl = buf.indexOf(10, at);
    at = nl === -1 ? text.length + 1 : nl + 1;
  }
  starts[lines] = text.length + 1;
  return starts;
}

/** The changed files a check has found so far, before it is over. */
export class WitnessFindings {
  private readonly found = new Set<number>();
  private readonly ports: MessagePort[] = [];

  add(file: number): void {
    this.found.add(file);
  }

  listen(port: MessagePort): void {
    this.ports.push(port);
  }

  /** Every file reported so far; what the workers posted is taken now, without a turn of the event loop. */
  soFar(): ReadonlySet<number> {
    for (const port of this.ports) {
      for (let m = receiveMessageOnPort(port); m !== undefined; m = receiveMessageOnPort(port)) this.found.add(m.message as number);
    }
    return this.found;
  }
}

/** A line of the table as an absolute path. */
function pathOf(table: WitnessTable, line: string): string {
  return line.charCodeAt(0) === 47 ? line : `${table.root}/${line}`;
}

function holds(path: string, stats: Float64Array, i: number, racy: string | undefined): boolean {
  const w = i * WITNESS_FIELDS;
  let st;
  try {
    st = statSync(path, { throwIfNoEntry: false });
  } catch {}
  if (st === undefined) return stats[w] === -1;
  if (stats[w] !== st.size || stats[w + 1] !== st.mtimeMs || stats[w + 2] !== st.ctimeMs || stats[w + 3] !== st.ino) return false;
  if (racy === undefined) return true;
  try {
    return sha256Hex(readFileSync(path)) === racy;
  } catch {
    return false;
  }
}

/**
 * The indexes (into `ranges`) of the files one of whose witnesses no longer holds. `workers`:
 * threads to use (default: one per core up to 4 when the table has WORKER_MIN witnesses or more).
 * `findings`: each such index as soon as it is found, before the promise settles.
 */
export async function changedWitnesses(
  table: WitnessTable,
  ranges: readonly WitnessRange[],
  workers?: number,
  signal?: AbortSignal,
  findings?: WitnessFindings,
): Promise<Set<number>> {
  const total = ranges.reduce((n, r) => n + (r.end - r.start), 0);
  const threads = workers ?? (total >= WORKER_MIN ? Math.min(4, availableParallelism()) : 0);
  const { starts } = table;
  const out = new Set<number>();
  if (threads === 0) {
    const decoder = new TextDecoder();
    ranges.forEach((r, f) => {
      for (let i = r.start; i < r.end; i++) {
        const path = pathOf(table, decoder.decode(table.text.subarray(starts[i]!, starts[i + 1]! - 1)));
        if (!holds(path, table.stats, i, r.racy?.[i])) {
          out.add(f);
          findings?.add(f);
          break;
        }
      }
    });
    return out;
  }
  // Shared with the workers as they are when already in shared memory (compile-snapshot.ts reads them there).
  let { text, stats } = table;
  if (!(text.buffer instanceof SharedArrayBuffer)) {
    text = new Uint8Array(new SharedArrayBuffer(table.text.length));
    text.set(table.text);
  }
  if (!(stats.buffer instanceof SharedArrayBuffer)) {
    stats = new Float64Array(new SharedArrayBuffer(table.stats.byteLength));
    stats.set(table.stats);
  }
  // Every worker takes the next key file's range from one shared counter until none is left.
  const all = ranges.map((range, file) => ({ file, range }));
  const next = new Int32Array(new SharedArrayBuffer(4));
  await Promise.all(
    Array.from(
      { length: threads },
      () =>
        new Promise<void>((resolve, reject) => {
          const { port1, port2 } = new MessageChannel();
          findings?.listen(port1);
          const workerData = { text, starts, stats, ranges: all, next, root: table.root, found: port2 };
          const w = new Worker(WORKER, { eval: true, workerData, transferList: [port2] });
          // Stopped (the compile went the ordinary way): terminated, its answer no longer wanted.
          const stop = () => {
            reject(new Error('witness check stopped'));
            void w.terminate();
          };
          if (signal?.aborted) stop();
          signal?.addEventListener('abort', stop, { once: true });
          w.once('message', ({ bad }: { bad: number[] }) => {
            signal?.removeEventListener('abort', stop);
            for (const f of bad) {
              out.add(f);
              findings?.add(f);
            }
            // Every file it found is in `bad`: its early reports are no longer needed.
            port1.close();
            resolve();
            void w.terminate();
          });
          w.once('error', reject);
          w.once('exit', (code) => {
            if (code !== 0) reject(new Error(`witness worker exited with ${code}`));
          });
        }),
    ),
  );
  return out;
}
