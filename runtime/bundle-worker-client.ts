// Main-thread side of the bundle worker: one short-lived worker thread per verification, so a
// big bundle's hashing and JSON.parse never block requests. The worker file sits beside this
// module when it runs from source (tsx) and beside dist/mtlsgate.mjs in the single-file build.
import { Worker } from 'node:worker_threads';
import type { CompactBundle } from './bundle-worker-compact.ts';

export interface WorkerRequest {
  bytes: Uint8Array;
  /** SHA-256 of the bytes serving now: equal bytes are reported unchanged without parsing. */
  servingSha256: string;
}

export type WorkerReply = { status: 'unchanged' } | { status: 'verified'; bundle: CompactBundle } | { status: 'refused'; message: string };

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
    // A copy the worker owns: the caller keeps its Buffer, and the copy moves rather than clones.
    const copy = new Uint8Array(bytes);
    worker.postMessage({ bytes: copy, servingSha256 } satisfies WorkerRequest, [copy.buffer]);
  });
}
