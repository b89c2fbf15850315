// Main-thread side of the bundle worker: one short-lived worker thread per verification, so a
// big bundle's hashing and JSON.parse never block requests. The worker file sits beside this
// module when it runs from source (tsx) and beside dist/mtlsgate.mjs in the single-file build.
import { Worker } from 'node:worker_threads';
import type { CompactBundle } from './bundle-worker-compact.ts';
import type { RoutingSource, ShardRouting } from './shard-routing.ts';
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
      /** The shards serving now, by digest: not read again (their tables are shared, not copied). */
      held: [string, RoutingSource][];
      /** The serving set's routing, updated rather than rebuilt when few shards changed. */
      serving: ServingRouting;
    };

export type WorkerReply =
  | { status: 'unchanged' }
  | { status: 'verified'; bundle: CompactBundle }
  | { status: 'shards'; base: CompactBundle; digests: string[]; fresh: [number, CompactBundle][]; routing: ShardRouting }
  | { status: 'refused'; message: string };

const fromSource = import.meta.url.endsWith('.ts');
const workerFile = new URL(fromSource ? './bundle-worker.ts' : './bundle-worker.mjs', import.meta.url);

/** From source (tests, benches) the worker needs tsx's loader: workers do not inherit --import. */
function startWorker(): Worker {
  if (!fromSource) return new Worker(workerFile);
  const boot = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(workerFile.href)}); })`;
  return new Worker(boot, { eval: true });
}

/**
 * Verifies `bytes` in a worker thread. Resolves with the worker's verdict (a refused bundle is
 * a verdict, not a rejection); rejects only when the worker itself could not run.
 */
export function verifyInWorker(bytes: Buffer, servingSha256: string): Promise<WorkerReply> {
  // A copy the worker owns: the caller keeps its Buffer, and the copy moves rather than clones.
  const copy = new Uint8Array(bytes);
  return runWorker({ kind: 'bundle', bytes: copy, servingSha256 }, [copy.buffer]);
}

/**
 * Loads a sharded bundle's changed shards in a worker thread (runtime/shard-set.ts
 * `loadShardSet`). One worker stays up between reloads (idle, it costs no CPU and does not keep
 * the process alive): starting one and loading its code takes 100-500 ms, more than reading the
 * shard a one-key change touches. Calls must not overlap (the store runs reloads one at a time).
 */
export function loadShardsInWorker(
  manifest: Buffer,
  bytesSha256: string,
  location: ShardLocation,
  held: [string, RoutingSource][],
  serving: ServingRouting,
): Promise<WorkerReply> {
  const copy = new Uint8Array(manifest);
  const request: WorkerRequest = { kind: 'shards', manifest: copy, bytesSha256, location, held, serving };
  return new Promise((resolve, reject) => {
    const worker = (shardWorker ??= startWorker());
    worker.ref();
    const done = () => {
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
      worker.unref();
    };
    const onMessage = (reply: WorkerReply) => (done(), resolve(reply));
    const onError = (err: Error) => (done(), forget(worker), void worker.terminate(), reject(err));
    const onExit = (code: number) => (done(), forget(worker), reject(new Error(`bundle worker exited (code ${code}) without a verdict`)));
    worker.on('message', onMessage);
    worker.once('error', onError);
    worker.once('exit', onExit);
    worker.postMessage(request, [copy.buffer]);
  });
}

let shardWorker: Worker | null = null;

function forget(worker: Worker): void {
  if (shardWorker === worker) shardWorker = null;
}

/** Starts the sharded-bundle worker ahead of the first reload (its code loads while nothing waits). */
export function prestartShardWorker(): void {
  (shardWorker ??= startWorker()).unref();
}

function runWorker(request: WorkerRequest, transfer: ArrayBuffer[]): Promise<WorkerReply> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const worker = startWorker();
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      fn();
      void worker.terminate();
    };
    worker.once('message', (reply: WorkerReply) => settle(() => resolve(reply)));
    worker.once('error', (err) => settle(() => reject(err)));
    worker.once('exit', (code) => settle(() => reject(new Error(`bundle worker exited (code ${code}) without a verdict`))));
    worker.postMessage(request, transfer);
  });
}
