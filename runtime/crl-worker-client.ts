// Main-thread side of the CRL thread (runtime/crl-worker.ts): every large CRL the process takes
// (a crl_url's answer, a peer worker's copy) and every large CRL floor the cluster primary
// verifies has its signature checked and its entries walked there, so the thread that serves
// requests (or, in the primary, leases and /health) is never held by a list's hashing or its
// 1,000,000 entries. One thread, reused: it is started on the first job, takes jobs one after
// the other, and is ended once idle for `idleMs`. Before, each large CRL started its own thread
// (100-500 ms of start-up CPU each, and N lists at once were N threads on a 2-core host).
// What comes back is adopted as it is (a SerialTable over the transferred arrays): nothing per
// entry is done here.
import type { Worker } from 'node:worker_threads';
import { startWorker } from '../common/worker-thread.ts';
import type { HandedCrl, HandedCrlPath } from './cluster/crl-files.ts';
import type { SerialArrays } from './serial-table.ts';

/**
 * CRLs of this many bytes and more are read in the CRL thread; smaller ones on the main
 * thread, as before. At 1 MiB (~26,000 entries) both ways blocked the loop about as long
 * (bench/crl-take.ts); at 39 MB the main thread was held 1.5 s.
 */
export const CRL_WORKER_MIN_BYTES = 1024 * 1024;

/** An idle CRL thread is ended after this long: CRLs change every few minutes at most. */
export const CRL_THREAD_IDLE_MS = 30_000;

export type CrlJob =
  /**
   * A CRL to take: `crl` as fetched (PEM or DER, in blocks end to end), handed back joined in the reply; `cas`: DER of the CA
   * bound to the URL, then of the other trusted CAs (one whose subject is the CRL's issuer and
   * whose signature verifies it is named in the message). Or `crl` is a file another process of
   * a cluster handed over (runtime/cluster/crl-files.ts), read and checked here.
   */
  | { kind: 'read'; crl: Uint8Array[] | HandedCrlPath; cas: Uint8Array[] }
  /**
   * A CRL a cluster worker took, as the IPC channel carries it (base64: decoding 64 MiB is
   * ~80 ms, done there too): its signature by `ca` and its header, no entry walked
   * (runtime/cluster/verify-taken.ts).
   */
  | { kind: 'floor'; base64: string; ca: Uint8Array }
  /** The same, of a CRL a cluster worker handed over as a file (runtime/cluster/crl-files.ts): read and checked here. */
  | { kind: 'floor'; file: HandedCrlPath; ca: Uint8Array }
  /** A CRL this cluster worker took, written to a file in the hand-off directory `dir` for the primary. */
  | { kind: 'hand'; crl: Uint8Array; dir: string };

export type CrlWorkerReply =
  | { status: 'read'; thisUpdate: number; nextUpdate: number | null; number: string | null; serials: SerialArrays; crl: Uint8Array }
  | { status: 'floor'; thisUpdate: number; number: string | null }
  | { status: 'handed'; file: HandedCrl }
  /** The bound CA's signature does not verify; `signer`: the index in `cas` of the CA whose does, or -1. */
  | { status: 'unsigned'; signer: number }
  | { status: 'refused'; message: string };

/** What the thread is sent and answers: a job and its reply under one id. */
export interface CrlWorkerMessage {
  id: number;
  job: CrlJob;
}
export interface CrlWorkerAnswer {
  id: number;
  reply: CrlWorkerReply;
}

interface Waiting {
  resolve: (reply: CrlWorkerReply) => void;
  reject: (err: Error) => void;
}

/** The process's CRL thread: at most one running, started on demand, ended when idle. */
export class CrlThread {
  /** Threads started so far (tests: N large CRLs must not start N threads). */
  started = 0;
  private worker: Worker | null = null;
  private readonly waiting = new Map<number, Waiting>();
  private nextId = 1;
  private idleTimer: NodeJS.Timeout | null = null;

  constructor(private readonly idleMs = CRL_THREAD_IDLE_MS) {}

  /** A thread is up (running a job, or idle until `idleMs` passes). */
  get running(): boolean {
    return this.worker !== null;
  }

