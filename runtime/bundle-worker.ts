// Worker thread entry: verifies a bundle off the main thread (digest, JSON.parse, shape, key
// expiries and allowed_urls patterns: the same checks, the same messages as a reload on the
// main thread) and posts it back compact (runtime/bundle-worker-compact.ts). For a sharded
// bundle it verifies the manifest, reads the shards the gateway does not hold yet and updates
// the routing (runtime/shard-set.ts).
// Built as dist/bundle-worker.mjs beside dist/mtlsgate.mjs; run from source through tsx.
import { createHash } from 'node:crypto';
import { type MessagePort, parentPort, workerData } from 'node:worker_threads';
import type { WorkerReply, WorkerRequest } from './bundle-worker-client.ts';
import { transferables } from './bundle-worker-compact.ts';
import { verifyCompact } from './compact-load.ts';
import { loadShardSet, type ServingRouting } from './shard-set.ts';
import { warmShardLoading } from './shard-warm.ts';

async function handle(request: WorkerRequest): Promise<{ reply: WorkerReply; transfer: ArrayBuffer[] } | null> {
  if (request.kind === 'warm') {
    // Whatever goes wrong here, the reload that follows meets it again and reports it.
    // A reload that arrives meanwhile is taken after the current pass, not after all of them.
    await warmShardLoading(Buffer.from(request.manifest), request.bytesSha256, request.location, () => waiting > 0).catch(() => undefined);
    return null;
  }
  if (request.kind === 'shards') {
    try {
      const held = heldOf(request.serving);
      const loaded = await loadShardSet(Buffer.from(request.manifest), request.bytesSha256, request.location, held, request.serving);
      const fresh = [...loaded.fresh];
      // The routing's arrays are SharedArrayBuffers: posted, they are shared, not copied.
      const transfer = transferables(loaded.base);
      // One compact may stand at two indexes (equal shards, e.g. empty ones): transfer its buffers once.
      for (const c of new Set(loaded.fresh.values())) transfer.push(...transferables(c));
      return { reply: { status: 'shards', base: loaded.base, digests: loaded.digests, fresh, routing: loaded.routing }, transfer };
    } catch (err) {
      return { reply: { status: 'refused', message: (err as Error).message }, transfer: [] };
    }
  }
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

/** The serving set's shards by digest (what a reload does not read again). */
function heldOf(serving: ServingRouting): Map<string, ServingRouting['shards'][number]> {
  const held = new Map<string, ServingRouting['shards'][number]>();
  serving.digests.forEach((d, i) => held.set(d, serving.shards[i]));
  return held;
}

// The worker of a sharded bundle stays up between reloads (runtime/bundle-worker-client.ts),
// answers through the port it was given, and handles requests one after another (the start-up
// warm-up first, cut short by a reload that arrives during it). One for a single-file bundle
// answers on the worker port itself and is terminated after.
const replies = (workerData as { replies?: MessagePort } | null)?.replies;
let queue: Promise<unknown> = Promise.resolve();
/** Requests other than the warm-up that arrived and have not started: the warm-up yields to them. */
let waiting = 0;
parentPort!.on('message', (request: WorkerRequest) => {
  const real = request.kind !== 'warm';
  if (real) waiting++;
  queue = queue
    .then(() => {
      if (real) waiting--;
      return handle(request);
    })
    .then((answer) => {
      if (answer === null) return;
      if (replies === undefined) return parentPort!.postMessage(answer.reply, answer.transfer);
      replies.postMessage(answer.reply, answer.transfer);
      parentPort!.postMessage('answered');
    });
});
