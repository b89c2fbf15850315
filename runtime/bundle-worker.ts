// Worker thread entry: verifies a bundle off the main thread (digest, JSON.parse, shape, key
// expiries and allowed_urls patterns: the same checks, the same messages as a reload on the
// main thread) and posts it back compact (runtime/bundle-worker-compact.ts).
// Built as dist/bundle-worker.mjs beside dist/mtlsgate.mjs; run from source through tsx.
import { createHash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';
import type { WorkerReply, WorkerRequest } from './bundle-worker-client.ts';
import { transferables } from './bundle-worker-compact.ts';
import { verifyCompact } from './compact-load.ts';

function handle(request: WorkerRequest): { reply: WorkerReply; transfer: ArrayBuffer[] } {
  const bytes = Buffer.from(request.bytes);
  const bytesSha256 = createHash('sha256').update(bytes).digest('hex');
  if (bytesSha256 === request.servingSha256) return { reply: { status: 'unchanged' }, transfer: [] };
  try {
    const compact = verifyCompact(bytes, bytesSha256);
    return { reply: { status: 'verified', bundle: compact }, transfer: transferables(compact) };
  } catch (err) {
    return { reply: { status: 'refused', message: (err as Error).message }, transfer: [] };
  }
}

parentPort!.once('message', (request: WorkerRequest) => {
  const { reply, transfer } = handle(request);
  parentPort!.postMessage(reply, transfer);
});