  /**
   * Runs `job` in the thread (the buffers in `transfer` move there). Resolves with its verdict;
   * rejects only when the thread could not run or died under the job.
   */
  ask(job: CrlJob, transfer: ArrayBuffer[]): Promise<CrlWorkerReply> {
    const worker = this.worker ?? this.start();
    if (this.idleTimer !== null) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    // Held while it has work: a caller awaiting a verdict keeps the process up, an idle thread does not.
    worker.ref();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      worker.postMessage({ id, job } satisfies CrlWorkerMessage, transfer);
    });
  }

  /** Ends the thread now (jobs under way reject). */
  stop(): Promise<void> {
    const worker = this.worker;
    this.gone(new Error('the CRL thread was stopped'));
    return worker === null ? Promise.resolve() : worker.terminate().then(() => undefined);
  }

  private start(): Worker {
    const worker = startWorker(import.meta.url, 'crl-worker');
    this.started++;
    this.worker = worker;
    worker.on('message', ({ id, reply }: CrlWorkerAnswer) => {
      const waiting = this.waiting.get(id);
      this.waiting.delete(id);
      if (this.waiting.size === 0) this.idle(worker);
      waiting?.resolve(reply);
    });
    worker.once('error', (err) => {
      if (this.worker === worker) this.gone(err);
    });
    worker.once('exit', (code) => {
      if (this.worker === worker) this.gone(new Error(`the CRL thread exited (code ${code}) without a verdict`));
    });
    return worker;
  }

  private idle(worker: Worker): void {
    worker.unref();
    if (this.idleTimer !== null) clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      if (this.worker !== worker || this.waiting.size > 0) return;
      this.worker = null;
      this.idleTimer = null;
      void worker.terminate();
    }, this.idleMs);
    this.idleTimer.unref();
  }

  /** The thread is gone: every job under way rejects, the next job starts another. */
  private gone(err: Error): void {
    if (this.idleTimer !== null) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    const worker = this.worker;
    this.worker = null;
    const waiting = [...this.waiting.values()];
    this.waiting.clear();
    for (const w of waiting) w.reject(err);
    if (worker !== null) void worker.terminate();
  }
}

/** The process's one CRL thread (the fetcher's and the primary's). */
export const crlThread = new CrlThread();

/**
 * Reads the CRL in `blocks` (PEM or DER, end to end) in the CRL thread. The blocks' buffers move
 * to the thread (readBlocks in runtime/capped-read.ts makes blocks that own theirs; others are
 * copied first), and the joined CRL comes back in a 'read' reply.
 */
export function readCrlInWorker(
  blocks: readonly Uint8Array[] | HandedCrlPath,
  cas: readonly Uint8Array[],
  thread: CrlThread = crlThread,
): Promise<CrlWorkerReply> {
  if (!Array.isArray(blocks)) return thread.ask({ kind: 'read', crl: blocks as HandedCrlPath, cas: cas.map((c) => new Uint8Array(c)) }, []);
  const own = blocks.map(ownBuffer);
  return thread.ask({ kind: 'read', crl: own, cas: cas.map((c) => new Uint8Array(c)) }, [...new Set(own.map((b) => b.buffer as ArrayBuffer))]);
}

/**
 * `block` itself when it views its ArrayBuffer from the start and node's Buffer pool does not
 * share that buffer with other Buffers (it can move without a copy), else a copy.
 */
function ownBuffer(block: Uint8Array): Uint8Array {
  const pooled = block.buffer.byteLength === Buffer.poolSize && block.byteLength < Buffer.poolSize;
  if (block.byteOffset === 0 && block.buffer instanceof ArrayBuffer && !pooled) return block;
  return new Uint8Array(block);
}

/** The signature by `ca` (DER) and the header of the CRL in `base64` or in a hand-off file, checked in the CRL thread. */
export function crlFloorInWorker(crl: string | HandedCrlPath, ca: Uint8Array, thread: CrlThread = crlThread): Promise<CrlWorkerReply> {
  const job: CrlJob = typeof crl === 'string' ? { kind: 'floor', base64: crl, ca: new Uint8Array(ca) } : { kind: 'floor', file: crl, ca: new Uint8Array(ca) };
  return thread.ask(job, []);
}

/** Writes `crl` to a new hand-off file in `dir` in the CRL thread (its buffer moves there when it owns it). */
export function handCrlInWorker(crl: Uint8Array, dir: string, thread: CrlThread = crlThread): Promise<CrlWorkerReply> {
  const own = ownBuffer(crl);
  return thread.ask({ kind: 'hand', crl: own, dir }, [own.buffer as ArrayBuffer]);
}
