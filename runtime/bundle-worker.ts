// Worker thread entry: verifies a bundle off the main thread (digest, JSON.parse, shape, key
// expiries and allowed_urls patterns: the same checks, the same messages as a reload on the
// main thread) and posts it back compact (runtime/bundle-worker-compact.ts).
// Built as dist/bundle-worker.mjs beside dist/mtlsgate.mjs; run from source through tsx.
import { createHash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';
import { loadBundle } from '../bundle/read.ts';
import { compactBundle, transferables } from './bundle-worker-compact.ts';
import { checkKeys } from '../bundle/checks.ts';
import type { WorkerReply, WorkerRequest } from './bundle-worker-client.ts';

function handle(request: WorkerRequest): { reply: WorkerReply; transfer: ArrayBuffer[] } {
  const bytes = Buffer.from(request.bytes);
  const bytesSha256 = createHash('sha256').update(bytes).digest('hex');
  if (bytesSha256 === request.servingSha256) return { reply: { status: 'unchanged' }, transfer: [] };
  try {
    const bundle = loadBundle(bytes);
    // A bad key is reported by the main thread after the APIs are checked, as a reload there would.
    let keyError: string | null = null;
    try {
      checkKeys(bundle.content.keys);
    } catch (err) {
      keyError = (err as Error).message;
    }
    const compact = compactBundle(bundle, bytesSha256, keyError);
    return { reply: { status: 'verified', bundle: compact }, transfer: transferables(compact) };
  } catch (err) {
    return { reply: { status: 'refused', message: (err as Error).message }, transfer: [] };
  }
}

parentPort!.once('message', (request: WorkerRequest) => {
  const { reply, transfer } = handle(request);
  parentPort!.postMessage(reply, transfer);
});
