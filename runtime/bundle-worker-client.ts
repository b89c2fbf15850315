// Main-thread side of the bundle worker: one short-lived worker thread per verification, so a
// big bundle's hashing and JSON.parse never block requests. The worker file sits beside this
// module when it runs from source (tsx) and beside dist/mtlsgate.mjs in the single-file build.
import { MessageChannel, type MessagePort, receiveMessageOnPort, type Worker } from 'node:worker_threads';
import { askWorkerOnce, startWorker } from '../common/worker-thread.ts';
import type { CompactBundle } from './bundle-worker-compact.ts';
import type { ShardRouting } from './shard-routing.ts';
import type { ServingRouting, ShardLocation } from './shard-set.ts';

export type WorkerRequest =
  | {
      kind: 'bundle';
      bytes: Uint8Array;
      /** SHA-256 of the bytes serving now: equal bytes are reported unchanged without parsing. */
      servingSha256: string;
    }
  | {
      kind: 'shards';
      manifest: Uint8Array;
      bytesSha256: string;
      location: ShardLocation;
      /**
       * The set serving now: its shards are not read again (their tables are shared, not copied),
       * and its routing is updated rather than rebuilt when few shards changed.
       */
      serving: ServingRouting;
    }
  | {
      /** Start-up: run the reload code over the first shard a few times, so the first real reload runs compiled code. */
      kind: 'warm';
      manifest: Uint8Array;
      bytesSha256: string;
      location: ShardLocation;
    };

export type WorkerReply =
  | { status: 'unchanged' }
  | { status: 'verified'; bundle: CompactBundle }
  | { status: 'shards'; base: CompactBundle; digests: string[]; fresh: [number, CompactBundle][]; routing: ShardRouting }
  | { status: 'refused'; message: string };

/**
 * Verifies `bytes` in a worker thread. Resolves with the worker's verdict (a refused bundle is
 * a verdict, not a rejection); rejects only when the worker itself could not run.
 */
export function verifyInWorker(bytes: Buffer, servingSha256: string): Promise<WorkerReply> {
  // A copy the worker owns: the caller keeps its Buffer, and the copy moves rather than clones.
  const copy = new Uint8Array(bytes);
  return runWorker({ kind: 'bundle', bytes: copy, servingSha256 }, [copy.buffer]);
}

/** What the shard worker answered, and when this thread began taking it (performance.now()): the clone of the answer is part of the reload's main-thread stall. */
export interface ShardReply {
  reply: WorkerReply;
  receivedAt: number;
}

/**
 * The worker of a sharded bundle. It stays up between reloads (idle, it costs no CPU and does
 * not keep the process alive): starting one and loading its code takes 100-500 ms, more than
 * reading the shard a one-key change touches. Its answers come through `replies`, a port with
 * no listener: a small note on the worker's own port says one is there, and taking it with
 * receiveMessageOnPort is timed (the clone of the answer is a main-thread stall a reload causes).
 */
interface ShardWorker {
  worker: Worker;
  replies: MessagePort;
}

let shardWorker: ShardWorker | null = null;

function startShardWorker(): ShardWorker {
  const { port1, port2 } = new MessageChannel();
  const worker = startWorker(import.meta.url, 'bundle-worker', { workerData: { replies: port2 }, transferList: [port2] });
  worker.unref();
  const w = { worker, replies: port1 };
  // Between reloads nobody listens: a failed worker is forgotten (the next reload starts another).
  worker.on('error', () => forget(w));
  worker.on('exit', () => forget(w));
  return w;
}

function forget(w: ShardWorker): void {
  if (shardWorker === w) shardWorker = null;
  w.replies.close();
}

/**
 * Loads a sharded bundle's changed shards in the worker thread (runtime/shard-set.ts
 * `loadShardSet`). Calls must not overlap (the store runs reloads one at a time). Resolves with
 * the worker's verdict (a refused set is a verdict); rejects only when the worker could not run.
 */
export function loadShardsInWorker(manifest: Buffer, bytesSha256: string, location: ShardLocation, serving: ServingRouting): Promise<ShardReply> {
  const copy = new Uint8Array(manifest);
  const request: WorkerRequest = { kind: 'shards', manifest: copy, bytesSha256, location, serving };
  return new Promise((resolve, reject) => {
    const w = (shardWorker ??= startShardWorker());
    w.worker.ref();
    const done = () => {
      w.worker.off('message', onNote);
      w.worker.off('error', onError);
      w.worker.off('exit', onExit);
      w.worker.unref();
    };
    const onNote = () => {
      const receivedAt = performance.now();
      const got = receiveMessageOnPort(w.replies);
      done();
      if (got === undefined) reject(new Error('internal error: the bundle worker said it answered, and no answer is there'));
      else resolve({ reply: got.message as WorkerReply, receivedAt });
    };
    const onError = (err: Error) => (done(), forget(w), void w.worker.terminate(), reject(err));
    const onExit = (code: number) => (done(), forget(w), reject(new Error(`bundle worker exited (code ${code}) without a verdict`)));
    w.worker.on('message', onNote);
    w.worker.once('error', onError);
    w.worker.once('exit', onExit);
    w.worker.postMessage(request, [copy.buffer]);
  });
}

/**
 * Starts the sharded-bundle worker at start-up, before this thread loads the set: the worker's
 * own start and its code's loading (~50-100 ms of CPU) happen during the load, so a change made
 * right after the first answer finds the worker up (when the worker started after the load,
 * that change waited 0.2-0.4 s for it). On one core the load pays for that CPU: the first answer
 * ~50 ms later at 100,000 keys (docs/scale.md).
 */
export function startShardWorkerEarly(): void {
  shardWorker ??= startShardWorker();
}

/**
 * Once the set is loaded: the worker runs the reload code over the manifest's first shard a few
 * times (~4096 keys; tens of milliseconds each), so the first one-key changes run optimised code
 * (cold, a reload costs 2-3 times a warm one). A reload posted meanwhile is taken after the
 * current pass, and the warm-up stops (runtime/shard-warm.ts).
 */
export function warmShardWorker(manifest: Buffer, bytesSha256: string, location: ShardLocation): void {
  const w = (shardWorker ??= startShardWorker());
  const copy = new Uint8Array(manifest);
  const request: WorkerRequest = { kind: 'warm', manifest: copy, bytesSha256, location };
  w.worker.postMessage(request, [copy.buffer]);
}

function runWorker(request: WorkerRequest, transfer: ArrayBuffer[]): Promise<WorkerReply> {
  return askWorkerOnce<WorkerReply>(import.meta.url, 'bundle-worker', request, transfer);
}
