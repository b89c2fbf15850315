// How mtlsgate starts its worker threads (the runtime's bundle and large-CRL readers, the compiler's keys
// stage, the portal's full compiles): one place that knows where a worker's code is. From
// source (tests, benches) it is the .ts module beside the caller, loaded through the repository's
// TypeScript loader (scripts/ts-loader.mjs: what the test runner starts files with; tsx would cost
// each worker 0.3 CPU-s more to start), since workers do not inherit --import; in the build it is
// NAME.mjs beside dist/mtlsgate.mjs (scripts/build.mjs builds every entry there).
import { Worker, type WorkerOptions } from 'node:worker_threads';

/**
 * Starts the worker `name` (e.g. 'keys-worker') that sits beside the module at `callerUrl`
 * (its import.meta.url) in the source tree, and beside the CLI in the build.
 */
export function startWorker(callerUrl: string, name: string, options: WorkerOptions = {}): Worker {
  if (!callerUrl.endsWith('.ts')) return new Worker(new URL(`./${name}.mjs`, callerUrl), options);
  const source = new URL(`./${name}.ts`, callerUrl);
  const loader = new URL('../scripts/ts-loader.mjs', import.meta.url);
  const boot = `import(${JSON.stringify(loader.href)}).then(() => import(${JSON.stringify(source.href)}))`;
  return new Worker(boot, { ...options, eval: true });
}

/**
 * Starts the worker `name` (as startWorker), posts it `request` and resolves with its one answer;
 * the worker is terminated after. Rejects only when the worker itself could not run.
 */
export function askWorkerOnce<Reply>(callerUrl: string, name: string, request: unknown, transfer: ArrayBuffer[]): Promise<Reply> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const worker = startWorker(callerUrl, name);
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      fn();
      void worker.terminate();
    };
    worker.once('message', (reply: Reply) => settle(() => resolve(reply)));
    worker.once('error', (err) => settle(() => reject(err)));
    worker.once('exit', (code) => settle(() => reject(new Error(`${name.replace(/-/g, ' ')} exited (code ${code}) without a verdict`))));
    worker.postMessage(request, transfer);
  });
}
